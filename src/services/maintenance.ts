import type { AppDeps } from "../deps.ts";
import type { EpisodeStatus } from "../domain/episode-lifecycle.ts";
import { QUEUES } from "../jobs/queues.ts";
import type { Metrics } from "../metrics.ts";
import { changeEpisode, moveEpisode } from "./lifecycle.ts";

/**
 * Housekeeping of the worker role, run by scheduled jobs (src/jobs/maintenance.ts):
 * - old webhook deliveries leave the inbox, once nothing can need them;
 * - an episode left UPLOADED or PROCESSING with nothing moving fails, with the reason, so that no
 *   failure anywhere (a dead letter whose own handler failed, a task its engine lost) can leave
 *   it there for ever.
 */

type MaintenanceDeps = Pick<AppDeps, "orm" | "logger"> & {
  metrics?: Pick<Metrics, "webhookDeliveriesPruned" | "episodesSwept" | "taskTransitions">;
};

/** A task that has ended with its output (or failed, or was skipped): nothing can change it. */
const SETTLED_TASK = `(t.status in ('FAILED', 'SKIPPED') or (t.status = 'COMPLETED' and t.output_url is not null))`;

/**
 * Deletes webhook deliveries received more than `retentionDays` ago, `batchSize` rows per
 * statement (short transactions, no long lock), at most `maxBatches` per run (the next run goes
 * on). The inbox is what recognises a repeated delivery: a row is kept, however old, while its
 * task can still change, so a repeat of it is still known for what it is. Once the task has
 * settled, a repeat could change nothing anyway (tasks only move forward). Returns how many went.
 */
export async function pruneWebhookDeliveries(
  deps: MaintenanceDeps,
  options: { retentionDays: number; batchSize?: number; maxBatches?: number },
): Promise<number> {
  const batchSize = options.batchSize ?? 1_000;
  const maxBatches = options.maxBatches ?? 100;
  const cutoffSeconds = options.retentionDays * 86_400;
  let deleted = 0;
  for (let batch = 0; batch < maxBatches; batch += 1) {
    const rows = await deps.orm.em.fork().execute<Array<{ id: string }>>(
      `with doomed as (
         select d.id from webhook_deliveries d
          where d.received_at < now() - make_interval(secs => ?)
            and not exists (select 1 from processing_tasks t
                             where t.engine_task_id = d.ittybit_task_id and not ${SETTLED_TASK})
          order by d.received_at
          limit ?
          for update of d skip locked)
       delete from webhook_deliveries d using doomed where d.id = doomed.id
       returning d.id`,
      [cutoffSeconds, batchSize],
    );
    deleted += rows.length;
    if (rows.length < batchSize) break;
  }
  if (deleted > 0) {
    deps.metrics?.webhookDeliveriesPruned.inc(deleted);
    deps.logger.info(
      { deleted, retentionDays: options.retentionDays },
      "old webhook deliveries pruned",
    );
  }
  return deleted;
}

/** pg-boss's job table (its schema is BOSS_SCHEMA in src/jobs/boss.ts; services do not import jobs/). */
const JOB_TABLE = "pgboss.job";

/** The queues whose live jobs (waiting, retrying, running) are work still under way for an episode. */
const EPISODE_QUEUES = [
  QUEUES.processEpisode,
  QUEUES.completeEpisode,
  QUEUES.episodeDeadLetter,
  QUEUES.runLocalTask,
  QUEUES.localTaskDeadLetter,
  QUEUES.refetchIttybitTask,
]
  .map((name) => `'${name}'`)
  .join(", ");

interface StuckRow {
  id: string;
  status: EpisodeStatus;
  last_change: Date;
}

/** The last change of the episode or of any of its tasks, and whether a job still works for it. */
const EPISODE_ACTIVITY = `
  select greatest(e.updated_at, (select max(t.updated_at) from processing_tasks t where t.episode_id = e.id)) as last_change,
         exists (select 1 from ${JOB_TABLE} j
                  where j.name in (${EPISODE_QUEUES})
                    and j.state in ('created', 'retry', 'active')
                    and (j.data ->> 'episodeId' = e.id::text
                         or j.data ->> 'taskId' in (select t.id::text from processing_tasks t where t.episode_id = e.id)
                         or j.data ->> 'engineTaskId' in (select t.engine_task_id from processing_tasks t where t.episode_id = e.id))
                ) as job_alive
    from episodes e where e.id = ?`;

/**
 * Fails, through the lifecycle, each episode UPLOADED or PROCESSING whose last change — its own
 * or any of its tasks', progress included — is older than `stuckHours`, and for which no job is
 * waiting, retrying or running (a queue backed up behind a long encode is not stuck). Its tasks
 * that had not ended fail too, with the same reason, so `retryEpisode` starts them over. Checked
 * again under the episode's lock: a change that lands meanwhile wins. Returns the ids it failed.
 */
export async function sweepStuckEpisodes(
  deps: MaintenanceDeps,
  options: { stuckHours: number; limit?: number },
): Promise<string[]> {
  const cutoffSeconds = options.stuckHours * 3_600;
  const candidates = await deps.orm.em.fork().execute<StuckRow[]>(
    `select e.id, e.status,
            greatest(e.updated_at, max(t.updated_at)) as last_change
       from episodes e left join processing_tasks t on t.episode_id = e.id
      where e.status in ('UPLOADED', 'PROCESSING')
        and e.updated_at < now() - make_interval(secs => ?)
      group by e.id
     having greatest(e.updated_at, max(t.updated_at)) < now() - make_interval(secs => ?)
      order by last_change
      limit ?`,
    [cutoffSeconds, cutoffSeconds, options.limit ?? 100],
  );
  const failed: string[] = [];
  for (const candidate of candidates) {
    try {
      const reason = await changeEpisode(
        deps.orm.em.fork(),
        { id: candidate.id },
        async (episode, tx) => {
          if (episode.status !== "UPLOADED" && episode.status !== "PROCESSING") return null;
          // Task changes take the episode's lock first: what we read now stays true until commit.
          const [activity] = await tx.execute<Array<{ last_change: Date; job_alive: boolean }>>(
            EPISODE_ACTIVITY,
            [episode.id],
          );
          if (!activity || activity.job_alive) return null;
          const idleMs = Date.now() - new Date(activity.last_change).getTime();
          if (idleMs < cutoffSeconds * 1_000) return null;
          const reason = `Podflow gave up: the episode was ${episode.status} for ${formatHours(idleMs)} with no progress and no job working on it (PODFLOW_STUCK_EPISODE_HOURS is ${options.stuckHours}). Retry it to process it again.`;
          const from = episode.status;
          moveEpisode(episode, "FAILED", reason);
          // FAILED is written first, so failing its tasks queues no completion.
          await tx.flush();
          const unended = await tx.execute<Array<{ engine_task_id: string }>>(
            `select engine_task_id from processing_tasks t
              where t.episode_id = ? and t.status in ('PENDING', 'PROCESSING')`,
            [episode.id],
          );
          if (unended.length > 0) {
            // The one way a task changes (src/services/task-events.ts), in this transaction.
            const events = unended.map(({ engine_task_id }) => ({
              taskId: engine_task_id,
              status: "FAILED",
              progress: null,
              output: null,
              error: reason,
              rawStatus: "stuck",
              deliveryId: null,
              payload: null,
            }));
            const applied = await tx.execute<Array<{ task_type: string; moved_to: string | null }>>(
              "select * from podflow_apply_task_events(cast(? as jsonb))",
              [JSON.stringify(events)],
            );
            for (const row of applied) {
              if (row.moved_to)
                deps.metrics?.taskTransitions.inc({ type: row.task_type, to: row.moved_to });
            }
          }
          return { reason, from };
        },
      );
      if (!reason) continue;
      failed.push(candidate.id);
      deps.metrics?.episodesSwept.inc({ status: reason.from });
      deps.logger.warn(
        { episodeId: candidate.id, from: reason.from, reason: reason.reason },
        "stuck episode failed",
      );
    } catch (error) {
      // One episode must not hold up the others; the next run tries again.
      deps.logger.error({ err: error, episodeId: candidate.id }, "could not fail a stuck episode");
    }
  }
  return failed;
}

function formatHours(ms: number): string {
  const hours = ms / 3_600_000;
  if (hours < 1) return `${Math.max(1, Math.round(ms / 60_000))} minutes`;
  return `${hours.toFixed(1)} hours`;
}
