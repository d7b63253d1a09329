/**
 * The `podflow` command (`podflow --help`, and `--help` after any command).
 *
 * Accounts and tokens, against the database the server uses (the embedded one under
 * PODFLOW_DATA_DIR, or DATABASE_URL) — also while the server runs:
 *   podflow users create --email you@example.com [--token-name laptop]
 *   podflow tokens create|list --email you@example.com / podflow tokens revoke <token id>
 * Commands that make a token print it alone on the last line of standard output.
 *
 * A producer's work, through the public API (PODFLOW_URL and PODFLOW_TOKEN, or --url/--token):
 *   podflow upload <file> --title "…" [--description …] [--show <id>] [--watch]
 *   podflow episodes / podflow watch <episode id> / podflow retry <episode id> [--watch]
 *
 * A running Podflow's readiness, for container health checks (API or worker-only process):
 *   podflow health [--url http://127.0.0.1:4000]
 *
 * Exit codes: 0 done (PROCESSED when watching), 1 failed (FAILED, refused, unreachable),
 * 2 bad usage.
 */
import { existsSync } from "node:fs";
import { homedir } from "node:os";
import path from "node:path";
import { Command, CommanderError, InvalidArgumentError, Option } from "commander";
import { ApiError, createApi } from "./api.ts";
import type { CommandOptions } from "./commands.ts";
import { healthCommand, localBaseUrl } from "./health.ts";
import {
  episodesCommand,
  type Output,
  retryCommand,
  UsageProblem,
  uploadCommand,
  watchCommand,
} from "./remote.ts";

if (existsSync(".env")) process.loadEnvFile(".env");

const output: Output = {
  out: (line) => process.stdout.write(`${line}\n`),
  err: (line) => process.stderr.write(`${line}\n`),
  tty: Boolean(process.stderr.isTTY),
};

/**
 * Accounts and tokens: straight to the database, as the server's operator. The database modules
 * are loaded only here, so the API commands start quickly.
 */
async function admin(words: string[], options: CommandOptions): Promise<number> {
  const [{ default: pino }, { ConfigError, loadConfig }, embeddedDb, orms, errors, commands] =
    await Promise.all([
      import("pino"),
      import("../config.ts"),
      import("../database/embedded.ts"),
      import("../database/orm.ts"),
      import("../services/errors.ts"),
      import("./commands.ts"),
    ]);
  const { startEmbeddedDatabase } = embeddedDb;
  const { migrate, openOrm } = orms;
  const { DomainError } = errors;
  const { runCommand, UsageError } = commands;
  let embedded: Awaited<ReturnType<typeof startEmbeddedDatabase>> | null = null;
  let orm: Awaited<ReturnType<typeof openOrm>> | null = null;
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
    for (const line of await runCommand(orm.em.fork(), words, options)) output.out(line);
    return 0;
  } catch (error) {
    if (error instanceof ConfigError || error instanceof DomainError) {
      output.err(`podflow: ${error.message}`);
      return 1;
    }
    if (error instanceof UsageError) throw new UsageProblem(error.message);
    throw error;
  } finally {
    await orm?.close();
    await embedded?.stop();
  }
}

interface ApiFlags {
  url: string;
  token?: string;
}

/** The options every API command takes. */
function apiCommand(command: Command): Command {
  return command
    .addOption(
      new Option("--url <url>", "Podflow's base URL")
        .env("PODFLOW_URL")
        .default("http://127.0.0.1:4000"),
    )
    .addOption(new Option("--token <token>", "your API token").env("PODFLOW_TOKEN"));
}

function apiFrom(flags: ApiFlags) {
  if (!flags.token) {
    throw new UsageProblem(
      "an API token is needed: set PODFLOW_TOKEN or pass --token (podflow tokens create --email …)",
    );
  }
  return createApi({ url: flags.url, token: flags.token });
}

function positiveInt(value: string): number {
  const number = Number(value);
  if (!Number.isInteger(number) || number < 1 || number > 100) {
    throw new InvalidArgumentError("a whole number from 1 to 100");
  }
  return number;
}

const program = new Command("podflow")
  .description("Podflow: upload once, get audio, video, transcript and chapters.")
  .exitOverride()
  .showHelpAfterError();

const users = program.command("users").description("producers (on the server's database)");
users
  .command("create")
  .description("create a producer and their first API token")
  .requiredOption("--email <email>", "the producer's e-mail address")
  .option("--token-name <name>", "a name for the token", "default")
  .action(async (options: { email: string; tokenName: string }) => {
    process.exitCode = await admin(["users", "create"], {
      email: options.email,
      "token-name": options.tokenName,
    });
  });

const tokens = program.command("tokens").description("API tokens (on the server's database)");
tokens
  .command("create")
  .description("issue another API token")
  .requiredOption("--email <email>", "whose token")
  .option("--name <name>", "a name for the token", "default")
  .action(async (options: { email: string; name: string }) => {
    process.exitCode = await admin(["tokens", "create"], options);
  });
tokens
  .command("list")
  .description("list a producer's tokens")
  .requiredOption("--email <email>", "whose tokens")
  .action(async (options: { email: string }) => {
    process.exitCode = await admin(["tokens", "list"], options);
  });
tokens
  .command("revoke")
  .description("revoke a token at once (its live subscriptions end too)")
  .argument("<token-id>", "the token's id (tokens list shows it)")
  .action(async (id: string) => {
    process.exitCode = await admin(["tokens", "revoke", id], {});
  });

apiCommand(
  program
    .command("upload")
    .description("upload a recording as a new episode, with a progress bar; resumable")
    .argument("<file>", "the recording (video or audio)")
    .requiredOption("--title <title>", "the episode's title")
    .option("--description <text>", "the episode's description")
    .option("--show <id>", "the show the episode belongs to")
    .option("--watch", "follow processing until it ends (exit 0 PROCESSED, 1 FAILED)"),
).action(async (file: string, flags: ApiFlags & Parameters<typeof uploadCommand>[2]) => {
  const interrupted = new AbortController();
  // The first Ctrl-C stops the upload where it is (the same command resumes it); a second quits.
  process.once("SIGINT", () => {
    interrupted.abort();
    process.once("SIGINT", () => process.exit(130));
  });
  const stateHome = process.env.XDG_STATE_HOME || path.join(homedir(), ".local", "state");
  process.exitCode = await uploadCommand(
    apiFrom(flags),
    file,
    { ...flags, stateDir: path.join(stateHome, "podflow") },
    output,
    interrupted.signal,
  );
});

apiCommand(
  program
    .command("episodes")
    .description("your episodes, newest first")
    .option("--first <n>", "how many (1–100)", positiveInt, 20),
).action(async (flags: ApiFlags & { first: number }) => {
  process.exitCode = await episodesCommand(apiFrom(flags), flags, output);
});

apiCommand(
  program
    .command("watch")
    .description("follow an episode's processing live (exit 0 PROCESSED, 1 FAILED)")
    .argument("<episode-id>", "the episode's id"),
).action(async (id: string, flags: ApiFlags) => {
  process.exitCode = await watchCommand(apiFrom(flags), id, output);
});

apiCommand(
  program
    .command("retry")
    .description("process a FAILED episode again (its failed tasks only)")
    .argument("<episode-id>", "the episode's id")
    .option("--watch", "follow processing until it ends"),
).action(async (id: string, flags: ApiFlags & { watch?: boolean }) => {
  process.exitCode = await retryCommand(apiFrom(flags), id, flags, output);
});

program
  .command("health")
  .description(
    "check that a running Podflow (API or worker) is ready: exit 0 ready, 1 not (for container health checks)",
  )
  .addOption(
    new Option("--url <url>", "the Podflow to check (default: http://127.0.0.1:$PORT)").env(
      "PODFLOW_HEALTH_URL",
    ),
  )
  .action(async (flags: { url?: string }) => {
    process.exitCode = await healthCommand(flags.url ?? localBaseUrl(), output);
  });

try {
  await program.parseAsync();
} catch (error) {
  if (error instanceof CommanderError) {
    // Help and --version are answers; anything else commander refused is bad usage.
    const answered = error.code === "commander.helpDisplayed" || error.code === "commander.version";
    process.exitCode = answered ? 0 : 2;
  } else if (error instanceof UsageProblem) {
    output.err(`podflow: ${error.message}`);
    process.exitCode = 2;
  } else if (error instanceof ApiError) {
    output.err(`podflow: ${error.message}`);
    process.exitCode = 1;
  } else {
    throw error;
  }
}
// Open handles (a WebSocket, a database pool) must not keep a finished command alive.
process.exit(process.exitCode ?? 0);
