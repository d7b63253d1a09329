/**
 * The episode feed: GraphQL subscriptions of one instance, fed by its PubSub listener. This file
 * only wires the parts together, each readable alone:
 * - scheduler.ts: changes and other work gathered into bursts, run one at a time, in order;
 * - loader.ts: what a burst reads from the database (episodes, tasks, tokens) in one round;
 * - known-states.ts: the states it knows, to which changes announced in full are applied
 *   without reading;
 * - followers.ts / delivery.ts: the three kinds of follower, and what each is sent;
 * - token-watch.ts: ending the subscriptions of revoked tokens.
 */
import type { Logger } from "pino";
import type { Orm } from "../../database/orm.ts";
import { FeedSubscription } from "../feed-subscription.ts";
import type { ChangeListener, PubSub } from "../pubsub.ts";
import { deliverBurst, planBurst } from "./delivery.ts";
import { type Follower, FollowerRegistry } from "./followers.ts";
import { KnownStates, taskChangeOf, txidOf } from "./known-states.ts";
import { loadBurst } from "./loader.ts";
import { type Burst, BurstScheduler } from "./scheduler.ts";
import { TokenWatch } from "./token-watch.ts";
import {
  type EpisodeFeed,
  type EpisodeFeedOptions,
  type EpisodeUpdate,
  FeedStoppedError,
  type TaskUpdate,
} from "./types.ts";

export {
  type EpisodeFeed,
  type EpisodeFeedOptions,
  type EpisodeUpdate,
  FeedStoppedError,
  type Subscriber,
  type TaskUpdate,
} from "./types.ts";

const DEFAULT_TOKEN_RECHECK_MS = 30_000;
const DEFAULT_RESYNC_MARGIN_MS = 60_000;

export function createEpisodeFeed(
  deps: { orm: Orm; pubsub: PubSub; logger: Logger },
  options: EpisodeFeedOptions = {},
): EpisodeFeed {
  const { orm, pubsub, logger } = deps;
  const tokenRecheckMs = options.tokenRecheckMs ?? DEFAULT_TOKEN_RECHECK_MS;
  const resyncMarginMs = options.resyncMarginMs ?? DEFAULT_RESYNC_MARGIN_MS;

  const followers = new FollowerRegistry();
  const known = new KnownStates();
  const tokenWatch = new TokenWatch(followers, logger);
  const scheduler = new BurstScheduler(runBurst, logger);
  let stopped = false;

  async function runBurst(burst: Burst): Promise<void> {
    // After a resync, announcements may have been missed: no known state can be trusted.
    if (burst.resyncSince) known.clear();
    const plan = planBurst(burst, followers, resyncMarginMs, (id) => known.has(id));
    for (const episodeId of plan.unfollowed) known.forget(episodeId);
    const updates = new Map<string, EpisodeUpdate>();
    for (const [episodeId, changes] of plan.carried) {
      const update = known.advance(episodeId, changes);
      if (update) updates.set(episodeId, update);
    }
    let episodeIds = plan.episodeIds;
    let recentlyChanged = new Set<string>();
    if (plan.load) {
      const loaded = await loadBurst(orm, plan.load);
      if (stopped) return;
      tokenWatch.endRevoked(plan.recipients, loaded.activeTokens);
      for (const episodeId of loaded.episodeIds) {
        const update = loaded.updates.get(episodeId);
        if (update && loaded.snapshot) known.loaded(episodeId, update, loaded.snapshot);
        else known.forget(episodeId);
        if (update) updates.set(episodeId, update);
      }
      // A resync's finds come after the episodes the burst heard of.
      episodeIds = [...new Set([...episodeIds, ...loaded.episodeIds])];
      recentlyChanged = loaded.recentlyChanged;
    }
    deliverBurst(burst, followers, { episodeIds, updates, recentlyChanged });
  }

  function follow<F extends Follower>(make: (firstBurst: number) => F): F["stream"] {
    if (stopped) throw new FeedStoppedError("Podflow is shutting down; subscribe again");
    const follower = make(scheduler.position);
    followers.add(follower);
    return follower.stream;
  }

  function remove(follower: Follower): void {
    if (followers.remove(follower)) scheduler.forget(follower);
  }

  const listener: ChangeListener = {
    change: (change) =>
      scheduler.changed(change.episodeId, change.userId, taskChangeOf(change.txid, change.task)),
    revoked: (tokenHash) => tokenWatch.revoke(tokenHash),
    transactionEnded: (text) => {
      const txid = txidOf(text);
      if (txid !== null) scheduler.transactionEnded(txid);
    },
    resync: (since) => scheduler.resync(since),
  };

  return {
    async start() {
      await pubsub.listen(listener);
      tokenWatch.sweepEvery(tokenRecheckMs, () => scheduler.sweepTokens());
    },

    async stop() {
      if (stopped) return;
      stopped = true;
      const drained = scheduler.stop();
      tokenWatch.stop();
      for (const follower of followers.all()) follower.stream.end();
      await drained;
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
        scheduler.prime(follower);
        return follower;
      });
    },

    followTasks(subscriber, episodeId) {
      return follow((firstBurst) => {
        const follower: Follower = {
          kind: "tasks",
          subscriber,
          episodeId,
          firstBurst,
          seen: new Map(),
          primed: false,
          stream: new FeedSubscription<TaskUpdate>(() => remove(follower)),
        };
        scheduler.prime(follower);
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
        // No first state, but its token is checked once it hears: a revocation announced
        // between the subscription's authorisation and now has passed it by.
        scheduler.prime(follower);
        return follower;
      });
    },

    onRevoked(revokedListener) {
      return tokenWatch.onRevoked(revokedListener);
    },

    get size() {
      return followers.hearing;
    },
  };
}
