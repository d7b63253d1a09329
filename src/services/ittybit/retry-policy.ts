export interface RetrySettings {
  /** Retries after the first attempt. */
  limit: number;
  /** Delay before the first retry; it doubles on each further one. */
  baseDelayMs: number;
  /** Ceiling of the computed backoff (a server's Retry-After is honoured beyond it). */
  maxDelayMs: number;
  /** No retry starts once this much time has passed since the first attempt began. */
  totalTimeoutMs: number;
}

// Ittybit's own SDK retries twice from 1 s; we allow a little more because a job waiting on
// Ittybit can afford it, and a minute overall keeps a job from hanging on a sick API.
export const DEFAULT_RETRY_SETTINGS: RetrySettings = {
  limit: 3,
  baseDelayMs: 1_000,
  maxDelayMs: 15_000,
  totalTimeoutMs: 60_000,
};

export interface RetryAttempt {
  /** 1 for the first retry. */
  attempt: number;
  elapsedMs: number;
  /** What the server asked for in Retry-After, when it did. */
  retryAfterMs?: number;
}

/**
 * Capped exponential backoff with "equal jitter": half the step is fixed, half random, so
 * concurrent workers spread out without any of them retrying immediately.
 */
export function backoffDelay(
  attempt: number,
  settings: RetrySettings,
  random: () => number = Math.random,
): number {
  const step = Math.min(settings.maxDelayMs, settings.baseDelayMs * 2 ** (attempt - 1));
  return Math.max(1, Math.round(step / 2 + (random() * step) / 2));
}

/**
 * The delay before the next attempt, or 0 to give up. A Retry-After that cannot be honoured
 * within the time budget ends the retries: the caller gets the error (with `retryAfterMs`) and
 * its job can come back later, instead of hammering an API that asked us to wait.
 */
export function retryDelay(
  { attempt, elapsedMs, retryAfterMs }: RetryAttempt,
  settings: RetrySettings,
  random: () => number = Math.random,
): number {
  if (attempt > settings.limit) return 0;
  const delay =
    retryAfterMs === undefined
      ? backoffDelay(attempt, settings, random)
      : Math.max(1, retryAfterMs);
  return elapsedMs + delay > settings.totalTimeoutMs ? 0 : delay;
}
