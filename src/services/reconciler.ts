import type { AppDeps } from "../deps.ts";
import { ProcessingTask } from "../entities/processing-task.entity.ts";
import { type IttybitClient, normalizeTaskPayload } from "./ittybit/index.ts";
import { applyTaskEvent } from "./task-events.ts";

/** Tasks asked about per run, so one run stays short however many went quiet. */
const BATCH_SIZE = 100;

/**
 * The reconcile-tasks job: asks Ittybit about tasks that have not ended and have not changed
 * for `quietSeconds`, and applies what it says through the same path as a webhook. A missed
 * webhook costs minutes, never a stuck episode. Returns how many tasks moved forward.
 */
export async function reconcileTasks(
  deps: Pick<AppDeps, "orm" | "boss" | "pubsub" | "logger"> & { ittybit: IttybitClient },
  quietSeconds: number,
): Promise<number> {
  const quiet = await deps.orm.em.fork().find(
    ProcessingTask,
    {
      status: { $in: ["PENDING", "PROCESSING"] },
      updatedAt: { $lt: new Date(Date.now() - quietSeconds * 1000) },
      episode: { status: "PROCESSING" },
    },
    {
      orderBy: { updatedAt: "asc" },
      limit: BATCH_SIZE,
      fields: ["id", "ittybitTaskId", "episode"],
    },
  );
  let advanced = 0;
  for (const task of quiet) {
    try {
      const event = normalizeTaskPayload(await deps.ittybit.getTask(task.ittybitTaskId));
      if ((await applyTaskEvent(deps, event, null)) === "applied") advanced += 1;
    } catch (error) {
      // One task Ittybit cannot answer for must not hold up the others; the next run retries.
      deps.logger.warn(
        { err: error, episodeId: task.episode.id, ittybitTaskId: task.ittybitTaskId },
        "could not reconcile a task",
      );
    }
  }
  if (quiet.length > 0) deps.logger.info({ asked: quiet.length, advanced }, "tasks reconciled");
  return advanced;
}
