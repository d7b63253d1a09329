import type { EntityManager } from "@mikro-orm/postgresql";
import { bearerToken, hashToken } from "./accounts.ts";

/**
 * The SHA-256 of the bearer token in an `Authorization` value (parsed as `authenticate` does),
 * or null when there is none. Long-lived subscriptions keep it to notice a revocation.
 */
export function bearerTokenHash(authorization: string | null | undefined): string | null {
  const token = bearerToken(authorization);
  return token ? hashToken(token) : null;
}

const HEX_HASH = /^[0-9a-f]{64}$/;

/** Which of these token hashes still belong to unrevoked tokens: one query for all of them. */
export async function activeTokenHashes(
  em: EntityManager,
  tokenHashes: Iterable<string>,
): Promise<Set<string>> {
  // Hashes are hex (hashToken); anything else cannot be a token's and is not asked about.
  const wanted = [...new Set(tokenHashes)].filter((hash) => HEX_HASH.test(hash));
  if (wanted.length === 0) return new Set();
  // Plain SQL: this runs with every burst of the live feed, and the ORM's find cost more than
  // the query itself.
  const rows = await em.execute<Array<{ token_hash: string }>>(
    "select token_hash from api_tokens where token_hash = any(cast(? as text[])) and revoked_at is null",
    [`{${wanted.join(",")}}`],
  );
  return new Set(rows.map((row) => row.token_hash));
}
