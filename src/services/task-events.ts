import type { EntityManager, PostgreSqlConnection } from "@mikro-orm/postgresql";
import type pg from "pg";
import type { AppDeps } from "../deps.ts";
import { clampProgress, isTaskEnded, TASK_TYPES, type TaskStatus } from "../domain/tasks.ts";
import type { Episode } from "../entities/episode.entity.ts";
import type { ProcessingTask } from "../entities/processing-task.entity.ts";
import type { Metrics } from "../metrics.ts";
import { type RequestContext, requestContext, runInRequest } from "../request-context.ts";
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

type TaskEventDeps = Pick<AppDeps, "orm" | "boss" | "logger"> & {
  /** Counts the status changes applied (podflow_task_transitions_total), when given. */
  metrics?: Pick<Metrics, "taskTransitions">;
};

/** One event to apply, and the webhook delivery it came in (null for the reconciler, the local engine). */
export interface TaskEventItem {
  event: TaskEvent;
  delivery: Delivery | null;
}

interface AppliedRow {
  ord: number;
  outcome: TaskEventOutcome;
  episode_id: string | null;
  queue_completion: boolean;
  /** The task's type, and the status it moved to (null: the status did not change). */
  task_type: string | null;
  moved_to: string | null;
}

/**
 * The one way a task's status changes: webhooks, the reconciler, the local engine and tests all
 * call it. In one transaction the database function `podflow_apply_task_events` (see its
 * migration) locks the episode and the task, moves the task forward only, records the delivery
 * in the inbox (a repeat changes nothing) and marks the episode's completion when this event left
 * nothing to wait for; complete-episode is queued in the same transaction. The database announces
 * the committed change to subscribers (see lifecycle.ts).
 */
export async function applyTaskEvent(
  deps: TaskEventDeps,
  event: TaskEvent,
  delivery: Delivery | null,
): Promise<TaskEventOutcome> {
  const [outcome] = await applyTaskEvents(deps, [{ event, delivery }]);
  return outcome as TaskEventOutcome;
}

/**
 * Applies several events in one transaction, in order, and answers once it has committed: each
 * outcome is exactly what applying the events one by one would have given (the database
 * function runs them in a loop). One round trip for events that end no task, else two whatever
 * the number of events, plus one per complete-episode job queued.
 */
export async function applyTaskEvents(
  deps: TaskEventDeps,
  items: readonly TaskEventItem[],
): Promise<TaskEventOutcome[]> {
  const events = items.map(({ event, delivery }) => ({
    taskId: event.taskId,
    status: event.status,
    progress: clampProgress(event.progress),
    output: event.output,
    error: event.error,
    rawStatus: event.rawStatus,
    deliveryId: delivery?.id ?? null,
    payload: delivery?.payload ?? null,
  }));
  const rows = await inTransaction(deps, events);
  const outcomes = new Array<TaskEventOutcome>(items.length);
  for (const row of rows) {
    outcomes[row.ord - 1] = row.outcome;
    if (row.moved_to) {
      deps.metrics?.taskTransitions.inc({ type: row.task_type ?? "unknown", to: row.moved_to });
    }
  }
  if (deps.logger.isLevelEnabled("debug")) {
    for (const row of rows) {
      const event = items[row.ord - 1]?.event;
      deps.logger.debug(
        {
          episodeId: row.episode_id,
          engineTaskId: event?.taskId,
          status: event?.status,
          outcome: row.outcome,
        },
        "task event",
      );
    }
  }
  return outcomes;
}

/**
 * The hot path's transaction, on a pooled connection of the ORM's pool without the ORM's unit of
 * work (nothing here is an entity). A batch of events that end no task is one autocommitted
 * statement (`podflow_apply_progress_events`). Otherwise BEGIN and the function call go in one
 * round trip (one simple query of two statements; the transaction stays open after it), then
 * COMMIT, with the complete-episode jobs the function asked for queued before it on the same
 * connection: two round trips when no completion is due. A failure rolls back (or drops the
 * connection).
 */
async function inTransaction(
  deps: TaskEventDeps,
  events: ReadonlyArray<{ status: TaskStatus }>,
): Promise<AppliedRow[]> {
  const pool = await (deps.orm.em.getConnection() as PostgreSqlConnection).getNativeClient();
  const json = JSON.stringify(events);
  if (events.every((event) => !isTaskEnded(event.status))) {
    // Events that end no task cannot mark a completion (the function refuses to if they ever
    // did): nothing to queue, so the call is its own transaction, one round trip.
    return (
      await pool.query<AppliedRow>("select * from podflow_apply_progress_events($1::jsonb)", [json])
    ).rows;
  }
  const client = await pool.connect();
  try {
    const results = (await client.query(
      `begin; select * from podflow_apply_task_events(${jsonLiteral(json)}::jsonb)`,
    )) as unknown as pg.QueryResult[];
    const applied = (results[1] as pg.QueryResult<AppliedRow>).rows;
    const db = { executeSql: (text: string, values?: unknown[]) => client.query(text, values) };
    for (const row of applied) {
      if (row.queue_completion && row.episode_id) {
        await enqueue(deps.boss, db, "complete-episode", { episodeId: row.episode_id });
      }
    }
    await client.query("commit");
    client.release();
    return applied;
  } catch (error) {
    // A connection whose state is unknown (rollback failed) is closed, not returned to the pool.
    await client.query("rollback").then(
      () => client.release(),
      (rollbackError: Error) => client.release(rollbackError),
    );
    throw error;
  }
}

/**
 * JSON text as an SQL string literal: an escape string, so that it means the same whatever
 * standard_conforming_strings says. What pg's escapeLiteral does, without its per-character loop
 * (JSON.stringify leaves no control character unescaped, so backslash and quote are all).
 */
function jsonLiteral(json: string): string {
  return `E'${json.replaceAll("\\", "\\\\").replaceAll("'", "''")}'`;
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

/** Applies events as they come, sharing commits between those that arrive together. */
export interface TaskEventCommitter {
  /** Resolves with the event's outcome once the transaction that applied it has committed. */
  apply(event: TaskEvent, delivery: Delivery | null): Promise<TaskEventOutcome>;
}

/**
 * Group commit for the webhook path. An event that finds the committer idle is applied at once,
 * alone (no added latency); events that arrive while `concurrency` transactions are committing
 * wait and then go together, up to `maxBatch` in one transaction (one function call, one commit).
 * Nobody is answered before the transaction holding their event has committed. If a batch fails,
 * its events are applied one by one, so one bad event fails only its own delivery.
 *
 * Two at once by default: a burst's consecutive deliveries are mostly one episode's tasks, so
 * more concurrent transactions mostly queue for each other's episode lock while each carries
 * fewer events (more commits, more PostgreSQL CPU per delivery: see bench/ scenario 1); two
 * rather than one, so that a transaction waiting for a lock held elsewhere does not hold up
 * every delivery.
 */
export function createTaskEventCommitter(
  deps: TaskEventDeps,
  options: { maxBatch?: number; concurrency?: number } = {},
): TaskEventCommitter {
  const maxBatch = options.maxBatch ?? 200;
  const concurrency = options.concurrency ?? 2;
  type Waiting = TaskEventItem & {
    resolve: (outcome: TaskEventOutcome) => void;
    reject: (error: unknown) => void;
    /** The request that brought the event (its log lines carry the request id). */
    context: RequestContext | undefined;
  };
  const waiting: Waiting[] = [];
  let running = 0;

  async function commit(batch: Waiting[]): Promise<void> {
    try {
      const outcomes = await applyTaskEvents(deps, batch);
      for (const [index, item] of batch.entries()) {
        item.resolve(outcomes[index] as TaskEventOutcome);
      }
    } catch (error) {
      if (batch.length === 1) {
        batch[0]?.reject(error);
        return;
      }
      deps.logger.warn(
        { err: error, events: batch.length },
        "a batch of task events failed; applying them one by one",
      );
      await Promise.all(
        batch.map((item) =>
          applyTaskEvents(deps, [item]).then(
            ([outcome]) => item.resolve(outcome as TaskEventOutcome),
            item.reject,
          ),
        ),
      );
    }
  }

  function pump(): void {
    while (running < concurrency && waiting.length > 0) {
      const batch = waiting.splice(0, maxBatch);
      running += 1;
      // A batch of one is its request's work; a shared batch belongs to no single request.
      const context = batch.length === 1 ? batch[0]?.context : undefined;
      void runInRequest(context, () =>
        commit(batch).finally(() => {
          running -= 1;
          pump();
        }),
      );
    }
  }

  return {
    apply: (event, delivery) =>
      new Promise<TaskEventOutcome>((resolve, reject) => {
        waiting.push({ event, delivery, resolve, reject, context: requestContext.getStore() });
        pump();
      }),
  };
}
