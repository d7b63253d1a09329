import { randomUUID } from "node:crypto";
import { LockMode } from "@mikro-orm/core";
import type { EntityManager } from "@mikro-orm/postgresql";
import type { AppDeps } from "../deps.ts";
import { Episode } from "../entities/episode.entity.ts";
import { ProcessingTask, TASK_TYPES, type TaskType } from "../entities/processing-task.entity.ts";
import type { User } from "../entities/user.entity.ts";
import { latestTasksByEpisode } from "./episodes.ts";
import { ConflictError, NotFoundError } from "./errors.ts";
import { type IttybitClient, IttybitError } from "./ittybit/index.ts";
import { enqueue } from "./job-queue.ts";
import { completeWhenAllEnded } from "./task-events.ts";

type ProcessingDeps = Pick<AppDeps, "orm" | "boss" | "pubsub" | "logger"> & {
  ittybit: IttybitClient;
};

/** How a task type is asked of Ittybit (the client's builders carry the documented defaults). */
const TASK_REQUEST: Record<
  TaskType,
  (ittybit: IttybitClient, fileId: string) => ReturnType<IttybitClient["audioTask"]>
> = {
  AUDIO_EXTRACTION: (ittybit, fileId) => ittybit.audioTask(fileId),
  VIDEO_TRANSCODE: (ittybit, fileId) => ittybit.videoTask(fileId),
  TRANSCRIPT_GENERATION: (ittybit, fileId) => ittybit.transcriptTask(fileId),
  CHAPTER_DETECTION: (ittybit, fileId) => ittybit.chaptersTask(fileId),
};

const TASK_LABEL: Record<TaskType, string> = {
  AUDIO_EXTRACTION: "audio extraction",
  VIDEO_TRANSCODE: "video transcode",
  TRANSCRIPT_GENERATION: "transcript generation",
  CHAPTER_DETECTION: "chapter detection",
};

export function taskLabel(type: TaskType): string {
  return TASK_LABEL[type];
}

/**
 * The process-episode job: creates the episode's media and the tasks it lacks at Ittybit, each
 * saved the moment it exists, then marks the episode PROCESSING. Every request carries an
 * idempotency key derived from what it creates, so a crash or a retry at any point sends the
 * same keys again and Ittybit answers with what it already made: never a second media or task.
 * A permanent refusal fails the episode with Ittybit's reason; anything else is thrown for the
 * job to be retried.
 */
export async function startProcessing(deps: ProcessingDeps, episodeId: string): Promise<void> {
  const logger = deps.logger.child({ episodeId });
  const em = deps.orm.em.fork();
  const episode = await em.findOne(Episode, { id: episodeId }, { populate: ["user"] });
  if (!episode || !["UPLOADED", "PROCESSING"].includes(episode.status) || !episode.ittybitFileId) {
    logger.info({ status: episode?.status ?? "gone" }, "process-episode: nothing to do");
    return;
  }
  const fileId = episode.ittybitFileId;
  try {
    if (!episode.ittybitMediaId) {
      const media = await deps.ittybit.createMedia(
        {
          title: episode.title,
          metadata: { podflowEpisodeId: episode.id, description: episode.description ?? null },
        },
        { idempotencyKey: `podflow:media:${episode.id}` },
      );
      episode.ittybitMediaId = media.id;
      await em.flush();
      logger.info({ ittybitMediaId: media.id }, "Ittybit media created");
    }
    const latest = (await latestTasksByEpisode(em, [episode.id])).get(episode.id) ?? [];
    for (const type of TASK_TYPES) {
      const current = latest.find((task) => task.type === type);
      // A failed task starts over only in a later round than the one that made it: a retry.
      const needed =
        !current || (current.status === "FAILED" && current.round < episode.processingRound);
      if (!needed) continue;
      const attempt = (current?.attempt ?? 0) + 1;
      const request = TASK_REQUEST[type](deps.ittybit, fileId);
      const created = await deps.ittybit.createTask(request, {
        idempotencyKey: `podflow:task:${episode.id}:${type}:${attempt}`,
      });
      // Saved the moment it exists, and announced by the same transaction.
      await em.transactional(async (tx) => {
        const task = tx.create(ProcessingTask, {
          id: randomUUID(),
          episode: episode.id,
          type,
          attempt,
          round: episode.processingRound,
          ittybitTaskId: created.id,
          status: "PENDING",
          metadata: { ref: request.ref ?? null, kind: request.kind },
        });
        await tx.flush();
        await deps.pubsub.publish(tx, {
          episodeId: episode.id,
          userId: episode.user.id,
          taskId: task.id,
        });
      });
      logger.info({ type, attempt, ittybitTaskId: created.id }, "Ittybit task created");
    }
  } catch (error) {
    if (error instanceof IttybitError && !error.retryable) {
      const reason = `Ittybit refused to start processing: ${error.ittybitMessage ?? error.message}${error.status ? ` (HTTP ${error.status})` : ""}`;
      await failEpisode(deps, episode.id, reason, ["UPLOADED", "PROCESSING"]);
      return;
    }
    throw error;
  }

  await em.transactional(async (tx) => {
    const locked = await tx.findOneOrFail(
      Episode,
      { id: episode.id },
      { lockMode: LockMode.PESSIMISTIC_WRITE, refresh: true, populate: ["user"] },
    );
    if (!["UPLOADED", "PROCESSING"].includes(locked.status)) return;
    if (locked.status !== "PROCESSING") {
      locked.status = "PROCESSING";
      locked.processingStartedAt ??= new Date();
      await tx.flush();
      await deps.pubsub.publish(tx, { episodeId: locked.id, userId: locked.user.id, taskId: null });
    }
    // Webhooks may have ended every task before this moment.
    await completeWhenAllEnded(deps, tx, locked);
  });
  logger.info("episode processing");
}

/**
 * Ends an episode as FAILED with a reason, if it is still in one of `from`. Returns whether it
 * did (a concurrent finish wins, and is not overwritten).
 */
export async function failEpisode(
  deps: Pick<AppDeps, "orm" | "pubsub" | "logger">,
  episodeId: string,
  reason: string,
  from: readonly Episode["status"][],
): Promise<boolean> {
  const failed = await deps.orm.em.fork().transactional(async (em) => {
    const episode = await em.findOne(
      Episode,
      { id: episodeId },
      { lockMode: LockMode.PESSIMISTIC_WRITE, populate: ["user"] },
    );
    if (!episode || !from.includes(episode.status)) return false;
    episode.status = "FAILED";
    episode.failureReason = reason;
    episode.processingCompletedAt = new Date();
    await em.flush();
    await deps.pubsub.publish(em, { episodeId, userId: episode.user.id, taskId: null });
    return true;
  });
  if (failed) deps.logger.warn({ episodeId, reason }, "episode failed");
  return failed;
}

/**
 * `retryEpisode`: a FAILED episode goes back to PROCESSING in a new round; process-episode then
 * creates new attempts of its failed tasks only (completed outputs are kept) and of any task it
 * never managed to create.
 */
export async function retryEpisode(
  deps: Pick<AppDeps, "boss" | "pubsub">,
  em: EntityManager,
  user: User,
  episodeId: string,
): Promise<Episode> {
  return em.transactional(async (tx) => {
    const episode = await tx.findOne(
      Episode,
      { id: episodeId, user: user.id },
      { lockMode: LockMode.PESSIMISTIC_WRITE },
    );
    if (!episode) throw new NotFoundError("No such episode");
    if (episode.status !== "FAILED" || !episode.ittybitFileId) {
      throw new ConflictError(
        `Only a FAILED episode can be retried; this one is ${episode.status}`,
      );
    }
    episode.status = "PROCESSING";
    episode.processingRound += 1;
    episode.failureReason = null;
    episode.processingCompletedAt = null;
    await tx.flush();
    await enqueue(deps.boss, tx, "process-episode", { episodeId: episode.id });
    await deps.pubsub.publish(tx, { episodeId: episode.id, userId: user.id, taskId: null });
    return episode;
  });
}
