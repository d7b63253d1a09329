import type { EntityManager } from "@mikro-orm/postgresql";
import { ApiToken } from "../entities/api-token.entity.ts";
import { bearerToken, hashToken } from "./accounts.ts";

/**
 * The SHA-256 of the bearer token in an `Authorization` value (parsed as `authenticate` does),
 * or null when there is none. Long-lived subscriptions keep it to notice a revocation.
 */
export function bearerTokenHash(authorization: string | null | undefined): string | null {
  const token = bearerToken(authorization);
  return token ? hashToken(token) : null;
}

/** Which of these token hashes still belong to unrevoked tokens: one query for all of them. */
export async function activeTokenHashes(
  em: EntityManager,
  tokenHashes: Iterable<string>,
): Promise<Set<string>> {
  const wanted = [...new Set(tokenHashes)];
  if (wanted.length === 0) return new Set();
  const tokens = await em.find(
    ApiToken,
    { tokenHash: { $in: wanted }, revokedAt: null },
    { fields: ["tokenHash"] },
  );
  return new Set(tokens.map((token) => token.tokenHash));
}
