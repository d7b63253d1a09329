import { Migration } from "@mikro-orm/migrations";

/**
 * A revoked API token is announced like an episode change: on the same channel, by a trigger,
 * so every instance ends that token's open subscriptions as soon as the revocation commits, in
 * commit order with the changes (and a rolled-back revocation announces nothing). A token is
 * revoked by setting `revoked_at`, or deleted (deleting a user cascades to their tokens); the
 * payload is `{"revokedToken": <token_hash>}`, the hash the subscriptions were authorised with.
 */
export class Migration20261203110000_token_revocations extends Migration {
  override name = "Migration20261203110000_token_revocations";

  override up(): void | Promise<void> {
    this.addSql(`create or replace function podflow_announce_token_revocation() returns trigger
      language plpgsql as $$
      begin
        perform pg_notify('podflow_episode_changes',
          json_build_object('revokedToken', old.token_hash)::text);
        return null;
      end $$;`);
    this.addSql(`create trigger api_tokens_announce_revocation after update on "api_tokens"
      for each row when (old.revoked_at is null and new.revoked_at is not null)
      execute function podflow_announce_token_revocation();`);
    this.addSql(`create trigger api_tokens_announce_deletion after delete on "api_tokens"
      for each row execute function podflow_announce_token_revocation();`);
  }

  override down(): void | Promise<void> {
    this.addSql(`drop trigger if exists api_tokens_announce_deletion on "api_tokens";`);
    this.addSql(`drop trigger if exists api_tokens_announce_revocation on "api_tokens";`);
    this.addSql(`drop function if exists podflow_announce_token_revocation();`);
  }
}
