import { Migration } from "@mikro-orm/migrations";

/**
 * `podflow_apply_progress_events(events jsonb)`: `podflow_apply_task_events` for a batch of
 * events that end no task (PENDING, PROCESSING), run as one autocommitted statement (one round
 * trip) by the webhook path. Such events never mark an episode's completion (only a task's end
 * or its output can); should one ever do so, the statement fails and nothing is committed, since
 * a completion mark must commit together with its complete-episode job.
 */
export class Migration20261202160000_progress_events extends Migration {
  override name = "Migration20261202160000_progress_events";

  override up(): void | Promise<void> {
    this.addSql(`create or replace function podflow_apply_progress_events(events jsonb)
      returns table (ord int, outcome text, episode_id uuid, queue_completion boolean,
                     task_type text, moved_to text)
      language plpgsql as $$
      declare
        r record;
      begin
        for r in select * from podflow_apply_task_events(events) a loop
          if r.queue_completion then
            raise exception 'event % marked its episode''s completion; that needs the job queued in the same transaction',
              r.ord;
          end if;
          ord := r.ord;
          outcome := r.outcome;
          episode_id := r.episode_id;
          queue_completion := false;
          task_type := r.task_type;
          moved_to := r.moved_to;
          return next;
        end loop;
      end $$;`);
  }

  override down(): void | Promise<void> {
    this.addSql("drop function if exists podflow_apply_progress_events(jsonb);");
  }
}
