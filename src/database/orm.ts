import path from "node:path";
import { fileURLToPath } from "node:url";
import { Migrator } from "@mikro-orm/migrations";
import { defineConfig, MikroORM, type Options } from "@mikro-orm/postgresql";
import pg from "pg";
import type { Logger } from "pino";
import { entities } from "../entities/index.ts";
import { migrations } from "./migrations/index.ts";

export type Orm = MikroORM;

/** Where migrations and the schema snapshot live in the source tree (used by the generator). */
export const MIGRATIONS_DIR = path.join(path.dirname(fileURLToPath(import.meta.url)), "migrations");

/** Any constant: the advisory lock that lets one of several starting instances migrate at a time. */
const MIGRATION_LOCK_KEY = 0x706f64666c6f77n; // "podflow"

export interface OrmOptions {
  poolMax?: number;
  /** Called with each SQL statement sent (MikroORM's query log). */
  onQuery?: (sql: string) => void;
}

export function ormOptions(databaseUrl: string, logger: Logger, options: OrmOptions = {}): Options {
  const { poolMax = 10, onQuery } = options;
  return defineConfig({
    clientUrl: databaseUrl,
    entities,
    extensions: [Migrator],
    // A fork per GraphQL operation and per job (docs/architecture.md): the global context is off, so any
    // accidental use of the global EntityManager fails loudly instead of sharing state.
    allowGlobalContext: false,
    pool: { min: 0, max: poolMax },
    migrations: {
      migrationsList: migrations,
      path: MIGRATIONS_DIR,
      pathTs: MIGRATIONS_DIR,
      emit: "ts",
      tableName: "mikro_orm_migrations",
      snapshotName: ".snapshot-podflow",
      allOrNothing: true,
      // The snapshot is written when a migration is generated, never at run time: production
      // source folders may be read-only.
      snapshotOnMigrate: false,
      silent: true,
    },
    debug: onQuery ? ["query"] : logger.isLevelEnabled("trace") ? ["query", "query-params"] : false,
    logger: (message) => {
      if (onQuery) onQuery(message);
      else logger.trace({ orm: message }, "mikro-orm");
    },
  });
}

export async function openOrm(
  databaseUrl: string,
  logger: Logger,
  options?: OrmOptions,
): Promise<Orm> {
  return MikroORM.init(ormOptions(databaseUrl, logger, options));
}

/**
 * Applies pending migrations. Several instances may start at once: a session-level advisory lock
 * held on a separate connection makes them take turns, and each finds the work done by the
 * one before it.
 */
export async function migrate(orm: Orm, databaseUrl: string, logger: Logger): Promise<void> {
  const lock = new pg.Client({ connectionString: databaseUrl });
  await lock.connect();
  try {
    await lock.query("select pg_advisory_lock($1)", [MIGRATION_LOCK_KEY.toString()]);
    const applied = await orm.migrator.up();
    if (applied.length > 0) {
      logger.info({ migrations: applied.map((m) => m.name) }, "database migrations applied");
    }
  } finally {
    await lock
      .query("select pg_advisory_unlock($1)", [MIGRATION_LOCK_KEY.toString()])
      .catch(() => {});
    await lock.end();
  }
}
