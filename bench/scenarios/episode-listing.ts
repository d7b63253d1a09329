import { performance } from "node:perf_hooks";
import type { TaskType } from "../../src/domain/tasks.ts";
import { withClient } from "../support/environment.ts";
import { timedGraphql } from "../support/http.ts";
import { startInProcessPodflow, startStandIn } from "../support/podflow.ts";
import { profiled } from "../support/profile.ts";
import { check, figure } from "../support/results.ts";
import {
  type BenchScenario,
  inAlternateOrder,
  type ScenarioContext,
  type ScenarioOutcome,
} from "../support/scenario.ts";
import { seedEpisodes, seedProducer } from "../support/seed.ts";
import { latencyPercentiles, median } from "../support/stats.ts";

// Scenario 4: a dashboard's list — `episodes(first: 100)` with tasks — for a producer with 1,000
// episodes × 4 tasks, against one hand-written SQL query returning the same rows.

interface Sizes {
  episodes: number;
  rounds: number;
  requestsPerRound: number;
  warmup: number;
}

const FULL: Sizes = { episodes: 1_000, rounds: 5, requestsPerRound: 40, warmup: 10 };
const QUICK: Sizes = { episodes: 1_000, rounds: 3, requestsPerRound: 12, warmup: 5 };

const PAGE_SIZE = 100;

const LIST_QUERY = `query($first: Int!) { episodes(first: $first) {
  edges { cursor node {
    id title status progress createdAt processingStartedAt processingCompletedAt failureReason
    tasks { id type status progress error outputUrl attempt updatedAt }
  } }
  pageInfo { hasNextPage endCursor }
} }`;

interface ListedEpisode {
  id: string;
  status: string;
  tasks: Array<{ id: string; type: string; status: string }>;
}

interface ListResult {
  episodes: { edges: Array<{ node: ListedEpisode }>; pageInfo: { hasNextPage: boolean } };
}

/**
 * The same page by hand: the newest 100 (+1, for hasNextPage) episodes and the latest attempt of
 * each of their task types, with the columns the GraphQL query shows, in one statement.
 */
const BASELINE_SQL = `
select e.id as episode_id, e.title, e.status as episode_status, e.created_at,
       e.processing_started_at, e.processing_completed_at, e.failure_reason,
       t.id as task_id, t.type, t.status, t.progress, t.error_message, t.output_url, t.attempt,
       t.updated_at
from (select * from episodes where user_id = $1
      order by created_at desc, id desc limit $2) e
left join lateral (
  select distinct on (type) * from processing_tasks
  where episode_id = e.id order by type, attempt desc) t on true
order by e.created_at desc, e.id desc, t.type`;

/** Spread of statuses a real list has: mostly processed, some failed, in progress or retried. */
function shapeOf(index: number): { episode: string; task: (type: TaskType) => string } {
  const bucket = index % 10;
  if (bucket < 7) return { episode: "PROCESSED", task: () => "COMPLETED" };
  if (bucket === 7) {
    return {
      episode: "FAILED",
      task: (type) => (type === "CHAPTER_DETECTION" ? "FAILED" : "COMPLETED"),
    };
  }
  if (bucket === 8) {
    return {
      episode: "PROCESSING",
      task: (type) => (type === "AUDIO_EXTRACTION" ? "COMPLETED" : "PROCESSING"),
    };
  }
  return { episode: "PROCESSING", task: () => "PENDING" };
}

async function run(context: ScenarioContext): Promise<ScenarioOutcome> {
  const sizes = context.quick ? QUICK : FULL;
  const database = await context.server.createDatabase("listing");
  const standIn = await startStandIn(context.cleanups);
  let statements = 0;
  const podflow = await startInProcessPodflow(context.cleanups, {
    databaseUrl: database.url,
    standIn,
    env: { PODFLOW_ROLES: "api" },
    start: { onSqlQuery: () => (statements += 1) },
  });
  const url = podflow.url as string;

  context.log(`seeding ${sizes.episodes} episodes × 4 tasks`);
  const { userId, token } = await withClient(database.url, async (db) => {
    const producer = await seedProducer(db, `listing-${context.runTag}`);
    await seedEpisodes(db, {
      userId: producer.userId,
      count: sizes.episodes,
      tag: `${context.runTag}_list`,
      episodeStatus: (index) => shapeOf(index).episode,
      taskStatus: (index, type) => shapeOf(index).task(type),
      // Every 20th episode's transcript failed once and was retried: its latest attempt counts.
      retried: (index) => (index % 20 === 0 ? ["TRANSCRIPT_GENERATION"] : []),
      withOutputs: (index) => shapeOf(index).episode === "PROCESSED",
    });
    return producer;
  });

  const podflowRequest = async () => {
    const before = statements;
    const answer = await timedGraphql<ListResult>(url, token, LIST_QUERY, { first: PAGE_SIZE });
    if (answer.status !== 200 || answer.errors || !answer.data) {
      throw new Error(
        `episodes query failed: HTTP ${answer.status} ${JSON.stringify(answer.errors)}`,
      );
    }
    return { ms: answer.ms, statements: statements - before, data: answer.data };
  };

  return withClient(database.url, async (db) => {
    const baselineRequest = async () => {
      const started = performance.now();
      const result = await db.query(BASELINE_SQL, [userId, PAGE_SIZE + 1]);
      return {
        ms: performance.now() - started,
        rows: result.rows as Array<Record<string, unknown>>,
      };
    };

    context.log("warming up");
    for (let i = 0; i < sizes.warmup; i += 1) {
      await podflowRequest();
      await baselineRequest();
    }

    // The same rows both ways: the page's episodes in order, each with its latest tasks.
    const page = await podflowRequest();
    const { rows } = await baselineRequest();
    const fromGraphql = page.data.episodes.edges.map(({ node }) => ({
      id: Buffer.from(node.id, "base64").toString().split(":")[1],
      status: node.status,
      tasks: node.tasks.map((task) => `${task.type}:${task.status}:${task.id}`).sort(),
    }));
    const fromSql: typeof fromGraphql = [];
    for (const row of rows) {
      let entry = fromSql.at(-1);
      if (!entry || entry.id !== row.episode_id) {
        entry = { id: row.episode_id as string, status: row.episode_status as string, tasks: [] };
        fromSql.push(entry);
      }
      if (row.task_id) entry.tasks.push(`${row.type}:${row.status}:${row.task_id}`);
    }
    const sqlPage = fromSql
      .slice(0, PAGE_SIZE)
      .map((entry) => ({ ...entry, tasks: entry.tasks.sort() }));
    const same = JSON.stringify(fromGraphql) === JSON.stringify(sqlPage);
    const taskCount = fromGraphql.reduce((sum, entry) => sum + entry.tasks.length, 0);

    const podflowRounds: Array<{ ms: number[]; statements: number[]; cpuMs: number }> = [];
    const baselineRounds: Array<{ ms: number[]; cpuMs: number }> = [];
    // CPU this process spent per request (Podflow and the client share it; the database's is
    // not counted): less sensitive than latency to other work on a shared machine.
    const cpuMsPerRequest = (since: NodeJS.CpuUsage) => {
      const used = process.cpuUsage(since);
      return (used.user + used.system) / 1_000 / sizes.requestsPerRound;
    };
    await profiled("episode-listing", context.log, async () => {
      for (let round = 1; round <= sizes.rounds; round += 1) {
        context.log(`round ${round}/${sizes.rounds}`);
        const measurePodflow = async () => {
          const samples = { ms: [] as number[], statements: [] as number[] };
          const cpu = process.cpuUsage();
          for (let i = 0; i < sizes.requestsPerRound; i += 1) {
            const answer = await podflowRequest();
            samples.ms.push(answer.ms);
            samples.statements.push(answer.statements);
          }
          podflowRounds.push({ ...samples, cpuMs: cpuMsPerRequest(cpu) });
        };
        const measureBaseline = async () => {
          const samples: number[] = [];
          const cpu = process.cpuUsage();
          for (let i = 0; i < sizes.requestsPerRound; i += 1)
            samples.push((await baselineRequest()).ms);
          baselineRounds.push({ ms: samples, cpuMs: cpuMsPerRequest(cpu) });
        };
        await inAlternateOrder(round, measurePodflow, measureBaseline);
      }
    });

    const podflowPercentiles = podflowRounds.map((round) => latencyPercentiles(round.ms));
    const baselinePercentiles = baselineRounds.map((round) => latencyPercentiles(round.ms));
    const baselineName = "one SQL query (pg)";
    return {
      notes: [
        `${sizes.episodes} episodes × 4 tasks for one producer inserted with SQL (70% PROCESSED with an 8 KB transcript and 100 segments, 10% FAILED, 20% in progress; every 20th has a retried task).`,
        `Podflow in this process (role api); ${sizes.requestsPerRound} requests per round, one at a time, ${sizes.rounds} rounds after ${sizes.warmup} warm-up requests; latency is the client's, over HTTP. Statements counted with onSqlQuery (MikroORM's query log).`,
        "Baseline: the SQL in bench/scenarios/episode-listing.ts through a pg client — the page (LIMIT 101) with a lateral DISTINCT ON for the latest task attempts, only the columns shown; no HTTP, no GraphQL.",
      ],
      figures: [
        figure(
          `p50 latency, first: ${PAGE_SIZE}`,
          "ms",
          "lower",
          podflowPercentiles.map((p) => p.p50),
          {
            name: baselineName,
            rounds: baselinePercentiles.map((p) => p.p50),
          },
        ),
        figure(
          `p99 latency, first: ${PAGE_SIZE}`,
          "ms",
          "lower",
          podflowPercentiles.map((p) => p.p99),
          {
            name: baselineName,
            rounds: baselinePercentiles.map((p) => p.p99),
          },
        ),
        figure(
          "CPU of this process per request",
          "ms",
          "lower",
          podflowRounds.map((round) => round.cpuMs),
          { name: baselineName, rounds: baselineRounds.map((round) => round.cpuMs) },
        ),
        figure(
          "SQL statements per request",
          "",
          "lower",
          podflowRounds.map((round) => median(round.statements)),
          { name: baselineName, rounds: baselineRounds.map(() => 1) },
        ),
      ],
      checks: [
        check(
          "the GraphQL page and the SQL query return the same episodes and latest tasks",
          same && fromGraphql.length === PAGE_SIZE && page.data.episodes.pageInfo.hasNextPage,
          `${fromGraphql.length} episodes, ${taskCount} tasks over GraphQL; ${sqlPage.length} episodes from SQL; ${same ? "identical" : "DIFFERENT"}`,
        ),
      ],
    };
  });
}

export const episodeListing: BenchScenario = {
  id: "episode-listing",
  title: "4. Episode listing",
  run,
};
