import { Migration } from "@mikro-orm/migrations";

export class Migration20261130061822_initial extends Migration {
  override name = "Migration20261130061822_initial";

  override up(): void | Promise<void> {
    this.addSql(
      `create table "users" ("id" uuid not null, "email" varchar(320) not null, "created_at" timestamptz not null, primary key ("id"));`,
    );
    this.addSql(`alter table "users" add constraint "users_email_unique" unique ("email");`);

    this.addSql(
      `create table "episodes" ("id" uuid not null, "user_id" uuid not null, "title" varchar(200) not null, "description" text null, "original_filename" varchar(255) null, "file_size" bigint null, "status" text not null default 'AWAITING_UPLOAD', "failure_reason" text null, "ittybit_folder" varchar(255) null, "ittybit_file_id" varchar(64) null, "ittybit_media_id" varchar(64) null, "audio_file_id" varchar(64) null, "audio_url" text null, "video_file_id" varchar(64) null, "video_url" text null, "transcript" text null, "transcript_segments" jsonb null, "chapters" jsonb null, "processing_started_at" timestamptz null, "processing_completed_at" timestamptz null, "created_at" timestamptz not null, "updated_at" timestamptz not null, primary key ("id"));`,
    );
    this.addSql(
      `create index "episodes_user_id_created_at_id_index" on "episodes" ("user_id", "created_at", "id");`,
    );
    this.addSql(
      `create index "episodes_user_id_status_created_at_id_index" on "episodes" ("user_id", "status", "created_at", "id");`,
    );

    this.addSql(
      `create table "processing_tasks" ("id" uuid not null, "episode_id" uuid not null, "type" text not null, "attempt" int not null default 1, "ittybit_task_id" varchar(64) not null, "status" text not null default 'PENDING', "progress" int null, "output_file_id" varchar(64) null, "output_url" text null, "error_message" text null, "metadata" jsonb null, "created_at" timestamptz not null, "updated_at" timestamptz not null, primary key ("id"));`,
    );
    this.addSql(
      `alter table "processing_tasks" add constraint "processing_tasks_ittybit_task_id_unique" unique ("ittybit_task_id");`,
    );
    this.addSql(
      `create index "processing_tasks_status_updated_at_index" on "processing_tasks" ("status", "updated_at");`,
    );
    this.addSql(
      `alter table "processing_tasks" add constraint "processing_tasks_episode_id_type_attempt_unique" unique ("episode_id", "type", "attempt");`,
    );

    this.addSql(
      `create table "api_tokens" ("id" uuid not null, "user_id" uuid not null, "name" varchar(100) not null, "token_hash" varchar(64) not null, "token_prefix" varchar(16) not null, "created_at" timestamptz not null, "last_used_at" timestamptz null, "revoked_at" timestamptz null, primary key ("id"));`,
    );
    this.addSql(
      `alter table "api_tokens" add constraint "api_tokens_token_hash_unique" unique ("token_hash");`,
    );

    this.addSql(
      `create table "webhook_deliveries" ("id" varchar(200) not null, "ittybit_task_id" varchar(64) null, "received_at" timestamptz not null, "payload" jsonb not null, "outcome" varchar(32) not null, primary key ("id"));`,
    );

    this.addSql(
      `alter table "episodes" add constraint "episodes_user_id_foreign" foreign key ("user_id") references "users" ("id") on delete cascade;`,
    );
    this.addSql(
      `alter table "episodes" add constraint "episodes_status_check" check ("status" in ('AWAITING_UPLOAD', 'UPLOADED', 'PROCESSING', 'PROCESSED', 'FAILED'));`,
    );

    this.addSql(
      `alter table "processing_tasks" add constraint "processing_tasks_episode_id_foreign" foreign key ("episode_id") references "episodes" ("id") on delete cascade;`,
    );
    this.addSql(
      `alter table "processing_tasks" add constraint "processing_tasks_type_check" check ("type" in ('AUDIO_EXTRACTION', 'VIDEO_TRANSCODE', 'TRANSCRIPT_GENERATION', 'CHAPTER_DETECTION'));`,
    );
    this.addSql(
      `alter table "processing_tasks" add constraint "processing_tasks_status_check" check ("status" in ('PENDING', 'PROCESSING', 'COMPLETED', 'FAILED'));`,
    );

    this.addSql(
      `alter table "api_tokens" add constraint "api_tokens_user_id_foreign" foreign key ("user_id") references "users" ("id") on delete cascade;`,
    );
  }

  override down(): void | Promise<void> {
    this.addSql(`alter table "episodes" drop constraint "episodes_user_id_foreign";`);
    this.addSql(`alter table "api_tokens" drop constraint "api_tokens_user_id_foreign";`);
    this.addSql(
      `alter table "processing_tasks" drop constraint "processing_tasks_episode_id_foreign";`,
    );

    this.addSql(`drop table if exists "users" cascade;`);
    this.addSql(`drop table if exists "episodes" cascade;`);
    this.addSql(`drop table if exists "processing_tasks" cascade;`);
    this.addSql(`drop table if exists "api_tokens" cascade;`);
    this.addSql(`drop table if exists "webhook_deliveries" cascade;`);
  }
}
