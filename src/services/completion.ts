import { LockMode } from "@mikro-orm/core";
import type { AppDeps } from "../deps.ts";
import { Episode } from "../entities/episode.entity.ts";
import type { ProcessingTask, TaskType } from "../entities/processing-task.entity.ts";
import { latestTasksByEpisode } from "./episodes.ts";
import { OutputError, parseChapters, parseTranscript } from "./outputs.ts";
import { failEpisode, taskLabel } from "./processing.ts";
import { completeWhenAllEnded, readyToComplete } from "./task-events.ts";

type CompletionDeps = Pick<AppDeps, "orm" | "pubsub" | "logger" | "outputs" | "boss">;

/**
 * The complete-episode job: gathers the outputs of an episode whose tasks have all ended and
 * finishes it — PROCESSED with its outputs, or FAILED naming the failed tasks. A no-op when the
 * episode has already ended; the status change happens under the episode's row lock and only
 * from PROCESSING, so the episode is finalized once however often the job runs.
 */
export async function completeEpisode(deps: CompletionDeps, episodeId: string): Promise<void> {
  const logger = deps.logger.child({ episodeId });
  const em = deps.orm.em.fork();
  const episode = await em.findOne(Episode, { id: episodeId });
  if (episode?.status !== "PROCESSING") {
    logger.info({ status: episode?.status ?? "gone" }, "complete-episode: nothing to do");
    return;
  }
  const tasks = (await latestTasksByEpisode(em, [episodeId])).get(episodeId) ?? [];
  if (!readyToComplete(episode, tasks)) {
    await requeueLater(deps, episodeId);
    logger.warn("complete-episode: tasks are not done yet; their last event will queue it again");
    return;
  }

  const failed = tasks.filter((task) => task.status === "FAILED");
  if (failed.length > 0) {
    const reasons = failed.map(
      (task) => `${taskLabel(task.type)}: ${task.errorMessage ?? "failed without a reason"}`,
    );
    await failEpisode(deps, episodeId, `Processing failed — ${reasons.join("; ")}`, ["PROCESSING"]);
    return;
  }

  const byType = (type: TaskType) => tasks.find((task) => task.type === type) as ProcessingTask;
  let transcript: ReturnType<typeof parseTranscript>;
  let chapters: ReturnType<typeof parseChapters>;
  try {
    const transcriptFile = await deps.outputs.fetch(
      outputUrl(byType("TRANSCRIPT_GENERATION")),
      "transcript",
    );
    transcript = parseTranscript(transcriptFile.body);
    const chaptersFile = await deps.outputs.fetch(
      outputUrl(byType("CHAPTER_DETECTION")),
      "chapters file",
    );
    chapters = parseChapters(chaptersFile.body, chaptersFile.contentType);
  } catch (error) {
    if (error instanceof OutputError) {
      await failEpisode(deps, episodeId, `Processing finished, but ${error.message}`, [
        "PROCESSING",
      ]);
      return;
    }
    throw error;
  }

  const finished = await em.transactional(async (tx) => {
    const locked = await tx.findOneOrFail(
      Episode,
      { id: episodeId },
      { lockMode: LockMode.PESSIMISTIC_WRITE, refresh: true, populate: ["user"] },
    );
    if (locked.status !== "PROCESSING") return false;
    const audio = byType("AUDIO_EXTRACTION");
    const video = byType("VIDEO_TRANSCODE");
    locked.audioFileId = audio.outputFileId ?? null;
    locked.audioUrl = audio.outputUrl ?? null;
    locked.videoFileId = video.outputFileId ?? null;
    locked.videoUrl = video.outputUrl ?? null;
    locked.transcript = transcript.text;
    locked.transcriptSegments = transcript.segments;
    locked.chapters = chapters;
    locked.status = "PROCESSED";
    locked.processingCompletedAt = new Date();
    await tx.flush();
    await deps.pubsub.publish(tx, { episodeId, userId: locked.user.id, taskId: null });
    return true;
  });
  if (finished) logger.info("episode processed");
}

/**
 * Queued too early (it should not happen; this keeps an episode from being stuck if it does):
 * clears this round's "completion queued" mark under the episode's lock, so the event that
 * finishes the tasks queues it again — or queues it now, if that event came in the meantime.
 */
async function requeueLater(deps: CompletionDeps, episodeId: string) {
  await deps.orm.em.fork().transactional(async (em) => {
    const episode = await em.findOneOrFail(
      Episode,
      { id: episodeId },
      { lockMode: LockMode.PESSIMISTIC_WRITE, refresh: true },
    );
    if (episode.status !== "PROCESSING") return;
    episode.completionQueuedRound = episode.processingRound - 1;
    await em.flush();
    await completeWhenAllEnded(deps, em, episode);
  });
}

function outputUrl(task: ProcessingTask): string {
  if (!task.outputUrl) {
    throw new OutputError(`Ittybit reported no output for ${taskLabel(task.type)}`);
  }
  return task.outputUrl;
}
