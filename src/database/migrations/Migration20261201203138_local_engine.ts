import { Migration } from "@mikro-orm/migrations";

/** Secrets every instance shares, made on first use (the local engine's upload-URL key). */
export class Migration20261201203138_local_engine extends Migration {
  override name = "Migration20261201203138_local_engine";

  override up(): void | Promise<void> {
    this.addSql(
      `create table "installation_secrets" ("name" varchar(64) not null, "value" varchar(64) not null, "created_at" timestamptz not null, primary key ("name"));`,
    );
  }

  override down(): void | Promise<void> {
    this.addSql(`drop table if exists "installation_secrets" cascade;`);
  }
}
