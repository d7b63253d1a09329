import { randomUUID } from "node:crypto";
import { encodeGlobalID } from "@pothos/plugin-relay";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { RunningPodflow } from "../../src/app.ts";
import { CHANGES_CHANNEL } from "../../src/services/pubsub.ts";
import {
  bumpTaskProgress,
  changeEpisode,
  changeTask,
  insertProcessingEpisode,
} from "../support/episode-changes.ts";
import { startTestPodflow } from "../support/podflow.ts";
import { type Scenario, startScenario, type TestProducer } from "../support/scenario.ts";
import {
  follow as followOn,
  type SubscribeOptions,
  type SubscriptionStream,
  subscribeSse,
  subscribeWs,
  type Transport,
} from "../support/subscriptions.ts";

// Two Podflow instances on one database: A (the scenario's) makes the changes, B serves most
// subscribers. Changes are made the way the pipeline makes them: a transaction that announces
// itself through deps.pubsub.

const sqlOnB: string[] = [];
let scenario: Scenario;
let a: RunningPodflow;
let b: RunningPodflow;
let alice: TestProducer;
let bob: TestProducer;
const open: Array<SubscriptionStream<unknown>> = [];

beforeAll(async () => {
  scenario = await startScenario({ env: { PODFLOW_ROLES: "api" } });
  a = scenario.podflow;
  b = await startTestPodflow({
    databaseUrl: scenario.databaseUrl,
    env: { PODFLOW_ROLES: "api" },
    start: { onSqlQuery: (sql) => sqlOnB.push(sql) },
  });
  alice = await scenario.producer();
  bob = await scenario.producer();
});
afterAll(async () => {
  for (const stream of open) stream.close();
  await b?.stop();
  await scenario?.stop();
});

const EPISODE_UPDATED = `subscription($id: ID!) {
  episodeUpdated(id: $id) { id title status progress failureReason tasks { id type status progress } }
}`;
const TASK_UPDATED = `subscription($episodeId: ID!) {
  taskUpdated(episodeId: $episodeId) { id type status progress error }
}`;
const MY_EPISODES_UPDATED = `subscription { myEpisodesUpdated { id title status progress } }`;

interface EpisodeView {
  id: string;
  title: string;
  status: string;
  progress: number;
  failureReason: string | null;
  tasks: Array<{ id: string; type: string; status: string; progress: number | null }>;
}
interface TaskView {
  id: string;
  type: string;
  status: string;
  progress: number | null;
  error: string | null;
}

const transports: Array<[string, Transport]> = [
  ["WebSocket", subscribeWs],
  ["SSE", subscribeSse as Transport],
];

/** Subscribes and returns the stream at once (for subscriptions that are refused). */
async function subscribe<T>(
  transport: Transport,
  podflow: RunningPodflow,
  producer: TestProducer | null,
  query: string,
  variables?: Record<string, unknown>,
): Promise<SubscriptionStream<T>> {
  const options: SubscribeOptions = { variables };
  if (producer) options.authorization = `Bearer ${producer.token}`;
  const stream = await transport<T>(podflow.url ?? "", query, options);
  open.push(stream as SubscriptionStream<unknown>);
  return stream;
}

/** Subscribes and waits until the instance's feed holds the subscription. */
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

const episodeOf = (data: { episodeUpdated?: EpisodeView; myEpisodesUpdated?: EpisodeView }) =>
  (data.episodeUpdated ?? data.myEpisodesUpdated) as EpisodeView;
const taskProgress = (episode: EpisodeView, taskId: string) =>
  episode.tasks.find((task) => task.id === taskId)?.progress;

describe.each(transports)("episodeUpdated over %s", (_name, transport) => {
  it("sends the current state first, then each change committed on another instance", async () => {
    const episode = await insertProcessingEpisode(a.deps, alice.userId, "State first");
    const audio = episode.tasks.AUDIO_EXTRACTION.id;
    await changeTask(a.deps, episode, audio, { status: "PROCESSING", progress: 40 });

    const onB = await follow<{ episodeUpdated: EpisodeView }>(
      transport,
      b,
      alice,
      EPISODE_UPDATED,
      { id: episode.globalId },
    );
    const first = await onB.waitForCount(1);
    expect(first.errors).toBeUndefined();
    expect(first.data?.episodeUpdated).toMatchObject({
      id: episode.globalId,
      title: "State first",
      status: "PROCESSING",
      progress: 0,
    });
    expect(
      first.data?.episodeUpdated.tasks.map((task) => [task.type, task.status, task.progress]),
    ).toEqual([
      ["AUDIO_EXTRACTION", "PROCESSING", 40],
      ["VIDEO_TRANSCODE", "PENDING", null],
      ["TRANSCRIPT_GENERATION", "PENDING", null],
      ["CHAPTER_DETECTION", "PENDING", null],
    ]);

    const onA = await follow<{ episodeUpdated: EpisodeView }>(
      transport,
      a,
      alice,
      EPISODE_UPDATED,
      {
        id: episode.globalId,
      },
    );
    await onA.waitForCount(1);

    await changeTask(a.deps, episode, audio, { status: "COMPLETED", progress: 100 });
    for (const stream of [onB, onA]) {
      const update = await stream.waitFor(
        (message) => episodeOf(message.data ?? {}).progress === 25,
        {
          from: 1,
        },
      );
      expect(taskProgress(episodeOf(update.data ?? {}), audio)).toBe(100);
      expect(episodeOf(update.data ?? {}).tasks[0]?.status).toBe("COMPLETED");
    }

    await changeEpisode(a.deps, episode, { status: "FAILED", failureReason: "Chapters failed" });
    for (const stream of [onB, onA]) {
      const failed = await stream.waitFor(
        (message) => episodeOf(message.data ?? {}).status === "FAILED",
      );
      expect(episodeOf(failed.data ?? {}).failureReason).toBe("Chapters failed");
    }
  });

  it("delivers a burst of changes to one episode in commit order, ending at the final state", async () => {
    const episode = await insertProcessingEpisode(a.deps, alice.userId, "Burst");
    const video = episode.tasks.VIDEO_TRANSCODE.id;
    const episodes = await follow<{ episodeUpdated: EpisodeView }>(
      transport,
      b,
      alice,
      EPISODE_UPDATED,
      { id: episode.globalId },
    );
    const tasks = await follow<{ taskUpdated: TaskView }>(transport, b, alice, TASK_UPDATED, {
      episodeId: episode.globalId,
    });
    await episodes.waitForCount(1);

    // 60 changes at once, spread over both instances as webhooks would be; the episode's row
    // lock orders their commits, and each writes the next progress value.
    const steps = 60;
    await Promise.all(
      Array.from({ length: steps }, (_, index) =>
        bumpTaskProgress((index % 2 ? a : b).deps, episode, video),
      ),
    );

    await episodes.waitFor(
      (message) => taskProgress(episodeOf(message.data ?? {}), video) === steps,
    );
    await tasks.waitFor((message) => message.data?.taskUpdated.progress === steps);
    const seenByEpisode = episodes.data
      .slice(1)
      .map((data) => taskProgress(data.episodeUpdated, video));
    const seenByTask = tasks.data.map((data) => data.taskUpdated.progress ?? 0);
    // Bursts may merge changes (a subscriber sees the newest state), but never go back.
    for (const seen of [seenByEpisode, seenByTask]) {
      for (let index = 1; index < seen.length; index += 1) {
        expect(seen[index] ?? 0).toBeGreaterThanOrEqual(seen[index - 1] ?? 0);
      }
      expect(seen.at(-1)).toBe(steps);
    }
    // taskUpdated sends a task only when it changed: strictly increasing.
    expect(new Set(seenByTask).size).toBe(seenByTask.length);
  });
});

describe("taskUpdated", () => {
  it("sends each change of this episode's tasks and nothing of other episodes", async () => {
    const episode = await insertProcessingEpisode(a.deps, alice.userId);
    const other = await insertProcessingEpisode(a.deps, alice.userId);
    const tasks = await follow<{ taskUpdated: TaskView }>(subscribeWs, b, alice, TASK_UPDATED, {
      episodeId: episode.globalId,
    });

    await changeTask(a.deps, other, other.tasks.AUDIO_EXTRACTION.id, { progress: 10 });
    await changeTask(a.deps, episode, episode.tasks.TRANSCRIPT_GENERATION.id, {
      status: "PROCESSING",
      progress: 30,
    });
    await changeTask(a.deps, other, other.tasks.VIDEO_TRANSCODE.id, { progress: 10 });
    await changeTask(a.deps, episode, episode.tasks.CHAPTER_DETECTION.id, {
      status: "FAILED",
      errorMessage: "No speech found",
    });

    await tasks.waitFor((message) => message.data?.taskUpdated.type === "CHAPTER_DETECTION");
    expect(tasks.data.map((data) => data.taskUpdated)).toEqual([
      {
        id: episode.tasks.TRANSCRIPT_GENERATION.id,
        type: "TRANSCRIPT_GENERATION",
        status: "PROCESSING",
        progress: 30,
        error: null,
      },
      {
        id: episode.tasks.CHAPTER_DETECTION.id,
        type: "CHAPTER_DETECTION",
        status: "FAILED",
        progress: null,
        error: "No speech found",
      },
    ]);
  });
});

describe("myEpisodesUpdated", () => {
  it.each(transports)(
    "over %s, sends changes of any of the viewer's episodes and never another's",
    async (_name, transport) => {
      const first = await insertProcessingEpisode(a.deps, alice.userId, "Alice one");
      const second = await insertProcessingEpisode(a.deps, alice.userId, "Alice two");
      const bobs = await insertProcessingEpisode(a.deps, bob.userId, "Bob's");
      const feed = await follow<{ myEpisodesUpdated: EpisodeView }>(
        transport,
        b,
        alice,
        MY_EPISODES_UPDATED,
      );
      const bobFeed = await follow<{ myEpisodesUpdated: EpisodeView }>(
        transport,
        b,
        bob,
        MY_EPISODES_UPDATED,
      );

      await changeTask(a.deps, bobs, bobs.tasks.AUDIO_EXTRACTION.id, { status: "COMPLETED" });
      await changeTask(a.deps, first, first.tasks.AUDIO_EXTRACTION.id, { status: "COMPLETED" });
      await changeEpisode(a.deps, second, { title: "Alice two, renamed" });

      await feed.waitFor((message) => message.data?.myEpisodesUpdated.id === second.globalId);
      expect(feed.data.map((data) => data.myEpisodesUpdated)).toEqual([
        { id: first.globalId, title: "Alice one", status: "PROCESSING", progress: 25 },
        { id: second.globalId, title: "Alice two, renamed", status: "PROCESSING", progress: 0 },
      ]);
      await bobFeed.waitFor((message) => message.data?.myEpisodesUpdated.id === bobs.globalId);
      expect(bobFeed.data.map((data) => data.myEpisodesUpdated.id)).toEqual([bobs.globalId]);
    },
  );
});

describe("rolled-back changes", () => {
  it("are never announced", async () => {
    const episode = await insertProcessingEpisode(a.deps, alice.userId);
    const audio = episode.tasks.AUDIO_EXTRACTION.id;
    const video = episode.tasks.VIDEO_TRANSCODE.id;
    const listener = new pg.Client({ connectionString: scenario.databaseUrl });
    await listener.connect();
    const payloads: string[] = [];
    let markerHeard!: () => void;
    const heard = new Promise<void>((resolve) => {
      markerHeard = resolve;
    });
    listener.on("notification", (message) => {
      payloads.push(message.payload ?? "");
      // Only commits are announced: the first announcement is the committed change below.
      if (message.payload?.includes(episode.id)) markerHeard();
    });
    await listener.query(`listen ${CHANGES_CHANNEL}`);
    try {
      const episodes = await follow<{ episodeUpdated: EpisodeView }>(
        subscribeWs,
        b,
        alice,
        EPISODE_UPDATED,
        { id: episode.globalId },
      );
      const tasks = await follow<{ taskUpdated: TaskView }>(subscribeSse, b, alice, TASK_UPDATED, {
        episodeId: episode.globalId,
      });
      await episodes.waitForCount(1);

      await changeTask(a.deps, episode, audio, { progress: 77 }, { rollback: true });
      // A committed change after it: what arrives before it would have come from the rollback.
      await changeTask(a.deps, episode, video, { progress: 5 });

      await tasks.waitFor((message) => message.data?.taskUpdated.id === video);
      await episodes.waitFor((message) => taskProgress(episodeOf(message.data ?? {}), video) === 5);
      expect(tasks.data.map((data) => [data.taskUpdated.id, data.taskUpdated.progress])).toEqual([
        [video, 5],
      ]);
      expect(episodes.messages).toHaveLength(2);
      expect(taskProgress(episodes.data[1]?.episodeUpdated as EpisodeView, audio)).toBeNull();
      // In commit order: had the rollback been announced, it would have come first.
      await heard;
      expect(payloads.map((payload) => JSON.parse(payload))).toEqual([
        {
          episodeId: episode.id,
          userId: alice.userId,
          txid: expect.stringMatching(/^\d+$/),
          task: [
            video,
            "VIDEO_TRANSCODE",
            "PENDING",
            "5",
            null,
            null,
            expect.any(String),
            "1",
            expect.stringMatching(/^\d+$/),
          ],
        },
        { txEnd: expect.stringMatching(/^\d+$/) },
      ]);
    } finally {
      await listener.end();
    }
  });
});

describe("access", () => {
  it.each(transports)(
    "over %s, answers another producer's episode exactly as a missing one",
    async (_name, transport) => {
      const episode = await insertProcessingEpisode(a.deps, alice.userId);
      const missing = encodeGlobalID("Episode", randomUUID());
      const answers = [];
      for (const [query, variables] of [
        [EPISODE_UPDATED, (id: string) => ({ id })],
        [TASK_UPDATED, (id: string) => ({ episodeId: id })],
      ] as const) {
        for (const id of [episode.globalId, missing, "not-a-global-id"]) {
          const stream = await subscribe(transport, b, bob, query, variables(id));
          const end = await stream.waitForEnd();
          expect(end.completed).toBe(true);
          expect(stream.messages).toHaveLength(1);
          expect(stream.messages[0]?.data ?? null).toBeNull();
          answers.push(stream.messages[0]?.errors);
        }
      }
      for (const errors of answers) {
        expect(errors).toEqual([
          expect.objectContaining({
            message: "No such episode",
            extensions: { code: "NOT_FOUND" },
          }),
        ]);
      }
      // And the episode's owner may subscribe.
      const own = await follow(transport, b, alice, EPISODE_UPDATED, { id: episode.globalId });
      expect((await own.waitForCount(1)).errors).toBeUndefined();
    },
  );

  it("refuses a subscription without a token: UNAUTHENTICATED over SSE, 4401 over WebSocket", async () => {
    const episode = await insertProcessingEpisode(a.deps, alice.userId);
    const sse = await subscribe(subscribeSse, b, null, EPISODE_UPDATED, { id: episode.globalId });
    await sse.waitForEnd();
    expect(sse.messages[0]?.errors?.[0]?.extensions?.code).toBe("UNAUTHENTICATED");
    const ws = await subscribe(subscribeWs, b, null, EPISODE_UPDATED, { id: episode.globalId });
    expect((await ws.waitForEnd()).closeCode).toBe(4401);
    expect(ws.messages).toHaveLength(0);
  });
});

describe("loading", () => {
  it("reads once per burst whether 1 or 30 subscribers follow the episode, and nothing for a change its announcement carried", async () => {
    const statementsOnB = async (subscribers: number) => {
      const episode = await insertProcessingEpisode(a.deps, alice.userId);
      const streams = await Promise.all(
        Array.from({ length: subscribers }, (_, index) =>
          subscribe<{ episodeUpdated: EpisodeView }>(
            index % 2 ? subscribeSse : subscribeWs,
            b,
            alice,
            EPISODE_UPDATED,
            { id: episode.globalId },
          ),
        ),
      );
      await Promise.all(streams.map((stream) => stream.waitForCount(1)));
      sqlOnB.length = 0;
      // An episode's change is announced by ids: B reads the episode.
      await changeEpisode(a.deps, episode, { title: "Renamed" });
      await Promise.all(streams.map((stream) => stream.waitForCount(2)));
      const episodeChange = sqlOnB.length;
      // A task's change carries the task: B applies it to the state it read, and reads nothing.
      await changeTask(a.deps, episode, episode.tasks.AUDIO_EXTRACTION.id, { progress: 50 });
      await Promise.all(streams.map((stream) => stream.waitForCount(3)));
      for (const stream of streams) {
        const [, renamed, progressed] = stream.data.map((data) => data.episodeUpdated);
        expect(renamed?.title).toBe("Renamed");
        expect(progressed?.title).toBe("Renamed");
        expect(taskProgress(progressed as EpisodeView, episode.tasks.AUDIO_EXTRACTION.id)).toBe(50);
      }
      return { episodeChange, taskChange: sqlOnB.length - episodeChange };
    };
    const one = await statementsOnB(1);
    const many = await statementsOnB(30);
    expect(many).toEqual(one);
    // The episodes with their tasks, and the subscribers' tokens: one statement, which the
    // query log sees though it bypasses the ORM (a prepared statement on its pool).
    expect(one).toEqual({ episodeChange: 1, taskChange: 0 });
  });
});
