import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { RunningPodflow } from "../../src/app.ts";
import { revokeToken } from "../../src/services/accounts.ts";
import { LISTENER_APPLICATION_NAME, type PostgresPubSub } from "../../src/services/pubsub.ts";
import { changeEpisode, changeTask, insertProcessingEpisode } from "../support/episode-changes.ts";
import { startTestPodflow } from "../support/podflow.ts";
import { type Scenario, startScenario, type TestProducer } from "../support/scenario.ts";
import {
  follow as followOn,
  type SubscriptionStream,
  subscribeSse,
  subscribeWs,
  type Transport,
} from "../support/subscriptions.ts";

// A: the scenario's instance, which makes the changes. B: subscribers' instance, whose listener
// reconnects after a pause (so changes can be committed while it is away) and which re-checks
// tokens often.

const RECONNECT_DELAY_MS = { initial: 1_500, max: 3_000 };
const TOKEN_RECHECK_MS = 200;

let scenario: Scenario;
let a: RunningPodflow;
let b: RunningPodflow;
let admin: pg.Client;
const open: Array<SubscriptionStream<unknown>> = [];

beforeAll(async () => {
  scenario = await startScenario({ env: { PODFLOW_ROLES: "api" } });
  a = scenario.podflow;
  b = await startTestPodflow({
    databaseUrl: scenario.databaseUrl,
    env: { PODFLOW_ROLES: "api" },
    start: {
      subscriptions: { reconnectDelayMs: RECONNECT_DELAY_MS, tokenRecheckMs: TOKEN_RECHECK_MS },
    },
  });
  admin = new pg.Client({ connectionString: scenario.databaseUrl });
  await admin.connect();
});
afterAll(async () => {
  for (const stream of open) stream.close();
  await admin?.end();
  await b?.stop();
  await scenario?.stop();
});

const EPISODE_UPDATED = `subscription($id: ID!) {
  episodeUpdated(id: $id) { id status progress tasks { id type status progress } }
}`;
const TASK_UPDATED = `subscription($episodeId: ID!) {
  taskUpdated(episodeId: $episodeId) { id type status progress }
}`;
const MY_EPISODES_UPDATED = `subscription { myEpisodesUpdated { id status progress } }`;

interface EpisodeView {
  id: string;
  status: string;
  progress: number;
  tasks: Array<{ id: string; type: string; status: string; progress: number | null }>;
}

async function follow<T>(
  transport: Transport,
  podflow: RunningPodflow,
  producer: TestProducer,
  query: string,
  variables?: Record<string, unknown>,
): Promise<SubscriptionStream<T>> {
  const stream = await followOn<T>(transport, podflow, producer.token, query, variables);
  open.push(stream as SubscriptionStream<unknown>);
  return stream;
}

const listenerOf = (podflow: RunningPodflow) => podflow.deps.pubsub as PostgresPubSub;

describe("the listener connection", () => {
  it("is one connection per instance, named for pg_stat_activity", async () => {
    const producer = await scenario.producer();
    const episode = await insertProcessingEpisode(a.deps, producer.userId);
    for (let index = 0; index < 5; index += 1) {
      await follow(subscribeWs, b, producer, EPISODE_UPDATED, { id: episode.globalId });
    }
    const { rows } = await admin.query<{ pid: number }>(
      "select pid from pg_stat_activity where datname = current_database() and application_name = $1",
      [LISTENER_APPLICATION_NAME],
    );
    expect(rows.map((row) => row.pid).sort()).toEqual(
      [listenerOf(a).listenerPid(), listenerOf(b).listenerPid()].sort(),
    );
  });

  it("killed mid-stream, reconnects and brings every subscription to the final state", async () => {
    const producer = await scenario.producer();
    const episode = await insertProcessingEpisode(a.deps, producer.userId);
    const { AUDIO_EXTRACTION: audio, VIDEO_TRANSCODE: video } = episode.tasks;
    const episodes = await follow<{ episodeUpdated: EpisodeView }>(
      subscribeWs,
      b,
      producer,
      EPISODE_UPDATED,
      { id: episode.globalId },
    );
    const tasks = await follow<{ taskUpdated: EpisodeView["tasks"][number] }>(
      subscribeWs,
      b,
      producer,
      TASK_UPDATED,
      { episodeId: episode.globalId },
    );
    const dashboard = await follow<{ myEpisodesUpdated: EpisodeView }>(
      subscribeSse,
      b,
      producer,
      MY_EPISODES_UPDATED,
    );
    await changeTask(a.deps, episode, audio.id, { status: "PROCESSING", progress: 10 });
    await tasks.waitFor((message) => message.data?.taskUpdated.progress === 10);
    await dashboard.waitForCount(1);

    const killed = listenerOf(b).listenerPid();
    expect(killed).not.toBeNull();
    const { rows } = await admin.query("select pg_terminate_backend($1) as ok", [killed]);
    expect(rows[0]?.ok).toBe(true);
    await expect
      .poll(() => listenerOf(b).listenerPid(), { timeout: 5_000, interval: 5 })
      .toBeNull();

    // Committed while B has no listener: no notification of these ever reaches it.
    await changeTask(a.deps, episode, audio.id, { status: "COMPLETED", progress: 100 });
    await changeTask(a.deps, episode, video.id, { status: "PROCESSING", progress: 60 });
    await changeEpisode(a.deps, episode, { status: "FAILED" });
    expect(listenerOf(b).listenerPid()).toBeNull();

    const final = await episodes.waitFor(
      (message) => message.data?.episodeUpdated.status === "FAILED",
    );
    expect(
      final.data?.episodeUpdated.tasks.map((task) => [task.type, task.status, task.progress]),
    ).toEqual([
      ["AUDIO_EXTRACTION", "COMPLETED", 100],
      ["VIDEO_TRANSCODE", "PROCESSING", 60],
      ["TRANSCRIPT_GENERATION", "PENDING", null],
      ["CHAPTER_DETECTION", "PENDING", null],
    ]);
    await tasks.waitFor((message) => message.data?.taskUpdated.id === video.id);
    const latest = new Map(tasks.data.map((data) => [data.taskUpdated.id, data.taskUpdated]));
    expect(latest.get(audio.id)).toMatchObject({ status: "COMPLETED", progress: 100 });
    expect(latest.get(video.id)).toMatchObject({ status: "PROCESSING", progress: 60 });
    const dashboardFinal = await dashboard.waitFor(
      (message) => message.data?.myEpisodesUpdated.status === "FAILED",
    );
    expect(dashboardFinal.data?.myEpisodesUpdated).toMatchObject({
      id: episode.globalId,
      progress: 25,
    });

    const reconnected = listenerOf(b).listenerPid();
    expect(reconnected).not.toBeNull();
    expect(reconnected).not.toBe(killed);

    // And changes flow again as usual.
    await changeTask(a.deps, episode, video.id, { status: "COMPLETED", progress: 100 });
    await tasks.waitFor(
      (message) =>
        message.data?.taskUpdated.id === video.id &&
        message.data.taskUpdated.status === "COMPLETED",
    );
  });
});

describe("a revoked token", () => {
  it("ends its open subscriptions: the WebSocket closes with 4401, the SSE stream ends", async () => {
    const producer = await scenario.producer();
    const episode = await insertProcessingEpisode(a.deps, producer.userId);
    const other = await scenario.producer();
    const ws = await follow(subscribeWs, b, producer, EPISODE_UPDATED, { id: episode.globalId });
    const sse = await follow(subscribeSse, b, producer, MY_EPISODES_UPDATED);
    const unaffected = await follow(subscribeWs, b, other, MY_EPISODES_UPDATED);
    await ws.waitForCount(1);

    const rows = await scenario
      .em()
      .execute("select id from api_tokens where user_id = ?", [producer.userId]);
    await revokeToken(scenario.em(), rows[0]?.id as string);

    expect((await ws.waitForEnd()).closeCode).toBe(4401);
    expect((await sse.waitForEnd()).completed).toBe(true);
    expect(ws.messages).toHaveLength(1);
    expect(sse.messages).toHaveLength(0);
    expect(unaffected.end).toBeNull();

    const again = await subscribeSse(b.url ?? "", EPISODE_UPDATED, {
      authorization: `Bearer ${producer.token}`,
      variables: { id: episode.globalId },
    });
    await again.waitForEnd();
    expect(again.messages[0]?.errors?.[0]?.extensions?.code).toBe("UNAUTHENTICATED");
  });

  it("gets no further event even before the periodic check comes round", async () => {
    // A re-checks tokens only every 30 s (the default); each delivery checks them too.
    const producer = await scenario.producer();
    const episode = await insertProcessingEpisode(a.deps, producer.userId);
    const stream = await follow(subscribeSse, a, producer, EPISODE_UPDATED, {
      id: episode.globalId,
    });
    await stream.waitForCount(1);
    const rows = await scenario
      .em()
      .execute("select id from api_tokens where user_id = ?", [producer.userId]);
    await revokeToken(scenario.em(), rows[0]?.id as string);

    await changeTask(a.deps, episode, episode.tasks.AUDIO_EXTRACTION.id, { progress: 90 });
    expect((await stream.waitForEnd()).completed).toBe(true);
    expect(stream.messages).toHaveLength(1);
  });
});

describe("a revocation announced by PostgreSQL", () => {
  // C re-checks tokens only once an hour, and no episode changes after the revocation: only the
  // announcement can end these subscriptions within the test.
  let c: RunningPodflow;
  beforeAll(async () => {
    c = await startTestPodflow({
      databaseUrl: scenario.databaseUrl,
      env: { PODFLOW_ROLES: "api" },
      start: { subscriptions: { tokenRecheckMs: 3_600_000 } },
    });
  });
  afterAll(async () => {
    await c?.stop();
  });

  const tokenIdOf = async (producer: TestProducer) => {
    const rows = await scenario
      .em()
      .execute("select id from api_tokens where user_id = ?", [producer.userId]);
    return rows[0]?.id as string;
  };

  it("ends the token's subscriptions on every instance once it commits, not on a rollback", async () => {
    const producer = await scenario.producer();
    const episode = await insertProcessingEpisode(a.deps, producer.userId);
    const other = await scenario.producer();
    const ws = await follow(subscribeWs, c, producer, EPISODE_UPDATED, { id: episode.globalId });
    const sse = await follow(subscribeSse, c, producer, MY_EPISODES_UPDATED);
    const unaffected = await follow(subscribeSse, c, other, MY_EPISODES_UPDATED);
    await ws.waitForCount(1);
    const tokenId = await tokenIdOf(producer);

    // A rolled-back revocation announces nothing: the change committed after it still arrives.
    await admin.query("begin");
    await admin.query("update api_tokens set revoked_at = now() where id = $1", [tokenId]);
    await admin.query("rollback");
    await changeTask(a.deps, episode, episode.tasks.AUDIO_EXTRACTION.id, { progress: 5 });
    await sse.waitForCount(1);
    await ws.waitForCount(2);

    await revokeToken(scenario.em(), tokenId);
    expect((await ws.waitForEnd(5_000)).closeCode).toBe(4401);
    expect((await sse.waitForEnd(5_000)).completed).toBe(true);
    expect(unaffected.end).toBeNull();
  });

  it("ends a deleted user's subscriptions (their tokens go with them)", async () => {
    const producer = await scenario.producer();
    const other = await scenario.producer();
    const ws = await follow(subscribeWs, c, producer, MY_EPISODES_UPDATED);
    const sse = await follow(subscribeSse, c, producer, MY_EPISODES_UPDATED);
    const unaffected = await follow(subscribeWs, c, other, MY_EPISODES_UPDATED);

    await admin.query("delete from users where id = $1", [producer.userId]);
    expect((await ws.waitForEnd(5_000)).closeCode).toBe(4401);
    expect((await sse.waitForEnd(5_000)).completed).toBe(true);
    expect(unaffected.end).toBeNull();
  });
});

describe("stopping an instance", () => {
  it("ends its SSE streams and WebSockets instead of waiting out the grace period", async () => {
    const producer = await scenario.producer();
    const episode = await insertProcessingEpisode(a.deps, producer.userId);
    const c = await startTestPodflow({
      databaseUrl: scenario.databaseUrl,
      env: { PODFLOW_ROLES: "api" },
      start: { shutdownGraceMs: 20_000 },
    });
    const sse = await follow(subscribeSse, c, producer, EPISODE_UPDATED, { id: episode.globalId });
    const ws = await follow(subscribeWs, c, producer, EPISODE_UPDATED, { id: episode.globalId });
    await sse.waitForCount(1);
    const started = Date.now();
    await c.stop();
    expect(Date.now() - started).toBeLessThan(10_000);
    expect((await sse.waitForEnd()).completed).toBe(true);
    // Going away: dashboards reconnect to another instance.
    expect((await ws.waitForEnd()).closeCode).toBe(1001);
  });
});
