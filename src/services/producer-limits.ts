import type { EntityManager } from "@mikro-orm/postgresql";
import { DomainError } from "./errors.ts";

const HOUR_MS = 3_600_000;

/**
 * A producer did something too often: `limit` times within the last hour, the most
 * `setting` allows. One more is possible at `resetsAt`. Nothing was changed.
 */
export class RateLimitError extends DomainError {
  override name = "RateLimitError";
  readonly setting: string;
  readonly limit: number;
  readonly resetsAt: Date;
  constructor(what: string, setting: string, limit: number, resetsAt: Date) {
    super(
      `At most ${limit} ${what} per hour (${setting}); the next is possible at ${resetsAt.toISOString()}`,
    );
    this.setting = setting;
    this.limit = limit;
    this.resetsAt = resetsAt;
  }
}

/**
 * Per-producer limits, counted from the database so that they hold across instances: a
 * sliding hour of the producer's episodes (`episodes.created_at`) and retries
 * (`episode_retries`). Check and write happen in one transaction holding the producer's
 * advisory lock, so concurrent requests cannot both take the last place.
 */
export async function lockProducer(tx: EntityManager, userId: string): Promise<void> {
  await tx.execute("select pg_advisory_xact_lock(hashtextextended(?, 0))", [
    `podflow:producer-limits:${userId}`,
  ]);
}

/**
 * Throws a RateLimitError when `table` holds `max` of the producer's rows created within the
 * last hour; one more is possible an hour after the oldest of those `max`.
 */
async function assertUnderHourlyLimit(
  em: EntityManager,
  limit: { table: "episodes" | "episode_retries"; what: string; setting: string },
  userId: string,
  max: number,
  since: Date,
): Promise<void> {
  const [oldest] = await em.execute<Array<{ created_at: Date }>>(
    `select created_at from ${limit.table} where user_id = ? and created_at > ?
     order by created_at desc offset ? limit 1`,
    [userId, since, max - 1],
  );
  if (oldest) {
    throw new RateLimitError(
      limit.what,
      limit.setting,
      max,
      new Date(new Date(oldest.created_at).getTime() + HOUR_MS),
    );
  }
}

/** Throws a RateLimitError when the producer created `max` episodes within the last hour. */
export async function assertEpisodeAllowance(
  em: EntityManager,
  userId: string,
  max: number,
): Promise<void> {
  await assertUnderHourlyLimit(
    em,
    { table: "episodes", what: "new episodes", setting: "PODFLOW_MAX_EPISODES_PER_HOUR" },
    userId,
    max,
    new Date(Date.now() - HOUR_MS),
  );
}

/**
 * Records one retry of the producer's, or throws a RateLimitError when they made `max` within
 * the last hour. Call inside the retry's transaction, after lockProducer: a refused or rolled
 * back retry is not counted.
 */
export async function recordRetry(
  tx: EntityManager,
  userId: string,
  episodeId: string,
  max: number,
): Promise<void> {
  const now = Date.now();
  const since = new Date(now - HOUR_MS);
  await assertUnderHourlyLimit(
    tx,
    { table: "episode_retries", what: "retries", setting: "PODFLOW_MAX_RETRIES_PER_HOUR" },
    userId,
    max,
    since,
  );
  // The producer's log needs no more than the last hour.
  await tx.execute("delete from episode_retries where user_id = ? and created_at <= ?", [
    userId,
    since,
  ]);
  await tx.execute(
    "insert into episode_retries (user_id, episode_id, created_at) values (?, ?, ?)",
    [userId, episodeId, new Date(now)],
  );
}
