import { Migration } from "@mikro-orm/migrations";

export class Migration20261130064110_processing_rounds extends Migration {
  override name = "Migration20261130064110_processing_rounds";

  override up(): void | Promise<void> {
    this.addSql(
      `alter table "episodes" add "processing_round" int not null default 1, add "completion_queued_round" int not null default 0;`,
    );

    this.addSql(`alter table "processing_tasks" add "round" int not null default 1;`);
  }

  override down(): void | Promise<void> {
    this.addSql(
      `alter table "episodes" drop column "processing_round", drop column "completion_queued_round";`,
    );

    this.addSql(`alter table "processing_tasks" drop column "round";`);
  }
}
