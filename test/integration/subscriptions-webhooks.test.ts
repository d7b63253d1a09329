import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { RunningPodflow } from "../../src/app.ts";
import type { TaskType } from "../../src/domain/tasks.ts";
import type { PostgresPubSub } from "../../src/services/pubsub.ts";
import { report, type TaskRow, uploadEpisode, waitForTasks } from "../support/pipeline.ts";
import { startTestPodflow } from "../support/podflow.ts";
import {
  ITTYBIT_TEST_KEY,
  type Scenario,
  startScenario,
  type TestProducer,
  WEBHOOK_TEST_SECRET,
} from "../support/scenario.ts";
import {
  follow as followOn,
  type SubscriptionStream,
  subscribeSse,
  subscribeWs,
  type Transport,
} from "../support/subscriptions.ts";

// The acceptance path of issue 6: Ittybit's webhooks reach instance A (the scenario's, with the
// worker); producers' dashboards are subscribed on instance B.

let scenario: Scenario;
let b: RunningPodflow;
let producer: TestProducer;
const open: Array<SubscriptionStream<unknown>> = [];

beforeAll(async () => {
  scenario = await startScenario({ overrides: { reconcileCron: "0 0 1 1 *" } });
  b = await startTestPodflow({
    databaseUrl: scenario.databaseUrl,
    // Its listener comes back after a pause, so webhooks can land while it is away.
    start: { subscriptions: { reconnectDelayMs: { initial: 1_000, max: 2_000 } } },
    env: {
      PODFLOW_ROLES: "api",
      ITTYBIT_API_KEY: ITTYBIT_TEST_KEY,
      ITTYBIT_API_URL: scenario.ittybit.url,
      ITTYBIT_WEBHOOK_SECRET: WEBHOOK_TEST_SECRET,
    },
  });
  producer = await scenario.producer();
});
afterAll(async () => {
  for (const stream of open) stream.close();
  await b?.stop();
  await scenario?.stop();
});

const EPISODE_UPDATED = `subscription($id: ID!) {
  episodeUpdated(id: $id) {
    id status progress
    tasks { type status progress outputUrl }
    outputs { audioUrl videoUrl transcriptAvailable }
  }
}`;
const TASK_UPDATED = `subscription($episodeId: ID!) {
  taskUpdated(episodeId: $episodeId) { type status progress }
}`;
const MY_EPISODES_UPDATED = `subscription { myEpisodesUpdated { id status progress } }`;

interface EpisodeView {
  id: string;
  status: string;
  progress: number;
  tasks: Array<{
    type: TaskType;
    status: string;
    progress: number | null;
    outputUrl: string | null;
  }>;
  outputs: { audioUrl: string | null; videoUrl: string | null; transcriptAvailable: boolean };
}
type TaskView = EpisodeView["tasks"][number];

async function follow<T>(
  transport: Transport,
  query: string,
  variables?: Record<string, unknown>,
): Promise<SubscriptionStream<T>> {
  const stream = await followOn<T>(transport, b, producer.token, query, variables);
  open.push(stream as SubscriptionStream<unknown>);
  return stream;
}

const taskOf = (episode: EpisodeView | undefined, type: TaskType) =>
  episode?.tasks.find((task) => task.type === type);
const ittybitIdOf = (tasks: TaskRow[], type: TaskType) =>
  (tasks.find((task) => task.type === type) as TaskRow).engine_task_id;

describe("an episode's whole life", () => {
  it.each([
    ["the same instance", () => scenario.podflow],
    ["another instance", () => b],
  ])(
    "reaches a dashboard on %s from its creation (AWAITING_UPLOAD) through UPLOADED and PROCESSING to PROCESSED",
    async (_where, instance) => {
      const dashboard = await followOn<{ myEpisodesUpdated: EpisodeView }>(
        subscribeWs,
        instance(),
        producer.token,
        MY_EPISODES_UPDATED,
      );
      open.push(dashboard as SubscriptionStream<unknown>);
      // Each step waits until the dashboard has seen the state before making the next change, so
      // no burst can coalesce two of them. Creating media at Ittybit is the first thing
      // processing does: held back, the episode stays UPLOADED until the dashboard has seen it.
      scenario.ittybit.delayNext({ method: "POST", path: "/media", delayMs: 5_000 });
      const prepared = await producer.gql<{ prepareUpload: { episode: { id: string } } }>(
        `mutation($input: PrepareUploadInput!) { prepareUpload(input: $input) {
           ... on PrepareUploadPayload { episode { id } } } }`,
        { input: { filename: "episode.mp4", title: "From creation to the end", filesize: 1000 } },
      );
      const id = prepared.body.data?.prepareUpload.episode.id as string;
      const uuid = Buffer.from(id, "base64").toString().split(":")[1] as string;
      const episode = { id, uuid };
      const seen = () =>
        dashboard.data
          .map((data) => data.myEpisodesUpdated)
          .filter((update) => update.id === episode.id)
          .map((update) => update.status);
      await dashboard.waitFor(() => seen().includes("AWAITING_UPLOAD"));
      const file = scenario.ittybit.addFile({
        filename: "episode.mp4",
        folder: `episodes/${uuid}`,
        filesize: 1000,
      });
      const confirmed = await producer.gql<{ confirmUpload: { __typename: string } }>(
        `mutation($input: ConfirmUploadInput!) { confirmUpload(input: $input) { __typename } }`,
        { input: { episodeId: id, fileId: file.id } },
      );
      expect(confirmed.body.data?.confirmUpload.__typename).toBe("ConfirmUploadPayload");
      await dashboard.waitFor(() => seen().includes("UPLOADED"));
      await dashboard.waitFor(() => seen().includes("PROCESSING"));
      const rows = await waitForTasks(scenario, episode.uuid);
      for (const row of rows) await report(scenario, row.engine_task_id, "completed");
      await dashboard.waitFor(() => seen().includes("PROCESSED"), { timeoutMs: 20_000 });
      // Each status once, in the lifecycle's order (later changes of one status may repeat it).
      expect([...new Set(seen())]).toEqual([
        "AWAITING_UPLOAD",
        "UPLOADED",
        "PROCESSING",
        "PROCESSED",
      ]);
    },
  );
});

describe("a webhook received by instance A", () => {
  it("reaches subscribers on instance B over WebSocket and SSE, from the initial state to PROCESSED", async () => {
    const episode = await uploadEpisode(scenario, producer, "Across instances");
    const streams = {
      ws: await follow<{ episodeUpdated: EpisodeView }>(subscribeWs, EPISODE_UPDATED, {
        id: episode.id,
      }),
      sse: await follow<{ episodeUpdated: EpisodeView }>(subscribeSse, EPISODE_UPDATED, {
        id: episode.id,
      }),
    };
    const tasks = await follow<{ taskUpdated: TaskView }>(subscribeSse, TASK_UPDATED, {
      episodeId: episode.id,
    });
    const dashboard = await follow<{ myEpisodesUpdated: EpisodeView }>(
      subscribeWs,
      MY_EPISODES_UPDATED,
    );
    for (const stream of Object.values(streams)) {
      const first = await stream.waitForCount(1);
      expect(first.data?.episodeUpdated.id).toBe(episode.id);
      expect(["UPLOADED", "PROCESSING"]).toContain(first.data?.episodeUpdated.status);
    }

    const rows = await waitForTasks(scenario, episode.uuid);
    for (const stream of Object.values(streams)) {
      await stream.waitFor(
        (message) =>
          message.data?.episodeUpdated.status === "PROCESSING" &&
          message.data.episodeUpdated.tasks.length === 4,
      );
    }

    await report(scenario, ittybitIdOf(rows, "AUDIO_EXTRACTION"), "processing", { progress: 40 });
    for (const stream of Object.values(streams)) {
      await stream.waitFor(
        (message) =>
          taskOf(message.data?.episodeUpdated, "AUDIO_EXTRACTION")?.progress === 40 &&
          taskOf(message.data?.episodeUpdated, "AUDIO_EXTRACTION")?.status === "PROCESSING",
      );
    }
    await tasks.waitFor(
      (message) =>
        message.data?.taskUpdated.type === "AUDIO_EXTRACTION" &&
        message.data.taskUpdated.progress === 40,
    );
    await dashboard.waitFor((message) => message.data?.myEpisodesUpdated.id === episode.id);

    for (const type of [
      "AUDIO_EXTRACTION",
      "VIDEO_TRANSCODE",
      "TRANSCRIPT_GENERATION",
      "CHAPTER_DETECTION",
    ] as const) {
      await report(scenario, ittybitIdOf(rows, type), "completed");
    }
    for (const stream of Object.values(streams)) {
      const done = await stream.waitFor(
        (message) => message.data?.episodeUpdated.status === "PROCESSED",
        { timeoutMs: 20_000 },
      );
      expect(done.data?.episodeUpdated).toMatchObject({
        progress: 100,
        outputs: { transcriptAvailable: true },
      });
      expect(done.data?.episodeUpdated.outputs.audioUrl).toBeTruthy();
      expect(done.data?.episodeUpdated.tasks.every((task) => task.status === "COMPLETED")).toBe(
        true,
      );
      // Never a step back on the way.
      const statuses = stream.data.map((data) => data.episodeUpdated.status);
      const order = ["UPLOADED", "PROCESSING", "PROCESSED"];
      for (let index = 1; index < statuses.length; index += 1) {
        expect(order.indexOf(statuses[index] as string)).toBeGreaterThanOrEqual(
          order.indexOf(statuses[index - 1] as string),
        );
      }
    }
    await dashboard.waitFor((message) => message.data?.myEpisodesUpdated.status === "PROCESSED");
    // taskUpdated told of each task's completion.
    const completedTypes = () =>
      new Set(
        tasks.data
          .filter((data) => data.taskUpdated.status === "COMPLETED")
          .map((data) => data.taskUpdated.type),
      );
    await tasks.waitFor(() => completedTypes().size === 4);

    // Subscribing late: the first message is where the episode is now.
    const late = await follow<{ episodeUpdated: EpisodeView }>(subscribeSse, EPISODE_UPDATED, {
      id: episode.id,
    });
    expect((await late.waitForCount(1)).data?.episodeUpdated).toMatchObject({
      status: "PROCESSED",
      progress: 100,
    });
  });

  it("a burst of webhooks for one episode reaches B's subscriber in commit order", async () => {
    const episode = await uploadEpisode(scenario, producer, "Burst of webhooks");
    const rows = await waitForTasks(scenario, episode.uuid);
    const stream = await follow<{ episodeUpdated: EpisodeView }>(subscribeWs, EPISODE_UPDATED, {
      id: episode.id,
    });
    await stream.waitForCount(1);
    const video = ittybitIdOf(rows, "VIDEO_TRANSCODE");
    const transcript = ittybitIdOf(rows, "TRANSCRIPT_GENERATION");

    // Deliveries at once, in no order: progress only moves up, so in commit order what the
    // subscriber sees of each task never goes down.
    const deliveries = [];
    for (let progress = 5; progress <= 95; progress += 5) {
      for (const taskId of [video, transcript]) {
        const task = scenario.ittybit.setTaskStatus(taskId, "processing", { progress });
        deliveries.push(
          scenario.ittybit.deliverWebhook(taskId, { payload: task }).then((delivery) => {
            expect(delivery.status).toBe(200);
          }),
        );
      }
    }
    await Promise.all(deliveries);
    await stream.waitFor(
      (message) =>
        taskOf(message.data?.episodeUpdated, "VIDEO_TRANSCODE")?.progress === 95 &&
        taskOf(message.data?.episodeUpdated, "TRANSCRIPT_GENERATION")?.progress === 95,
    );
    for (const type of ["VIDEO_TRANSCODE", "TRANSCRIPT_GENERATION"] as const) {
      const seen = stream.data.map((data) => taskOf(data.episodeUpdated, type)?.progress ?? 0);
      for (let index = 1; index < seen.length; index += 1) {
        expect(seen[index]).toBeGreaterThanOrEqual(seen[index - 1] as number);
      }
    }
  });

  it("still brings B's subscriber to PROCESSED when B's listener is killed mid-stream", async () => {
    const episode = await uploadEpisode(scenario, producer, "Listener killed");
    const rows = await waitForTasks(scenario, episode.uuid);
    const stream = await follow<{ episodeUpdated: EpisodeView }>(subscribeWs, EPISODE_UPDATED, {
      id: episode.id,
    });
    await stream.waitForCount(1);
    await report(scenario, ittybitIdOf(rows, "AUDIO_EXTRACTION"), "processing", { progress: 30 });
    await stream.waitFor(
      (message) => taskOf(message.data?.episodeUpdated, "AUDIO_EXTRACTION")?.progress === 30,
    );

    const listener = b.deps.pubsub as PostgresPubSub;
    const killed = listener.listenerPid();
    await scenario.em().execute("select pg_terminate_backend(?)", [killed]);
    await expect.poll(() => listener.listenerPid(), { timeout: 5_000, interval: 5 }).toBeNull();
    for (const type of [
      "AUDIO_EXTRACTION",
      "VIDEO_TRANSCODE",
      "TRANSCRIPT_GENERATION",
      "CHAPTER_DETECTION",
    ] as const) {
      await report(scenario, ittybitIdOf(rows, type), "completed");
    }
    // The task webhooks all landed while B was not listening.
    expect(listener.listenerPid()).toBeNull();

    const done = await stream.waitFor(
      (message) => message.data?.episodeUpdated.status === "PROCESSED",
      { timeoutMs: 20_000 },
    );
    expect(done.data?.episodeUpdated.tasks.map((task) => task.status)).toEqual([
      "COMPLETED",
      "COMPLETED",
      "COMPLETED",
      "COMPLETED",
    ]);
    expect(listener.listenerPid()).not.toBe(killed);
  });

  // Needs process-episode to announce each task it creates: after a retry the episode is already
  // PROCESSING, so startProcessing's closing announcement does not happen.
  it("tells taskUpdated of a retry's new attempt, created after subscribing", async () => {
    const episode = await uploadEpisode(scenario, producer, "Retried");
    const rows = await waitForTasks(scenario, episode.uuid);
    const tasks = await follow<{ taskUpdated: TaskView & { attempt: number } }>(
      subscribeWs,
      `subscription($episodeId: ID!) {
        taskUpdated(episodeId: $episodeId) { type status progress attempt }
      }`,
      { episodeId: episode.id },
    );
    const episodes = await follow<{ episodeUpdated: EpisodeView }>(subscribeSse, EPISODE_UPDATED, {
      id: episode.id,
    });
    for (const row of rows) {
      const failed = row.type === "CHAPTER_DETECTION";
      await report(scenario, row.engine_task_id, failed ? "failed" : "completed");
    }
    await episodes.waitFor((message) => message.data?.episodeUpdated.status === "FAILED");

    const retried = await producer.gql<{ retryEpisode: { __typename: string } }>(
      "mutation($id: ID!) { retryEpisode(id: $id) { __typename } }",
      { id: episode.id },
    );
    expect(retried.body.data?.retryEpisode.__typename).toBe("RetryEpisodePayload");
    const second = await tasks.waitFor(
      (message) =>
        message.data?.taskUpdated.type === "CHAPTER_DETECTION" &&
        message.data.taskUpdated.attempt === 2,
    );
    expect(second.data?.taskUpdated.status).toBe("PENDING");
    await episodes.waitFor(
      (message) =>
        message.data?.episodeUpdated.status === "PROCESSING" &&
        taskOf(message.data.episodeUpdated, "CHAPTER_DETECTION")?.status === "PENDING",
    );
    // One message per change: each task's completion, the failure, the new attempt.
    expect(
      tasks.data.map(
        (data) => `${data.taskUpdated.type} ${data.taskUpdated.status} ${data.taskUpdated.attempt}`,
      ),
    ).toEqual([
      ...rows.map((row) =>
        row.type === "CHAPTER_DETECTION" ? `${row.type} FAILED 1` : `${row.type} COMPLETED 1`,
      ),
      "CHAPTER_DETECTION PENDING 2",
    ]);
  });
});
