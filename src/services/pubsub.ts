import pg from "pg";
import type { Logger } from "pino";
import { isTokenHash } from "./subscriber-tokens.ts";

/**
 * A committed change of an episode or of one of its tasks, as announced to subscribers. Triggers
 * on `episodes` and `processing_tasks` send it (see the lifecycle and task_states migrations).
 * An episode's change has ids only (NOTIFY payloads must stay under 8000 bytes, and an episode's
 * row need not fit): each instance loads what its subscribers need. A task's change also carries
 * the task's row and the transaction's id, which the feed may use instead of reading it back.
 * A trigger on `api_tokens` sends revocations on the same channel (see the token revocations
 * migration), so changes and revocations arrive in one commit order.
 */
export interface EpisodeChange {
  episodeId: string;
  /** The episode's owner: who may see the change. */
  userId: string;
  /** A task's change: the id of the transaction that committed it (xid8, as text). */
  txid?: string;
  /** A task's change: its row, as episodes.ts's TaskViewTuple (unchecked here). */
  task?: unknown;
}

/** Who hears the changes an instance receives: its episode feed (see episode-feed/). */
export interface ChangeListener {
  /** A committed change. Changes arrive in commit order, never for a rolled-back transaction. */
  change(change: EpisodeChange): void;
  /**
   * A token was revoked (or deleted, as when its user is): its hash. Arrives in commit order
   * with the changes, never for a rolled-back transaction.
   */
  revoked(tokenHash: string): void;
  /**
   * Transaction `txid` (xid8, as text), which changed tasks, has announced everything it
   * changed: its task changes may be applied together (see the task_states migration).
   */
  transactionEnded(txid: string): void;
  /**
   * Changes may have been missed (the transport lost its connection and has it back): whatever
   * is followed should be reloaded. Every change committed before `since` was delivered.
   */
  resync(since: Date): void;
}

/**
 * Fan-out of episode changes to every instance, as PostgreSQL announces them: a trigger NOTIFYs
 * each committed row change of an episode or a task, and each revoked or deleted API token, so
 * they arrive after the commit, in commit order, and never for a rollback. This is the only file
 * that listens.
 */
export interface PubSub {
  /**
   * Starts hearing changes (one listener per instance, on one connection): resolves once every
   * change committed from then on will reach `listener`.
   */
  listen(listener: ChangeListener): Promise<void>;
  /** Stops listening and closes the connection; publishing still works. */
  close(): Promise<void>;
}

/** The NOTIFY channel every instance listens on. */
export const CHANGES_CHANNEL = "podflow_episode_changes";

/** How the listening connection shows in pg_stat_activity. */
export const LISTENER_APPLICATION_NAME = "podflow-listener";

export interface PostgresPubSubOptions {
  databaseUrl: string;
  logger: Logger;
  /** Reconnect backoff: the first delay, doubled per failed attempt up to `max` (with jitter). */
  reconnectDelayMs?: { initial: number; max: number };
  /** How often the listening connection is probed; a probe that fails reconnects. */
  healthCheckIntervalMs?: number;
  /** Called each time the listener has reconnected (podflow_listener_reconnects_total). */
  onReconnect?: () => void;
}

export interface PostgresPubSub extends PubSub {
  /** The backend pid of the listening connection; null while there is none. */
  listenerPid(): number | null;
}

const DEFAULT_RECONNECT_DELAY_MS = { initial: 250, max: 10_000 };
const DEFAULT_HEALTH_CHECK_INTERVAL_MS = 15_000;

export function createPostgresPubSub(options: PostgresPubSubOptions): PostgresPubSub {
  const { logger } = options;
  const backoff = options.reconnectDelayMs ?? DEFAULT_RECONNECT_DELAY_MS;
  const healthCheckIntervalMs = options.healthCheckIntervalMs ?? DEFAULT_HEALTH_CHECK_INTERVAL_MS;

  let listener: ChangeListener | null = null;
  let client: pg.Client | null = null;
  let closed = false;
  let failedAttempts = 0;
  let reconnectTimer: NodeJS.Timeout | undefined;
  let healthTimer: NodeJS.Timeout | undefined;
  /** Every change committed before this moment has been delivered. */
  let deliveredUntil = new Date();

  /** Opens a connection and LISTENs; it becomes `client` only once it listens. */
  async function connect(): Promise<void> {
    const next = new pg.Client({
      connectionString: options.databaseUrl,
      application_name: LISTENER_APPLICATION_NAME,
      keepAlive: true,
      connectionTimeoutMillis: 10_000,
    });
    next.on("error", (error) => lost(next, error));
    next.on("end", () => lost(next, null));
    next.on("notification", (message) => {
      if (message.channel === CHANGES_CHANNEL) receive(message.payload);
    });
    try {
      await next.connect();
      const listeningFrom = new Date();
      await next.query(`listen ${CHANGES_CHANNEL}`);
      if (closed) throw new Error("closed while connecting");
      client = next;
      deliveredUntil = listeningFrom;
    } catch (error) {
      next.removeAllListeners("end");
      await next.end().catch(() => {});
      throw error;
    }
  }

  function receive(payload: string | undefined): void {
    const notice = parseNotification(payload);
    if (!notice) {
      logger.warn({ payload }, "ignoring a malformed episode change notification");
      return;
    }
    if (!listener) return;
    try {
      dispatchNotification(notice, listener);
    } catch (error) {
      const episodeId = notice.kind === "change" ? notice.change.episodeId : undefined;
      logger.error({ err: error, kind: notice.kind, episodeId }, "episode change listener failed");
    }
  }

  /** The connection `which` broke (or was closed under us): reconnect, unless it is stale. */
  function lost(which: pg.Client, error: Error | null): void {
    if (which !== client) return;
    client = null;
    // Later errors of the dead connection have nowhere to go.
    which.on("error", () => {});
    which.end().catch(() => {});
    if (closed) return;
    logger.warn(
      { err: error ?? undefined, deliveredUntil },
      "lost the episode change listener connection; reconnecting",
    );
    scheduleReconnect();
  }

  function scheduleReconnect(): void {
    if (closed) return;
    const ceiling = Math.min(backoff.max, backoff.initial * 2 ** failedAttempts);
    // Half fixed, half random: instances that lost the database together do not return together.
    const delay = ceiling / 2 + Math.random() * (ceiling / 2);
    failedAttempts += 1;
    reconnectTimer = setTimeout(reconnect, delay);
  }

  async function reconnect(): Promise<void> {
    const since = deliveredUntil;
    try {
      await connect();
    } catch (error) {
      if (closed) return;
      logger.warn({ err: error, attempt: failedAttempts }, "could not reconnect the listener");
      scheduleReconnect();
      return;
    }
    failedAttempts = 0;
    options.onReconnect?.();
    logger.info({ since }, "episode change listener reconnected; resyncing subscriptions");
    listener?.resync(since);
  }

  /**
   * A half-open TCP connection raises no error: a query that does not come back does. Postgres
   * sends pending notifications before it answers, so a probe that returns proves every change
   * committed before it was sent has been delivered.
   */
  async function probe(): Promise<void> {
    const current = client;
    if (!current) return;
    const sentAt = new Date();
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        current.query("select 1"),
        new Promise((_, reject) => {
          timer = setTimeout(() => reject(new Error("health check timed out")), 10_000);
        }),
      ]);
      if (current === client) deliveredUntil = sentAt;
    } catch (error) {
      lost(current, error as Error);
    } finally {
      clearTimeout(timer);
    }
  }

  return {
    async listen(changeListener) {
      if (listener) throw new Error("this PubSub already has its listener");
      if (closed) throw new Error("this PubSub is closed");
      listener = changeListener;
      await connect();
      healthTimer = setInterval(() => void probe(), healthCheckIntervalMs);
      healthTimer.unref();
    },

    async close() {
      closed = true;
      clearTimeout(reconnectTimer);
      clearInterval(healthTimer);
      const current = client;
      client = null;
      if (current) {
        current.removeAllListeners("end");
        await current.end().catch(() => {});
      }
    },

    listenerPid() {
      return (client as (pg.Client & { processID?: number }) | null)?.processID ?? null;
    },
  };
}

/** What one notification on the changes channel announces. */
export type Notification =
  | { kind: "change"; change: EpisodeChange }
  | { kind: "revoked"; tokenHash: string }
  | { kind: "transactionEnded"; txid: string };

/**
 * The notification a payload carries: `{"episodeId", "userId"}` (a change) or
 * `{"revokedToken": <token hash>}` (a revocation), `{"txEnd": <txid>}` (a transaction that
 * changed tasks announced all of it); null for anything else.
 */
export function parseNotification(payload: string | undefined): Notification | null {
  let value: unknown;
  try {
    value = JSON.parse(payload ?? "");
  } catch {
    return null;
  }
  if (typeof value !== "object" || value === null) return null;
  const fields = value as Partial<EpisodeChange> & { revokedToken?: unknown; txEnd?: unknown };
  if ("txEnd" in fields) {
    const txid = fields.txEnd;
    return typeof txid === "string" && /^\d+$/.test(txid)
      ? { kind: "transactionEnded", txid }
      : null;
  }
  if ("revokedToken" in fields) {
    const tokenHash = fields.revokedToken;
    return isTokenHash(tokenHash) ? { kind: "revoked", tokenHash } : null;
  }
  if (typeof fields.episodeId !== "string" || typeof fields.userId !== "string") return null;
  const { episodeId, userId, txid, task } = fields;
  return { kind: "change", change: { episodeId, userId, txid, task } };
}

/** Hands a notification to the listener's method for it. */
export function dispatchNotification(notice: Notification, listener: ChangeListener): void {
  if (notice.kind === "revoked") listener.revoked(notice.tokenHash);
  else if (notice.kind === "transactionEnded") listener.transactionEnded(notice.txid);
  else listener.change(notice.change);
}
