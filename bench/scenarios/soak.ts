import { get as httpGet } from "node:http";
import { setTimeout as sleep } from "node:timers/promises";
import { createClient } from "graphql-ws";
import WebSocket from "ws";
import { TASK_TYPES } from "../../src/domain/tasks.ts";
import { webhookHeaders } from "../../test/support/webhook-signing.ts";
import { withClient } from "../support/environment.ts";
import { createLoadClient, timedGraphql } from "../support/http.ts";
import { BENCH_WEBHOOK_PATH, BENCH_WEBHOOK_SECRET, spawnPodflow } from "../support/podflow.ts";
import {
  processDescriptorKinds,
  processResidentBreakdown,
  processRssBytes,
} from "../support/proc.ts";
import { type Check, check, type Figure, figure } from "../support/results.ts";
import type { BenchScenario, ScenarioContext, ScenarioOutcome } from "../support/scenario.ts";
import { type SeededEpisode, seedEpisodes, seedProducer } from "../support/seed.ts";
import { latencyPercentiles } from "../support/stats.ts";

// Soak: one Podflow process (API and workers) under a steady mix for 10 minutes (quick: 1) —
// signed webhook deliveries, GraphQL queries, and subscriptions opened and closed over
// WebSocket and server-sent events all the while. What is watched is what leaks: the process's
// resident memory and open file descriptors after a warm-up and again after the load (the start
// is each figure's baseline, so × baseline is the growth), and whether any delivery was lost.

interface Sizes {
  warmupMs: number;
  loadMs: number;
  webhooksPerSecond: number;
  queriesPerSecond: number;
  /** New subscriptions per second, each held for 0.5–3 s. */
  subscriptionsPerSecond: number;
  /**
   * Quiet before each measurement: longer than the connection pools' idle timeout (pg's 10 s), so
   * the database connections counted are the ones Podflow keeps, not the ones the load needed.
   */
  settleMs: number;
}

const FULL: Sizes = {
  // Five minutes: long enough for code to be compiled and optimised and for V8's heap to reach
  // the size this mix needs; the 10-minute load after it then shows what is held.
  warmupMs: 300_000,
  loadMs: 600_000,
  webhooksPerSecond: 60,
  queriesPerSecond: 15,
  subscriptionsPerSecond: 4,
  settleMs: 15_000,
};
const QUICK: Sizes = { ...FULL, warmupMs: 20_000, loadMs: 60_000 };
/** BENCH_SOAK_MINUTES: a longer load than the full run's, to see where memory levels off. */
const soakMinutes = Number(process.env.BENCH_SOAK_MINUTES ?? Number.NaN);

/** Progress values a task's deliveries step through (1..MAX_PROGRESS), never completing it. */
const MAX_PROGRESS = 99;
/** The soaked process's old-space limit. */
const HEAP_LIMIT_MIB = 192;
/**
 * The soaked process's semi-space size (the young generation is two of them). Node 24 sizes it
 * from the machine's memory: 64 MiB on this 24 GiB machine, a 128 MiB young generation whose
 * pages become resident a few at a time over ~14 minutes of this load (a /proc/<pid>/smaps diff:
 * all of the 40 MiB that RSS grew by was V8's own 256 KiB pages, while V8's committed heap stayed
 * at 198 MiB). That is V8's configured size filling in, not memory held; bounding it, as the old
 * space is bounded, leaves the growth that is held (README, soak).
 */
const SEMI_SPACE_MIB = 16;
/** How close to the load's last delivery a long-lived dashboard's last result must be. */
const LAST_RESULT_WITHIN_MS = 5_000;
/** How long a new subscription may take to its first result. */
const FIRST_RESULT_MS = 10_000;
/** Samples, a second apart, of each quiet measurement (measureQuiet). */
const QUIET_SAMPLES = 10;
/** The soaked process's ORM pool (PODFLOW_DATABASE_POOL_SIZE). */
const ORM_POOL_SIZE = 10;
/**
 * Database connections Podflow may hold at most: its ORM pool, pg-boss's pool (10, src/jobs/boss.ts)
 * and the change listener's own connection.
 */
const DATABASE_CONNECTIONS_BOUND = ORM_POOL_SIZE + 10 + 1;
/** How much RSS and open descriptors may grow from start to end. */
const TOLERANCE = 0.1;

const EPISODES_QUERY = `query { episodes(first: 20) { edges { node { id status progress tasks { type status progress } } } } }`;
const EPISODE_UPDATED = `subscription($id: ID!) { episodeUpdated(id: $id) { id status tasks { progress } } }`;
/** The long-lived dashboards' feed: every change of any of the producer's episodes. */
const MY_EPISODES_UPDATED = `subscription { myEpisodesUpdated { id progress } }`;
const KIND = ["audio", "video", "speech", "chapters"];

/**
 * The process's own view, from its GET /metrics: V8 heap in use and reserved, memory held
 * outside the heap for JavaScript objects (external, of which array buffers), and active libuv
 * handles. Asked over a connection of its own that is closed with the answer (no keep-alive
 * agent), so the probe leaves no socket behind in the process it counts.
 */
async function processMetrics(url: string) {
  const text = await new Promise<string>((resolve) => {
    const request = httpGet(
      `${url}/metrics`,
      { agent: false, headers: { connection: "close" } },
      (response) => {
        let body = "";
        response.setEncoding("utf8");
        response.on("data", (chunk: string) => {
          body += chunk;
        });
        response.on("end", () => resolve(body));
        response.on("error", () => resolve(""));
      },
    );
    request.on("error", () => resolve(""));
  });
  const value = (name: string) =>
    Number(new RegExp(`^podflow_${name} ([0-9.e+]+)`, "m").exec(text)?.[1] ?? Number.NaN);
  return {
    heapUsed: value("nodejs_heap_size_used_bytes"),
    heapTotal: value("nodejs_heap_size_total_bytes"),
    codeSpace: value('nodejs_heap_space_size_used_bytes\\{space="code"\\}'),
    newSpace: value('nodejs_heap_space_size_total_bytes\\{space="new"\\}'),
    external: value("nodejs_external_memory_bytes"),
    handles: value("nodejs_active_handles_total"),
  };
}

/** What is measured at the start and at the end; `databasePort` names the database's sockets. */
async function measure(url: string, pid: number, databasePort: number) {
  const descriptors = await processDescriptorKinds(pid, Number(new URL(url).port));
  const fds = [...descriptors.values()].reduce((sum, count) => sum + count, 0);
  const databaseConnections = descriptors.get(`tcp out to :${databasePort}`) ?? 0;
  const metrics = await processMetrics(url);
  return {
    rss: await processRssBytes(pid),
    ...(await processResidentBreakdown(pid)),
    ...metrics,
    descriptors,
    databaseConnections,
    /** Descriptors and handles other than the pools' database connections. */
    ownFds: fds - databaseConnections,
    ownHandles: metrics.handles - databaseConnections,
  };
}

/**
 * A measurement in the quiet after a phase: QUIET_SAMPLES taken a second apart. The pools' database
 * connections come and go in the quiet too: pg-boss polls each queue every 2 s on its own pool, pg
 * closes a connection idle for 10 s, so how many are open depends on how the queues' timers line
 * up, up to the pools' maximum. They are kept apart (the most seen), and the other descriptors and
 * handles (sockets accepted, pipes, timers…) are the fewest seen: something leaked is held in
 * every sample, so it stays in the minimum. Memory is the last sample's.
 */
async function measureQuiet(url: string, pid: number, databasePort: number) {
  let fewest = await measure(url, pid, databasePort);
  let { ownHandles, databaseConnections } = fewest;
  let last = fewest;
  for (let sample = 1; sample < QUIET_SAMPLES; sample++) {
    await sleep(1000);
    last = await measure(url, pid, databasePort);
    if (last.ownFds < fewest.ownFds) fewest = last;
    ownHandles = Math.min(ownHandles, last.ownHandles);
    databaseConnections = Math.max(databaseConnections, last.databaseConnections);
  }
  return {
    ...last,
    ownFds: fewest.ownFds,
    descriptors: fewest.descriptors,
    ownHandles,
    databaseConnections,
  };
}

/** "tcp out to :5432 ×4, pipe ×2, …": a measurement's descriptors, most numerous first. */
function describeDescriptors(descriptors: Map<string, number>): string {
  return [...descriptors]
    .sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))
    .map(([kind, count]) => `${kind} ×${count}`)
    .join(", ");
}

/**
 * Runs `operation` `perSecond` times a second until `until` (performance.now()), without waiting
 * for one to finish before the next starts (at most `maxInFlight` at once: past it the pace
 * slips rather than the queue growing). Resolves once every started one has finished.
 */
async function paced(
  perSecond: number,
  until: number,
  maxInFlight: number,
  operation: () => Promise<void>,
): Promise<void> {
  const inFlight = new Set<Promise<void>>();
  let next = performance.now();
  while (performance.now() < until) {
    if (inFlight.size >= maxInFlight) await Promise.race(inFlight);
    const started = operation().finally(() => inFlight.delete(started));
    inFlight.add(started);
    next += 1000 / perSecond;
    const wait = next - performance.now();
    if (wait > 0) await sleep(wait);
  }
  await Promise.all(inFlight);
}

interface Load {
  deliveries: number;
  /** Deliveries not answered 200 "received", even after a sender's retries. */
  refused: string[];
  /**
   * Deliveries sent again after the connection failed before any answer (a keep-alive socket
   * the server closed as the request left): a webhook sender retries those, and the inbox makes
   * the repeat harmless.
   */
  resent: number;
  /** The last progress sent per engine task id. */
  lastProgress: Map<string, number>;
  webhookIds: string[];
  /** When the last delivery was answered "received" (performance.now()). */
  lastAnsweredAt: number;
  webhookMs: number[];
  queryMs: number[];
  queryErrors: string[];
  subscriptions: number;
  /** Subscriptions that never got their first result. */
  silent: string[];
}

async function run(context: ScenarioContext): Promise<ScenarioOutcome> {
  const sizes = { ...(context.quick ? QUICK : FULL) };
  if (soakMinutes > 0) sizes.loadMs = soakMinutes * 60_000;
  const database = await context.server.createDatabase("soak");
  const databasePort = Number(new URL(database.url).port);
  context.cleanups.add("drop the soak database", () => database.drop());
  const podflow = await spawnPodflow(context.cleanups, {
    databaseUrl: database.url,
    standIn: null,
    env: {
      PODFLOW_ROLES: "api,worker",
      PODFLOW_DATABASE_POOL_SIZE: String(ORM_POOL_SIZE),
      // The stand-in is not started: nothing may ask Ittybit about the soaked tasks.
      PODFLOW_RECONCILE_AFTER_SECONDS: "86400",
      // A bounded old space: V8 collects instead of growing into the machine's free memory, so
      // memory that still grows is held, not garbage (a leak ends in an out-of-memory exit).
      NODE_OPTIONS:
        `--max-old-space-size=${HEAP_LIMIT_MIB} --max-semi-space-size=${SEMI_SPACE_MIB} ${process.env.BENCH_NODE_OPTIONS ?? ""}`.trim(),
    },
  });

  const totalMs = sizes.warmupMs + sizes.loadMs;
  const deliveriesNeeded = Math.ceil((sizes.webhooksPerSecond * totalMs) / 1000) + 100;
  const episodeCount = Math.ceil(deliveriesNeeded / (TASK_TYPES.length * (MAX_PROGRESS - 1)));
  const { token, episodes } = await withClient(database.url, async (client) => {
    const producer = await seedProducer(client, `soak-${context.runTag}`);
    const seeded = await seedEpisodes(client, {
      userId: producer.userId,
      count: episodeCount,
      tag: `soak${context.runTag}`,
    });
    return { token: producer.token, episodes: seeded };
  });
  const tasks = episodes.flatMap((episode) => episode.tasks);
  const globalIds = episodes.map((episode: SeededEpisode) =>
    Buffer.from(`Episode:${episode.id}`).toString("base64"),
  );
  context.log(
    `  ${episodes.length} episodes; ${sizes.webhooksPerSecond} webhooks/s, ${sizes.queriesPerSecond} queries/s, ${sizes.subscriptionsPerSecond} new subscriptions/s`,
  );

  // One keep-alive pool per phase, closed before each measurement: the descriptors counted are
  // Podflow's own, not connections this load generator happens to hold open.
  let http = createLoadClient(podflow.url, 16);
  context.cleanups.add("close the soak's HTTP client", async () => http.close());
  const load: Load = {
    deliveries: 0,
    refused: [],
    resent: 0,
    lastProgress: new Map(),
    webhookIds: [],
    lastAnsweredAt: 0,
    webhookMs: [],
    queryMs: [],
    queryErrors: [],
    subscriptions: 0,
    silent: [],
  };

  const send = (headers: Record<string, string>, body: string) =>
    http
      .post(BENCH_WEBHOOK_PATH, headers, body)
      .catch((error: unknown) => ({ status: 0, body: String(error), ms: Number.NaN }));

  const webhook = async () => {
    const index = load.deliveries++;
    const task = tasks[index % tasks.length];
    if (!task) return;
    const progress = Math.floor(index / tasks.length) + 1;
    if (progress > MAX_PROGRESS) return;
    const webhookId = `msg_soak_${context.runTag}_${index}`;
    const body = JSON.stringify({
      id: task.engineTaskId,
      object: "task",
      kind: KIND[TASK_TYPES.indexOf(task.type)],
      status: "processing",
      progress,
      output: null,
      error: null,
      updated: new Date().toISOString(),
    });
    const headers = {
      "content-type": "application/json",
      ...webhookHeaders(BENCH_WEBHOOK_SECRET, webhookId, Math.floor(Date.now() / 1000), body),
    };
    let answer = await send(headers, body);
    let retries = 0;
    for (; answer.status === 0 && retries < 2; retries++) {
      load.resent += 1;
      answer = await send(headers, body);
    }
    // A repeat of a delivery whose first answer was lost is answered "duplicate": it is stored.
    const stored =
      answer.body.includes('"received"') || (retries > 0 && answer.body.includes('"duplicate"'));
    if (answer.status !== 200 || !stored) {
      load.refused.push(`${webhookId}: HTTP ${answer.status} ${answer.body.slice(0, 120)}`);
      return;
    }
    load.webhookIds.push(webhookId);
    load.lastAnsweredAt = performance.now();
    load.webhookMs.push(answer.ms);
    const last = load.lastProgress.get(task.engineTaskId) ?? 0;
    load.lastProgress.set(task.engineTaskId, Math.max(last, progress));
  };

  const query = async () => {
    const answer = await timedGraphql(podflow.url, token, EPISODES_QUERY).catch(
      (error: unknown) => ({ status: 0, data: null, errors: [{ message: String(error) }], ms: 0 }),
    );
    if (answer.status !== 200 || answer.errors) {
      load.queryErrors.push(`HTTP ${answer.status} ${JSON.stringify(answer.errors).slice(0, 120)}`);
    } else load.queryMs.push(answer.ms);
  };

  // Churn: each subscription on a socket (or event stream) of its own, held a moment, dropped.
  // It is held until its first result, up to FIRST_RESULT_MS, and then for the rest of its hold.
  let churned = 0;
  const subscription = async () => {
    const number = churned++;
    const id = globalIds[number % globalIds.length];
    const holdMs = 500 + (number % 6) * 500;
    load.subscriptions += 1;
    const first =
      number % 2 === 0 ? await wsFirstResult(id, holdMs) : await sseFirstResult(id, holdMs);
    if (!first) load.silent.push(`${number % 2 === 0 ? "ws" : "sse"} subscription ${number}`);
  };
  /** A graphql-ws client of its own socket, signed in with the producer's token. */
  const openWsClient = () =>
    createClient({
      url: `${podflow.url.replace(/^http/, "ws")}/graphql`,
      webSocketImpl: WebSocket,
      connectionParams: { authorization: `Bearer ${token}` },
      retryAttempts: 0,
    });
  const wsFirstResult = async (id: string | undefined, holdMs: number): Promise<boolean> => {
    const client = openWsClient();
    try {
      let got = false;
      const started = performance.now();
      let first!: () => void;
      const gotFirst = new Promise<void>((resolve) => {
        first = resolve;
      });
      const done = new Promise<void>((resolve) => {
        client.subscribe(
          { query: EPISODE_UPDATED, variables: { id } },
          {
            next: () => {
              got = true;
              first();
            },
            error: () => resolve(),
            complete: () => resolve(),
          },
        );
      });
      await Promise.race([done, gotFirst, sleep(FIRST_RESULT_MS)]);
      const left = holdMs - (performance.now() - started);
      if (got && left > 0) await Promise.race([done, sleep(left)]);
      return got;
    } finally {
      await client.dispose();
    }
  };
  /** A subscription over server-sent events, open until `signal` aborts. */
  const openEventStream = (
    query: string,
    variables: Record<string, unknown>,
    signal: AbortSignal,
  ) =>
    fetch(`${podflow.url}/graphql`, {
      method: "POST",
      headers: {
        "content-type": "application/json",
        accept: "text/event-stream",
        authorization: `Bearer ${token}`,
      },
      body: JSON.stringify({ query, variables }),
      signal,
    });
  const sseFirstResult = async (id: string | undefined, holdMs: number): Promise<boolean> => {
    const abort = new AbortController();
    const started = performance.now();
    // Until the first result (at most FIRST_RESULT_MS), then to the end of the hold.
    let timer = setTimeout(() => abort.abort(), FIRST_RESULT_MS);
    let text = "";
    const hasResult = () => /event: next\ndata: \{"data"/.test(text);
    try {
      const response = await openEventStream(EPISODE_UPDATED, { id }, abort.signal);
      for await (const chunk of response.body ?? []) {
        const before = hasResult();
        text += Buffer.from(chunk).toString("utf8");
        if (!before && hasResult()) {
          clearTimeout(timer);
          timer = setTimeout(
            () => abort.abort(),
            Math.max(0, holdMs - (performance.now() - started)),
          );
        }
      }
    } catch {
      // Aborted at the end of its hold: the usual end.
    } finally {
      clearTimeout(timer);
    }
    return hasResult();
  };

  /** A dashboard held open: counts its results and when the last came, until closed. */
  interface Dashboard {
    close(): Promise<{ transport: string; results: number; lastAt: number; error: string | null }>;
  }
  const longLivedWs = (): Dashboard => {
    const seen = { results: 0, lastAt: 0, error: null as string | null };
    const client = openWsClient();
    client.subscribe(
      { query: MY_EPISODES_UPDATED },
      {
        next: (result) => {
          if (result.errors) seen.error ??= JSON.stringify(result.errors).slice(0, 200);
          seen.results += 1;
          seen.lastAt = performance.now();
        },
        error: (error) => {
          seen.error ??= String(error);
        },
        complete: () => {},
      },
    );
    return {
      close: async () => {
        await client.dispose();
        return { transport: "WebSocket", ...seen };
      },
    };
  };
  const longLivedSse = (): Dashboard => {
    const seen = { results: 0, lastAt: 0, error: null as string | null };
    const abort = new AbortController();
    const reading = (async () => {
      const response = await openEventStream(MY_EPISODES_UPDATED, {}, abort.signal);
      let text = "";
      for await (const chunk of response.body ?? []) {
        text += Buffer.from(chunk).toString("utf8");
        const events = text.split("\n\n");
        text = events.pop() ?? "";
        for (const event of events) {
          if (!event.startsWith("event: next")) continue;
          if (!event.includes('data: {"data"')) seen.error ??= event.slice(0, 200);
          seen.results += 1;
          seen.lastAt = performance.now();
        }
      }
    })().catch((error: unknown) => {
      if (!abort.signal.aborted) seen.error ??= String(error);
    });
    return {
      close: async () => {
        abort.abort();
        await reading;
        return { transport: "server-sent events", ...seen };
      },
    };
  };

  const mix = async (ms: number) => {
    const until = performance.now() + ms;
    await Promise.all([
      paced(sizes.webhooksPerSecond, until, 32, webhook),
      paced(sizes.queriesPerSecond, until, 16, query),
      paced(sizes.subscriptionsPerSecond, until, 64, subscription),
    ]);
  };

  context.log(`  warm-up ${sizes.warmupMs / 1000} s`);
  await mix(sizes.warmupMs);
  http.close();
  await sleep(sizes.settleMs);
  const mib = (bytes: number) => bytes / 1024 ** 2;
  const start = await measureQuiet(podflow.url, podflow.pid, databasePort);
  const loadStarted = performance.now();
  // The shape of the growth, not only its size: a plateau is warm-up, a steady climb a leak.
  const samples: string[] = [];
  const sampler = setInterval(() => {
    void measure(podflow.url, podflow.pid, databasePort).then((now) => {
      const minute = ((performance.now() - loadStarted) / 60_000).toFixed(1);
      samples.push(
        `${minute} min: RSS ${mib(now.rss).toFixed(1)} (anonymous ${mib(now.anonymousBytes).toFixed(1)}, files ${mib(now.fileBytes).toFixed(1)}), heap ${mib(now.heapUsed).toFixed(1)}/${mib(now.heapTotal).toFixed(1)} (code ${mib(now.codeSpace).toFixed(1)}, young generation ${mib(now.newSpace).toFixed(1)}), external ${mib(now.external).toFixed(1)} MiB`,
      );
    });
  }, sizes.loadMs / 10);
  context.cleanups.add("stop the soak's memory sampler", async () => clearInterval(sampler));
  const deliveredBefore = load.webhookIds.length;
  const queriedBefore = load.queryMs.length;
  context.log(`  load ${sizes.loadMs / 1000} s`);
  http = createLoadClient(podflow.url, 16);
  // Two dashboards open through the whole load, one per transport, each following every change
  // of every episode: what is held per result passed to a long-lived subscriber shows here (the
  // churned subscriptions above last seconds).
  const dashboards = [longLivedWs(), longLivedSse()];
  await mix(sizes.loadMs);
  const loadSeconds = (performance.now() - loadStarted) / 1000;
  const watched = await Promise.all(dashboards.map((dashboard) => dashboard.close()));
  clearInterval(sampler);
  http.close();
  await sleep(sizes.settleMs);
  const end = await measureQuiet(podflow.url, podflow.pid, databasePort);

  // Lost deliveries: answered "received" but not in the inbox, or not the task's progress.
  const stored = await withClient(database.url, async (client) => {
    const inbox = await client.query<{ n: string }>(
      "select count(*) as n from webhook_deliveries where id = any($1::text[])",
      [load.webhookIds],
    );
    const progress = await client.query<{ engine_task_id: string; progress: number | null }>(
      "select engine_task_id, progress from processing_tasks where engine_task_id = any($1::text[])",
      [[...load.lastProgress.keys()]],
    );
    return { inbox: Number(inbox.rows[0]?.n), progress: progress.rows };
  });
  const behind = stored.progress.filter(
    (row) => row.progress !== load.lastProgress.get(row.engine_task_id),
  );

  const webhookLatency = latencyPercentiles(load.webhookMs);
  const queryLatency = latencyPercentiles(load.queryMs);
  const figures: Figure[] = [
    figure("RSS after the load", "MiB", "lower", [mib(end.rss)], {
      name: "RSS after the warm-up",
      rounds: [mib(start.rss)],
    }),
    figure("open file descriptors after the load, not database", "fds", "lower", [end.ownFds], {
      name: "after the warm-up",
      rounds: [start.ownFds],
    }),
    figure("database connections after the load", "conn.", "lower", [end.databaseConnections], {
      name: "after the warm-up",
      rounds: [start.databaseConnections],
    }),
    figure("V8 heap in use after the load", "MiB", "lower", [mib(end.heapUsed)], {
      name: "after the warm-up",
      rounds: [mib(start.heapUsed)],
    }),
    figure("active handles after the load, not database", "handles", "lower", [end.ownHandles], {
      name: "after the warm-up",
      rounds: [start.ownHandles],
    }),
    figure("webhook deliveries under load", "/s", "higher", [
      (load.webhookIds.length - deliveredBefore) / loadSeconds,
    ]),
    figure("webhook p50", "ms", "lower", [webhookLatency.p50]),
    figure("webhook p99", "ms", "lower", [webhookLatency.p99]),
    figure("queries under load", "/s", "higher", [
      (load.queryMs.length - queriedBefore) / loadSeconds,
    ]),
    figure("query p50 (episodes, first 20)", "ms", "lower", [queryLatency.p50]),
    figure("query p99 (episodes, first 20)", "ms", "lower", [queryLatency.p99]),
  ];
  const growth = (from: number, to: number) => (to - from) / from;
  const checks: Check[] = [
    check(
      "no lost delivery",
      load.refused.length === 0 && stored.inbox === load.webhookIds.length && behind.length === 0,
      `${load.webhookIds.length} of ${load.deliveries} deliveries received, ${stored.inbox} in the inbox, ${behind.length} tasks not at their last progress, ${load.resent} sent again after a connection failed${load.refused.length ? `; refused: ${load.refused.slice(0, 3).join("; ")}` : ""}`,
    ),
    check(
      "every query answered",
      load.queryErrors.length === 0,
      `${load.queryMs.length} queries, ${load.queryErrors.length} errors${load.queryErrors.length ? `: ${load.queryErrors.slice(0, 3).join("; ")}` : ""}`,
    ),
    check(
      "the long-lived dashboards were served to the end of the load",
      watched.every(
        (dashboard) =>
          dashboard.error === null &&
          dashboard.results > 0 &&
          load.lastAnsweredAt - dashboard.lastAt < LAST_RESULT_WITHIN_MS,
      ),
      watched
        .map(
          (dashboard) =>
            `${dashboard.transport}: ${dashboard.results} results, the last ${(Math.max(0, load.lastAnsweredAt - dashboard.lastAt) / 1000).toFixed(2)} s before the last delivery was answered${dashboard.error ? `, error ${dashboard.error}` : ""}`,
        )
        .join("; "),
    ),
    check(
      "every subscription got its first result",
      load.silent.length === 0,
      `${load.subscriptions} subscriptions opened and closed, ${load.silent.length} silent${load.silent.length ? `: ${load.silent.slice(0, 5).join(", ")}` : ""}`,
    ),
    check(
      `RSS within ${TOLERANCE * 100} % of the start`,
      growth(start.rss, end.rss) <= TOLERANCE,
      `${mib(start.rss).toFixed(1)} MiB → ${mib(end.rss).toFixed(1)} MiB (${(growth(start.rss, end.rss) * 100).toFixed(1)} %)`,
    ),
    check(
      `open file descriptors and active handles within ${TOLERANCE * 100} % of the start`,
      growth(start.ownFds, end.ownFds) <= TOLERANCE &&
        growth(start.ownHandles, end.ownHandles) <= TOLERANCE,
      `not counting database connections: descriptors ${start.ownFds} → ${end.ownFds}, handles ${start.ownHandles} → ${end.ownHandles}`,
    ),
    check(
      `database connections within the pools' bound (${DATABASE_CONNECTIONS_BOUND})`,
      Math.max(start.databaseConnections, end.databaseConnections) <= DATABASE_CONNECTIONS_BOUND,
      `at most ${start.databaseConnections} in the quiet after the warm-up, ${end.databaseConnections} after the load`,
    ),
  ];
  return {
    notes: [
      `One Podflow process (API and workers, --max-old-space-size=${HEAP_LIMIT_MIB} --max-semi-space-size=${SEMI_SPACE_MIB}) on a fresh database; ${episodes.length} seeded episodes, 4 tasks each.`,
      `${sizes.warmupMs / 1000} s warm-up, then ${sizes.loadMs / 1000} s of ${sizes.webhooksPerSecond} signed progress deliveries/s, ${sizes.queriesPerSecond} episode-list queries/s and ${sizes.subscriptionsPerSecond} new subscriptions/s (WebSocket and SSE alternately, each held 0.5–3 s); two dashboards (one WebSocket, one SSE) follow every episode's changes (myEpisodesUpdated) from the start of the load to its end.`,
      `Start = after the warm-up and ${sizes.settleMs / 1000} s of quiet; end = after the load and as long again. Then ${QUIET_SAMPLES} samples a second apart: database connections are the most seen (pools open and close them as pg-boss's polls line up), other descriptors and handles the fewest (something leaked is in every sample). × baseline is end ÷ start.`,
      `Descriptors at the start: ${describeDescriptors(start.descriptors)}; at the end: ${describeDescriptors(end.descriptors)}.`,
      `Start: RSS ${mib(start.rss).toFixed(1)} (anonymous ${mib(start.anonymousBytes).toFixed(1)}, files ${mib(start.fileBytes).toFixed(1)}), heap used/reserved ${mib(start.heapUsed).toFixed(1)}/${mib(start.heapTotal).toFixed(1)}, external ${mib(start.external).toFixed(1)} MiB; end: RSS ${mib(end.rss).toFixed(1)} (anonymous ${mib(end.anonymousBytes).toFixed(1)}, files ${mib(end.fileBytes).toFixed(1)}), heap ${mib(end.heapUsed).toFixed(1)}/${mib(end.heapTotal).toFixed(1)}, external ${mib(end.external).toFixed(1)} MiB.`,
      `During the load: ${samples.join("; ")}.`,
    ],
    figures,
    checks,
  };
}

export const soak: BenchScenario = {
  id: "soak",
  title: "Soak: webhooks, queries and subscription churn",
  run,
};
