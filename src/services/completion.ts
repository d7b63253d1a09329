import type { AppDeps } from "../deps.ts";
import { type TaskType, taskLabel } from "../domain/tasks.ts";
import { Episode } from "../entities/episode.entity.ts";
import type { ProcessingTask } from "../entities/processing-task.entity.ts";
import { type EpisodeOutputs, engineFor } from "./engines/engine.ts";
import { latestTasksByEpisode } from "./episodes.ts";
import { changeEpisode, moveEpisode } from "./lifecycle.ts";
import { OutputError } from "./outputs.ts";
import { failEpisode } from "./processing.ts";
import { completeWhenAllEnded, readyToComplete } from "./task-events.ts";

type CompletionDeps = Pick<AppDeps, "orm" | "logger" | "boss" | "engines">;

/**
 * The complete-episode job: gathers the outputs of an episode whose tasks have all ended and
 * finishes it — PROCESSED with its outputs, or FAILED naming the failed tasks. A no-op when the
 * episode has already ended; the status change happens under the episode's row lock and only
 * from PROCESSING, so the episode is finalized once however often the job runs.
 */
export async function completeEpisode(
  deps: CompletionDeps,
  episodeId: string,
  signal?: AbortSignal,
): Promise<void> {
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
    await failEpisode(deps, episodeId, `Processing failed — ${reasons.join("; ")}`);
    return;
  }

  const byType = (type: TaskType) => tasks.find((task) => task.type === type) as ProcessingTask;
  let outputs: EpisodeOutputs;
  try {
    outputs = await engineFor(deps.engines, episode.engine).readOutputs(
      {
        transcript: byType("TRANSCRIPT_GENERATION"),
        chapters: byType("CHAPTER_DETECTION"),
      },
      signal,
    );
  } catch (error) {
    if (error instanceof OutputError) {
      await failEpisode(deps, episodeId, `Processing finished, but ${error.message}`);
      return;
    }
    throw error;
  }

  const audio = byType("AUDIO_EXTRACTION");
  const audioFacts = await measureAudio(deps, episode, audio);
  const finished = await changeEpisode(em, { id: episodeId }, (locked) => {
    if (locked.status !== "PROCESSING") return false;
    const video = byType("VIDEO_TRANSCODE");
    locked.audioFileId = audio.outputFileId ?? null;
    locked.audioUrl = audio.outputUrl ?? null;
    locked.videoFileId = video.outputFileId ?? null;
    locked.videoUrl = video.outputUrl ?? null;
    locked.transcript = outputs.transcript?.text ?? null;
    locked.transcriptSegments = outputs.transcript?.segments ?? null;
    locked.chapters = outputs.chapters;
    locked.audioBytes = audioFacts?.bytes ?? null;
    locked.audioDurationSeconds = audioFacts?.durationSeconds ?? null;
    moveEpisode(locked, "PROCESSED");
    return true;
  });
  if (finished) logger.info("episode processed");
}

/**
 * The MP3's size and duration for a feed's enclosure. Not knowing them does not fail the
 * episode: publishEpisode measures again, and says why if it still cannot.
 */
async function measureAudio(deps: CompletionDeps, episode: Episode, audio: ProcessingTask) {
  try {
    return await engineFor(deps.engines, episode.engine).measureAudio({
      fileId: audio.outputFileId ?? null,
      url: audio.outputUrl ?? null,
    });
  } catch (error) {
    deps.logger.warn(
      { episodeId: episode.id, err: error },
      "the episode's MP3 could not be measured",
    );
    return null;
  }
}

/**
 * Queued too early (it should not happen; this keeps an episode from being stuck if it does):
 * clears this round's "completion queued" mark under the episode's lock, so the event that
 * finishes the tasks queues it again — or queues it now, if that event came in the meantime.
 */
async function requeueLater(deps: CompletionDeps, episodeId: string) {
  await changeEpisode(deps.orm.em.fork(), { id: episodeId }, async (episode, tx) => {
    if (episode.status !== "PROCESSING") return;
    episode.completionQueuedRound = episode.processingRound - 1;
    await tx.flush();
    await completeWhenAllEnded(deps, tx, episode);
  });
}
