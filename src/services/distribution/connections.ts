import { createHash, randomBytes } from "node:crypto";
import type { EntityManager } from "@mikro-orm/postgresql";
import type { Logger } from "pino";
import { z } from "zod";
import { type ConnectionService, SERVICE_NAMES } from "../../domain/publications.ts";
import { PublishingConnection } from "../../entities/publishing-connection.entity.ts";
import type { User } from "../../entities/user.entity.ts";
import { ConflictError, NotFoundError, ValidationError, validateInput } from "../errors.ts";
import type { SecretBox } from "../secret-box.ts";
import { OAuthError, pkcePair, YOUTUBE_SCOPES } from "./google-oauth.ts";
import type { Distribution } from "./index.ts";
import { TransistorError, type TransistorShow } from "./transistor-client.ts";

/**
 * A producer's connections to Transistor and YouTube: one per service, its secret sealed with
 * the installation's key (src/services/secret-box.ts) and bound to the connection's id. Nothing
 * here ever returns or logs a secret.
 */

export interface ConnectionDeps {
  em: EntityManager;
  distribution: Distribution;
  logger: Logger;
}

/** How long a consent screen may stay open before its `state` is no longer accepted. */
const CONSENT_LIFETIME_MS = 15 * 60 * 1000;
/** An access token this close to its expiry is refreshed first. */
const ACCESS_TOKEN_MARGIN_MS = 2 * 60 * 1000;

function secretsOf(distribution: Distribution): SecretBox {
  if (!distribution.secrets) {
    throw new ConflictError(
      "This server keeps no secrets yet: set PODFLOW_SECRET_KEY (openssl rand -base64 32) to connect Transistor or YouTube",
    );
  }
  return distribution.secrets;
}

export function findConnection(
  em: EntityManager,
  user: { id: string },
  service: ConnectionService,
): Promise<PublishingConnection | null> {
  return em.findOne(PublishingConnection, { user: user.id, service }, { refresh: true });
}

export function findConnections(em: EntityManager, user: User): Promise<PublishingConnection[]> {
  return em.find(PublishingConnection, { user: user.id }, { orderBy: { service: "asc" } });
}

/** The row for (user, service), made when missing; `id` is needed before a secret is sealed. */
async function connectionRow(
  em: EntityManager,
  user: User,
  service: ConnectionService,
): Promise<PublishingConnection> {
  const existing = await findConnection(em, user, service);
  if (existing) return existing;
  return em.create(PublishingConnection, {
    id: crypto.randomUUID(),
    user,
    service,
    status: "PENDING",
  });
}

const transistorInput = z.object({
  apiKey: z
    .string()
    .trim()
    .min(8, "is too short to be a Transistor API key")
    .max(256, "is too long to be a Transistor API key")
    .regex(/^[\x21-\x7e]+$/, "must be the key as Transistor shows it, without spaces"),
  showId: z.string().trim().min(1).max(64).nullish(),
});

/** A Transistor failure in words for the producer; the key never appears in it. */
function transistorProblem(error: unknown): never {
  if (error instanceof TransistorError && (error.status === 401 || error.status === 403)) {
    throw new ValidationError([
      { field: "apiKey", message: "Transistor refused this API key (Account → API Access)" },
    ]);
  }
  if (error instanceof TransistorError) {
    throw new ConflictError(`Transistor could not be asked: ${error.message}; try again later`);
  }
  throw error;
}

/**
 * Connects (or reconnects) Transistor with an API key, checked against Transistor first: the
 * account's name, and its shows to publish to. The show is `showId` when given (one of the
 * account's shows), the only show when there is one, else chosen later with
 * chooseTransistorShow. A refused key changes nothing.
 */
export async function connectTransistor(
  deps: ConnectionDeps,
  user: User,
  input: { apiKey: string; showId?: string | null },
): Promise<{ connection: PublishingConnection; shows: TransistorShow[] }> {
  const valid = validateInput(transistorInput, input);
  const secrets = secretsOf(deps.distribution);
  const { transistor } = deps.distribution;
  const [me, shows] = await Promise.all([
    transistor.whoAmI(valid.apiKey),
    transistor.listShows(valid.apiKey),
  ]).catch(transistorProblem);
  const show = pickShow(shows, valid.showId);
  const connection = await connectionRow(deps.em, user, "transistor");
  connection.secret = secrets.seal(valid.apiKey, connection.id);
  connection.status = "CONNECTED";
  connection.brokenReason = null;
  connection.accountName = me.name;
  setShow(connection, show);
  await deps.em.persist(connection).flush();
  deps.logger.info({ userId: user.id, service: "transistor" }, "Transistor connected");
  return { connection, shows };
}

function pickShow(shows: TransistorShow[], showId: string | null | undefined) {
  if (showId) {
    const show = shows.find((s) => s.id === showId || s.slug === showId);
    if (!show) {
      throw new ValidationError([
        {
          field: "showId",
          message: `is not one of this account's Transistor shows (${shows.map((s) => `${s.id}: ${s.title}`).join(", ") || "it has none"})`,
        },
      ]);
    }
    return show;
  }
  return shows.length === 1 ? (shows[0] ?? null) : null;
}

function setShow(connection: PublishingConnection, show: TransistorShow | null): void {
  connection.transistorShowId = show?.id ?? null;
  connection.transistorShowTitle = show?.title ?? null;
  connection.transistorShowTimeZone = show?.timeZone ?? null;
}

/** The Transistor API key of a connection, opened for one use. */
export function transistorKey(distribution: Distribution, connection: PublishingConnection) {
  if (!connection.secret) throw new ConflictError("Transistor is not connected");
  return secretsOf(distribution).open(connection.secret, connection.id);
}

/**
 * Seals the connection's secrets again with the current key when an older one sealed them (a
 * key rotation in progress: PODFLOW_SECRET_KEY lists the new key first, the old after it).
 */
export async function resealIfStale(
  em: EntityManager,
  distribution: Distribution,
  connection: PublishingConnection,
): Promise<void> {
  const secrets = secretsOf(distribution);
  const fields = ["secret", "accessToken"] as const;
  const stale = fields.filter((field) => {
    const sealed = connection[field];
    return sealed != null && secrets.isStale(sealed);
  });
  if (stale.length === 0) return;
  for (const field of stale) {
    connection[field] = secrets.seal(
      secrets.open(connection[field] as string, connection.id),
      connection.id,
    );
  }
  await em.flush();
}

/** The producer's Transistor connection and its account's shows, asked of Transistor now. */
async function connectedShows(
  deps: ConnectionDeps,
  user: User,
): Promise<{ connection: PublishingConnection; shows: TransistorShow[] }> {
  const connection = await findConnection(deps.em, user, "transistor");
  if (!connection || connection.status === "PENDING") {
    throw new ConflictError("Transistor is not connected: connectTransistor first");
  }
  const shows = await deps.distribution.transistor
    .listShows(transistorKey(deps.distribution, connection))
    .catch(transistorProblem);
  return { connection, shows };
}

/** The shows of the producer's Transistor account, asked now. */
export async function transistorShows(deps: ConnectionDeps, user: User): Promise<TransistorShow[]> {
  return (await connectedShows(deps, user)).shows;
}

/** Chooses which of the account's Transistor shows episodes are published to. */
export async function chooseTransistorShow(
  deps: ConnectionDeps,
  user: User,
  showId: string,
): Promise<PublishingConnection> {
  const { connection, shows } = await connectedShows(deps, user);
  setShow(connection, pickShow(shows, showId));
  await deps.em.flush();
  return connection;
}

const stateHash = (state: string) => createHash("sha256").update(state).digest("hex");

/**
 * Starts connecting YouTube: a consent URL at Google with PKCE and a `state` bound to this
 * producer (kept only as a hash). A connection already working keeps working until the new
 * consent completes.
 */
export async function startYouTubeConnection(
  deps: ConnectionDeps,
  user: User,
): Promise<{ consentUrl: string; connection: PublishingConnection }> {
  const { oauth } = deps.distribution;
  if (!oauth) {
    throw new ConflictError(
      "YouTube is not set up on this server: set GOOGLE_OAUTH_CLIENT_ID and GOOGLE_OAUTH_CLIENT_SECRET (see the README)",
    );
  }
  const secrets = secretsOf(deps.distribution);
  const connection = await connectionRow(deps.em, user, "youtube");
  const state = randomBytes(32).toString("base64url");
  const { verifier, challenge } = pkcePair();
  connection.oauthStateHash = stateHash(state);
  connection.oauthVerifier = secrets.seal(verifier, connection.id);
  connection.oauthStartedAt = new Date();
  await deps.em.persist(connection).flush();
  const consentUrl = oauth.consentUrl({
    state,
    codeChallenge: challenge,
    redirectUri: deps.distribution.redirectUri,
    scopes: YOUTUBE_SCOPES,
  });
  return { consentUrl, connection };
}

/**
 * Google's redirect back: exchanges the code (with the PKCE verifier) for tokens, checks that
 * every scope publishing needs was granted, names the channel and stores the refresh token
 * sealed. Answers what the producer's browser is shown. An unknown or expired `state` changes
 * nothing.
 */
export async function completeYouTubeConnection(
  deps: ConnectionDeps,
  query: { state?: string | null; code?: string | null; error?: string | null },
): Promise<{ ok: boolean; message: string }> {
  const { oauth } = deps.distribution;
  const secrets = deps.distribution.secrets;
  if (!oauth || !secrets || !query.state) {
    return { ok: false, message: "This link is not a YouTube connection Podflow started." };
  }
  const connection = await deps.em.findOne(PublishingConnection, {
    oauthStateHash: stateHash(query.state),
    service: "youtube",
  });
  if (
    !connection?.oauthVerifier ||
    !connection.oauthStartedAt ||
    Date.now() - connection.oauthStartedAt.getTime() > CONSENT_LIFETIME_MS
  ) {
    return {
      ok: false,
      message: "This YouTube connection link has expired or was already used: start again.",
    };
  }
  const verifier = secrets.open(connection.oauthVerifier, connection.id);
  // The state is single-use, whatever happens next.
  connection.oauthStateHash = null;
  connection.oauthVerifier = null;
  connection.oauthStartedAt = null;
  if (query.error || !query.code) {
    await deps.em.flush();
    return {
      ok: false,
      message:
        query.error === "access_denied"
          ? "YouTube was not connected: the consent was declined."
          : `YouTube was not connected (${(query.error ?? "no code").slice(0, 100)}).`,
    };
  }
  try {
    const tokens = await oauth.exchangeCode({
      code: query.code,
      codeVerifier: verifier,
      redirectUri: deps.distribution.redirectUri,
    });
    const missing = YOUTUBE_SCOPES.filter((scope) => !tokens.scopes.includes(scope));
    if (missing.length > 0) {
      await deps.em.flush();
      return {
        ok: false,
        message: `YouTube was not connected: Podflow needs every permission it asked for (missing: ${missing.map((s) => s.replace(/^.*\//, "")).join(", ")}).`,
      };
    }
    const refreshToken = tokens.refreshToken ?? openOrNull(secrets, connection.secret, connection);
    if (!refreshToken) {
      await deps.em.flush();
      return {
        ok: false,
        message: "Google did not grant offline access (no refresh token): connect again.",
      };
    }
    const channel = await deps.distribution.youtube.channel(tokens.accessToken);
    connection.secret = secrets.seal(refreshToken, connection.id);
    connection.accessToken = secrets.seal(tokens.accessToken, connection.id);
    connection.accessTokenExpiresAt = tokens.expiresAt;
    connection.scopes = tokens.scopes.join(" ");
    connection.accountId = channel.id;
    connection.accountName = channel.title;
    connection.status = "CONNECTED";
    connection.brokenReason = null;
    await deps.em.flush();
    deps.logger.info(
      { userId: connection.user.id, service: "youtube", channel: channel.id },
      "YouTube connected",
    );
    return { ok: true, message: `YouTube is connected: ${channel.title}.` };
  } catch (error) {
    await deps.em.flush();
    deps.logger.warn(
      { userId: connection.user.id, err: (error as Error).message },
      "YouTube connection failed",
    );
    return { ok: false, message: "YouTube was not connected: Google refused the code. Try again." };
  }
}

function openOrNull(
  secrets: SecretBox,
  sealed: string | null | undefined,
  connection: PublishingConnection,
): string | null {
  if (!sealed) return null;
  try {
    return secrets.open(sealed, connection.id);
  } catch {
    return null;
  }
}

/** The connection stopped working for a reason only the producer can fix: connect again. */
export class ConnectionBrokenError extends Error {
  override name = "ConnectionBrokenError";
}

/**
 * A usable access token for a YouTube connection: the stored one while it has a few minutes
 * left (or `force` is false), else a fresh one from the refresh token, stored sealed. A revoked
 * or expired grant marks the connection BROKEN with the reason and throws ConnectionBrokenError.
 */
export async function youtubeAccessToken(
  deps: { em: EntityManager; distribution: Distribution; logger: Logger },
  connection: PublishingConnection,
  options: { force?: boolean } = {},
): Promise<string> {
  const secrets = secretsOf(deps.distribution);
  const { oauth } = deps.distribution;
  if (connection.status !== "CONNECTED" || !connection.secret) {
    throw new ConnectionBrokenError(
      connection.brokenReason ?? "YouTube is not connected: connect it first",
    );
  }
  const expires = connection.accessTokenExpiresAt?.getTime() ?? 0;
  if (!options.force && connection.accessToken && expires - ACCESS_TOKEN_MARGIN_MS > Date.now()) {
    return secrets.open(connection.accessToken, connection.id);
  }
  if (!oauth) throw new ConflictError("YouTube is not set up on this server");
  try {
    const fresh = await oauth.refresh(secrets.open(connection.secret, connection.id));
    connection.accessToken = secrets.seal(fresh.accessToken, connection.id);
    connection.accessTokenExpiresAt = fresh.expiresAt;
    if (fresh.scopes) connection.scopes = fresh.scopes.join(" ");
    await deps.em.flush();
    return fresh.accessToken;
  } catch (error) {
    if (error instanceof OAuthError && error.code === "invalid_grant") {
      const reason =
        "Google no longer accepts Podflow's access to this YouTube channel (revoked, or expired): connect YouTube again";
      await markBroken(deps.em, connection, reason);
      deps.logger.warn({ userId: connection.user.id, service: "youtube" }, reason);
      throw new ConnectionBrokenError(reason);
    }
    throw error;
  }
}

/** The service refused the stored credential: the producer has to connect again. */
export async function markBroken(
  em: EntityManager,
  connection: PublishingConnection,
  reason: string,
): Promise<void> {
  await em.nativeUpdate(
    PublishingConnection,
    { id: connection.id },
    { status: "BROKEN", brokenReason: reason, accessToken: null, accessTokenExpiresAt: null },
  );
  connection.status = "BROKEN";
  connection.brokenReason = reason;
  connection.accessToken = null;
}

/** Forgets a connection and its secrets. Publications already made stay where they are. */
export async function disconnect(
  em: EntityManager,
  user: User,
  service: ConnectionService,
): Promise<void> {
  const removed = await em.nativeDelete(PublishingConnection, { user: user.id, service });
  if (removed === 0) throw new NotFoundError(`${SERVICE_NAMES[service]} is not connected`);
}
