import { Migration } from "@mikro-orm/migrations";

/**
 * The episode lifecycle's database side:
 * - ids at the episode's engine lose their Ittybit names (`file_id`, `engine_task_id`), and each
 *   episode records its engine (every episode so far was processed by Ittybit);
 * - a task may end SKIPPED;
 * - every committed change of an episode or a task is announced by a trigger, on the channel
 *   the instances LISTEN on, with the ids subscribers need. A trigger fires for every writer
 *   (services, jobs, a migration, an operator's UPDATE), and NOTIFY is delivered only on commit,
 *   in commit order — so nothing has to remember to announce, and a rollback announces nothing.
 */
export class Migration20261201150000_lifecycle extends Migration {
  override name = "Migration20261201150000_lifecycle";

  override up(): void | Promise<void> {
    this.addSql(`alter table "episodes" rename column "ittybit_file_id" to "file_id";`);
    this.addSql(`alter table "episodes" add "engine" text not null default 'ittybit';`);
    this.addSql(`alter table "episodes" alter column "engine" drop default;`);
    this.addSql(
      `alter table "episodes" add constraint "episodes_engine_check" check ("engine" in ('ittybit', 'local'));`,
    );
    this.addSql(
      `alter table "processing_tasks" rename column "ittybit_task_id" to "engine_task_id";`,
    );
    this.addSql(
      `alter table "processing_tasks" rename constraint "processing_tasks_ittybit_task_id_unique" to "processing_tasks_engine_task_id_unique";`,
    );
    this.addSql(`alter table "processing_tasks" drop constraint "processing_tasks_status_check";`);
    this.addSql(
      `alter table "processing_tasks" add constraint "processing_tasks_status_check" check ("status" in ('PENDING', 'PROCESSING', 'COMPLETED', 'FAILED', 'SKIPPED'));`,
    );

    this.addSql(`create or replace function podflow_announce_episode_change() returns trigger
      language plpgsql as $$
      begin
        perform pg_notify('podflow_episode_changes',
          json_build_object('episodeId', new.id, 'userId', new.user_id)::text);
        return null;
      end $$;`);
    this.addSql(`create or replace function podflow_announce_task_change() returns trigger
      language plpgsql as $$
      begin
        perform pg_notify('podflow_episode_changes',
          json_build_object('episodeId', e.id, 'userId', e.user_id)::text)
          from episodes e where e.id = new.episode_id;
        return null;
      end $$;`);
    // Postgres folds identical notifications of one transaction into one, so an episode changed
    // with its task in one commit is announced once.
    this.addSql(`create trigger episodes_announce_insert after insert on "episodes"
      for each row execute function podflow_announce_episode_change();`);
    this.addSql(`create trigger episodes_announce_update after update on "episodes"
      for each row when (old is distinct from new) execute function podflow_announce_episode_change();`);
    this.addSql(`create trigger processing_tasks_announce_insert after insert on "processing_tasks"
      for each row execute function podflow_announce_task_change();`);
    this.addSql(`create trigger processing_tasks_announce_update after update on "processing_tasks"
      for each row when (old is distinct from new) execute function podflow_announce_task_change();`);
  }

  override down(): void | Promise<void> {
    this.addSql(`drop trigger if exists processing_tasks_announce_update on "processing_tasks";`);
    this.addSql(`drop trigger if exists processing_tasks_announce_insert on "processing_tasks";`);
    this.addSql(`drop trigger if exists episodes_announce_update on "episodes";`);
    this.addSql(`drop trigger if exists episodes_announce_insert on "episodes";`);
    this.addSql(`drop function if exists podflow_announce_task_change();`);
    this.addSql(`drop function if exists podflow_announce_episode_change();`);
    this.addSql(`alter table "processing_tasks" drop constraint "processing_tasks_status_check";`);
    this.addSql(
      `alter table "processing_tasks" add constraint "processing_tasks_status_check" check ("status" in ('PENDING', 'PROCESSING', 'COMPLETED', 'FAILED'));`,
    );
    this.addSql(
      `alter table "processing_tasks" rename constraint "processing_tasks_engine_task_id_unique" to "processing_tasks_ittybit_task_id_unique";`,
    );
    this.addSql(
      `alter table "processing_tasks" rename column "engine_task_id" to "ittybit_task_id";`,
    );
    this.addSql(`alter table "episodes" drop constraint "episodes_engine_check";`);
    this.addSql(`alter table "episodes" drop column "engine";`);
    this.addSql(`alter table "episodes" rename column "file_id" to "ittybit_file_id";`);
  }
}
