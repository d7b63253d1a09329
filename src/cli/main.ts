/**
 * The `podflow` command: accounts and tokens, against the database the server uses (the
 * embedded one under PODFLOW_DATA_DIR, or DATABASE_URL) — also while the server runs.
 *
 *   podflow users create --email you@example.com [--token-name laptop]
 *   podflow tokens create --email you@example.com [--name ci]
 *   podflow tokens list --email you@example.com
 *   podflow tokens revoke <token id>
 *
 * Commands that make a token print it alone on the last line of standard output.
 */
import { existsSync } from "node:fs";
import { parseArgs } from "node:util";
import pino from "pino";
import { ConfigError, loadConfig } from "../config.ts";
import { type EmbeddedDatabase, startEmbeddedDatabase } from "../database/embedded.ts";
import { migrate, type Orm, openOrm } from "../database/orm.ts";
import { DomainError } from "../services/errors.ts";
import { runCommand, UsageError } from "./commands.ts";

const USAGE = `Usage:
  podflow users create --email <email> [--token-name <name>]
  podflow tokens create --email <email> [--name <name>]
  podflow tokens list --email <email>
  podflow tokens revoke <token id>`;

if (existsSync(".env")) process.loadEnvFile(".env");

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    email: { type: "string" },
    name: { type: "string" },
    "token-name": { type: "string" },
    help: { type: "boolean", short: "h" },
  },
});

if (values.help || positionals.length < 2) {
  console.log(USAGE);
  process.exit(values.help ? 0 : 2);
}

let embedded: EmbeddedDatabase | null = null;
let orm: Orm | null = null;
let exitCode = 0;
try {
  const config = loadConfig();
  // Logs go to standard error: standard output is the command's answer.
  const logger = pino(
    { level: config.logLevel === "info" ? "warn" : config.logLevel },
    pino.destination(2),
  );
  let databaseUrl = config.databaseUrl;
  if (!databaseUrl) {
    embedded = await startEmbeddedDatabase({ dataDir: config.dataDir, logger });
    databaseUrl = embedded.url;
  }
  orm = await openOrm(databaseUrl, logger, { poolMax: 2 });
  await migrate(orm, databaseUrl, logger);
  const lines = await runCommand(orm.em.fork(), positionals, values);
  for (const line of lines) console.log(line);
} catch (error) {
  if (error instanceof ConfigError || error instanceof DomainError) {
    console.error(`podflow: ${error.message}`);
    exitCode = 1;
  } else if (error instanceof UsageError) {
    console.error(`podflow: ${error.message}\n${USAGE}`);
    exitCode = 2;
  } else {
    throw error;
  }
} finally {
  await orm?.close();
  await embedded?.stop();
}
process.exit(exitCode);
