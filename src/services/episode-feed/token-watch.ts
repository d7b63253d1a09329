/**
 * Ends the subscriptions of revoked tokens. A subscription is authorised once, when it starts,
 * and may stay open for hours: a token revoked meanwhile must not keep it. PostgreSQL announces
 * each revocation (and each deleted token) on the changes channel, in commit order with the
 * changes, and `revoke` ends that token's subscriptions at once. Each burst that reads also
 * checks the tokens of the followers it delivers to (in the same statement), and each new
 * follower's first burst reads, so none joins past a revocation it never heard; and a periodic sweep has every open
 * subscription's token checked, so an idle one ends too, even if an announcement was missed.
 * The server hears of each revoked token (`onRevoked`) to close the WebSockets that carried its
 * subscriptions.
 */
import type { Logger } from "pino";
import type { Follower, FollowerRegistry } from "./followers.ts";

export class TokenWatch {
  readonly #followers: FollowerRegistry;
  readonly #logger: Logger;
  readonly #listeners = new Set<(tokenHash: string) => void>();
  #sweepTimer: NodeJS.Timeout | undefined;

  constructor(followers: FollowerRegistry, logger: Logger) {
    this.#followers = followers;
    this.#logger = logger;
  }

  /** Calls `listener` with each token hash found revoked; returns how to stop. */
  onRevoked(listener: (tokenHash: string) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Calls `sweep` every `everyMs` while anyone follows (the timer keeps no process alive). */
  sweepEvery(everyMs: number, sweep: () => void): void {
    this.#sweepTimer = setInterval(() => {
      if (this.#followers.size > 0) sweep();
    }, everyMs);
    this.#sweepTimer.unref();
  }

  stop(): void {
    clearInterval(this.#sweepTimer);
  }

  /**
   * Ends every subscription (not only the recipients') of each recipient's token that is not
   * among `activeTokens`, then tells the listeners.
   */
  endRevoked(recipients: Iterable<Follower>, activeTokens: Set<string>): void {
    const revoked = new Set<string>();
    for (const follower of recipients) {
      const { tokenHash } = follower.subscriber;
      if (tokenHash && !activeTokens.has(tokenHash)) revoked.add(tokenHash);
    }
    this.#end(revoked);
  }

  /** Ends every subscription of a token announced revoked (or deleted), then tells the listeners. */
  revoke(tokenHash: string): void {
    this.#end(new Set([tokenHash]));
  }

  #end(revoked: Set<string>): void {
    if (revoked.size === 0) return;
    const ended = new Map<string, number>();
    for (const follower of this.#followers.all()) {
      const { tokenHash, userId } = follower.subscriber;
      if (!tokenHash || !revoked.has(tokenHash)) continue;
      follower.stream.end();
      ended.set(userId, (ended.get(userId) ?? 0) + 1);
    }
    for (const [userId, subscriptions] of ended) {
      this.#logger.info({ userId, subscriptions }, "a revoked token's subscriptions ended");
    }
    for (const tokenHash of revoked) {
      for (const listener of this.#listeners) listener(tokenHash);
    }
  }
}

/** The tokens to check before delivering to `followers`. */
export function tokenHashesOf(followers: Iterable<Follower>): Set<string> {
  const hashes = new Set<string>();
  for (const follower of followers) {
    if (follower.subscriber.tokenHash) hashes.add(follower.subscriber.tokenHash);
  }
  return hashes;
}
