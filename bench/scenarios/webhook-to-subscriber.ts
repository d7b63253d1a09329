import pg from "pg";
import { type LatencyCase, measureSubscriptionLatency } from "../subscription-latency.ts";
import { withTimeout } from "../support/environment.ts";
import { type Check, check, type Figure, figure } from "../support/results.ts";
import type { BenchScenario, ScenarioContext, ScenarioOutcome } from "../support/scenario.ts";
import { latencyPercentiles } from "../support/stats.ts";
import { type BroadcastBaseline, measureBroadcastBaseline } from "../support/ws-broadcast.ts";

// Scenario 2: webhook → subscriber. The measurement itself is issue 6's
// bench/subscription-latency.ts (two Podflow processes, graphql-ws subscribers); this file runs
// it on a fresh database of the run, cuts each case's samples into rounds, and measures the
// baseline: a committed UPDATE + NOTIFY reaching a LISTENing connection, straight through `pg`;
// for a crowd of N subscribers, that NOTIFY sent on by a bare `ws` server to N sockets
// (bench/support/ws-broadcast.ts).

interface Sizes {
  rounds: number;
  baselineSamplesPerRound: number;
}

const FULL: Sizes = { rounds: 5, baselineSamplesPerRound: 100 };
const QUICK: Sizes = { rounds: 3, baselineSamplesPerRound: 30 };

const CHANNEL = "podflow_bench_baseline";

/**
 * The database's own limit for "a committed change and a message": one autocommitted statement
 * that updates a row and NOTIFYs, timed until another connection LISTENing has the message.
 */
async function measureNotifyBaseline(
  databaseUrl: string,
  rounds: number,
  samplesPerRound: number,
): Promise<{ rounds: number[][]; missing: number }> {
  const listener = new pg.Client({
    connectionString: databaseUrl,
    application_name: "podflow-bench-listen",
  });
  const writer = new pg.Client({
    connectionString: databaseUrl,
    application_name: "podflow-bench-notify",
  });
  await listener.connect();
  await writer.connect();
  try {
    await writer.query(
      "create table if not exists bench_notify_rows (id int primary key, progress int not null)",
    );
    await writer.query(
      "insert into bench_notify_rows values (1, 0) on conflict (id) do update set progress = 0",
    );
    await listener.query(`listen ${CHANNEL}`);
    const waiting = new Map<string, (at: number) => void>();
    listener.on("notification", (message) => {
      const at = performance.now();
      if (message.payload) waiting.get(message.payload)?.(at);
    });
    let sample = 0;
    let missing = 0;
    const one = async (): Promise<number> => {
      const key = String(++sample);
      const received = new Promise<number>((resolve) => waiting.set(key, resolve));
      const sentAt = performance.now();
      await writer.query(
        `with changed as (update bench_notify_rows set progress = $1 where id = 1 returning id)
         select pg_notify('${CHANNEL}', $2) from changed`,
        [sample, key],
      );
      const at = await withTimeout(received, 15_000, "a NOTIFY").catch(() => Number.NaN);
      waiting.delete(key);
      if (Number.isNaN(at)) missing += 1;
      return at - sentAt;
    };
    for (let i = 0; i < 10; i += 1) await one(); // warm-up
    const measured: number[][] = [];
    for (let round = 0; round < rounds; round += 1) {
      const samples: number[] = [];
      for (let i = 0; i < samplesPerRound; i += 1) samples.push(await one());
      measured.push(samples);
    }
    return { rounds: measured, missing };
  } finally {
    await listener.end().catch(() => {});
    await writer.end().catch(() => {});
  }
}

/** Consecutive, equal slices of a case's samples (in the order the webhooks were sent). */
function slices(samples: readonly number[], rounds: number): number[][] {
  const size = Math.ceil(samples.length / rounds);
  return Array.from({ length: rounds }, (_, index) =>
    samples.slice(index * size, (index + 1) * size),
  ).filter((slice) => slice.length > 0);
}

function caseLabel(entry: LatencyCase): string {
  const where = entry.instance === "same" ? "same instance" : "other instance";
  const subscribers = `${entry.subscribers.toLocaleString("en-US")} sub.`;
  const idle =
    entry.idleSubscribers > 0 ? ` + ${entry.idleSubscribers.toLocaleString("en-US")} idle` : "";
  const client = entry.client === "minimal" ? ", minimal client" : "";
  return `${where}, ${subscribers}${idle}${client}`;
}

async function run(context: ScenarioContext): Promise<ScenarioOutcome> {
  const sizes = context.quick ? QUICK : FULL;
  const database = await context.server.createDatabase("subscriptions");

  const interrupt = new AbortController();
  const measuring = measureSubscriptionLatency({
    quick: context.quick,
    databaseUrl: database.url,
    log: (message) => context.log(`  ${message}`),
    signal: interrupt.signal,
  });
  // On Ctrl-C the subscription benchmark stops what it started before the database is dropped.
  context.cleanups.add("stop the subscription benchmark", async () => {
    interrupt.abort();
    // Its own cleanup runs on abort; the promise itself may stay pending (subscribers that
    // were connecting when their server went away), so wait for it only so long.
    await withTimeout(measuring, 30_000, "the subscription benchmark to stop").catch(() => {});
  });
  const result = await measuring;

  context.log("baseline: UPDATE + NOTIFY → LISTEN");
  const baseline = await measureNotifyBaseline(
    database.url,
    sizes.rounds,
    sizes.baselineSamplesPerRound,
  );
  const baselinePercentiles = baseline.rounds.map((round) => latencyPercentiles(round));
  const baselineName = "UPDATE+NOTIFY→LISTEN (pg)";
  // Per crowd size: the same change brought to as many bare WebSockets.
  const broadcasts = new Map<number, BroadcastBaseline>();
  for (const entry of result.cases) {
    if (entry.subscribers < 2 || broadcasts.has(entry.subscribers)) continue;
    context.log(`baseline: NOTIFY → bare ws broadcast to ${entry.subscribers} sockets`);
    broadcasts.set(
      entry.subscribers,
      await measureBroadcastBaseline({
        databaseUrl: database.url,
        clients: entry.subscribers,
        rounds: sizes.rounds,
        changesPerRound: Math.max(1, Math.floor(entry.webhooks / sizes.rounds)),
        cleanups: context.cleanups,
      }),
    );
  }

  const figures: Figure[] = [];
  for (const entry of result.cases) {
    const perRound = slices(entry.samplesMs, sizes.rounds).map((slice) =>
      latencyPercentiles(slice),
    );
    const label = caseLabel(entry);
    const broadcast = broadcasts.get(entry.subscribers);
    const against = broadcast
      ? {
          name: `NOTIFY→bare ws to ${entry.subscribers.toLocaleString("en-US")} sockets`,
          percentiles: broadcast.rounds.map((round) => latencyPercentiles(round)),
        }
      : { name: baselineName, percentiles: baselinePercentiles };
    figures.push(
      figure(
        `p50, ${label}`,
        "ms",
        "lower",
        perRound.map((p) => p.p50),
        { name: against.name, rounds: against.percentiles.map((p) => p.p50) },
      ),
      figure(
        `p99, ${label}`,
        "ms",
        "lower",
        perRound.map((p) => p.p99),
        { name: against.name, rounds: against.percentiles.map((p) => p.p99) },
      ),
    );
  }
  // RSS of the subscribers' process, once per crowd size (the idle-crowd cases repeat it).
  for (const entry of result.cases) {
    if (entry.instance !== "cross" || entry.subscribers < 2 || entry.client !== "graphql-ws") {
      continue;
    }
    figures.push(
      figure(`RSS, ${entry.subscribers.toLocaleString("en-US")} subscribers`, "MiB", "lower", [
        entry.rssMiB,
      ]),
    );
  }

  const checks: Check[] = result.cases.map((entry) =>
    check(
      `${caseLabel(entry)}: every subscriber got every message`,
      entry.latency.missing === 0 && entry.lastSubscriber.missing === 0,
      `${entry.latency.count} messages for ${entry.webhooks} webhooks × ${entry.subscribers} subscribers, ${entry.latency.missing} missing`,
    ),
  );
  checks.push(
    check(
      "the subscription benchmark reports success",
      result.ok,
      result.ok ? "ok" : "measureSubscriptionLatency returned ok: false",
    ),
    check(
      "baseline: every NOTIFY reached the listener",
      baseline.missing === 0,
      `${baseline.rounds.flat().length} notifications, ${baseline.missing} missing`,
    ),
    ...[...broadcasts].map(([clients, broadcast]) =>
      check(
        `baseline: every bare ws client of ${clients} got every broadcast`,
        broadcast.missing === 0,
        `${broadcast.rounds.flat().length} messages, ${broadcast.missing} missing`,
      ),
    ),
  );

  return {
    notes: [
      ...result.notes,
      `Measured by bench/subscription-latency.ts (measureSubscriptionLatency) on a fresh database of this run; each case's samples, in sending order, are cut into ${sizes.rounds} consecutive slices that stand for rounds.`,
      `Of which the webhook's own HTTP answer from A (median per case): ${result.cases
        .map((entry) => `${caseLabel(entry)} ${entry.webhookAnswered.medianMs.toFixed(1)} ms`)
        .join("; ")}.`,
      `RSS before the subscribers connected: ${result.cases
        .filter(
          (entry) =>
            entry.instance === "cross" && entry.subscribers > 1 && entry.client === "graphql-ws",
        )
        .map((entry) => `${entry.rssBeforeMiB.toFixed(0)} MiB (before ${entry.subscribers})`)
        .join(", ")}.`,
      `Baseline: one autocommitted "UPDATE … RETURNING + pg_notify" through pg, timed until a second connection LISTENing has the message; ${sizes.rounds} rounds of ${sizes.baselineSamplesPerRound}, after the subscription cases.`,
      "Baseline of the crowds (N subscribers of the episode): the same NOTIFY heard by a bare `ws` server in its own process (bench/support/ws-broadcast-server.ts), which sends a message of the size of Podflow's to each of N plain WebSocket clients in the benchmark's process; timed until each client has decoded its message. No GraphQL, no authentication, no database read: the floor of this machine for N sockets.",
    ],
    figures,
    checks,
  };
}

export const webhookToSubscriber: BenchScenario = {
  id: "webhook-to-subscriber",
  title: "2. Webhook to subscriber",
  run,
};
