import { randomBytes } from "node:crypto";
import type { EntityManager } from "@mikro-orm/postgresql";

/**
 * The installation's secret called `name`, made on first use. Instances starting together may
 * race to make it: the first insert wins and everyone reads the winner's value. A loser's
 * statement waits for the winner's insert and then sees no row of its own to return (its
 * snapshot predates the winner's commit), so it asks once more, in a new statement.
 */
export async function installationSecret(em: EntityManager, name: string): Promise<Buffer> {
  for (let attempt = 0; attempt < 2; attempt++) {
    const rows = await em.execute<{ value: string }[]>(
      `with made as (
         insert into installation_secrets (name, value, created_at) values (?, ?, now())
         on conflict (name) do nothing returning value)
       select value from made union all select value from installation_secrets where name = ?`,
      [name, randomBytes(32).toString("hex"), name],
    );
    const value = rows[0]?.value;
    if (value) return Buffer.from(value, "hex");
  }
  throw new Error(`installation secret ${name} could not be made`);
}

/**
 * The secret last segment of the webhook URL Podflow gives Ittybit: PODFLOW_WEBHOOK_TOKEN when
 * set, else an installation secret (the same for every instance on the database).
 */
export async function webhookToken(
  em: EntityManager,
  configured: string | undefined,
): Promise<string> {
  return configured ?? (await installationSecret(em, "ittybit-webhook-url")).toString("base64url");
}
