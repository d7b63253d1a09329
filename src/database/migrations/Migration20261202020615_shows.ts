import { Migration } from "@mikro-orm/migrations";

/**
 * Shows and publishing to their feeds. Two triggers keep `shows.feed_version` (the feed's cache
 * key and ETag) honest whoever writes: any change of a show's row bumps it, and any change of an
 * episode bumps the version of the show it is in (and was in, when it moves). A feed request
 * then reads only the show's row to know whether its cached feed still holds. Publication state
 * is a column change on `episodes`, so the lifecycle migration's triggers announce it to
 * subscribers like every other change; a change of a show's own fields announces its episodes.
 */
export class Migration20261202020615_shows extends Migration {
  override name = "Migration20261202020615_shows";

  override up(): void | Promise<void> {
    this.addSql(
      `create table "shows" ("id" uuid not null, "user_id" uuid not null, "title" varchar(255) not null, "description" text not null, "author" varchar(255) not null, "owner_name" varchar(255) not null, "owner_email" varchar(320) not null, "language" varchar(16) not null, "category" varchar(64) not null, "subcategory" varchar(64) null, "explicit" boolean not null default false, "image_url" text null, "link" text null, "locked" boolean not null default true, "new_feed_url" text null, "feed_key" varchar(64) not null, "is_private" boolean not null default false, "podcast_guid" uuid not null, "feed_version" int not null default 1, "feed_updated_at" timestamptz not null, "created_at" timestamptz not null, "updated_at" timestamptz not null, primary key ("id"));`,
    );
    this.addSql(`alter table "shows" add constraint "shows_feed_key_unique" unique ("feed_key");`);
    this.addSql(
      `create index "shows_user_id_created_at_id_index" on "shows" ("user_id", "created_at", "id");`,
    );

    this.addSql(
      `alter table "episodes" add "audio_bytes" bigint null, add "audio_duration_seconds" double precision null, add "show_id" uuid null, add "publish_at" timestamptz null, add "published" boolean not null default false, add "feed_guid" varchar(128) null, add "episode_number" int null, add "season_number" int null, add "episode_type" text not null default 'full';`,
    );
    this.addSql(
      `alter table "episodes" add constraint "episodes_show_id_foreign" foreign key ("show_id") references "shows" ("id") on delete set null;`,
    );
    this.addSql(
      `create index "episodes_show_id_published_publish_at_index" on "episodes" ("show_id", "published", "publish_at");`,
    );
    this.addSql(
      `alter table "episodes" add constraint "episodes_episode_type_check" check ("episode_type" in ('full', 'trailer', 'bonus'));`,
    );

    this.addSql(
      `alter table "shows" add constraint "shows_user_id_foreign" foreign key ("user_id") references "users" ("id") on delete cascade;`,
    );

    this.addSql(`create or replace function podflow_show_changed() returns trigger
      language plpgsql as $$
      begin
        if new.feed_version = old.feed_version then
          new.feed_version := old.feed_version + 1;
        end if;
        new.feed_updated_at := greatest(clock_timestamp(), old.feed_updated_at);
        return new;
      end $$;`);
    this.addSql(`create trigger shows_feed_version before update on "shows"
      for each row when (old is distinct from new) execute function podflow_show_changed();`);
    // What subscribers see of a show (Episode.show) changed: announce each of its episodes. Only
    // for the producer's fields, not for the version bumps every episode change makes.
    this.addSql(`create or replace function podflow_announce_show_change() returns trigger
      language plpgsql as $$
      begin
        perform pg_notify('podflow_episode_changes',
          json_build_object('episodeId', e.id, 'userId', e.user_id)::text)
          from episodes e where e.show_id = new.id;
        return null;
      end $$;`);
    this.addSql(`create trigger shows_announce_update after update on "shows"
      for each row when ((old.title, old.description, old.author, old.owner_name, old.owner_email,
        old.language, old.category, old.subcategory, old.explicit, old.image_url, old.link,
        old.locked, old.new_feed_url)
        is distinct from (new.title, new.description, new.author, new.owner_name, new.owner_email,
        new.language, new.category, new.subcategory, new.explicit, new.image_url, new.link,
        new.locked, new.new_feed_url))
      execute function podflow_announce_show_change();`);
    this.addSql(`create or replace function podflow_episode_feed_changed() returns trigger
      language plpgsql as $$
      declare
        changed uuid[] := array[]::uuid[];
      begin
        if tg_op <> 'INSERT' and old.show_id is not null then
          changed := changed || old.show_id;
        end if;
        if tg_op <> 'DELETE' and new.show_id is not null then
          changed := changed || new.show_id;
        end if;
        -- Locked in id order, so two episodes moving between the same two shows in opposite
        -- directions cannot deadlock.
        perform 1 from shows where id = any(changed) order by id for update;
        update shows set feed_version = feed_version + 1 where id = any(changed);
        return null;
      end $$;`);
    this.addSql(`create trigger episodes_feed_insert after insert on "episodes"
      for each row when (new.show_id is not null) execute function podflow_episode_feed_changed();`);
    this.addSql(`create trigger episodes_feed_update after update on "episodes"
      for each row when ((old.show_id is not null or new.show_id is not null) and old is distinct from new)
      execute function podflow_episode_feed_changed();`);
    this.addSql(`create trigger episodes_feed_delete after delete on "episodes"
      for each row when (old.show_id is not null) execute function podflow_episode_feed_changed();`);
  }

  override down(): void | Promise<void> {
    this.addSql(`drop trigger if exists episodes_feed_delete on "episodes";`);
    this.addSql(`drop trigger if exists episodes_feed_update on "episodes";`);
    this.addSql(`drop trigger if exists episodes_feed_insert on "episodes";`);
    this.addSql(`drop function if exists podflow_episode_feed_changed();`);
    this.addSql(`drop trigger if exists shows_announce_update on "shows";`);
    this.addSql(`drop function if exists podflow_announce_show_change();`);
    this.addSql(`drop trigger if exists shows_feed_version on "shows";`);
    this.addSql(`drop function if exists podflow_show_changed();`);
    this.addSql(`alter table "episodes" drop constraint "episodes_show_id_foreign";`);

    this.addSql(`drop table if exists "shows" cascade;`);

    this.addSql(`drop index "episodes_show_id_published_publish_at_index";`);
    this.addSql(`alter table "episodes" drop constraint "episodes_episode_type_check";`);
    this.addSql(
      `alter table "episodes" drop column "audio_bytes", drop column "audio_duration_seconds", drop column "show_id", drop column "publish_at", drop column "published", drop column "feed_guid", drop column "episode_number", drop column "season_number", drop column "episode_type";`,
    );
  }
}
