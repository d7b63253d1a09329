import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { once } from "node:events";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import { type RunningPodflow, type StartOptions, startPodflow } from "../../src/app.ts";
import { loadConfig } from "../../src/config.ts";
import { freePort } from "../../src/free-port.ts";
import { type IttybitStandIn, startIttybitStandIn } from "../../test/support/ittybit-stand-in.ts";
import { BENCH_LOG_LEVEL, benchLogger, type Cleanups } from "./environment.ts";
import { processCpuMs, processRssBytes } from "./proc.ts";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));

export const BENCH_ITTYBIT_KEY = "ittybit_bench_key_0123456789";

/** A fresh Standard Webhooks secret per run: deliveries are signed as Ittybit's would be. */
export const BENCH_WEBHOOK_SECRET = `whsec_${randomBytes(24).toString("base64")}`;

/** The secret segment of the webhook URL, fixed per run so every instance and sender knows it. */
export const BENCH_WEBHOOK_TOKEN = randomBytes(32).toString("base64url");
/** Where a benchmarked Podflow takes Ittybit's deliveries. */
export const BENCH_WEBHOOK_PATH = `/webhooks/ittybit/${BENCH_WEBHOOK_TOKEN}`;

/** The Ittybit client's pacing in the benchmarks: real timeouts, quick retries. */
const ITTYBIT_PACING: StartOptions["ittybit"] = {
  timeoutMs: 5_000,
  retry: { limit: 2, baseDelayMs: 10, maxDelayMs: 50, totalTimeoutMs: 10_000 },
};

/** The Ittybit stand-in of test/support (plain node:http), stopped with the run. */
export async function startStandIn(cleanups: Cleanups): Promise<IttybitStandIn> {
  const standIn = await startIttybitStandIn({
    apiKey: BENCH_ITTYBIT_KEY,
    webhookSecret: BENCH_WEBHOOK_SECRET,
  });
  cleanups.add("stop the Ittybit stand-in", () => standIn.close());
  return standIn;
}

/**
 * The environment a benchmarked Podflow gets, as production would set it. Without a stand-in
 * (an api-only instance that only takes webhooks) Ittybit's URL points nowhere: it is never called.
 */
function podflowEnv(
  databaseUrl: string,
  standIn: IttybitStandIn | null,
  port: number,
  dataDir: string,
  env: Record<string, string>,
): Record<string, string> {
  return {
    NODE_ENV: "production",
    DATABASE_URL: databaseUrl,
    HOST: "127.0.0.1",
    PORT: String(port),
    PODFLOW_DATA_DIR: dataDir,
    LOG_LEVEL: BENCH_LOG_LEVEL,
    ITTYBIT_API_KEY: BENCH_ITTYBIT_KEY,
    ITTYBIT_API_URL: standIn?.url ?? "http://127.0.0.1:9",
    // Outputs come from the stand-in, over http on loopback: listed exactly.
    PODFLOW_OUTPUT_HOSTS: standIn ? new URL(standIn.url).host : "",
    // Thousands of subscribers share one producer's token here (one per dashboard in real life).
    PODFLOW_WS_MAX_SOCKETS_PER_TOKEN: "100000",
    PODFLOW_SSE_MAX_STREAMS_PER_TOKEN: "100000",
    // ...and all of them come from 127.0.0.1.
    PODFLOW_WS_MAX_SOCKETS_PER_ADDRESS: "100000",
    PODFLOW_SSE_MAX_STREAMS_PER_ADDRESS: "100000",
    // One producer uploads hundreds of episodes a round (job pickup, engine overhead).
    PODFLOW_MAX_EPISODES_PER_HOUR: "1000000",
    ITTYBIT_WEBHOOK_SECRET: BENCH_WEBHOOK_SECRET,
    PODFLOW_WEBHOOK_TOKEN: BENCH_WEBHOOK_TOKEN,
    ...env,
  };
}

/**
 * A Podflow in this process (for scenarios that read its internals: SQL statements, the ORM).
 * Its logs go to stderr at BENCH_LOG_LEVEL. Without a stand-in, Ittybit's URL points nowhere;
 * pass `ITTYBIT_API_KEY: ""` in env for an installation that has no Ittybit at all.
 */
export async function startInProcessPodflow(
  cleanups: Cleanups,
  options: {
    databaseUrl: string;
    standIn: IttybitStandIn | null;
    env?: Record<string, string>;
    start?: StartOptions;
  },
): Promise<RunningPodflow> {
  const dataDir = await mkdtemp(path.join(tmpdir(), "podflow-bench-app-"));
  cleanups.add("remove a Podflow data directory", () =>
    rm(dataDir, { recursive: true, force: true }),
  );
  const config = loadConfig(
    podflowEnv(options.databaseUrl, options.standIn, await freePort(), dataDir, options.env ?? {}),
  );
  const podflow = await startPodflow(config, {
    logger: benchLogger(),
    shutdownGraceMs: 5_000,
    ittybit: ITTYBIT_PACING,
    ...options.start,
  });
  const stop = cleanups.add("stop an in-process Podflow", () => podflow.stop());
  return { ...podflow, stop };
}

/** A Podflow run as `npm start` runs it: `node src/main.ts` in a process of its own. */
export interface PodflowProcess {
  url: string;
  pid: number;
  /** CPU time (user + system) the process has used so far, in ms. */
  cpuMs(): Promise<number>;
  /** Resident set size now, in bytes. */
  rssBytes(): Promise<number>;
  stop(): Promise<void>;
}

/**
 * Spawns Podflow as a separate process, so that the load generator (this process) does not
 * share its event loop. Ready once GET /readyz answers 200.
 */
export async function spawnPodflow(
  cleanups: Cleanups,
  options: { databaseUrl: string; standIn: IttybitStandIn | null; env?: Record<string, string> },
): Promise<PodflowProcess> {
  const dataDir = await mkdtemp(path.join(tmpdir(), "podflow-bench-app-"));
  cleanups.add("remove a Podflow data directory", () =>
    rm(dataDir, { recursive: true, force: true }),
  );
  const port = await freePort();
  const child = spawn(process.execPath, ["src/main.ts"], {
    cwd: ROOT,
    env: {
      PATH: process.env.PATH ?? "",
      HOME: process.env.HOME ?? "",
      // e.g. BENCH_NODE_OPTIONS=--cpu-prof to profile the benchmarked process.
      NODE_OPTIONS: process.env.BENCH_NODE_OPTIONS ?? "",
      ...podflowEnv(options.databaseUrl, options.standIn, port, dataDir, options.env ?? {}),
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  const keep = (chunk: Buffer) => {
    output = (output + chunk.toString("utf8")).slice(-20_000);
    // Podflow's own warnings and errors reach the reader as they happen.
    process.stderr.write(chunk);
  };
  child.stdout?.on("data", keep);
  child.stderr?.on("data", keep);
  const exited = once(child, "exit").then(([code, signal]) => ({ code, signal }));
  const stop = cleanups.add("stop a Podflow process", () => stopChild(child, exited));

  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 90_000;
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`Podflow exited while starting:\n${output}`);
    }
    const ready = await fetch(`${url}/readyz`)
      .then((response) => response.status === 200)
      .catch(() => false);
    if (ready) break;
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`Podflow did not become ready within 90 s:\n${output}`);
    }
    await sleep(100);
  }

  const pid = child.pid as number;
  return {
    url,
    pid,
    cpuMs: () => processCpuMs(pid),
    rssBytes: () => processRssBytes(pid),
    stop,
  };
}

async function stopChild(
  child: ChildProcess,
  exited: Promise<{ code: number | null; signal: string | null }>,
): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill("SIGTERM");
  const timer = setTimeout(() => child.kill("SIGKILL"), 20_000);
  await exited;
  clearTimeout(timer);
}
