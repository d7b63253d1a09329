import { LockMode } from "@mikro-orm/core";
import type { EntityManager } from "@mikro-orm/postgresql";
import type { AppDeps } from "../deps.ts";
import { clampProgress, isTaskEnded, movesForward, TASK_TYPES } from "../domain/tasks.ts";
import type { Episode } from "../entities/episode.entity.ts";
import { ProcessingTask } from "../entities/processing-task.entity.ts";
import { latestTasksByEpisode } from "./episodes.ts";
import type { TaskEvent } from "./ittybit/index.ts";
import { enqueue } from "./job-queue.ts";

/**
 * What became of a task event:
 * - `applied`: it moved the task forward (status, progress, output or error);
 * - `stale`: it said nothing new (a late, repeated or backward event);
 * - `duplicate`: this delivery was applied before;
 * - `ignored`: no task of ours has that id.
 */
export type TaskEventOutcome = "applied" | "stale" | "duplicate" | "ignored";

/** A webhook delivery, for the inbox that makes deliveries idempotent. */
export interface Delivery {
  id: string;
  payload: unknown;
}

type TaskEventDeps = Pick<AppDeps, "orm" | "boss" | "logger">;

/**
 * The one way a task's status changes: webhooks, the reconciler, the local engine and tests all
 * call it. In one transaction it records the delivery (a repeat changes nothing), locks the
 * episode, moves the task forward only, and queues complete-episode when this event left nothing
 * to wait for. The database announces the committed change to subscribers (see lifecycle.ts).
 */
export async function applyTaskEvent(
  deps: TaskEventDeps,
  event: TaskEvent,
  delivery: Delivery | null,
): Promise<TaskEventOutcome> {
  const result = await deps.orm.em.fork().transactional(
    async (
      em,
    ): Promise<{
      outcome: TaskEventOutcome;
      episodeId: string | null;
    }> => {
      // One statement finds the task, locks its episode and the task, and loads both as they are
      // once the locks are ours: every change of an episode's tasks happens under that lock.
      const task = await em.findOne(
        ProcessingTask,
        { engineTaskId: event.taskId },
        {
          populate: ["episode"],
          strategy: "joined",
          lockMode: LockMode.PESSIMISTIC_WRITE,
          lockTableAliases: ["e1", "p0"],
        },
      );
      if (!task) return { outcome: "ignored", episodeId: null };
      const episode = task.episode;
      const changed = advance(task, event);
      if (changed) {
        await em.flush();
        // An end, or the output of an ended task, may be the last thing the episode waited for.
        if (isTaskEnded(task.status)) await completeWhenAllEnded(deps, em, episode);
      }
      const outcome: "applied" | "stale" = changed ? "applied" : "stale";
      if (delivery && !(await recordDelivery(em, delivery, event.taskId, outcome))) {
        // Seen before: the first time applied it, so this time it found nothing to change.
        if (changed)
          throw new Error(
            `delivery ${delivery.id} was recorded by a transaction that did not apply it`,
          );
        return { outcome: "duplicate", episodeId: episode.id };
      }
      return { outcome, episodeId: episode.id };
    },
  );
  deps.logger.debug(
    {
      episodeId: result.episodeId,
      engineTaskId: event.taskId,
      status: event.status,
      outcome: result.outcome,
    },
    "task event",
  );
  return result.outcome;
}

/**
 * Records the delivery in the inbox, after applying it and in the same transaction; false when
 * the inbox has it already. A repeat of an applied delivery is always stale (transitions only
 * move forward), so finding it here changes nothing.
 */
async function recordDelivery(
  em: EntityManager,
  delivery: Delivery,
  engineTaskId: string,
  outcome: "applied" | "stale",
): Promise<boolean> {
  const inserted = await em.execute(
    `insert into webhook_deliveries (id, ittybit_task_id, received_at, payload, outcome)
     values (?, ?, now(), ?, ?) on conflict (id) do nothing returning id`,
    [delivery.id, engineTaskId, JSON.stringify(delivery.payload), outcome],
  );
  return inserted.length > 0;
}

/**
 * Moves the task forward by what the event says, never back: status by rank, progress only up,
 * output with a completion, error with a failure. True when anything changed.
 */
function advance(task: ProcessingTask, event: TaskEvent): boolean {
  let changed = false;
  if (movesForward(task.status, event.status)) {
    task.status = event.status;
    changed = true;
    if (event.status === "COMPLETED") task.progress = 100;
    if (event.status === "FAILED" || event.status === "SKIPPED") {
      task.errorMessage = event.error ?? `the engine reported the task ${event.rawStatus}`;
    }
  }
  const progress = clampProgress(event.progress);
  if (
    progress != null &&
    !isTaskEnded(task.status) &&
    (task.progress == null || progress > task.progress)
  ) {
    task.progress = progress;
    changed = true;
  }
  // A completion may come first without its output and again with it.
  if (task.status === "COMPLETED" && event.status === "COMPLETED" && event.output) {
    if (!task.outputFileId && event.output.fileId) {
      task.outputFileId = event.output.fileId;
      changed = true;
    }
    if (!task.outputUrl && event.output.url) {
      task.outputUrl = event.output.url;
      changed = true;
    }
    if (changed && (event.output.kind || event.output.type)) {
      task.metadata = {
        ...task.metadata,
        outputKind: event.output.kind,
        outputType: event.output.type,
      };
    }
  }
  return changed;
}

/**
 * Whether the episode's tasks are all done for this round: every task type's latest attempt has
 * ended, none is a failure still waiting to be re-created by a retry (an earlier round's), and
 * every completed one has reported its output (a completion may come before its output). A
 * skipped task is done: the episode finishes without that output.
 */
export function readyToComplete(episode: Episode, tasks: readonly ProcessingTask[]): boolean {
  return (
    tasks.length === TASK_TYPES.length &&
    tasks.every(
      (task) =>
        (task.status === "COMPLETED" && task.outputUrl != null) ||
        task.status === "SKIPPED" ||
        (task.status === "FAILED" && task.round >= episode.processingRound),
    )
  );
}

/**
 * Queues complete-episode when the episode's tasks are ready to complete — once per processing
 * round, whoever gets here first: an event that ended a task or brought its output, or
 * processing start finding them all ended already. The caller holds the episode's row lock, so
 * the check and the mark are atomic.
 */
export async function completeWhenAllEnded(
  deps: Pick<AppDeps, "boss">,
  em: EntityManager,
  episode: Episode,
): Promise<boolean> {
  if (episode.status !== "PROCESSING") return false;
  if (episode.completionQueuedRound >= episode.processingRound) return false;
  const tasks = (await latestTasksByEpisode(em, [episode.id])).get(episode.id) ?? [];
  if (!readyToComplete(episode, tasks)) return false;
  episode.completionQueuedRound = episode.processingRound;
  await em.flush();
  await enqueue(deps.boss, em, "complete-episode", { episodeId: episode.id });
  return true;
}
