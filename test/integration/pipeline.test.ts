import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { TaskType } from "../../src/domain/tasks.ts";
import {
  EPISODE_QUERY,
  episodeRow,
  jobCount,
  report,
  type TaskRow,
  uploadEpisode,
  waitForStatus,
  waitForTasks,
} from "../support/pipeline.ts";
import { type Scenario, startScenario, type TestProducer } from "../support/scenario.ts";

const byType = (tasks: TaskRow[], type: TaskType) =>
  tasks.find((task) => task.type === type) as TaskRow;

function shuffle<T>(items: T[]): T[] {
  const copy = [...items];
  for (let index = copy.length - 1; index > 0; index -= 1) {
    const other = Math.floor(Math.random() * (index + 1));
    [copy[index], copy[other]] = [copy[other] as T, copy[index] as T];
  }
  return copy;
}

// Every guarantee holds whichever way deliveries are believed: signed bodies applied as they are,
// or bodies taken as hints and Ittybit asked (no webhook secret).
describe.each(["signature", "refetch"] as const)(
  "processing an episode (webhooks verified by %s)",
  (mode) => {
    let scenario: Scenario;
    let producer: TestProducer;

    beforeAll(async () => {
      // The reconciler only runs when a test asks, so webhooks alone drive these episodes.
      scenario = await startScenario({
        env: mode === "refetch" ? { ITTYBIT_WEBHOOK_SECRET: "" } : {},
        overrides: { reconcileCron: "0 0 1 1 *" },
      });
      expect(scenario.podflow.deps.config.ittybit.webhookVerification).toBe(mode);
      producer = await scenario.producer();
    });
    afterAll(() => scenario.stop());

    it("creates the media and four tasks as documented, follows their webhooks and finishes PROCESSED with every output", async () => {
      const episode = await uploadEpisode(scenario, producer, "The Happy Path");
      const tasks = await waitForTasks(scenario, episode.uuid);
      expect(tasks.map((task) => task.type).sort()).toEqual([
        "AUDIO_EXTRACTION",
        "CHAPTER_DETECTION",
        "TRANSCRIPT_GENERATION",
        "VIDEO_TRANSCODE",
      ]);
      const processing = await waitForStatus(scenario, episode.uuid, "PROCESSING");
      expect(processing.processing_started_at).not.toBeNull();

      const media = scenario.ittybit.requests.find(
        (request) =>
          request.method === "POST" &&
          request.path === "/media" &&
          JSON.stringify(request.body).includes(episode.uuid),
      );
      expect(media?.body).toMatchObject({
        title: "The Happy Path",
        metadata: { podflowEpisodeId: episode.uuid },
      });
      // Made once, and kept on the episode (saved with the first task) for later attempts.
      const mediaRequests = scenario.ittybit.requests.filter(
        (request) =>
          request.method === "POST" &&
          request.path === "/media" &&
          JSON.stringify(request.body).includes(episode.uuid),
      );
      expect(mediaRequests).toHaveLength(1);
      const [saved] = await scenario
        .em()
        .execute("select ittybit_media_id from episodes where id = ?", [episode.uuid]);
      expect(scenario.ittybit.media.has(saved?.ittybit_media_id)).toBe(true);
      // Ittybit is given the installation's secret webhook URL, the same for every task.
      const { token } = scenario.podflow.deps.webhook;
      expect(token).toMatch(/^[A-Za-z0-9_-]{43}$/);
      const webhookUrl = `${scenario.url}/webhooks/ittybit/${token}`;
      const created = tasks.map((task) => scenario.ittybit.tasks.get(task.engine_task_id)?.request);
      expect(created).toEqual(
        expect.arrayContaining([
          expect.objectContaining({
            kind: "audio",
            format: "mp3",
            bitrate: 192000,
            channels: 2,
            ref: "podcast_audio",
            file_id: episode.fileId,
            webhook_url: webhookUrl,
          }),
          expect.objectContaining({
            kind: "video",
            format: "mp4",
            codec: "h264",
            width: 1920,
            height: 1080,
            fps: 30,
            bitrate: 5000000,
            ref: "youtube_video",
            file_id: episode.fileId,
            webhook_url: webhookUrl,
          }),
          expect.objectContaining({
            kind: "speech",
            language: "en",
            ref: "transcript",
            file_id: episode.fileId,
            webhook_url: webhookUrl,
          }),
          expect.objectContaining({
            kind: "chapters",
            ref: "chapters",
            file_id: episode.fileId,
            webhook_url: webhookUrl,
          }),
        ]),
      );

      for (const task of tasks) {
        expect(
          (await report(scenario, task.engine_task_id, "processing", { progress: 40 })).body,
        ).toEqual({ status: "received" });
      }
      const midway = await producer.gql<{
        episode: { progress: number; tasks: Array<{ status: string; progress: number }> };
      }>(EPISODE_QUERY, { id: episode.id });
      expect(midway.body.data?.episode.progress).toBe(0);
      expect(
        midway.body.data?.episode.tasks.every(
          (task) => task.status === "PROCESSING" && task.progress === 40,
        ),
      ).toBe(true);

      scenario.ittybit.setOutputContent(
        scenario.ittybit.setTaskStatus(
          byType(tasks, "CHAPTER_DETECTION").engine_task_id,
          "completed",
        ).output?.id as string,
        "WEBVTT\n\n00:00:00.000 --> 00:01:00.200\nIntroduction\n\n00:01:00.200 --> 00:20:00.000\nThe interview\n",
        "text/vtt",
      );
      // The MP3's size for a feed's enclosure comes from a HEAD request to Ittybit's file URL.
      const mp3 = Buffer.alloc(12_345, 0xff);
      scenario.ittybit.setOutputContent(
        scenario.ittybit.setTaskStatus(
          byType(tasks, "AUDIO_EXTRACTION").engine_task_id,
          "completed",
        ).output?.id as string,
        mp3,
        "audio/mpeg",
      );
      for (const task of tasks) await report(scenario, task.engine_task_id, "completed");

      const processed = await waitForStatus(scenario, episode.uuid, "PROCESSED");
      expect(Number(processed.audio_bytes)).toBe(mp3.length);
      const { body } = await producer.gql<{
        episode: Record<string, unknown> & { tasks: Array<{ outputUrl: string }> };
      }>(EPISODE_QUERY, { id: episode.id });
      const finished = body.data?.episode;
      expect(finished).toMatchObject({
        status: "PROCESSED",
        progress: 100,
        failureReason: null,
        outputs: {
          transcriptAvailable: true,
          transcript: "Welcome to the show.\nThanks for having me.",
          chapters: [
            { start: 0, end: 60.2, title: "Introduction" },
            { start: 60.2, end: 1200, title: "The interview" },
          ],
        },
      });
      const outputs = finished?.outputs as {
        audioUrl: string;
        videoUrl: string;
        transcriptSegments: unknown[];
      };
      expect(outputs.audioUrl).toBe(
        scenario.ittybit.tasks.get(byType(tasks, "AUDIO_EXTRACTION").engine_task_id)?.task.output
          ?.url,
      );
      expect(outputs.videoUrl).toBe(
        scenario.ittybit.tasks.get(byType(tasks, "VIDEO_TRANSCODE").engine_task_id)?.task.output
          ?.url,
      );
      expect(outputs.transcriptSegments).toEqual([
        { start: 0, end: 2.5, text: "Welcome to the show.", speaker: "0" },
        expect.objectContaining({ text: "Thanks for having me.", speaker: "1" }),
      ]);
      expect(finished?.tasks.every((task) => task.outputUrl)).toBe(true);
      expect((await episodeRow(scenario, episode.uuid)).processing_completed_at).not.toBeNull();
      expect(await jobCount(scenario, "complete-episode", episode.uuid)).toBe(1);
    });

    it("reaches the same end with every delivery sent twice and the whole sequence shuffled, finishing once", async () => {
      const episode = await uploadEpisode(scenario, producer, "Shuffled");
      const tasks = await waitForTasks(scenario, episode.uuid);
      await waitForStatus(scenario, episode.uuid, "PROCESSING");
      const deliveries = tasks.flatMap((task) => [
        {
          taskId: task.engine_task_id,
          payload: scenario.ittybit.setTaskStatus(task.engine_task_id, "processing", {
            progress: 10,
          }),
        },
        {
          taskId: task.engine_task_id,
          payload: scenario.ittybit.setTaskStatus(task.engine_task_id, "processing", {
            progress: 70,
          }),
        },
        {
          taskId: task.engine_task_id,
          payload: scenario.ittybit.setTaskStatus(task.engine_task_id, "completed"),
        },
      ]);
      const answers: string[] = [];
      for (const delivery of shuffle(deliveries)) {
        const sent = await scenario.ittybit.deliverWebhook(delivery.taskId, {
          payload: delivery.payload,
          duplicate: true,
        });
        answers.push(
          ...sent.responses.map((response) => (response.body as { status: string }).status),
        );
      }
      if (mode === "signature") {
        // Each body is applied as it is: every delivery is stored once, its repeat is a duplicate.
        expect(answers.filter((answer) => answer === "duplicate")).toHaveLength(deliveries.length);
        expect(answers.filter((answer) => answer === "received")).toHaveLength(deliveries.length);
      } else {
        // Each body only makes Podflow ask Ittybit, which says "completed" by now: the first
        // delivery of each task applies that, every later one finds nothing new.
        expect(answers.every((answer) => answer === "received" || answer === "duplicate")).toBe(
          true,
        );
      }

      await waitForStatus(scenario, episode.uuid, "PROCESSED");
      const finalTasks = await waitForTasks(scenario, episode.uuid);
      for (const task of finalTasks) {
        expect(task).toMatchObject({ status: "COMPLETED", progress: 100 });
        expect(task.output_url).toBe(
          scenario.ittybit.tasks.get(task.engine_task_id)?.task.output?.url,
        );
      }
      expect(await jobCount(scenario, "complete-episode", episode.uuid)).toBe(1);
      const stored = await scenario
        .em()
        .execute("select count(*)::int as n from webhook_deliveries where ittybit_task_id in (?)", [
          finalTasks.map((task) => task.engine_task_id),
        ]);
      // Refetch stores each state of a task Ittybit told us once: one completion per task.
      expect(stored[0]?.n).toBe(mode === "signature" ? deliveries.length : finalTasks.length);
    });

    it("never moves a task back, nor lowers its progress", async () => {
      const episode = await uploadEpisode(scenario, producer, "Monotonic");
      const [task] = await waitForTasks(scenario, episode.uuid);
      const id = (task as TaskRow).engine_task_id;
      const early = scenario.ittybit.setTaskStatus(id, "processing", { progress: 20 });
      await report(scenario, id, "processing", { progress: 80 });
      const late = await scenario.ittybit.deliverWebhook(id, { payload: early });
      // A signed late body is received and found stale; in refetch mode Ittybit's answer is the
      // state already applied.
      expect(late.body).toEqual({ status: mode === "signature" ? "received" : "duplicate" });
      await report(scenario, id, "completed");
      await scenario.ittybit.deliverWebhook(id, {
        payload: { ...early, status: "pending", progress: 0 },
      });
      await scenario.ittybit.deliverWebhook(id, {
        payload: { ...early, status: "failed", error: "too late" },
      });
      const [after] = (await waitForTasks(scenario, episode.uuid)).filter(
        (row) => row.engine_task_id === id,
      );
      expect(after).toMatchObject({ status: "COMPLETED", progress: 100, error_message: null });
    });

    it("finishes exactly once when the last two tasks complete at the same moment, every time", async () => {
      for (let round = 0; round < 8; round += 1) {
        const episode = await uploadEpisode(scenario, producer, `Race ${round}`);
        const tasks = await waitForTasks(scenario, episode.uuid);
        await waitForStatus(scenario, episode.uuid, "PROCESSING");
        const [first, second, third, fourth] = tasks as [TaskRow, TaskRow, TaskRow, TaskRow];
        await report(scenario, first.engine_task_id, "completed");
        await report(scenario, second.engine_task_id, "completed");
        scenario.ittybit.setTaskStatus(third.engine_task_id, "completed");
        scenario.ittybit.setTaskStatus(fourth.engine_task_id, "completed");
        const answers = await Promise.all([
          scenario.ittybit.deliverWebhook(third.engine_task_id, { duplicate: true }),
          scenario.ittybit.deliverWebhook(fourth.engine_task_id, { duplicate: true }),
          scenario.ittybit.deliverWebhook(third.engine_task_id),
          scenario.ittybit.deliverWebhook(fourth.engine_task_id),
        ]);
        expect(answers.every((answer) => answer.status === 200)).toBe(true);
        await waitForStatus(scenario, episode.uuid, "PROCESSED");
        expect(await jobCount(scenario, "complete-episode", episode.uuid)).toBe(1);
      }
    });
  },
);
