import pg from "pg";
import { TASK_TYPES } from "../../src/domain/tasks.ts";
import { webhookHeaders } from "../../test/support/webhook-signing.ts";
import { withClient } from "../support/environment.ts";
import { createLoadClient, type LoadClient, runBounded } from "../support/http.ts";
import {
  BENCH_WEBHOOK_PATH,
  BENCH_WEBHOOK_SECRET,
  type PodflowProcess,
  spawnPodflow,
  startStandIn,
} from "../support/podflow.ts";
import { type Check, check, type Figure, figure } from "../support/results.ts";
import {
  type BenchScenario,
  inAlternateOrder,
  type ScenarioContext,
  type ScenarioOutcome,
} from "../support/scenario.ts";
import { type SeededEpisode, seedEpisodes, seedProducer } from "../support/seed.ts";
import { latencyPercentiles } from "../support/stats.ts";

// Scenario 1: signed webhook deliveries for many episodes' tasks at a fixed concurrency, against
// the same number of bare single-row UPDATE transactions through `pg` at the same concurrency.

interface Sizes {
  concurrencies: number[];
  rounds: number;
  /** Episodes per round; each gets 4 tasks × 2 deliveries (processing, then completed). */
  episodesPerRound: number;
  warmupEpisodes: number;
  /** Deliveries sent a second time afterwards, which must be answered "duplicate". */
  resendSample: number;
  roundDeadlineMs: number;
}

const FULL: Sizes = {
  concurrencies: [16, 64],
  rounds: 5,
  episodesPerRound: 100,
  warmupEpisodes: 20,
  resendSample: 100,
  roundDeadlineMs: 120_000,
};
const QUICK: Sizes = {
  concurrencies: [16, 64],
  rounds: 3,
  episodesPerRound: 12,
  warmupEpisodes: 4,
  resendSample: 20,
  roundDeadlineMs: 30_000,
};

const DELIVERIES_PER_TASK = 2;

/** One signed delivery, ready to send: the body is signed once, before the clock starts. */
interface Delivery {
  webhookId: string;
  taskId: string;
  engineTaskId: string;
  status: "PROCESSING" | "COMPLETED";
  progress: number;
  body: string;
  headers: Record<string, string>;
}

/** What one timed batch (Podflow's or the baseline's) measured. */
interface BatchResult {
  perSecond: number;
  p50: number;
  p99: number;
  errors: string[];
  /** CPU ms per operation of the Podflow process, and of the database server. */
  podflowCpuMs: number;
  databaseCpuMs: number;
}

const KIND = ["audio", "video", "speech", "chapters"];

/**
 * The deliveries Ittybit would send for these episodes' tasks: every task "processing" (50%),
 * then every task "completed" with its output. Episode by episode, so concurrent deliveries
 * contend for the same episode's lock as the four tasks of a real episode do.
 */
function deliveriesFor(episodes: SeededEpisode[], tag: string): Delivery[] {
  const deliveries: Delivery[] = [];
  const timestamp = Math.floor(Date.now() / 1000);
  for (const status of ["PROCESSING", "COMPLETED"] as const) {
    for (const episode of episodes) {
      for (const task of episode.tasks) {
        const kind = KIND[TASK_TYPES.indexOf(task.type)] as string;
        const webhookId = `msg_${tag}_${deliveries.length}`;
        const payload = {
          id: task.engineTaskId,
          object: "task",
          kind,
          status: status === "PROCESSING" ? "processing" : "completed",
          progress: status === "PROCESSING" ? 50 : 100,
          input: { id: `file_${tag}`, object: "source", kind: "video", type: "video/mp4" },
          options: {},
          output:
            status === "COMPLETED"
              ? {
                  id: `file_out_${task.engineTaskId}`,
                  object: "track",
                  kind,
                  type: kind === "video" ? "video/mp4" : "audio/mpeg",
                  url: `https://media.example.com/${task.engineTaskId}`,
                }
              : null,
          error: null,
          created: new Date().toISOString(),
          updated: new Date().toISOString(),
        };
        const body = JSON.stringify(payload);
        deliveries.push({
          webhookId,
          taskId: task.id,
          engineTaskId: task.engineTaskId,
          status,
          progress: payload.progress,
          body,
          headers: {
            "content-type": "application/json",
            ...webhookHeaders(BENCH_WEBHOOK_SECRET, webhookId, timestamp, body),
          },
        });
      }
    }
  }
  return deliveries;
}

async function sendToPodflow(
  context: ScenarioContext,
  podflow: PodflowProcess,
  client: LoadClient,
  deliveries: Delivery[],
  concurrency: number,
  deadlineMs: number,
): Promise<BatchResult> {
  const errors: string[] = [];
  const cpuBefore = await podflow.cpuMs();
  const dbBefore = await context.server.cpuMs();
  const { results, elapsedMs } = await runBounded(
    deliveries.length,
    concurrency,
    deadlineMs,
    async (index) => {
      const delivery = deliveries[index] as Delivery;
      const answer = await client
        .post(BENCH_WEBHOOK_PATH, delivery.headers, delivery.body)
        .catch((error: unknown) => ({ status: 0, body: String(error), ms: Number.NaN }));
      if (answer.status !== 200 || !answer.body.includes('"received"')) {
        errors.push(`${delivery.webhookId}: HTTP ${answer.status} ${answer.body.slice(0, 200)}`);
      }
      return answer.ms;
    },
  );
  const cpuAfter = await podflow.cpuMs();
  const dbAfter = await context.server.cpuMs();
  return {
    perSecond: deliveries.length / (elapsedMs / 1000),
    ...latencyPercentiles(results),
    errors,
    podflowCpuMs: (cpuAfter - cpuBefore) / deliveries.length,
    databaseCpuMs: (dbAfter - dbBefore) / deliveries.length,
  };
}

const BASELINE_UPDATE =
  "update processing_tasks set status = $2, progress = $3, updated_at = now() where id = $1";

/** The limit: one autocommitted single-row UPDATE per delivery, `concurrency` connections. */
async function sendToDatabase(
  context: ScenarioContext,
  pool: pg.Pool,
  deliveries: Delivery[],
  concurrency: number,
  deadlineMs: number,
): Promise<BatchResult> {
  const errors: string[] = [];
  const dbBefore = await context.server.cpuMs();
  const { results, elapsedMs } = await runBounded(
    deliveries.length,
    concurrency,
    deadlineMs,
    async (index) => {
      const delivery = deliveries[index] as Delivery;
      const started = performance.now();
      const result = await pool
        .query(BASELINE_UPDATE, [delivery.taskId, delivery.status, delivery.progress])
        .catch((error: unknown) => {
          errors.push(`${delivery.taskId}: ${String(error)}`);
          return null;
        });
      if (result && result.rowCount !== 1)
        errors.push(`${delivery.taskId}: updated ${result.rowCount} rows`);
      return performance.now() - started;
    },
  );
  const dbAfter = await context.server.cpuMs();
  return {
    perSecond: deliveries.length / (elapsedMs / 1000),
    ...latencyPercentiles(results),
    errors,
    podflowCpuMs: 0,
    databaseCpuMs: (dbAfter - dbBefore) / deliveries.length,
  };
}

/**
 * Every delivery applied exactly once: one inbox row each, "applied" (or "stale" for a progress
 * report overtaken by its task's completion); every task COMPLETED
 * with its output; complete-episode queued exactly once per episode; and a sample sent again is
 * answered "duplicate" and changes nothing.
 */
async function checkExactlyOnce(
  databaseUrl: string,
  client: LoadClient,
  label: string,
  episodes: SeededEpisode[],
  deliveries: Delivery[],
  resendSample: number,
): Promise<Check[]> {
  const webhookIds = deliveries.map((delivery) => delivery.webhookId);
  const episodeIds = episodes.map((episode) => episode.id);
  const taskIds = episodes.flatMap((episode) => episode.tasks.map((task) => task.id));
  const read = () =>
    withClient(databaseUrl, async (db) => {
      const inbox = await db.query<{ status: string; outcome: string; n: number }>(
        `select payload->>'status' as status, outcome, count(*)::int as n from webhook_deliveries
         where id = any($1) group by 1, 2`,
        [webhookIds],
      );
      const tasks = await db.query<{ status: string; complete: boolean; n: number }>(
        `select status, (progress = 100 and output_url is not null and output_file_id is not null) as complete,
           count(*)::int as n from processing_tasks where id = any($1) group by 1, 2`,
        [taskIds],
      );
      const jobs = await db.query<{ n: number; episodes: number; most: number }>(
        `select coalesce(sum(n), 0)::int as n, count(*)::int as episodes, coalesce(max(n), 0)::int as most
         from (select data->>'episodeId' as episode, count(*) as n from pgboss.job
               where name = 'complete-episode' and data->>'episodeId' = any($1) group by 1) per_episode`,
        [episodeIds],
      );
      const total = await db.query<{ n: number }>(
        "select count(*)::int as n from webhook_deliveries",
      );
      return {
        inbox: Object.fromEntries(inbox.rows.map((row) => [`${row.status}:${row.outcome}`, row.n])),
        tasks: tasks.rows,
        jobs: jobs.rows[0] as { n: number; episodes: number; most: number },
        totalInbox: (total.rows[0] as { n: number }).n,
      };
    });

  const before = await read();
  const inboxTotal = Object.values(before.inbox).reduce((sum, n) => sum + n, 0);
  // A "completed" always moves its task forward. A "processing" may legitimately come second
  // when both of a task's deliveries are in flight at once (then it is stale, not applied).
  const completions = deliveries.filter((delivery) => delivery.status === "COMPLETED").length;
  const unexpected = Object.entries(before.inbox).filter(
    ([key]) => !["completed:applied", "processing:applied", "processing:stale"].includes(key),
  );
  const completed = before.tasks
    .filter((row) => row.status === "COMPLETED" && row.complete)
    .reduce((sum, row) => sum + row.n, 0);
  const checks: Check[] = [
    check(
      `${label}: one inbox row per delivery, each applied once`,
      inboxTotal === deliveries.length &&
        (before.inbox["completed:applied"] ?? 0) === completions &&
        unexpected.length === 0,
      `${deliveries.length} sent, ${inboxTotal} stored, outcomes ${JSON.stringify(before.inbox)}`,
    ),
    check(
      `${label}: every task completed with its output`,
      completed === taskIds.length,
      `${completed}/${taskIds.length} tasks COMPLETED with progress 100 and output; ${JSON.stringify(before.tasks)}`,
    ),
    check(
      `${label}: every episode finalized exactly once`,
      before.jobs.episodes === episodeIds.length && before.jobs.most === 1,
      `${before.jobs.n} complete-episode jobs for ${before.jobs.episodes}/${episodeIds.length} episodes (most for one: ${before.jobs.most})`,
    ),
  ];

  // A retrying sender: same webhook-id and body, signed again.
  const sample = Array.from(
    { length: Math.min(resendSample, deliveries.length) },
    (_, index) =>
      deliveries[
        Math.floor((index * deliveries.length) / Math.min(resendSample, deliveries.length))
      ] as Delivery,
  );
  const answers: string[] = [];
  await runBounded(sample.length, 8, 60_000, async (index) => {
    const delivery = sample[index] as Delivery;
    const headers = {
      "content-type": "application/json",
      ...webhookHeaders(
        BENCH_WEBHOOK_SECRET,
        delivery.webhookId,
        Math.floor(Date.now() / 1000),
        delivery.body,
      ),
    };
    const answer = await client.post(BENCH_WEBHOOK_PATH, headers, delivery.body);
    answers.push(
      answer.status === 200
        ? (JSON.parse(answer.body) as { status: string }).status
        : `HTTP ${answer.status}`,
    );
  });
  const after = await read();
  const duplicates = answers.filter((answer) => answer === "duplicate").length;
  checks.push(
    check(
      `${label}: a resent sample is answered "duplicate" and changes nothing`,
      duplicates === sample.length &&
        after.totalInbox === before.totalInbox &&
        after.jobs.n === before.jobs.n &&
        JSON.stringify(after.tasks) === JSON.stringify(before.tasks),
      `${duplicates}/${sample.length} duplicate; inbox ${before.totalInbox} → ${after.totalInbox} rows; complete-episode jobs ${before.jobs.n} → ${after.jobs.n}`,
    ),
  );
  return checks;
}

async function run(context: ScenarioContext): Promise<ScenarioOutcome> {
  const sizes = context.quick ? QUICK : FULL;
  const database = await context.server.createDatabase("ingestion");
  const standIn = await startStandIn(context.cleanups);
  // API role only: complete-episode jobs are queued (and checked) but not run, so the process
  // does nothing but ingest.
  const podflow = await spawnPodflow(context.cleanups, {
    databaseUrl: database.url,
    standIn,
    env: { PODFLOW_ROLES: "api" },
  });

  context.log("seeding episodes and tasks");
  const sets = new Map<string, SeededEpisode[]>();
  await withClient(database.url, async (db) => {
    const { userId } = await seedProducer(db, `ingestion-${context.runTag}`);
    for (const concurrency of sizes.concurrencies) {
      const plan: Array<[string, number]> = [
        [`w${concurrency}`, sizes.warmupEpisodes],
        [`bw${concurrency}`, sizes.warmupEpisodes],
      ];
      for (let round = 1; round <= sizes.rounds; round += 1) {
        plan.push([`c${concurrency}r${round}`, sizes.episodesPerRound]);
        plan.push([`bc${concurrency}r${round}`, sizes.episodesPerRound]);
      }
      for (const [tag, count] of plan) {
        sets.set(tag, await seedEpisodes(db, { userId, count, tag: `${context.runTag}_${tag}` }));
      }
    }
    await db.query("vacuum analyze processing_tasks");
    await db.query("vacuum analyze episodes");
  });
  const episodesOf = (tag: string) => sets.get(tag) as SeededEpisode[];

  const figures: Figure[] = [];
  const checks: Check[] = [];
  const pool = new pg.Pool({
    connectionString: database.url,
    max: Math.max(...sizes.concurrencies),
    application_name: "podflow-bench-baseline",
  });
  context.cleanups.add("close the baseline pool", () => pool.end());
  const podflowCpu: number[] = [];
  const databaseCpu: number[] = [];
  const baselineDatabaseCpu: number[] = [];
  const deliveriesPerRound = sizes.episodesPerRound * TASK_TYPES.length * DELIVERIES_PER_TASK;

  for (const concurrency of sizes.concurrencies) {
    const client = createLoadClient(podflow.url, concurrency);
    context.cleanups.add(`close the ${concurrency}-connection load client`, async () =>
      client.close(),
    );
    // Open the pool's connections before measuring, as Podflow's pool is open by now.
    await Promise.all(Array.from({ length: concurrency }, () => pool.query("select 1")));

    context.log(`warming up at ${concurrency} connections`);
    await sendToPodflow(
      context,
      podflow,
      client,
      deliveriesFor(episodesOf(`w${concurrency}`), `${context.runTag}_w${concurrency}`),
      concurrency,
      sizes.roundDeadlineMs,
    );
    await sendToDatabase(
      context,
      pool,
      deliveriesFor(episodesOf(`bw${concurrency}`), "baseline"),
      concurrency,
      sizes.roundDeadlineMs,
    );

    const podflowRounds: BatchResult[] = [];
    const baselineRounds: BatchResult[] = [];
    const sentDeliveries: Delivery[] = [];
    const sentEpisodes: SeededEpisode[] = [];
    for (let round = 1; round <= sizes.rounds; round += 1) {
      context.log(`${concurrency} connections, round ${round}/${sizes.rounds}`);
      const tag = `c${concurrency}r${round}`;
      const deliveries = deliveriesFor(episodesOf(tag), `${context.runTag}_${tag}`);
      const baselineDeliveries = deliveriesFor(episodesOf(`b${tag}`), "baseline");
      // Alternate which goes first, so drift of a noisy machine does not favour one side.
      const measurePodflow = async () =>
        podflowRounds.push(
          await sendToPodflow(
            context,
            podflow,
            client,
            deliveries,
            concurrency,
            sizes.roundDeadlineMs,
          ),
        );
      const measureBaseline = async () =>
        baselineRounds.push(
          await sendToDatabase(
            context,
            pool,
            baselineDeliveries,
            concurrency,
            sizes.roundDeadlineMs,
          ),
        );
      await inAlternateOrder(round, measurePodflow, measureBaseline);
      sentDeliveries.push(...deliveries);
      sentEpisodes.push(...episodesOf(tag));
    }

    const pick = (rounds: BatchResult[], key: keyof BatchResult) =>
      rounds.map((r) => r[key] as number);
    const baselineName = `UPDATE tx via pg`;
    figures.push(
      figure(
        `deliveries/s, ${concurrency} conn.`,
        "/s",
        "higher",
        pick(podflowRounds, "perSecond"),
        {
          name: baselineName,
          rounds: pick(baselineRounds, "perSecond"),
        },
      ),
      figure(`p50 latency, ${concurrency} conn.`, "ms", "lower", pick(podflowRounds, "p50"), {
        name: baselineName,
        rounds: pick(baselineRounds, "p50"),
      }),
      figure(`p99 latency, ${concurrency} conn.`, "ms", "lower", pick(podflowRounds, "p99"), {
        name: baselineName,
        rounds: pick(baselineRounds, "p99"),
      }),
    );
    podflowCpu.push(...pick(podflowRounds, "podflowCpuMs"));
    databaseCpu.push(...pick(podflowRounds, "databaseCpuMs"));
    baselineDatabaseCpu.push(...pick(baselineRounds, "databaseCpuMs"));

    const podflowErrors = podflowRounds.flatMap((r) => r.errors);
    const baselineErrors = baselineRounds.flatMap((r) => r.errors);
    checks.push(
      check(
        `${concurrency} conn.: no failed deliveries`,
        podflowErrors.length === 0,
        podflowErrors.length === 0
          ? `${sentDeliveries.length} deliveries answered 200 "received"`
          : `${podflowErrors.length} failed, e.g. ${podflowErrors.slice(0, 3).join("; ")}`,
      ),
      check(
        `${concurrency} conn.: baseline updated one row per statement`,
        baselineErrors.length === 0,
        baselineErrors.length === 0
          ? `${sentDeliveries.length} updates`
          : baselineErrors.slice(0, 3).join("; "),
      ),
      ...(await checkExactlyOnce(
        database.url,
        client,
        `${concurrency} conn.`,
        sentEpisodes,
        sentDeliveries,
        sizes.resendSample,
      )),
    );
  }

  figures.push(
    figure("Podflow CPU per delivery", "ms", "lower", podflowCpu),
    figure("PostgreSQL CPU per delivery", "ms", "lower", databaseCpu, {
      name: "per UPDATE",
      rounds: baselineDatabaseCpu,
    }),
  );

  return {
    notes: [
      `Episodes and tasks inserted with SQL (${sizes.episodesPerRound} episodes × 4 tasks per round, PROCESSING/PENDING); the webhook path needs only task rows whose engine_task_id matches.`,
      `${deliveriesPerRound} signed deliveries per round (each task: "processing" 50%, then "completed" with output), episode by episode; ${sizes.rounds} rounds per concurrency after a warm-up; baseline and Podflow alternate first.`,
      `Podflow runs as its own process (node src/main.ts, NODE_ENV=production, PODFLOW_ROLES=api: complete-episode jobs are queued, not run); the load generator is this process, keep-alive HTTP with exactly N sockets.`,
      `Baseline: "${BASELINE_UPDATE}" autocommitted through a pg pool of N connections, on other seeded rows of the same table.`,
      `CPU per delivery: from /proc, Podflow's process and the whole PostgreSQL server (embedded server only), per round of both concurrencies; /proc counts in 10 ms ticks, so the baseline's short rounds make its figure coarse.`,
    ],
    figures,
    checks,
  };
}

export const webhookIngestion: BenchScenario = {
  id: "webhook-ingestion",
  title: "1. Webhook ingestion",
  run,
};
