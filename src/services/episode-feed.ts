import { setTimeout as sleep } from "node:timers/promises";
import type { EntityManager } from "@mikro-orm/postgresql";
import type { Logger } from "pino";
import type { Orm } from "../database/orm.ts";
import { Episode } from "../entities/episode.entity.ts";
import { ProcessingTask } from "../entities/processing-task.entity.ts";
import { latestTasksByEpisode } from "./episodes.ts";
import { FeedSubscription } from "./feed-subscription.ts";
import type { ChangeListener, EpisodeChange, PubSub } from "./pubsub.ts";
import { activeTokenHashes } from "./subscriber-tokens.ts";

/** Who follows: the viewer, and the token they signed in with (null: never re-checked). */
export interface Subscriber {
  userId: string;
  tokenHash: string | null;
}

/** An episode as committed, with the latest attempt of each of its tasks, loaded together. */
export interface EpisodeUpdate {
  episode: Episode;
  tasks: ProcessingTask[];
}

export interface TaskUpdate {
  task: ProcessingTask;
}

export interface EpisodeFeedOptions {
  /** How often the tokens of open subscriptions are checked for revocation (also on each event). */
  tokenRecheckMs?: number;
  /** Slack on a resync's "changed since": updated_at comes from the clocks of many instances. */
  resyncMarginMs?: number;
}

/**
 * The subscriptions of one instance, fed by its PubSub listener. Changes are handled in bursts,
 * one at a time: every change heard while a burst loads goes into the next one, each burst loads
 * its episodes and their tasks with one query each (however many subscribers), and bursts are
 * delivered in the order they ran, so what a subscriber sees of one episode follows commit order.
 */
export interface EpisodeFeed {
  /** Starts listening; changes committed once it resolves reach subscribers. */
  start(): Promise<void>;
  /** Completes every subscription and refuses new ones. */
  stop(): Promise<void>;
  /** The episode's current state, then its state after each change. Check access first. */
  followEpisode(subscriber: Subscriber, episodeId: string): AsyncIterableIterator<EpisodeUpdate>;
  /**
   * Each change of one of the episode's tasks after `current` (the tasks as the caller saw
   * them), counting from `since` — the feed's `position()` taken before `current` was loaded,
   * so that a change committed while it loaded is not missed.
   */
  followTasks(
    subscriber: Subscriber,
    episodeId: string,
    current: readonly ProcessingTask[],
    since: number,
  ): AsyncIterableIterator<TaskUpdate>;
  /** Where the feed is now: changes heard from here on go into bursts numbered at least this. */
  position(): number;
  /** Each change of any of the subscriber's episodes. */
  followUserEpisodes(subscriber: Subscriber): AsyncIterableIterator<EpisodeUpdate>;
  /** Called with each token hash found revoked; its subscriptions have ended by then. */
  onRevoked(listener: (tokenHash: string) => void): () => void;
  /** Open subscriptions. */
  readonly size: number;
}

/** Thrown by follow* once the feed has stopped. */
export class FeedStoppedError extends Error {
  override name = "FeedStoppedError";
}

type Follower = {
  subscriber: Subscriber;
  /** The first burst that may deliver to it: bursts that loaded before it existed may not. */
  firstBurst: number;
} & (
  | { kind: "episode"; episodeId: string; stream: FeedSubscription<EpisodeUpdate>; primed: boolean }
  | {
      kind: "tasks";
      episodeId: string;
      stream: FeedSubscription<TaskUpdate>;
      /** Task id → fingerprint of the state last sent (or seen when subscribing). */
      seen: Map<string, string>;
    }
  | { kind: "user"; stream: FeedSubscription<EpisodeUpdate> }
);

interface Burst {
  number: number;
  /** Changed episode → its owner, in the order of their latest change. */
  changed: Map<string, string>;
  /** Episode followers waiting for their first state. */
  primes: Set<Follower>;
  /** Set when the listener reconnected: everyone gets the current state of what they follow. */
  resyncSince: Date | null;
  /** Check the tokens of every subscription, not only of those this burst delivers to. */
  sweepTokens: boolean;
}

const DEFAULT_TOKEN_RECHECK_MS = 30_000;
const DEFAULT_RESYNC_MARGIN_MS = 60_000;

export function createEpisodeFeed(
  deps: { orm: Orm; pubsub: PubSub; logger: Logger },
  options: EpisodeFeedOptions = {},
): EpisodeFeed {
  const { orm, pubsub, logger } = deps;
  const tokenRecheckMs = options.tokenRecheckMs ?? DEFAULT_TOKEN_RECHECK_MS;
  const resyncMarginMs = options.resyncMarginMs ?? DEFAULT_RESYNC_MARGIN_MS;

  /** Followers by topic: `episode:<id>` (episode and task followers), `user:<id>`. */
  const topics = new Map<string, Set<Follower>>();
  const revokedListeners = new Set<(tokenHash: string) => void>();
  let pending: Burst = emptyBurst(1);
  let draining: Promise<void> | null = null;
  let stopped = false;
  const stopping = new AbortController();
  let sweepTimer: NodeJS.Timeout | undefined;
  let size = 0;

  function emptyBurst(number: number): Burst {
    return { number, changed: new Map(), primes: new Set(), resyncSince: null, sweepTokens: false };
  }

  function hasWork(burst: Burst): boolean {
    return (
      burst.changed.size > 0 ||
      burst.primes.size > 0 ||
      burst.resyncSince != null ||
      burst.sweepTokens
    );
  }

  function topicOf(follower: Follower): string {
    return follower.kind === "user"
      ? `user:${follower.subscriber.userId}`
      : `episode:${follower.episodeId}`;
  }

  function add(follower: Follower): void {
    const topic = topicOf(follower);
    const followers = topics.get(topic) ?? new Set();
    followers.add(follower);
    topics.set(topic, followers);
    size += 1;
  }

  function remove(follower: Follower): void {
    const topic = topicOf(follower);
    const followers = topics.get(topic);
    if (!followers?.delete(follower)) return;
    size -= 1;
    if (followers.size === 0) topics.delete(topic);
    pending.primes.delete(follower);
  }

  function follow<F extends Follower>(make: (firstBurst: number) => F): F["stream"] {
    if (stopped) throw new FeedStoppedError("Podflow is shutting down; subscribe again");
    const follower = make(pending.number);
    add(follower);
    return follower.stream;
  }

  function schedule(): void {
    if (draining || stopped || !hasWork(pending)) return;
    // setImmediate: the notifications of one network read join the same burst.
    draining = new Promise<void>((resolve) => setImmediate(resolve)).then(drain).finally(() => {
      draining = null;
      schedule();
    });
  }

  async function drain(): Promise<void> {
    let failures = 0;
    while (!stopped && hasWork(pending)) {
      const burst = pending;
      pending = emptyBurst(burst.number + 1);
      try {
        await deliver(burst);
        failures = 0;
      } catch (error) {
        failures += 1;
        logger.error(
          { err: error, failures, episodeIds: [...burst.changed.keys()].slice(0, 50) },
          "could not load episode changes; retrying",
        );
        putBack(burst);
        await sleep(Math.min(5_000, 100 * 2 ** failures), undefined, {
          signal: stopping.signal,
        }).catch(() => {});
      }
    }
  }

  /** A failed burst's work joins the next one (whose loads are fresher still). */
  function putBack(burst: Burst): void {
    for (const [episodeId, userId] of burst.changed) {
      if (!pending.changed.has(episodeId)) pending.changed.set(episodeId, userId);
    }
    for (const follower of burst.primes) if (!follower.stream.ended) pending.primes.add(follower);
    pending.resyncSince = earliest(pending.resyncSince, burst.resyncSince);
    pending.sweepTokens ||= burst.sweepTokens;
  }

  function followersOf(topic: string, burst: Burst): Follower[] {
    return [...(topics.get(topic) ?? [])].filter((follower) => follower.firstBurst <= burst.number);
  }

  async function deliver(burst: Burst): Promise<void> {
    const episodeIds = new Set<string>();
    const recipients = new Set<Follower>(burst.primes);
    for (const [episodeId, userId] of burst.changed) {
      const followers = [
        ...followersOf(`episode:${episodeId}`, burst),
        ...followersOf(`user:${userId}`, burst),
      ];
      if (followers.length === 0) continue;
      episodeIds.add(episodeId);
      for (const follower of followers) recipients.add(follower);
    }
    for (const follower of burst.primes) {
      if (follower.kind !== "user") episodeIds.add(follower.episodeId);
    }
    let recentlyChanged = new Set<string>();
    if (burst.resyncSince) {
      for (const followers of topics.values()) {
        for (const follower of followers) {
          if (follower.firstBurst > burst.number) continue;
          recipients.add(follower);
          if (follower.kind !== "user") episodeIds.add(follower.episodeId);
        }
      }
      const since = new Date(burst.resyncSince.getTime() - resyncMarginMs);
      recentlyChanged = await changedSince(orm.em.fork(), usersFollowed(burst), since);
      for (const id of recentlyChanged) episodeIds.add(id);
    }
    if (burst.sweepTokens) {
      for (const followers of topics.values())
        for (const follower of followers) recipients.add(follower);
    }

    const ids = [...episodeIds];
    const [episodes, tasks, activeTokens] = await Promise.all([
      ids.length ? orm.em.fork().find(Episode, { id: { $in: ids } }) : [],
      ids.length ? latestTasksByEpisode(orm.em.fork(), ids) : new Map<string, ProcessingTask[]>(),
      activeTokenHashes(orm.em.fork(), tokenHashesOf(recipients)),
    ]);
    if (stopped) return;
    endRevoked(recipients, activeTokens);

    const byId = new Map(episodes.map((episode) => [episode.id, episode]));
    for (const episodeId of ids) {
      const episode = byId.get(episodeId);
      const changed = burst.changed.has(episodeId) || burst.resyncSince != null;
      const followers = followersOf(`episode:${episodeId}`, burst);
      if (!episode) {
        // Gone: its followers have nothing more to hear.
        for (const follower of followers) {
          if (changed || burst.primes.has(follower)) follower.stream.end();
        }
        continue;
      }
      const update: EpisodeUpdate = { episode, tasks: tasks.get(episodeId) ?? [] };
      for (const follower of followers) {
        if (follower.subscriber.userId !== episode.user.id) {
          follower.stream.end();
        } else if (follower.kind === "episode") {
          const priming = burst.primes.has(follower);
          if (priming || (follower.primed && changed)) follower.stream.push(episode.id, update);
          if (priming) follower.primed = true;
        } else if (follower.kind === "tasks" && changed) {
          sendTaskChanges(follower, update.tasks, burst.resyncSince != null);
        }
      }
      if (burst.changed.has(episodeId) || recentlyChanged.has(episodeId)) {
        for (const follower of followersOf(`user:${episode.user.id}`, burst)) {
          if (follower.kind === "user") follower.stream.push(episode.id, update);
        }
      }
    }
  }

  function usersFollowed(burst: Burst): string[] {
    const users = new Set<string>();
    for (const [topic, followers] of topics) {
      if (!topic.startsWith("user:")) continue;
      for (const follower of followers) {
        if (follower.firstBurst <= burst.number) users.add(follower.subscriber.userId);
      }
    }
    return [...users];
  }

  function endRevoked(recipients: Set<Follower>, activeTokens: Set<string>): void {
    const revoked = new Set<string>();
    for (const follower of recipients) {
      const { tokenHash } = follower.subscriber;
      if (tokenHash && !activeTokens.has(tokenHash)) revoked.add(tokenHash);
    }
    if (revoked.size === 0) return;
    const ended = new Map<string, number>();
    for (const followers of [...topics.values()]) {
      for (const follower of [...followers]) {
        const { tokenHash, userId } = follower.subscriber;
        if (!tokenHash || !revoked.has(tokenHash)) continue;
        follower.stream.end();
        ended.set(userId, (ended.get(userId) ?? 0) + 1);
      }
    }
    for (const [userId, subscriptions] of ended) {
      logger.info({ userId, subscriptions }, "a revoked token's subscriptions ended");
    }
    for (const tokenHash of revoked) {
      for (const listener of revokedListeners) listener(tokenHash);
    }
  }

  const listener: ChangeListener = {
    change(change: EpisodeChange) {
      // Re-inserted, so the burst's order is that of each episode's latest change.
      pending.changed.delete(change.episodeId);
      pending.changed.set(change.episodeId, change.userId);
      schedule();
    },
    resync(since: Date) {
      pending.resyncSince = earliest(pending.resyncSince, since);
      schedule();
    },
  };

  return {
    async start() {
      await pubsub.listen(listener);
      sweepTimer = setInterval(() => {
        pending.sweepTokens = size > 0;
        schedule();
      }, tokenRecheckMs);
      sweepTimer.unref();
    },

    async stop() {
      if (stopped) return;
      stopped = true;
      stopping.abort();
      clearInterval(sweepTimer);
      for (const followers of [...topics.values()]) {
        for (const follower of [...followers]) follower.stream.end();
      }
      await draining;
    },

    followEpisode(subscriber, episodeId) {
      return follow((firstBurst) => {
        const follower: Follower = {
          kind: "episode",
          subscriber,
          episodeId,
          firstBurst,
          primed: false,
          stream: new FeedSubscription<EpisodeUpdate>(() => remove(follower)),
        };
        pending.primes.add(follower);
        schedule();
        return follower;
      });
    },

    position() {
      return pending.number;
    },

    followTasks(subscriber, episodeId, current, since) {
      return follow((firstBurst) => {
        const follower: Follower = {
          kind: "tasks",
          subscriber,
          episodeId,
          firstBurst: Math.min(since, firstBurst),
          seen: new Map(current.map((task) => [task.id, taskFingerprint(task)])),
          stream: new FeedSubscription<TaskUpdate>(() => remove(follower)),
        };
        return follower;
      });
    },

    followUserEpisodes(subscriber) {
      return follow((firstBurst) => {
        const follower: Follower = {
          kind: "user",
          subscriber,
          firstBurst,
          stream: new FeedSubscription<EpisodeUpdate>(() => remove(follower)),
        };
        return follower;
      });
    },

    onRevoked(revokedListener) {
      revokedListeners.add(revokedListener);
      return () => revokedListeners.delete(revokedListener);
    },

    get size() {
      return size;
    },
  };
}

/**
 * Sends the tasks that changed since this follower last heard of them (all of them after a
 * resync). Whatever the announcement said, a task created or changed shows here.
 */
function sendTaskChanges(
  follower: Extract<Follower, { kind: "tasks" }>,
  tasks: readonly ProcessingTask[],
  all: boolean,
): void {
  for (const task of tasks) {
    const fingerprint = taskFingerprint(task);
    if (!all && follower.seen.get(task.id) === fingerprint) continue;
    follower.seen.set(task.id, fingerprint);
    follower.stream.push(task.id, { task });
  }
}

/** Every field a ProcessingTask shows in GraphQL that can change. */
function taskFingerprint(task: ProcessingTask): string {
  return JSON.stringify([
    task.status,
    task.progress,
    task.errorMessage,
    task.outputUrl,
    task.attempt,
    task.updatedAt.getTime(),
  ]);
}

function tokenHashesOf(followers: Iterable<Follower>): Set<string> {
  const hashes = new Set<string>();
  for (const follower of followers) {
    if (follower.subscriber.tokenHash) hashes.add(follower.subscriber.tokenHash);
  }
  return hashes;
}

function earliest(a: Date | null, b: Date | null): Date | null {
  if (!a) return b;
  if (!b) return a;
  return a < b ? a : b;
}

/**
 * The users' episodes that changed (or whose tasks did) since `since`, for a resync of their
 * dashboard feeds: two indexed lookups, however many users.
 */
async function changedSince(
  em: EntityManager,
  userIds: string[],
  since: Date,
): Promise<Set<string>> {
  if (userIds.length === 0) return new Set();
  const [episodes, tasks] = await Promise.all([
    em.find(Episode, { user: { $in: userIds }, updatedAt: { $gte: since } }, { fields: ["id"] }),
    em
      .fork()
      .find(
        ProcessingTask,
        { episode: { user: { $in: userIds } }, updatedAt: { $gte: since } },
        { fields: ["episode"] },
      ),
  ]);
  return new Set([
    ...episodes.map((episode) => episode.id),
    ...tasks.map((task) => task.episode.id),
  ]);
}
