import { createHash, randomBytes, randomUUID } from "node:crypto";
import type { EntityManager } from "@mikro-orm/postgresql";
import { z } from "zod";
import { ApiToken } from "../entities/api-token.entity.ts";
import { User } from "../entities/user.entity.ts";
import { NotFoundError, ValidationError, validateInput } from "./errors.ts";

/** Tokens look like `pf_<43 base64url characters>`: 256 random bits, recognisable in a leak scan. */
const TOKEN_PREFIX = "pf_";

/** Last use is recorded at most this often per token, so reads do not each cost a write. */
const LAST_USED_RESOLUTION_MS = 60_000;

export function hashToken(token: string): string {
  return createHash("sha256").update(token).digest("hex");
}

const emailSchema = z.object({
  email: z.string().trim().toLowerCase().pipe(z.email("must be an email address").max(320)),
});
const tokenNameSchema = z.object({
  name: z.string().trim().min(1, "must not be empty").max(100),
});

/** Emails are compared lower-cased and trimmed. */
function parseEmail(email: string): string {
  return validateInput(emailSchema, { email }).email;
}

export interface IssuedToken {
  token: ApiToken;
  /** The secret itself: shown once, never stored. */
  secret: string;
}

export async function createUser(em: EntityManager, email: string): Promise<User> {
  const normalized = parseEmail(email);
  if (await em.count(User, { email: normalized })) {
    throw new ValidationError([{ field: "email", message: `a user with ${normalized} exists` }]);
  }
  const user = em.create(User, { id: randomUUID(), email: normalized });
  await em.flush();
  return user;
}

export async function findUserByEmail(em: EntityManager, email: string): Promise<User> {
  const user = await em.findOne(User, { email: parseEmail(email) });
  if (!user) throw new NotFoundError(`No user with email ${email.trim().toLowerCase()}`);
  return user;
}

export async function issueToken(
  em: EntityManager,
  user: User,
  name = "default",
): Promise<IssuedToken> {
  const parsed = validateInput(tokenNameSchema, { name });
  const secret = `${TOKEN_PREFIX}${randomBytes(32).toString("base64url")}`;
  const token = em.create(ApiToken, {
    id: randomUUID(),
    user,
    name: parsed.name,
    tokenHash: hashToken(secret),
    tokenPrefix: secret.slice(0, 10),
  });
  await em.flush();
  return { token, secret };
}

export async function listTokens(em: EntityManager, user: User): Promise<ApiToken[]> {
  return em.find(ApiToken, { user }, { orderBy: { createdAt: "asc" } });
}

/** Revokes a token by id; revoking a revoked token changes nothing. */
export async function revokeToken(em: EntityManager, tokenId: string): Promise<ApiToken> {
  const token = z.uuid().safeParse(tokenId).success
    ? await em.findOne(ApiToken, { id: tokenId }, { populate: ["user"] })
    : null;
  if (!token) throw new NotFoundError(`No token with id ${tokenId}`);
  token.revokedAt ??= new Date();
  await em.flush();
  return token;
}

/** The token in an `Authorization: Bearer <token>` value, or null when there is none. */
export function bearerToken(authorization: string | null | undefined): string | null {
  return /^Bearer\s+(\S+)\s*$/i.exec(authorization ?? "")?.[1] ?? null;
}

/**
 * The user a bearer token belongs to, or null for a missing, unknown or revoked token.
 * Accepts the raw `Authorization` header value (`Bearer <token>`).
 */
export async function authenticate(
  em: EntityManager,
  authorization: string | null | undefined,
): Promise<User | null> {
  const secret = bearerToken(authorization);
  if (!secret) return null;
  // Every request asks this: one plain statement and the user mapped from its row (em.map),
  // without building the query and the token entity each time as findOne with populate did.
  const [row] = await em.execute<Array<{ token_id: string; token_last_used_at: string | null }>>(
    `select t.id as token_id, t.last_used_at as token_last_used_at, u.*
     from api_tokens t join users u on u.id = t.user_id
     where t.token_hash = ? and t.revoked_at is null`,
    [hashToken(secret)],
  );
  if (!row) return null;
  const { token_id: tokenId, token_last_used_at: lastUsedAt, ...user } = row;
  const now = Date.now();
  if (!lastUsedAt || now - new Date(lastUsedAt).getTime() > LAST_USED_RESOLUTION_MS) {
    await em.nativeUpdate(ApiToken, { id: tokenId }, { lastUsedAt: new Date(now) });
  }
  return em.map(User, user);
}
