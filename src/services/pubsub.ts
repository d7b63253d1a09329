import type { EntityManager } from "@mikro-orm/postgresql";

/**
 * A committed change of an episode or of one of its tasks, as announced to subscribers: ids
 * only (NOTIFY payloads must stay under 8000 bytes); each instance loads what its subscribers
 * need.
 */
export interface EpisodeChange {
  episodeId: string;
  /** The episode's owner: who may see the change. */
  userId: string;
  /** The task that changed, when it was a task. */
  taskId: string | null;
}

/**
 * Fan-out of episode changes to every instance. This is the only file that knows the transport
 * (PostgreSQL LISTEN/NOTIFY); another one (Redis, say) replaces it here.
 */
export interface PubSub {
  /**
   * Announces a change from inside the EntityManager's current transaction: subscribers hear of
   * it after the commit, in commit order, and never of a rollback.
   */
  publish(em: EntityManager, change: EpisodeChange): Promise<void>;
}

/** The NOTIFY channel every instance listens on. */
export const CHANGES_CHANNEL = "podflow_episode_changes";

export function createPostgresPubSub(): PubSub {
  return {
    async publish(em, change) {
      await em.execute("select pg_notify(?, ?)", [CHANGES_CHANNEL, JSON.stringify(change)]);
    },
  };
}
