import { Migration } from "@mikro-orm/migrations";

/**
 * Per-producer limits (src/services/producer-limits.ts) count from the database, so that they
 * hold however many instances serve the API: episodes created per hour from `episodes`, and
 * retries per hour from this log of them. Rows older than an hour are pruned as retries are
 * recorded; nothing else reads them.
 */
export class Migration20261202125500_producer_limits extends Migration {
  override name = "Migration20261202125500_producer_limits";

  override up(): void | Promise<void> {
    this.addSql(`create table "episode_retries" (
      "id" bigint generated always as identity primary key,
      "user_id" uuid not null references "users" ("id") on delete cascade,
      "episode_id" uuid not null references "episodes" ("id") on delete cascade,
      "created_at" timestamptz not null
    );`);
    this.addSql(
      `create index "episode_retries_user_id_created_at_index" on "episode_retries" ("user_id", "created_at");`,
    );
  }

  override down(): void | Promise<void> {
    this.addSql(`drop table if exists "episode_retries";`);
  }
}
