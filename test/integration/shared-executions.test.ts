import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { RunningPodflow } from "../../src/app.ts";
import { changeTask, insertProcessingEpisode } from "../support/episode-changes.ts";
import { type Scenario, startScenario, type TestProducer } from "../support/scenario.ts";
import {
  follow,
  type SubscriptionStream,
  subscribeSse,
  subscribeWs,
  type Transport,
} from "../support/subscriptions.ts";

// Subscribers who ask the same of the same change share one GraphQL execution (and one
// serialisation), counted by podflow_subscription_events_total; anyone else gets their own.

let scenario: Scenario;
let podflow: RunningPodflow;
let alice: TestProducer;
let bob: TestProducer;
const open: Array<SubscriptionStream<unknown>> = [];

beforeAll(async () => {
  scenario = await startScenario({ env: { PODFLOW_ROLES: "api" } });
  podflow = scenario.podflow;
  alice = await scenario.producer();
  bob = await scenario.producer();
});
afterAll(async () => {
  for (const stream of open) stream.close();
  await scenario?.stop();
});

const EPISODE_UPDATED = `subscription($id: ID!) {
  episodeUpdated(id: $id) { id title progress tasks { id progress } }
}`;
const EPISODE_TITLE = `subscription($id: ID!) { episodeUpdated(id: $id) { id title } }`;

interface Update {
  episodeUpdated: { id: string; title: string; progress?: number; tasks?: unknown[] };
}

async function events(): Promise<{ executed: number; shared: number }> {
  const { values } = await podflow.deps.metrics.subscriptionEvents.get();
  const count = (execution: string) =>
    values.find((value) => value.labels.execution === execution)?.value ?? 0;
  return { executed: count("executed"), shared: count("shared") };
}

const transports: Array<[string, Transport]> = [
  ["WebSocket", subscribeWs],
  ["SSE", subscribeSse as Transport],
];

describe.each(transports)("shared executions over %s", (_name, transport) => {
  it("executes a change once for subscribers asking the same, apart for anyone else", async () => {
    const ours = await insertProcessingEpisode(podflow.deps, alice.userId, "Alice's");
    const theirs = await insertProcessingEpisode(podflow.deps, bob.userId, "Bob's");
    const subscribe = async (producer: TestProducer, query: string, id: string) => {
      const stream = await follow<Update>(transport, podflow, producer.token, query, { id });
      open.push(stream as SubscriptionStream<unknown>);
      await stream.waitForCount(1);
      return stream;
    };
    const same = [
      await subscribe(alice, EPISODE_UPDATED, ours.globalId),
      await subscribe(alice, EPISODE_UPDATED, ours.globalId),
      await subscribe(alice, EPISODE_UPDATED, ours.globalId),
    ];
    const otherDocument = await subscribe(alice, EPISODE_TITLE, ours.globalId);
    const bobs = await subscribe(bob, EPISODE_UPDATED, theirs.globalId);

    const before = await events();
    // One transaction changes both producers' episodes: one burst, one NOTIFY each.
    await Promise.all([
      changeTask(podflow.deps, ours, ours.tasks.AUDIO_EXTRACTION.id, { progress: 30 }),
      changeTask(podflow.deps, theirs, theirs.tasks.AUDIO_EXTRACTION.id, { progress: 70 }),
    ]);
    const received = await Promise.all(
      [...same, otherDocument, bobs].map((stream) => stream.waitForCount(2)),
    );
    const after = await events();

    const [first, ...rest] = received.slice(0, 3).map((message) => message.data);
    expect(first?.episodeUpdated.title).toBe("Alice's");
    expect(first?.episodeUpdated.tasks).toContainEqual({
      id: expect.any(String),
      progress: 30,
    });
    for (const data of rest) expect(data).toEqual(first);
    expect(received[3]?.data).toEqual({
      episodeUpdated: { id: ours.globalId, title: "Alice's" },
    });
    // Bob sees his episode, never Alice's, though his subscription has the same document.
    expect(received[4]?.data?.episodeUpdated.title).toBe("Bob's");
    expect(received[4]?.data?.episodeUpdated.tasks).toContainEqual({
      id: expect.any(String),
      progress: 70,
    });
    // Alice's three identical subscriptions: one execution, two shared; her other document and
    // Bob's: one execution each.
    expect(after.executed - before.executed).toBe(3);
    expect(after.shared - before.shared).toBe(2);
  });

  it("brings each shared result to each subscriber once, in commit order", async () => {
    const ours = await insertProcessingEpisode(podflow.deps, alice.userId, "Alice's");
    const streams = await Promise.all(
      [1, 2, 3].map(async () => {
        const stream = await follow<Update>(transport, podflow, alice.token, EPISODE_UPDATED, {
          id: ours.globalId,
        });
        open.push(stream as SubscriptionStream<unknown>);
        await stream.waitForCount(1);
        return stream;
      }),
    );
    const progressOf = (data: Update | null | undefined) =>
      (data?.episodeUpdated.tasks as Array<{ progress: number | null }> | undefined)?.map(
        (task) => task.progress,
      );
    for (const [index, progress] of [30, 60, 90].entries()) {
      await changeTask(podflow.deps, ours, ours.tasks.AUDIO_EXTRACTION.id, { progress });
      // Each change is the next message: a repeat of the one before would take its place.
      const received = await Promise.all(streams.map((stream) => stream.waitForCount(index + 2)));
      for (const message of received) expect(progressOf(message.data)).toContain(progress);
    }
    for (const stream of streams) expect(stream.messages).toHaveLength(4);
  });
});
