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

/** Whether `value` can be a token's hash (hashToken's form: SHA-256 in lowercase hex). */
export function isTokenHash(value: unknown): value is string {
  return typeof value === "string" && HEX_HASH.test(value);
}

/**
 * One row, `hashes`: those of the hashes in parameter $1 (tokenHashesParam) that belong to
 * unrevoked tokens. Plain SQL for pg's own placeholders: the live feed runs it beside each
 * burst's load, in the same prepared statement (src/services/episode-feed/loader.ts).
 */
export const ACTIVE_TOKEN_HASHES_SQL = `select coalesce(array_agg(token_hash), '{}') as hashes
  from api_tokens where token_hash = any(cast($1 as text[])) and revoked_at is null`;

/** Token hashes as one text[] parameter; only hex ones (hashToken's): no other is a token's. */
export function tokenHashesParam(tokenHashes: Iterable<string>): string {
  return `{${[...new Set(tokenHashes)].filter(isTokenHash).join(",")}}`;
}
