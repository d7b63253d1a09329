import type { AppDeps } from "../deps.ts";
import type { IttybitClient } from "./ittybit/index.ts";
import { fetchTaskState } from "./ittybit-refetch.ts";
import { applyTaskEvent } from "./task-events.ts";

/** Tasks asked about per run, so one run stays short however many went quiet. */
const BATCH_SIZE = 100;

/**
 * The reconcile-tasks job: asks Ittybit about tasks of PROCESSING episodes that have not ended
 * (or completed without their output) and have not changed for `quietSeconds`, and applies what
 * it says through the same path as a webhook. A missed webhook costs minutes, never a stuck
 * episode. The batch is drawn at random, so tasks that stay quiet for long cannot crowd out the
 * rest. A task Ittybit no longer knows fails, with that reason. Returns how many moved forward.
 */
export async function reconcileTasks(
  deps: Pick<AppDeps, "orm" | "boss" | "logger"> & { ittybit: IttybitClient },
  quietSeconds: number,
): Promise<number> {
  const quiet = (await deps.orm.em.fork().execute(
    `select t.engine_task_id, t.episode_id from processing_tasks t
       join episodes e on e.id = t.episode_id
      where e.status = 'PROCESSING' and e.engine = 'ittybit'
        and (t.status in ('PENDING', 'PROCESSING') or (t.status = 'COMPLETED' and t.output_url is null))
        and t.updated_at < now() - make_interval(secs => ?)
      order by random() limit ?`,
    [quietSeconds, BATCH_SIZE],
  )) as Array<{ engine_task_id: string; episode_id: string }>;
  let advanced = 0;
  for (const task of quiet) {
    try {
      const { event } = await fetchTaskState(deps.ittybit, task.engine_task_id);
      if ((await applyTaskEvent(deps, event, null)) === "applied") advanced += 1;
    } catch (error) {
      // One task Ittybit cannot answer for now must not hold up the others; the next run retries.
      deps.logger.warn(
        { err: error, episodeId: task.episode_id, engineTaskId: task.engine_task_id },
        "could not reconcile a task",
      );
    }
  }
  if (quiet.length > 0) deps.logger.info({ asked: quiet.length, advanced }, "tasks reconciled");
  return advanced;
}
