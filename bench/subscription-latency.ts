import { randomBytes, randomUUID } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import { createClient } from "graphql-ws";
import pg from "pg";
import pino from "pino";
import WebSocket from "ws";
import { startEmbeddedDatabase } from "../src/database/embedded.ts";
import { TASK_TYPES } from "../src/domain/tasks.ts";
import { hashToken } from "../src/services/accounts.ts";
import { webhookHeaders } from "../test/support/webhook-signing.ts";
import { Cleanups } from "./support/environment.ts";
import { createLoadClient, type LoadClient } from "./support/http.ts";
import {
  BENCH_WEBHOOK_PATH,
  BENCH_WEBHOOK_SECRET,
  type PodflowProcess,
  spawnPodflow,
} from "./support/podflow.ts";

/** How long one webhook may take to reach every subscriber before it counts as missing. */
const DELIVERY_TIMEOUT_MS = 15_000;
/** Subscribers connecting at once. */
const CONNECT_BATCH = 250;

export interface SubscriptionLatencyOptions {
  /** Fewer webhooks and at most 1,000 subscribers: under ~20 s. */
  quick?: boolean;
  /** An empty database to run on; without one, an embedded PostgreSQL is started and stopped. */
  databaseUrl?: string;
  /** Progress lines; stderr by default. */
  log?: (message: string) => void;
  /** Subscriber counts of the fan-out cases (default 1,000 and 10,000; quick: 1,000). */
  fanOut?: number[];
  /** Aborting stops everything started so far (Ctrl-C); the returned promise then rejects. */
  signal?: AbortSignal;
}

export interface LatencySummary {
  /** Messages received (webhooks × subscribers). */
  count: number;
  /** Messages that never arrived within the timeout. */
  missing: number;
  medianMs: number;
  p99Ms: number;
  minMs: number;
  maxMs: number;
}

export interface LatencyCase {
  name: string;
  /** Whether the subscribers are on the instance that received the webhook. */
  instance: "same" | "cross";
  /** Subscribers following the episode the webhooks change. */
  subscribers: number;
  /** Other subscribers connected to the same instance, following an episode that stays still. */
  idleSubscribers: number;
  /**
   * The subscribers' client: graphql-ws's own, or a minimal graphql-transport-ws client doing
   * per message what the bare `ws` floor's clients do (one JSON.parse).
   */
  client: SubscriberClient;
  webhooks: number;
  /** Every (webhook, subscriber) message. */
  latency: LatencySummary;
  /** Per webhook, until its last subscriber had it. */
  lastSubscriber: LatencySummary;
  /** Per webhook, until A answered it (the change was committed by then). */
  webhookAnswered: LatencySummary;
  /** The raw latencies behind `latency`, in ms. */
  samplesMs: number[];
  /** RSS of the subscribers' Podflow process before any of them connected, in MiB. */
  rssBeforeMiB: number;
  /** Its RSS once they were connected (and had their first state), in MiB. */
  rssMiB: number;
  /** Its RSS after the webhooks had reached them all, in MiB. */
  rssAfterMiB: number;
}

export type SubscriberClient = "graphql-ws" | "minimal";

export interface SubscriptionLatencyResult {
  ok: boolean;
  cases: LatencyCase[];
  notes: string[];
}

const EPISODE_UPDATED = `subscription($id: ID!) {
  episodeUpdated(id: $id) { id status progress tasks { id type status progress } }
}`;

export async function measureSubscriptionLatency(
  options: SubscriptionLatencyOptions = {},
): Promise<SubscriptionLatencyResult> {
  const quick = options.quick ?? false;
  const log = options.log ?? ((message: string) => process.stderr.write(`${message}\n`));
  const fanOut = options.fanOut ?? (quick ? [1_000] : [1_000, 10_000]);
  const singleWebhooks = quick ? 40 : 200;
  const fanOutWebhooks = quick ? 10 : 40;
  const cleanups = new Cleanups();
  const cleanUp = () => cleanups.runAll(log);
  const onAbort = () => {
    log("interrupted: stopping everything the benchmark started");
    void cleanUp();
  };
  options.signal?.addEventListener("abort", onAbort, { once: true });

  try {
    let databaseUrl = options.databaseUrl;
    if (!databaseUrl) {
      const dataDir = await mkdtemp(path.join(tmpdir(), "podflow-bench-subscriptions-"));
      cleanups.add("remove the database directory", () =>
        rm(dataDir, { recursive: true, force: true }),
      );
      log("starting an embedded PostgreSQL");
      const embedded = await startEmbeddedDatabase({
        dataDir,
        logger: pino({ level: "warn" }, pino.destination(2)),
      });
      cleanups.add("stop the embedded PostgreSQL", () => embedded.stop());
      databaseUrl = embedded.url;
    }

    log("starting Podflow A (receives the webhooks) and B (serves subscribers)");
    // One after the other: the first migrates the database.
    const instance = { databaseUrl, standIn: null, env: { PODFLOW_ROLES: "api" } };
    const a = await spawnPodflow(cleanups, instance);
    const b = await spawnPodflow(cleanups, instance);
    // The sender is Ittybit's HTTP client, not Podflow: one keep-alive socket to A through
    // node:http for the whole run, as in scenario 1 (fetch's own machinery added ~0.2 ms per
    // request to every figure here).
    const sender = createLoadClient(a.url, 1);
    cleanups.add("close the webhook sender", async () => sender.close());

    const db = new pg.Client({ connectionString: databaseUrl, application_name: "podflow-bench" });
    await db.connect();
    cleanups.add("close the seeding connection", () => db.end());
    const producer = await seedProducer(db);
    const subscriberOptions = { token: producer.token, log };

    const cases: LatencyCase[] = [];
    const measure = async (
      name: string,
      instance: "same" | "cross",
      host: PodflowProcess,
      count: number,
      webhooks: number,
      idle: Subscriber[],
      client: SubscriberClient = "graphql-ws",
    ) => {
      const episode = await seedEpisode(db, producer.userId);
      const rssBeforeMiB = (await host.rssBytes()) / 2 ** 20;
      log(`${name}: connecting ${count} subscriber(s)`);
      const subscribers = await connectSubscribers(host.url, episode, count, {
        ...subscriberOptions,
        client,
      });
      const rssMiB = (await host.rssBytes()) / 2 ** 20;
      log(`${name}: ${webhooks} webhooks`);
      const timings = await sendWebhooks(sender, episode, subscribers, webhooks);
      const rssAfterMiB = (await host.rssBytes()) / 2 ** 20;
      cases.push({
        name,
        instance,
        subscribers: count,
        idleSubscribers: idle.length,
        client,
        webhooks,
        latency: summarize(timings.all, timings.missing),
        lastSubscriber: summarize(timings.last, timings.incompleteWebhooks),
        webhookAnswered: summarize(timings.answered, 0),
        samplesMs: timings.all,
        rssBeforeMiB,
        rssMiB,
        rssAfterMiB,
      });
      return subscribers;
    };

    // A warm-up, not recorded, as every other scenario has before its rounds: the first case
    // would otherwise time both processes' webhook, notification and subscription paths while
    // V8 still interprets them (its first slice of webhooks was the slowest of the run).
    log(`warm-up: ${singleWebhooks} webhooks to one subscriber on each instance`);
    const warmEpisode = await seedEpisode(db, producer.userId);
    const warm = [
      ...(await connectSubscribers(a.url, warmEpisode, 1, subscriberOptions)),
      ...(await connectSubscribers(b.url, warmEpisode, 1, subscriberOptions)),
    ];
    await sendWebhooks(sender, warmEpisode, warm, singleWebhooks);
    await disconnect(warm);

    await disconnect(
      await measure("same instance, 1 subscriber", "same", a, 1, singleWebhooks, []),
    );
    await disconnect(
      await measure("across instances, 1 subscriber", "cross", b, 1, singleWebhooks, []),
    );
    for (const count of fanOut) {
      const crowd = await measure(
        `across instances, ${count} subscribers of the episode`,
        "cross",
        b,
        count,
        fanOutWebhooks,
        [],
      );
      // The same crowd left connected, following an episode that no longer changes.
      await disconnect(
        await measure(
          `across instances, 1 subscriber, ${count} others connected`,
          "cross",
          b,
          1,
          singleWebhooks,
          crowd,
        ),
      );
      await disconnect(crowd);
      // Closing is asynchronous: B tears the crowd down before the next one connects.
      await sleep(2_000);
      // The same crowd size with the minimal client: with graphql-ws's client, this process
      // decoding the messages of thousands of sockets was busy 91–96 % of a crowd's time, so
      // the figure was partly the client's; these clients decode as the floor's do.
      await disconnect(
        await measure(
          `across instances, ${count} subscribers of the episode, minimal client`,
          "cross",
          b,
          count,
          fanOutWebhooks,
          [],
          "minimal",
        ),
      );
    }

    const ok = cases.every((c) => c.latency.missing === 0 && c.lastSubscriber.missing === 0);
    return {
      ok,
      cases,
      notes: [
        "Latency: from just before the signed webhook POST to A starts (node:http, one keep-alive socket), to the graphql-ws message (episodeUpdated showing the new progress) arriving at a subscriber.",
        "A and B are separate `node src/main.ts` processes (api role, NODE_ENV=production) on one PostgreSQL; subscribers are graphql-ws clients, one WebSocket each, in the benchmark's own process, so decoding thousands of messages there is part of the figure.",
        "Crowds are measured twice: with graphql-ws's client, and with a minimal graphql-transport-ws client (connection_init, subscribe, one JSON.parse per message), which decodes as the bare `ws` floor's clients do. With graphql-ws's client this process was busy 91–96 % of a 10,000-subscriber case, so that figure is partly the client's.",
        "Webhooks are sent one at a time, each once every subscriber has the previous one; each moves one task's progress up by one (applied, committed, NOTIFY).",
        "RSS is that of the subscribers' Podflow process: before the case's subscribers connected, once they were connected, and after the webhooks. It includes heap V8 has not given back: in a --expose-gc check the heap in use stayed flat across rounds of events and fell back once subscribers left.",
      ],
    };
  } finally {
    options.signal?.removeEventListener("abort", onAbort);
    await cleanUp();
  }
}

async function seedProducer(db: pg.Client): Promise<{ userId: string; token: string }> {
  const userId = randomUUID();
  const token = `pf_${randomBytes(32).toString("base64url")}`;
  await db.query("insert into users (id, email, created_at) values ($1, $2, now())", [
    userId,
    `bench-${userId.slice(0, 8)}@bench.example.com`,
  ]);
  await db.query(
    `insert into api_tokens (id, user_id, name, token_hash, token_prefix, created_at)
     values ($1, $2, 'bench', $3, $4, now())`,
    [randomUUID(), userId, hashToken(token), token.slice(0, 10)],
  );
  return { userId, token };
}

interface SeededEpisode {
  id: string;
  /** The global id subscribers use. */
  globalId: string;
  tasks: Array<{ id: string; engineTaskId: string; kind: string }>;
}

/** An episode in PROCESSING with its four tasks, as process-episode leaves it. */
async function seedEpisode(db: pg.Client, userId: string): Promise<SeededEpisode> {
  const id = randomUUID();
  await db.query(
    `insert into episodes (id, user_id, title, status, engine, processing_started_at, created_at, updated_at)
     values ($1, $2, 'Benchmark episode', 'PROCESSING', 'ittybit', now(), now(), now())`,
    [id, userId],
  );
  const kinds = ["audio", "video", "speech", "chapters"];
  const tasks = TASK_TYPES.map((type, index) => ({
    id: randomUUID(),
    type,
    engineTaskId: `task_${randomUUID().replaceAll("-", "")}`,
    kind: kinds[index] as string,
  }));
  for (const task of tasks) {
    await db.query(
      `insert into processing_tasks (id, episode_id, type, attempt, engine_task_id, status, created_at, updated_at)
       values ($1, $2, $3, 1, $4, 'PENDING', now(), now())`,
      [task.id, id, task.type, task.engineTaskId],
    );
  }
  return { id, globalId: Buffer.from(`Episode:${id}`).toString("base64"), tasks };
}

/** One subscriber (either client): the latest progress it has seen of each task, and when. */
interface Subscriber {
  progress: Map<string, number>;
  onMessage: (() => void) | null;
  dispose(): void;
}

async function connectSubscribers(
  url: string,
  episode: { globalId: string },
  count: number,
  options: { token: string; log: (message: string) => void; client?: SubscriberClient },
): Promise<Subscriber[]> {
  const connect = options.client === "minimal" ? connectMinimalSubscriber : connectSubscriber;
  const subscribers: Subscriber[] = [];
  for (let start = 0; start < count; start += CONNECT_BATCH) {
    const batch = Array.from({ length: Math.min(CONNECT_BATCH, count - start) }, () =>
      connect(url, episode.globalId, options.token),
    );
    subscribers.push(...(await Promise.all(batch)));
  }
  return subscribers;
}

type EpisodeUpdatedResult = {
  data?: { episodeUpdated: { tasks: Array<{ id: string; progress: number | null }> } } | null;
  errors?: unknown;
};

/** What each subscriber does with a result, whichever client decoded it. */
function subscriberSink(
  subscriber: Subscriber,
  resolve: (subscriber: Subscriber) => void,
  reject: (error: Error) => void,
) {
  let first = true;
  return (result: EpisodeUpdatedResult) => {
    for (const task of result.data?.episodeUpdated.tasks ?? []) {
      subscriber.progress.set(task.id, task.progress ?? 0);
    }
    if (first) {
      first = false;
      if (result.errors) reject(new Error(JSON.stringify(result.errors)));
      else resolve(subscriber);
    }
    subscriber.onMessage?.();
  };
}

function connectSubscriber(url: string, episodeId: string, token: string): Promise<Subscriber> {
  return new Promise((resolve, reject) => {
    const client = createClient({
      url: `${url.replace(/^http/, "ws")}/graphql`,
      webSocketImpl: WebSocket,
      connectionParams: { authorization: `Bearer ${token}` },
      retryAttempts: 0,
    });
    const subscriber: Subscriber = {
      progress: new Map(),
      onMessage: null,
      dispose: () => void client.dispose(),
    };
    const next = subscriberSink(subscriber, resolve, reject);
    client.subscribe<NonNullable<EpisodeUpdatedResult["data"]>>(
      { query: EPISODE_UPDATED, variables: { id: episodeId } },
      {
        next,
        error: (error) => reject(error instanceof Error ? error : new Error(String(error))),
        complete: () => reject(new Error("the subscription completed before its first message")),
      },
    );
  });
}

/**
 * A subscriber speaking graphql-transport-ws itself over a plain `ws` socket: connection_init
 * with the token, one subscribe, then one JSON.parse per message, as the bare `ws` floor's
 * clients decode theirs.
 */
function connectMinimalSubscriber(
  url: string,
  episodeId: string,
  token: string,
): Promise<Subscriber> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(`${url.replace(/^http/, "ws")}/graphql`, "graphql-transport-ws");
    const subscriber: Subscriber = {
      progress: new Map(),
      onMessage: null,
      dispose: () => socket.terminate(),
    };
    const next = subscriberSink(subscriber, resolve, reject);
    socket.once("error", reject);
    socket.once("close", (code) => reject(new Error(`the socket closed (${code})`)));
    socket.once("open", () => {
      socket.send(
        JSON.stringify({ type: "connection_init", payload: { authorization: `Bearer ${token}` } }),
      );
    });
    socket.on("message", (data) => {
      const message = JSON.parse(String(data)) as {
        type: string;
        payload?: EpisodeUpdatedResult;
      };
      if (message.type === "next") next(message.payload ?? {});
      else if (message.type === "connection_ack") {
        socket.send(
          JSON.stringify({
            id: "1",
            type: "subscribe",
            payload: { query: EPISODE_UPDATED, variables: { id: episodeId } },
          }),
        );
      } else if (message.type === "ping") socket.send('{"type":"pong"}');
      else if (message.type === "error" || message.type === "complete") {
        reject(new Error(`the subscription ended: ${String(data)}`));
      }
    });
  });
}

async function disconnect(subscribers: Subscriber[]): Promise<void> {
  for (const subscriber of subscribers) subscriber.dispose();
}

/**
 * Sends `count` webhooks one at a time, each moving one task's progress up by one, and waits
 * for every subscriber to show it.
 */
async function sendWebhooks(
  sender: LoadClient,
  episode: SeededEpisode,
  subscribers: Subscriber[],
  count: number,
): Promise<{
  all: number[];
  last: number[];
  answered: number[];
  missing: number;
  incompleteWebhooks: number;
}> {
  const all: number[] = [];
  const last: number[] = [];
  const answered: number[] = [];
  let missing = 0;
  let incompleteWebhooks = 0;
  for (let index = 0; index < count; index += 1) {
    const task = episode.tasks[
      Math.floor(index / 99) % episode.tasks.length
    ] as SeededEpisode["tasks"][number];
    const progress = (index % 99) + 1;
    const body = JSON.stringify({
      id: task.engineTaskId,
      object: "task",
      kind: task.kind,
      status: "processing",
      progress,
    });
    const pending = new Set(subscribers);
    let lastAt = 0;
    let allArrived!: () => void;
    const arrived = new Promise<void>((resolve) => {
      allArrived = resolve;
    });
    const headers = {
      "content-type": "application/json",
      ...webhookHeaders(
        BENCH_WEBHOOK_SECRET,
        `msg_${randomUUID()}`,
        Math.floor(Date.now() / 1000),
        body,
      ),
    };
    const sentAt = performance.now();
    for (const subscriber of subscribers) {
      subscriber.onMessage = () => {
        if (!pending.has(subscriber) || (subscriber.progress.get(task.id) ?? 0) < progress) return;
        const at = performance.now();
        pending.delete(subscriber);
        all.push(at - sentAt);
        lastAt = at;
        if (pending.size === 0) allArrived();
      };
    }
    const response = await sender.post(BENCH_WEBHOOK_PATH, headers, body);
    answered.push(performance.now() - sentAt);
    if (response.status !== 200) {
      throw new Error(`the webhook was answered ${response.status}: ${response.body}`);
    }
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      arrived,
      new Promise((resolve) => {
        timer = setTimeout(resolve, DELIVERY_TIMEOUT_MS);
      }),
    ]);
    clearTimeout(timer);
    for (const subscriber of subscribers) subscriber.onMessage = null;
    if (pending.size > 0) {
      missing += pending.size;
      incompleteWebhooks += 1;
    } else {
      last.push(lastAt - sentAt);
    }
  }
  return { all, last, answered, missing, incompleteWebhooks };
}

function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = (p / 100) * (sorted.length - 1);
  const low = sorted[Math.floor(rank)] as number;
  const high = sorted[Math.ceil(rank)] as number;
  return low + (high - low) * (rank - Math.floor(rank));
}

function summarize(samples: readonly number[], missing: number): LatencySummary {
  const sorted = [...samples].sort((x, y) => x - y);
  return {
    count: sorted.length,
    missing,
    medianMs: percentile(sorted, 50),
    p99Ms: percentile(sorted, 99),
    minMs: sorted[0] ?? Number.NaN,
    maxMs: sorted.at(-1) ?? Number.NaN,
  };
}

export function renderSubscriptionLatency(result: SubscriptionLatencyResult): string {
  const ms = (value: number) => (Number.isFinite(value) ? value.toFixed(1) : "–");
  const header = [
    "case",
    "msgs",
    "missing",
    "median ms",
    "p99 ms",
    "min ms",
    "max ms",
    "last-sub median",
    "last-sub p99",
    "answered median",
    "RSS MiB before/connected/after",
  ];
  const rows = result.cases.map((c) => [
    c.name,
    String(c.latency.count),
    String(c.latency.missing),
    ms(c.latency.medianMs),
    ms(c.latency.p99Ms),
    ms(c.latency.minMs),
    ms(c.latency.maxMs),
    ms(c.lastSubscriber.medianMs),
    ms(c.lastSubscriber.p99Ms),
    ms(c.webhookAnswered.medianMs),
    [c.rssBeforeMiB, c.rssMiB, c.rssAfterMiB].map((mib) => mib.toFixed(0)).join(" / "),
  ]);
  const widths = header.map((title, column) =>
    Math.max(title.length, ...rows.map((row) => (row[column] as string).length)),
  );
  const line = (cells: string[]) =>
    cells
      .map((cell, column) =>
        column === 0
          ? cell.padEnd(widths[column] as number)
          : cell.padStart(widths[column] as number),
      )
      .join("  ");
  return [line(header), ...rows.map(line), "", ...result.notes.map((note) => `- ${note}`)].join(
    "\n",
  );
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const quick = process.argv.includes("--quick");
  const started = performance.now();
  const interrupt = new AbortController();
  process.on("SIGINT", () => {
    if (interrupt.signal.aborted) process.exit(130);
    interrupt.abort();
  });
  const result = await measureSubscriptionLatency({ quick, signal: interrupt.signal }).catch(
    (error: unknown) => {
      process.stderr.write(
        `${interrupt.signal.aborted ? "interrupted" : (error as Error).stack}\n`,
      );
      process.exit(interrupt.signal.aborted ? 130 : 1);
    },
  );
  process.stdout.write(
    `\nWebhook → subscriber latency${quick ? " (quick)" : ""}, ${((performance.now() - started) / 1000).toFixed(0)} s\n\n${renderSubscriptionLatency(result)}\n`,
  );
  if (!result.ok) {
    process.stderr.write("Some subscribers missed messages.\n");
    process.exitCode = 1;
  }
}
