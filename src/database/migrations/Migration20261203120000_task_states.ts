import { Migration } from "@mikro-orm/migrations";

/**
 * A task's announcement carries the task's new state, so an instance whose subscribers follow
 * its episode can send it on without reading the episode back (src/services/episode-feed/).
 * Besides the ids, the payload has:
 * - `task`: the task's row as the feed's load shows it (the tuple of episodes.ts's
 *   LATEST_TASKS_JSON: id, type, status, progress, error, output URL, engine task id, attempt,
 *   updated_at in ms), as it is at this point of the transaction (a later change of the same row
 *   in the same transaction is announced after it);
 * - `txid`: the transaction's id, so that an instance can tell whether a state it loaded already
 *   holds this change (the transaction is visible in the load's snapshot) or not.
 * After a transaction's last change of a task, `{"txEnd": txid}` (a deferred constraint trigger,
 * so it fires at commit, after every row's own; PostgreSQL folds the identical payloads of one
 * transaction into the first): a transaction's announcements may reach an instance in two network
 * reads, and applying only the first part would show a state never committed.
 * A task whose tuple does not fit in a NOTIFY payload (a very long error) is announced by ids
 * only, as episode changes are: those are read back. Publications keep the ids-only
 * `podflow_announce_task_change` (their rows are no tasks).
 */
export class Migration20261203120000_task_states extends Migration {
  override name = "Migration20261203120000_task_states";

  override up(): void | Promise<void> {
    this.addSql(`create or replace function podflow_announce_task_state() returns trigger
      language plpgsql as $$
      declare
        owner uuid;
        payload text;
      begin
        select e.user_id into owner from episodes e where e.id = new.episode_id;
        payload := json_build_object('episodeId', new.episode_id, 'userId', owner,
          'txid', pg_current_xact_id()::text,
          'task', array_to_json(array[new.id::text, new.type::text, new.status::text,
            new.progress::text, new.error_message, new.output_url, new.engine_task_id,
            new.attempt::text, floor(extract(epoch from new.updated_at) * 1000)::int8::text]))::text;
        if octet_length(payload) > 7900 then
          payload := json_build_object('episodeId', new.episode_id, 'userId', owner)::text;
        end if;
        perform pg_notify('podflow_episode_changes', payload);
        return null;
      end $$;`);
    for (const sql of announceTasksWith("podflow_announce_task_state")) this.addSql(sql);
    this.addSql(`create or replace function podflow_announce_transaction_end() returns trigger
      language plpgsql as $$
      begin
        perform pg_notify('podflow_episode_changes',
          json_build_object('txEnd', pg_current_xact_id()::text)::text);
        return null;
      end $$;`);
    this.addSql(`create constraint trigger processing_tasks_announce_end
      after insert or update on "processing_tasks" deferrable initially deferred
      for each row execute function podflow_announce_transaction_end();`);
  }

  override down(): void | Promise<void> {
    this.addSql(`drop trigger processing_tasks_announce_end on "processing_tasks";`);
    this.addSql("drop function podflow_announce_transaction_end();");
    for (const sql of announceTasksWith("podflow_announce_task_change")) this.addSql(sql);
    this.addSql("drop function podflow_announce_task_state();");
  }
}

/** The task table's two announcing triggers (those of the lifecycle migration), calling `fn`. */
function announceTasksWith(fn: string): string[] {
  return [
    ["insert", ""],
    ["update", " when (old is distinct from new)"],
  ].flatMap(([op, when]) => [
    `drop trigger processing_tasks_announce_${op} on "processing_tasks";`,
    `create trigger processing_tasks_announce_${op} after ${op} on "processing_tasks"
      for each row${when} execute function ${fn}();`,
  ]);
}
