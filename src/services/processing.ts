import { randomUUID } from "node:crypto";
import type { EntityManager } from "@mikro-orm/postgresql";
import type { AppDeps } from "../deps.ts";
import { canMoveEpisode } from "../domain/episode-lifecycle.ts";
import { TASK_TYPES } from "../domain/tasks.ts";
import { Episode } from "../entities/episode.entity.ts";
import { ProcessingTask } from "../entities/processing-task.entity.ts";
import type { User } from "../entities/user.entity.ts";
import { EngineRefusal, engineFor } from "./engines/engine.ts";
import { latestTasksByEpisode } from "./episodes.ts";
import { ConflictError, NotFoundError } from "./errors.ts";
import { enqueue } from "./job-queue.ts";
import { changeEpisode, moveEpisode } from "./lifecycle.ts";
import { lockProducer, recordRetry } from "./producer-limits.ts";
import { completeWhenAllEnded } from "./task-events.ts";

type ProcessingDeps = Pick<AppDeps, "orm" | "boss" | "logger" | "engines">;

/**
 * The process-episode job: creates at the episode's engine the tasks it lacks, each saved the
 * moment it exists, then moves the episode to PROCESSING. Engines answer a repeated
 * (episode, type, attempt) with the task they made the first time, so a crash or a retry at any
 * point never makes a second one. A refusal for good fails the episode with the engine's reason;
 * anything else is thrown for the job to be retried.
 */
export async function startProcessing(
  deps: ProcessingDeps,
  episodeId: string,
  signal?: AbortSignal,
): Promise<void> {
  const logger = deps.logger.child({ episodeId });
  const em = deps.orm.em.fork();
  // Both reads at once (neither needs the other): one round trip before the engine is asked.
  const [episode, tasks] = await Promise.all([
    em.findOne(Episode, { id: episodeId }),
    latestTasksByEpisode(em, [episodeId]),
  ]);
  if (!episode || !["UPLOADED", "PROCESSING"].includes(episode.status) || !episode.fileId) {
    logger.info({ status: episode?.status ?? "gone" }, "process-episode: nothing to do");
    return;
  }
  const engine = engineFor(deps.engines, episode.engine);
  try {
    const latest = tasks.get(episode.id) ?? [];
    for (const type of TASK_TYPES) {
      const current = latest.find((task) => task.type === type);
      // A failed task starts over only in a later round than the one that made it: a retry.
      const needed =
        !current || (current.status === "FAILED" && current.round < episode.processingRound);
      if (!needed) continue;
      const attempt = (current?.attempt ?? 0) + 1;
      const created = await engine.createTask(episode, type, attempt, signal);
      await em.transactional(async (tx) => {
        const task = tx.create(ProcessingTask, {
          id: randomUUID(),
          episode: episode.id,
          type,
          attempt,
          round: episode.processingRound,
          engineTaskId: created.engineTaskId,
          status: "PENDING",
          metadata: created.metadata,
        });
        await tx.flush();
        await engine.taskSaved?.(tx, task);
      });
      logger.info({ type, attempt, engineTaskId: created.engineTaskId }, "task created");
    }
  } catch (error) {
    if (error instanceof EngineRefusal) {
      await failEpisode(deps, episode.id, error.message);
      return;
    }
    throw error;
  }

  await changeEpisode(em, { id: episode.id }, async (locked, tx) => {
    if (locked.status === "UPLOADED") moveEpisode(locked, "PROCESSING");
    // Webhooks (or the local engine) may have ended every task before this moment.
    if (locked.status === "PROCESSING") await completeWhenAllEnded(deps, tx, locked);
  });
  logger.info("episode processing");
}

/**
 * Ends an episode as FAILED with a reason, if the lifecycle lets it fail from where it is.
 * Returns whether it did (a concurrent finish wins, and is not overwritten).
 */
export async function failEpisode(
  deps: Pick<AppDeps, "orm" | "logger">,
  episodeId: string,
  reason: string,
): Promise<boolean> {
  const failed = await changeEpisode(deps.orm.em.fork(), { id: episodeId }, (episode) => {
    if (!canMoveEpisode(episode.status, "FAILED")) return false;
    moveEpisode(episode, "FAILED", reason);
    return true;
  });
  if (failed) deps.logger.warn({ episodeId, reason }, "episode failed");
  return failed === true;
}

/**
 * `retryEpisode`: a FAILED episode goes back to PROCESSING in a new round; process-episode then
 * creates new attempts of its failed tasks only (completed outputs are kept) and of any task it
 * never managed to create. At most PODFLOW_MAX_RETRIES_PER_HOUR per producer (a RateLimitError).
 */
export async function retryEpisode(
  deps: Pick<AppDeps, "boss" | "config">,
  em: EntityManager,
  user: User,
  episodeId: string,
): Promise<Episode> {
  const episode = await changeEpisode(em, { id: episodeId, user: user.id }, async (locked, tx) => {
    if (locked.status !== "FAILED" || !locked.fileId) {
      throw new ConflictError(`Only a FAILED episode can be retried; this one is ${locked.status}`);
    }
    await lockProducer(tx, user.id);
    await recordRetry(tx, user.id, locked.id, deps.config.security.producers.maxRetriesPerHour);
    moveEpisode(locked, "PROCESSING");
    await enqueue(deps.boss, tx, "process-episode", { episodeId: locked.id });
    return locked;
  });
  if (!episode) throw new NotFoundError("No such episode");
  return episode;
}
