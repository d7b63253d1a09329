/**
 * The feed's bursts. Everything the feed must do — a change heard, a resync after the listener
 * reconnected, a follower waiting for its first state, a token sweep — goes into the pending
 * burst, and one burst runs at a time: whatever is heard while a burst loads goes into the next.
 * So a burst reads each of its episodes at most once however many changes it merged, and bursts are
 * delivered in the order they ran, which keeps what a subscriber sees of one episode in commit
 * order. A burst that fails (the database is away) is merged into the next one, whose loads
 * are fresher still, and retried with a growing pause.
 */

import { setTimeout as sleep } from "node:timers/promises";
import type { Logger } from "pino";
import { runInRequest } from "../../request-context.ts";
import type { Follower } from "./followers.ts";
import type { TaskChange } from "./known-states.ts";

/** What a burst heard of one episode. */
export interface EpisodeChanges {
  /** The episode's owner. */
  userId: string;
  /**
   * The task changes its announcements carried, in the order heard; null once one carried
   * nothing to apply (an episode's change, or a task too large to carry): the episode is read.
   */
  tasks: TaskChange[] | null;
}

export interface Burst {
  number: number;
  /** Changed episode → what was heard of it, in the order of their latest change. */
  changed: Map<string, EpisodeChanges>;
  /** Followers waiting for their first state. */
  primes: Set<Follower>;
  /**
   * Transactions whose announcements have all been heard by the time this burst runs: only
   * their carried changes may be applied (one heard in part would show a state never committed).
   */
  ended: Set<number>;
  /** Set when the listener reconnected: everyone gets the current state of what they follow. */
  resyncSince: Date | null;
  /** Check the tokens of every subscription, not only of those this burst delivers to. */
  sweepTokens: boolean;
}

const MAX_RETRY_PAUSE_MS = 5_000;

export class BurstScheduler {
  #pending: Burst = emptyBurst(1);
  #draining: Promise<void> | null = null;
  #stopped = false;
  readonly #stopping = new AbortController();
  readonly #deliver: (burst: Burst) => Promise<void>;
  readonly #logger: Logger;

  /** `deliver` runs each burst: loads what it needs and sends it; a rejection retries it. */
  constructor(deliver: (burst: Burst) => Promise<void>, logger: Logger) {
    this.#deliver = deliver;
    this.#logger = logger;
  }

  /** Where the feed is now: what is heard from here on goes into bursts numbered at least this. */
  get position(): number {
    return this.#pending.number;
  }

  /** A committed change of the episode, or of one of its tasks (`task`, when it carried one). */
  changed(episodeId: string, userId: string, task: TaskChange | null = null): void {
    const heard = this.#pending.changed.get(episodeId) ?? { userId, tasks: [] };
    heard.userId = userId;
    if (task === null) heard.tasks = null;
    else heard.tasks?.push(task);
    // Re-inserted, so the burst's order is that of each episode's latest change.
    this.#pending.changed.delete(episodeId);
    this.#pending.changed.set(episodeId, heard);
    this.#schedule();
  }

  /** Every change transaction `txid` made has been announced (no burst of its own). */
  transactionEnded(txid: number): void {
    this.#pending.ended.add(txid);
  }

  /** Changes committed from `since` on may have been missed. */
  resync(since: Date): void {
    this.#pending.resyncSince = earliest(this.#pending.resyncSince, since);
    this.#schedule();
  }

  /** The follower needs its first state. */
  prime(follower: Follower): void {
    this.#pending.primes.add(follower);
    this.#schedule();
  }

  /** The follower left: no burst still to run need prime it. */
  forget(follower: Follower): void {
    this.#pending.primes.delete(follower);
  }

  /** Every open subscription's token should be checked. */
  sweepTokens(): void {
    this.#pending.sweepTokens = true;
    this.#schedule();
  }

  /** Runs no further burst; resolves once the one running (if any) has finished. */
  stop(): Promise<void> {
    this.#stopped = true;
    this.#stopping.abort();
    return this.#draining ?? Promise.resolve();
  }

  #schedule(): void {
    if (this.#draining || this.#stopped || !hasWork(this.#pending)) return;
    // setImmediate: the notifications of one network read join the same burst. A burst serves
    // every subscriber, so its work (and its log lines) belongs to no request, whichever
    // subscription's start happened to schedule it.
    this.#draining = runInRequest(undefined, () =>
      new Promise<void>((resolve) => setImmediate(resolve))
        .then(() => this.#drain())
        .finally(() => {
          this.#draining = null;
          this.#schedule();
        }),
    );
  }

  async #drain(): Promise<void> {
    let failures = 0;
    while (!this.#stopped && hasWork(this.#pending)) {
      const burst = this.#pending;
      this.#pending = emptyBurst(burst.number + 1);
      try {
        await this.#deliver(burst);
        failures = 0;
      } catch (error) {
        failures += 1;
        this.#logger.error(
          { err: error, failures, episodeIds: [...burst.changed.keys()].slice(0, 50) },
          "could not load episode changes; retrying",
        );
        this.#putBack(burst);
        await sleep(Math.min(MAX_RETRY_PAUSE_MS, 100 * 2 ** failures), undefined, {
          signal: this.#stopping.signal,
        }).catch(() => {});
      }
    }
  }

  /**
   * A failed burst's work joins the next one (whose loads are fresher still): its episodes are
   * read, whatever their announcements carried.
   */
  #putBack(burst: Burst): void {
    const pending = this.#pending;
    for (const [episodeId, { userId }] of burst.changed) {
      // The owner heard later (still pending) is the newer one.
      pending.changed.set(episodeId, {
        userId: pending.changed.get(episodeId)?.userId ?? userId,
        tasks: null,
      });
    }
    for (const follower of burst.primes) if (!follower.stream.ended) pending.primes.add(follower);
    pending.resyncSince = earliest(pending.resyncSince, burst.resyncSince);
    pending.sweepTokens ||= burst.sweepTokens;
  }
}

function emptyBurst(number: number): Burst {
  return {
    number,
    changed: new Map(),
    ended: new Set(),
    primes: new Set(),
    resyncSince: null,
    sweepTokens: false,
  };
}

function hasWork(burst: Burst): boolean {
  return (
    burst.changed.size > 0 ||
    burst.primes.size > 0 ||
    burst.resyncSince != null ||
    burst.sweepTokens
  );
}

function earliest(a: Date | null, b: Date | null): Date | null {
  if (!a) return b;
  if (!b) return a;
  return a < b ? a : b;
}
