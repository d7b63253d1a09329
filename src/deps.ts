import type { PgBoss } from "pg-boss";
import type { Logger } from "pino";
import type { Config } from "./config.ts";
import type { Orm } from "./database/orm.ts";

/**
 * Everything a request, a job or a command needs, built once in main.ts (or by a test) and
 * passed down. There are no module-level singletons.
 */
export interface AppDeps {
  config: Config;
  logger: Logger;
  orm: Orm;
  boss: PgBoss;
}
