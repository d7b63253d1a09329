/**
 * The episode feed: GraphQL subscriptions of one instance, fed by its PubSub listener. This file
 * only wires the parts together, each readable alone:
 * - scheduler.ts: changes and other work gathered into bursts, run one at a time, in order;
 * - loader.ts: what a burst reads from the database (episodes, tasks, tokens) in one round;
 * - followers.ts / delivery.ts: the three kinds of follower, and what each is sent;
 * - token-watch.ts: ending the subscriptions of revoked tokens.
 */
import type { Logger } from "pino";
import type { Orm } from "../../database/orm.ts";
import { FeedSubscription } from "../feed-subscription.ts";
import type { ChangeListener, PubSub } from "../pubsub.ts";
import { deliverBurst, planBurst } from "./delivery.ts";
import { type Follower, FollowerRegistry } from "./followers.ts";
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
  const tokenWatch = new TokenWatch(followers, logger);
  const scheduler = new BurstScheduler(runBurst, logger);
  let stopped = false;

  async function runBurst(burst: Burst): Promise<void> {
    const plan = planBurst(burst, followers, resyncMarginMs);
    const loaded = await loadBurst(orm, plan.load);
    if (stopped) return;
    tokenWatch.endRevoked(plan.recipients, loaded.activeTokens);
    deliverBurst(burst, followers, loaded);
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
    change: (change) => scheduler.changed(change.episodeId, change.userId),
    revoked: (tokenHash) => tokenWatch.revoke(tokenHash),
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
