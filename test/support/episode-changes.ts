import { randomUUID } from "node:crypto";
import { encodeGlobalID } from "@pothos/plugin-relay";
import type { AppDeps } from "../../src/deps.ts";
import { TASK_TYPES, type TaskStatus, type TaskType } from "../../src/domain/tasks.ts";

/** An episode in PROCESSING with its four tasks, as if process-episode had run. */
export interface ProcessingEpisodeFixture {
  id: string;
  globalId: string;
  userId: string;
  tasks: Record<TaskType, { id: string; engineTaskId: string }>;
}

/** Inserts an episode in PROCESSING with four PENDING tasks, straight into the database. */
export async function insertProcessingEpisode(
  deps: Pick<AppDeps, "orm">,
  userId: string,
  title = "Episode under test",
): Promise<ProcessingEpisodeFixture> {
  const id = randomUUID();
  const tasks = Object.fromEntries(
    TASK_TYPES.map((type) => [
      type,
      { id: randomUUID(), engineTaskId: `task_${randomUUID().replaceAll("-", "")}` },
    ]),
  ) as ProcessingEpisodeFixture["tasks"];
  await deps.orm.em.fork().transactional(async (em) => {
    await em.execute(
      `insert into episodes (id, user_id, title, status, engine, processing_started_at, created_at, updated_at)
       values (?, ?, ?, 'PROCESSING', 'ittybit', now(), now(), now())`,
      [id, userId, title],
    );
    for (const type of TASK_TYPES) {
      await em.execute(
        `insert into processing_tasks (id, episode_id, type, attempt, engine_task_id, status, created_at, updated_at)
         values (?, ?, ?, 1, ?, 'PENDING', now(), now())`,
        [tasks[type].id, id, type, tasks[type].engineTaskId],
      );
    }
  });
  return { id, globalId: encodeGlobalID("Episode", id), userId, tasks };
}

export interface TaskChange {
  status?: TaskStatus;
  progress?: number | null;
  errorMessage?: string | null;
}

/**
 * Changes a task the way the pipeline does: in one transaction, with the episode row locked; the
 * database's trigger announces it, as it announces every writer's changes. With `rollback`, the
 * transaction is rolled back after the update (and its announcement) was made.
 */
export async function changeTask(
  deps: Pick<AppDeps, "orm">,
  episode: Pick<ProcessingEpisodeFixture, "id" | "userId">,
  taskId: string,
  change: TaskChange,
  options: { rollback?: boolean } = {},
): Promise<void> {
  const rolledBack = new Error("rolled back on purpose");
  try {
    await deps.orm.em.fork().transactional(async (em) => {
      await em.execute("select id from episodes where id = ? for update", [episode.id]);
      const sets: string[] = ["updated_at = clock_timestamp()"];
      const values: unknown[] = [];
      for (const [column, value] of [
        ["status", change.status],
        ["progress", change.progress],
        ["error_message", change.errorMessage],
      ] as const) {
        if (value === undefined) continue;
        sets.push(`${column} = ?`);
        values.push(value);
      }
      await em.execute(`update processing_tasks set ${sets.join(", ")} where id = ?`, [
        ...values,
        taskId,
      ]);
      if (options.rollback) throw rolledBack;
    });
  } catch (error) {
    if (error !== rolledBack) throw error;
  }
}

/** Changes the episode itself (status, failure reason, title); the trigger announces it. */
export async function changeEpisode(
  deps: Pick<AppDeps, "orm">,
  episode: Pick<ProcessingEpisodeFixture, "id" | "userId">,
  change: { status?: string; failureReason?: string | null; title?: string },
): Promise<void> {
  await deps.orm.em.fork().transactional(async (em) => {
    const sets: string[] = ["updated_at = clock_timestamp()"];
    const values: unknown[] = [];
    for (const [column, value] of [
      ["status", change.status],
      ["failure_reason", change.failureReason],
      ["title", change.title],
    ] as const) {
      if (value === undefined) continue;
      sets.push(`${column} = ?`);
      values.push(value);
    }
    await em.execute(`update episodes set ${sets.join(", ")} where id = ?`, [
      ...values,
      episode.id,
    ]);
  });
}

/**
 * Adds one to a task's progress with the episode row locked, as concurrent webhooks of one
 * episode are applied: however many run at once, the order they commit in is the order of the
 * progress values they write.
 */
export async function bumpTaskProgress(
  deps: Pick<AppDeps, "orm">,
  episode: Pick<ProcessingEpisodeFixture, "id" | "userId">,
  taskId: string,
): Promise<void> {
  await deps.orm.em.fork().transactional(async (em) => {
    await em.execute("select id from episodes where id = ? for update", [episode.id]);
    await em.execute(
      `update processing_tasks set status = 'PROCESSING', progress = coalesce(progress, 0) + 1,
       updated_at = clock_timestamp() where id = ?`,
      [taskId],
    );
  });
}
