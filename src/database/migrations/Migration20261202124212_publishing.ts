import { Migration } from "@mikro-orm/migrations";

/**
 * Publishing to Transistor and YouTube: producers' connections (secrets sealed by the
 * application, never plain) and publications, one per episode and destination. A publication's
 * change is announced to the episode's subscribers by the same trigger function as a task's
 * (both rows carry `episode_id`), so no code path can forget to.
 */
export class Migration20261202124212_publishing extends Migration {
  override name = "Migration20261202124212_publishing";

  override up(): void | Promise<void> {
    this.addSql(
      `create table "publishing_connections" ("id" uuid not null, "user_id" uuid not null, "service" text not null, "status" text not null, "broken_reason" text null, "secret" text null, "access_token" text null, "access_token_expires_at" timestamptz null, "scopes" text null, "account_name" varchar(255) null, "account_id" varchar(128) null, "transistor_show_id" varchar(64) null, "transistor_show_title" varchar(255) null, "transistor_show_time_zone" varchar(64) null, "oauth_state_hash" varchar(64) null, "oauth_verifier" text null, "oauth_started_at" timestamptz null, "created_at" timestamptz not null, "updated_at" timestamptz not null, primary key ("id"));`,
    );
    this.addSql(
      `alter table "publishing_connections" add constraint "publishing_connections_oauth_state_hash_unique" unique ("oauth_state_hash");`,
    );
    this.addSql(
      `alter table "publishing_connections" add constraint "publishing_connections_user_id_service_unique" unique ("user_id", "service");`,
    );

    this.addSql(
      `create table "publications" ("id" uuid not null, "episode_id" uuid not null, "user_id" uuid not null, "destination" text not null, "status" text not null default 'QUEUED', "run" int not null default 1, "bytes_sent" bigint not null default '0', "bytes_total" bigint null, "publish_at" timestamptz null, "remote_id" varchar(128) null, "remote_url" text null, "failure_reason" text null, "waiting_reason" text null, "waiting_until" timestamptz null, "progress" jsonb not null default '{}', "created_at" timestamptz not null, "updated_at" timestamptz not null, primary key ("id"));`,
    );
    this.addSql(
      `alter table "publications" add constraint "publications_episode_id_destination_unique" unique ("episode_id", "destination");`,
    );

    this.addSql(
      `alter table "publishing_connections" add constraint "publishing_connections_user_id_foreign" foreign key ("user_id") references "users" ("id") on delete cascade;`,
    );
    this.addSql(
      `alter table "publishing_connections" add constraint "publishing_connections_service_check" check ("service" in ('transistor', 'youtube'));`,
    );
    this.addSql(
      `alter table "publishing_connections" add constraint "publishing_connections_status_check" check ("status" in ('PENDING', 'CONNECTED', 'BROKEN'));`,
    );

    this.addSql(
      `alter table "publications" add constraint "publications_episode_id_foreign" foreign key ("episode_id") references "episodes" ("id") on delete cascade;`,
    );
    this.addSql(
      `alter table "publications" add constraint "publications_user_id_foreign" foreign key ("user_id") references "users" ("id") on delete cascade;`,
    );
    this.addSql(
      `alter table "publications" add constraint "publications_destination_check" check ("destination" in ('FEED', 'TRANSISTOR', 'YOUTUBE'));`,
    );
    this.addSql(
      `alter table "publications" add constraint "publications_status_check" check ("status" in ('QUEUED', 'UPLOADING', 'PROCESSING', 'PUBLISHED', 'SCHEDULED', 'FAILED'));`,
    );

    this.addSql(`create trigger publications_announce_insert after insert on "publications"
      for each row execute function podflow_announce_task_change();`);
    this.addSql(`create trigger publications_announce_update after update on "publications"
      for each row when (old is distinct from new) execute function podflow_announce_task_change();`);
  }

  override down(): void | Promise<void> {
    this.addSql(`drop table if exists "publishing_connections" cascade;`);
    this.addSql(`drop table if exists "publications" cascade;`);
  }
}
