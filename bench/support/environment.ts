import { randomBytes } from "node:crypto";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import pg from "pg";
import pino, { type Logger } from "pino";
import { type EmbeddedDatabase, startEmbeddedDatabase } from "../../src/database/embedded.ts";
import { processTreeCpuMs } from "./proc.ts";

/** Level of the logs of everything the benchmarks start; they go to stderr, the table to stdout. */
export const BENCH_LOG_LEVEL = process.env.BENCH_LOG_LEVEL ?? "warn";

export function benchLogger(): Logger {
  return pino({ level: BENCH_LOG_LEVEL, base: { service: "podflow-bench" } }, pino.destination(2));
}

/**
 * What the run started and must stop, last first: on success, on failure and on Ctrl-C alike.
 * Each resource registers its own teardown the moment it exists.
 */
export class Cleanups {
  readonly #steps: Array<{ name: string; run: () => Promise<void> }> = [];

  /** Registers a teardown; the returned function runs it early (and only once). */
  add(name: string, run: () => Promise<void>): () => Promise<void> {
    let done: Promise<void> | null = null;
    const step = {
      name,
      run: () => {
        done ??= run();
        return done;
      },
    };
    this.#steps.push(step);
    return async () => {
      const index = this.#steps.indexOf(step);
      if (index >= 0) this.#steps.splice(index, 1);
      await step.run();
    };
  }

  /**
   * Runs every teardown still registered, newest first; reports failures and carries on. A call
   * while one is running (Ctrl-C during the normal cleanup) waits for that one.
   */
  runAll(log: (message: string) => void): Promise<boolean> {
    this.#running ??= this.#drain(log).finally(() => {
      this.#running = null;
    });
    return this.#running;
  }

  #running: Promise<boolean> | null = null;

  async #drain(log: (message: string) => void): Promise<boolean> {
    let clean = true;
    while (this.#steps.length > 0) {
      const step = this.#steps.pop() as { name: string; run: () => Promise<void> };
      try {
        await withTimeout(step.run(), 60_000, `cleanup "${step.name}"`);
      } catch (error) {
        clean = false;
        log(`cleanup "${step.name}" failed: ${(error as Error).message}`);
      }
    }
    return clean;
  }
}

export function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} took longer than ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** A database made for one scenario, dropped when the run ends (or earlier). */
export interface BenchDatabase {
  name: string;
  url: string;
  drop(): Promise<void>;
}

/**
 * The PostgreSQL server of the run: an embedded one in a temporary directory, or the server
 * DATABASE_URL points at. Every scenario gets a fresh database on it.
 */
export interface DatabaseServer {
  kind: "embedded" | "external";
  /** `SELECT version()` of the server. */
  version: string;
  /** Settings that decide what one commit costs (fsync, synchronous_commit...). */
  settings: Record<string, string>;
  createDatabase(label: string): Promise<BenchDatabase>;
  /**
   * CPU time the whole server (postmaster and backends) has used so far, in ms: embedded
   * server on Linux only, NaN otherwise.
   */
  cpuMs(): Promise<number>;
  /**
   * Writes out what the scenarios so far left dirty (CHECKPOINT), so that the next one does not
   * pay for it while it measures — and its baseline, measured at another moment, does not.
   */
  checkpoint(): Promise<void>;
}

const COMMIT_SETTINGS = [
  "fsync",
  "synchronous_commit",
  "wal_sync_method",
  "commit_delay",
  "max_connections",
  "shared_buffers",
];

export async function startDatabaseServer(
  cleanups: Cleanups,
  logger: Logger,
): Promise<DatabaseServer> {
  let serverUrl = process.env.DATABASE_URL;
  let kind: DatabaseServer["kind"] = "external";
  let pgData: string | null = null;
  if (!serverUrl) {
    kind = "embedded";
    const dataDir = await mkdtemp(path.join(tmpdir(), "podflow-bench-"));
    cleanups.add("remove the embedded database directory", () =>
      rm(dataDir, { recursive: true, force: true }),
    );
    const embedded: EmbeddedDatabase = await startEmbeddedDatabase({
      dataDir,
      logger,
      database: "postgres",
    });
    cleanups.add("stop the embedded PostgreSQL", () => embedded.stop());
    serverUrl = embedded.url;
    pgData = path.join(dataDir, "postgres");
  }
  const adminUrl = withDatabase(serverUrl, "postgres");
  const info = await withClient(adminUrl, async (client) => {
    const version = (await client.query<{ version: string }>("select version()")).rows[0]?.version;
    const settings = await client.query<{ name: string; setting: string; unit: string | null }>(
      "select name, setting, unit from pg_settings where name = any($1)",
      [COMMIT_SETTINGS],
    );
    return {
      version: version ?? "unknown",
      settings: Object.fromEntries(
        settings.rows.map((row) => [row.name, `${row.setting}${row.unit ? ` ${row.unit}` : ""}`]),
      ),
    };
  });

  const postmasterPid = pgData
    ? Number((await readFile(path.join(pgData, "postmaster.pid"), "utf8")).split("\n")[0])
    : null;

  return {
    kind,
    ...info,
    cpuMs: () => (postmasterPid ? processTreeCpuMs(postmasterPid) : Promise.resolve(Number.NaN)),
    checkpoint: () => withClient(adminUrl, (client) => client.query("checkpoint")).then(() => {}),
    async createDatabase(label: string) {
      const name = `podflow_bench_${label.replace(/[^a-z0-9]/g, "_")}_${randomBytes(4).toString("hex")}`;
      await withClient(adminUrl, (client) => client.query(`create database ${name}`));
      const drop = cleanups.add(`drop database ${name}`, () =>
        withClient(adminUrl, (client) =>
          client.query(`drop database if exists ${name} with (force)`),
        ).then(() => undefined),
      );
      return { name, url: withDatabase(serverUrl, name), drop };
    },
  };
}

export function withDatabase(url: string, database: string): string {
  const parsed = new URL(url);
  parsed.pathname = `/${database}`;
  return parsed.toString();
}

export async function withClient<T>(
  url: string,
  use: (client: pg.Client) => Promise<T>,
): Promise<T> {
  const client = new pg.Client({ connectionString: url, application_name: "podflow-bench" });
  await client.connect();
  try {
    return await use(client);
  } finally {
    await client.end();
  }
}
