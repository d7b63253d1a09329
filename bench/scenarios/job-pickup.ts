import { PgBoss } from "pg-boss";
import type { IttybitStandIn, RecordedRequest } from "../../test/support/ittybit-stand-in.ts";
import { withClient, withTimeout } from "../support/environment.ts";
import { timedGraphql } from "../support/http.ts";
import { startInProcessPodflow, startStandIn } from "../support/podflow.ts";
import { profiled } from "../support/profile.ts";
import { type Check, check, figure } from "../support/results.ts";
import {
  type BenchScenario,
  inAlternateOrder,
  type ScenarioContext,
  type ScenarioOutcome,
} from "../support/scenario.ts";
import { seedProducer } from "../support/seed.ts";
import { latencyPercentiles } from "../support/stats.ts";

// Scenario 3: from confirmUpload's answer to the first POST /tasks at Ittybit (the worker picks
// the process-episode job up, creates the media, then the first task), against a bare pg-boss
// send → work round trip with the same queue and worker settings.

interface Sizes {
  rounds: number;
  samplesPerRound: number;
  warmup: number;
}

const FULL: Sizes = { rounds: 5, samplesPerRound: 20, warmup: 3 };
const QUICK: Sizes = { rounds: 3, samplesPerRound: 8, warmup: 2 };

const SAMPLE_TIMEOUT_MS = 30_000;

const PREPARE = `mutation($input: PrepareUploadInput!) { prepareUpload(input: $input) {
  ... on PrepareUploadPayload { episode { id } } ... on Error { message } } }`;
const CONFIRM = `mutation($input: ConfirmUploadInput!) { confirmUpload(input: $input) {
  __typename ... on Error { message } } }`;

/** Podflow's worker settings for episode jobs (src/jobs/index.ts), for the bare round trip. */
const WORK_OPTIONS = {
  localConcurrency: 4,
  notifyPollingIntervalSeconds: 2,
  pollingIntervalSeconds: 2,
};

interface PickupSample {
  ms: number;
  /** The first task request carried the confirmed file, and all four tasks followed. */
  ok: boolean;
  problem?: string;
}

const isTaskCreation = { method: "POST", path: "/tasks" } as const;

function taskCreations(standIn: IttybitStandIn): RecordedRequest[] {
  return standIn.requests.filter(
    (request) => request.method === "POST" && request.path === "/tasks",
  );
}

async function podflowPickup(
  url: string,
  token: string,
  standIn: IttybitStandIn,
  databaseUrl: string,
  index: number,
): Promise<PickupSample> {
  const prepared = await timedGraphql<{
    prepareUpload: { episode?: { id: string }; message?: string };
  }>(url, token, PREPARE, {
    input: { filename: "episode.mp4", title: `Pickup ${index}`, filesize: 123_456_789 },
  });
  const episodeId = prepared.data?.prepareUpload.episode?.id;
  if (!episodeId) throw new Error(`prepareUpload failed: ${JSON.stringify(prepared)}`);
  // Uploads through the signed URL land in the episode's folder, at their declared size.
  const uuid = Buffer.from(episodeId, "base64").toString().split(":")[1] as string;
  const file = standIn.addFile({
    filename: "episode.mp4",
    folder: `episodes/${uuid}`,
    filesize: 123_456_789,
  });
  const before = taskCreations(standIn).length;
  const firstTask = standIn
    .waitForRequests(isTaskCreation, before + 1)
    .then((requests) => ({ at: performance.now(), request: requests.at(-1) as RecordedRequest }));

  const confirmed = await timedGraphql<{ confirmUpload: { __typename: string; message?: string } }>(
    url,
    token,
    CONFIRM,
    { input: { episodeId, fileId: file.id } },
  );
  const answeredAt = performance.now();
  if (confirmed.data?.confirmUpload.__typename !== "ConfirmUploadPayload") {
    throw new Error(`confirmUpload failed: ${JSON.stringify(confirmed)}`);
  }
  const { at, request } = await withTimeout(firstTask, SAMPLE_TIMEOUT_MS, "the first POST /tasks");

  // Let the job finish (four tasks, then PROCESSING) before the next sample starts.
  await withTimeout(
    standIn.waitForRequests(isTaskCreation, before + 4),
    SAMPLE_TIMEOUT_MS,
    "four POST /tasks",
  );
  const status = await waitForStatus(databaseUrl, uuid, "PROCESSING");
  const created = taskCreations(standIn).slice(before);
  const forFile = created.filter((task) => (task.body as { file_id?: string }).file_id === file.id);
  const firstFile = (request.body as { file_id?: string }).file_id;
  const problems = [
    firstFile !== file.id ? `first task was for ${firstFile}, not ${file.id}` : null,
    forFile.length !== 4 || created.length !== 4
      ? `${forFile.length} tasks for the file, ${created.length} created`
      : null,
    status !== "PROCESSING" ? `episode is ${status}` : null,
  ].filter(Boolean);
  return {
    ms: at - answeredAt,
    ok: problems.length === 0,
    problem: problems.join("; ") || undefined,
  };
}

async function waitForStatus(
  databaseUrl: string,
  episodeId: string,
  status: string,
): Promise<string> {
  return withClient(databaseUrl, async (db) => {
    const deadline = Date.now() + SAMPLE_TIMEOUT_MS;
    for (;;) {
      const row = await db.query<{ status: string }>("select status from episodes where id = $1", [
        episodeId,
      ]);
      const current = row.rows[0]?.status ?? "missing";
      if (current === status || Date.now() > deadline) return current;
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  });
}

/** A bare pg-boss of its own (own schema) on the same database: send → handler called. */
async function startBareBoss(context: ScenarioContext, databaseUrl: string) {
  const boss = new PgBoss({
    connectionString: databaseUrl,
    schema: "bench_pgboss",
    application_name: "podflow-bench-boss",
    useListenNotify: true,
    schedule: false,
    supervise: false,
    max: 4,
  });
  boss.on("error", (error) => context.log(`bare pg-boss: ${String(error)}`));
  await boss.start();
  context.cleanups.add("stop the bare pg-boss", () => boss.stop({ graceful: false, close: true }));
  const queue = "bench-pickup";
  await boss.createQueue(queue, { policy: "standard", notify: true });
  const waiting = new Map<number, (at: number) => void>();
  await boss.work<{ sample: number }>(queue, WORK_OPTIONS, async ([job]) => {
    const at = performance.now();
    if (job) waiting.get(job.data.sample)?.(at);
  });
  let samples = 0;
  return async (): Promise<PickupSample> => {
    const sample = samples++;
    const picked = new Promise<number>((resolve) => waiting.set(sample, resolve));
    await boss.send(queue, { sample });
    const sentAt = performance.now();
    const at = await withTimeout(picked, SAMPLE_TIMEOUT_MS, "the bare pg-boss job");
    waiting.delete(sample);
    return { ms: at - sentAt, ok: true };
  };
}

async function run(context: ScenarioContext): Promise<ScenarioOutcome> {
  const sizes = context.quick ? QUICK : FULL;
  const database = await context.server.createDatabase("pickup");
  const standIn = await startStandIn(context.cleanups);
  const podflow = await startInProcessPodflow(context.cleanups, {
    databaseUrl: database.url,
    standIn,
    env: { PODFLOW_ROLES: "api,worker" },
  });
  const url = podflow.url as string;
  const { token } = await withClient(database.url, (db) =>
    seedProducer(db, `pickup-${context.runTag}`),
  );
  const bareRoundTrip = await startBareBoss(context, database.url);

  let samples = 0;
  const podflowSample = () => podflowPickup(url, token, standIn, database.url, samples++);
  context.log("warming up");
  for (let i = 0; i < sizes.warmup; i += 1) {
    await podflowSample();
    await bareRoundTrip();
  }

  const podflowRounds: PickupSample[][] = [];
  const baselineRounds: PickupSample[][] = [];
  await profiled("job-pickup", context.log, async () => {
    for (let round = 1; round <= sizes.rounds; round += 1) {
      context.log(`round ${round}/${sizes.rounds}`);
      const measure = async (sample: () => Promise<PickupSample>) => {
        const results: PickupSample[] = [];
        for (let i = 0; i < sizes.samplesPerRound; i += 1) results.push(await sample());
        return results;
      };
      await inAlternateOrder(
        round,
        async () => podflowRounds.push(await measure(podflowSample)),
        async () => baselineRounds.push(await measure(bareRoundTrip)),
      );
    }
  });

  const percentiles = (rounds: PickupSample[][]) =>
    rounds.map((round) => latencyPercentiles(round.map((sample) => sample.ms)));
  const podflowPercentiles = percentiles(podflowRounds);
  const baselinePercentiles = percentiles(baselineRounds);
  const all = podflowRounds.flat();
  const failed = all.filter((sample) => !sample.ok);
  const checks: Check[] = [
    check(
      "every confirmed upload's job created its four tasks, first for its own file",
      failed.length === 0,
      failed.length === 0
        ? `${all.length} uploads: 4 POST /tasks each, episode PROCESSING`
        : `${failed.length}/${all.length} wrong, e.g. ${failed
            .slice(0, 3)
            .map((s) => s.problem)
            .join("; ")}`,
    ),
  ];
  const baselineName = "pg-boss send→work";
  return {
    notes: [
      `Podflow in this process with roles api,worker; ${sizes.samplesPerRound} uploads per round, one at a time (each waits for the previous job to finish), ${sizes.rounds} rounds after ${sizes.warmup} warm-up uploads.`,
      "Measured from confirmUpload's HTTP answer to the stand-in receiving the first POST /tasks: pickup by NOTIFY, loading the episode, POST /media at the stand-in, then the task request.",
      `Baseline: a bare pg-boss (schema bench_pgboss, same database) with a notify queue and Podflow's worker settings (${JSON.stringify(WORK_OPTIONS)}): from send() resolving to the handler being called.`,
    ],
    figures: [
      figure(
        "p50 confirm → first task",
        "ms",
        "lower",
        podflowPercentiles.map((p) => p.p50),
        {
          name: baselineName,
          rounds: baselinePercentiles.map((p) => p.p50),
        },
      ),
      figure(
        "p99 confirm → first task",
        "ms",
        "lower",
        podflowPercentiles.map((p) => p.p99),
        {
          name: baselineName,
          rounds: baselinePercentiles.map((p) => p.p99),
        },
      ),
    ],
    checks,
  };
}

export const jobPickup: BenchScenario = {
  id: "job-pickup",
  title: "3. Job pickup",
  run,
};
