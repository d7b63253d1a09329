/**
 * Crash rigs: Podflow as real processes (`node src/main.ts`, each in a process group of its own)
 * on one database with the Ittybit engine, killed and started again. The Ittybit stand-in runs in
 * the calling process, so it outlives every kill and remembers what each Podflow asked of it.
 * Used by the crash tests and by the `recovery` benchmark (which brings its own database).
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import pino from "pino";
import { openOrm } from "../../src/database/orm.ts";
import type { TaskType } from "../../src/domain/tasks.ts";
import { freePort } from "../../src/free-port.ts";
import { createUser, issueToken } from "../../src/services/accounts.ts";
import { graphql } from "./http.ts";
import { startIttybitStandIn } from "./ittybit-stand-in.ts";
import { deliverWebhook } from "./ittybit-stand-in-webhooks.ts";
import { type PodflowProcess, spawnPodflow } from "./process.ts";
import { waitUntil } from "./wait.ts";

// Nothing here imports vitest: the benchmark runs it outside the test runner.
const ITTYBIT_KEY = "ittybit_crash_key_0123456789";
const WEBHOOK_SECRET = `whsec_${Buffer.from("podflow crash webhook secret").toString("base64")}`;

export interface PodflowInstance extends PodflowProcess {
  url: string;
  port: number;
  /** Whether the process is still running. */
  alive(): boolean;
}

export interface CrashTaskRow {
  id: string;
  type: TaskType;
  status: string;
  attempt: number;
  engine_task_id: string;
}

export interface CrashEpisodeRow {
  status: string;
  failure_reason: string | null;
  audio_url: string | null;
  video_url: string | null;
  transcript: string | null;
  chapters: unknown;
}

/**
 * What every crash test sets: pg-boss's shortest heartbeat (10 s) and a supervisor that looks
 * every second, so a test waits ~15 s for a recovery rather than the default's ~25 s. The
 * reconciler stays off: recovery here must come from the jobs alone.
 */
export const CRASH_TEST_ENV = {
  PODFLOW_JOB_HEARTBEAT_SECONDS: "10",
  PODFLOW_JOB_SUPERVISE_SECONDS: "1",
  PODFLOW_RECONCILE_CRON: "0 0 1 1 *",
};

export async function startCrashRig(options: {
  databaseUrl: string;
  env?: Record<string, string>;
  /** The benchmark measures Podflow's own job settings rather than the tests' short ones. */
  defaultJobSettings?: boolean;
}) {
  const standIn = await startIttybitStandIn({
    apiKey: ITTYBIT_KEY,
    webhookSecret: WEBHOOK_SECRET,
  });
  const dataDir = await mkdtemp(path.join(tmpdir(), "podflow-crash-"));
  const orm = await openOrm(options.databaseUrl, pino({ level: "silent" }));
  const instances: PodflowInstance[] = [];
  const em = () => orm.em.fork();

  const rig = {
    standIn,
    instances,

    /** Starts a Podflow (api and worker) and waits until it says it started. */
    async spawn(spawnOptions: { port?: number; env?: Record<string, string> } = {}) {
      const port = spawnOptions.port ?? (await freePort());
      const child = spawnPodflow(
        {
          DATABASE_URL: options.databaseUrl,
          PODFLOW_DATA_DIR: dataDir,
          PORT: String(port),
          PODFLOW_MEDIA_ENGINE: "ittybit",
          ITTYBIT_API_KEY: ITTYBIT_KEY,
          ITTYBIT_API_URL: standIn.url,
          // The stand-in serves the outputs too, over http on loopback: listed exactly.
          PODFLOW_OUTPUT_HOSTS: new URL(standIn.url).host,
          ITTYBIT_WEBHOOK_SECRET: WEBHOOK_SECRET,
          ...(options.defaultJobSettings
            ? { PODFLOW_RECONCILE_CRON: CRASH_TEST_ENV.PODFLOW_RECONCILE_CRON }
            : CRASH_TEST_ENV),
          ...options.env,
          ...spawnOptions.env,
        },
        { processGroup: true },
      );
      const instance: PodflowInstance = {
        ...child,
        url: `http://127.0.0.1:${port}`,
        port,
        alive: () => child.child.exitCode === null && child.child.signalCode === null,
      };
      instances.push(instance);
      await instance.waitForLog(/Podflow started/);
      return instance;
    },

    /** A producer and their GraphQL requests against `url`. */
    async producer(email = `crash-${Date.now()}-${Math.random()}@example.com`) {
      const forked = em();
      const { secret } = await issueToken(forked, await createUser(forked, email));
      return {
        gql: <T>(url: string, query: string, variables?: Record<string, unknown>) =>
          graphql<T>(url, query, variables, { authorization: `Bearer ${secret}` }),
      };
    },

    /** prepareUpload, the file "uploaded" at the stand-in, confirmUpload: the episode's uuid. */
    async uploadEpisode(url: string, title = "Crash") {
      const producer = await rig.producer();
      const prepared = await producer.gql<{ prepareUpload: { episode: { id: string } } }>(
        url,
        `mutation($input: PrepareUploadInput!) { prepareUpload(input: $input) {
           ... on PrepareUploadPayload { episode { id } } ... on Error { message } } }`,
        { input: { filename: "episode.mp4", title, filesize: 123_456_789 } },
      );
      const id = prepared.body.data?.prepareUpload.episode.id;
      if (!id) throw new Error(`prepareUpload failed: ${JSON.stringify(prepared.body)}`);
      const uuid = Buffer.from(id, "base64").toString().split(":")[1] as string;
      const file = standIn.addFile({
        filename: "episode.mp4",
        folder: `episodes/${uuid}`,
        filesize: 123_456_789,
      });
      const confirmed = await producer.gql<{ confirmUpload: { __typename: string } }>(
        url,
        `mutation($input: ConfirmUploadInput!) { confirmUpload(input: $input) { __typename } }`,
        { input: { episodeId: id, fileId: file.id } },
      );
      if (confirmed.body.data?.confirmUpload.__typename !== "ConfirmUploadPayload") {
        throw new Error(`confirmUpload failed: ${JSON.stringify(confirmed.body)}`);
      }
      return uuid;
    },

    /** Resolves with the first log line of `instance` that `matches` (it may have been logged already). */
    waitForLine: (
      instance: PodflowInstance,
      matches: (line: Record<string, unknown>) => boolean,
      what: string,
      timeoutMs = 120_000,
    ) =>
      waitUntil(
        async () => instance.lines.find(matches),
        (line) => line !== undefined,
        what,
        timeoutMs,
      ) as Promise<Record<string, unknown>>,

    taskRows: (uuid: string) =>
      em().execute<CrashTaskRow[]>(
        "select id, type, status, attempt, engine_task_id from processing_tasks where episode_id = ? order by type, attempt",
        [uuid],
      ),

    episode: async (uuid: string) =>
      (
        await em().execute<CrashEpisodeRow[]>(
          "select status, failure_reason, audio_url, video_url, transcript, chapters from episodes where id = ?",
          [uuid],
        )
      )[0] as CrashEpisodeRow,

    /** Jobs of a queue for the episode, whatever their state (a retry keeps its job's id). */
    jobs: (queue: string, uuid: string) =>
      em().execute<Array<{ id: string; state: string; retry_count: number; retry_limit: number }>>(
        "select id, state, retry_count, retry_limit from pgboss.job where name = ? and data->>'episodeId' = ?",
        [queue, uuid],
      ),

    waitForTasks: (uuid: string, count: number, timeoutMs = 60_000) =>
      waitUntil(
        () => rig.taskRows(uuid),
        (rows) => rows.length >= count,
        `${count} task rows`,
        timeoutMs,
      ),

    waitForStatus: (uuid: string, status: string, timeoutMs = 60_000) =>
      waitUntil(
        () => rig.episode(uuid),
        (row) => row?.status === status,
        `the episode to be ${status}`,
        timeoutMs,
      ),

    /**
     * Completes every task at the stand-in and delivers its webhook to the `webhook_url` it was
     * created with, sent to `url` (the instance that is alive: every instance on one database
     * has the same webhook token).
     */
    async completeTasks(uuid: string, url: string) {
      for (const row of await rig.taskRows(uuid)) {
        const task = standIn.setTaskStatus(row.engine_task_id, "completed");
        const created = standIn.tasks.get(row.engine_task_id)?.request.webhook_url;
        const target = new URL(String(created));
        const delivery = await deliverWebhook(`${url}${target.pathname}`, task, WEBHOOK_SECRET, {});
        if (delivery.status !== 200) {
          throw new Error(`webhook answered ${delivery.status}: ${JSON.stringify(delivery.body)}`);
        }
      }
    },

    /**
     * POST /tasks per idempotency key, and the tasks the stand-in made: a duplicate would be a
     * second task for a key (the stand-in makes one task per request it did not replay).
     */
    taskCreations() {
      const keys = new Map<string, number>();
      for (const request of standIn.requests) {
        if (request.method !== "POST" || request.path !== "/tasks") continue;
        const key = String(request.headers["idempotency-key"]);
        keys.set(key, (keys.get(key) ?? 0) + 1);
      }
      const kinds = [...standIn.tasks.values()].map(({ task }) => task.kind).sort();
      return { requestsPerKey: keys, tasks: standIn.tasks.size, kinds };
    },

    async stop() {
      for (const instance of instances) {
        if (instance.alive()) {
          process.kill(-(instance.child.pid as number), "SIGKILL");
          await instance.exited;
        }
      }
      await orm.close();
      await standIn.close();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
  return rig;
}

export type CrashRig = Awaited<ReturnType<typeof startCrashRig>>;

/**
 * Sends `signal` to the instance's whole process group, as an OOM kill or a lost machine (or an
 * orchestrator's stop) does; resolves with the moment it was sent, once the process has exited.
 */
export async function signalGroup(
  instance: PodflowInstance,
  signal: NodeJS.Signals,
): Promise<{ at: number; exitCode: number | null }> {
  const at = Date.now();
  process.kill(-(instance.child.pid as number), signal);
  const exitCode = await instance.exited;
  return { at, exitCode };
}

/** The moment a log line was written (pino's `time`, epoch milliseconds). */
export { waitUntil };

export function loggedAt(line: Record<string, unknown>): number {
  return typeof line.time === "number" ? line.time : Date.now();
}

/**
 * A counter of `GET /metrics` (Prometheus text) with exactly these labels; 0 while it has never
 * been counted (prom-client leaves such a series out).
 */
export async function counter(
  url: string,
  name: string,
  labels: Record<string, string>,
): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const wanted = Object.entries(labels)
    .map(([key, value]) => `${key}="${value}"`)
    .sort()
    .join(",");
  for (const line of text.split("\n")) {
    const match = /^(\w+)\{([^}]*)\} (\S+)$/.exec(line);
    if (!match || match[1] !== name) continue;
    const have = (match[2] ?? "").split(",").sort().join(",");
    if (have === wanted) return Number(match[3]);
  }
  return 0;
}
