/**
 * Who follows what on this instance. Three kinds of follower, one per GraphQL subscription:
 * - `episode` (episodeUpdated): one episode, its current state first;
 * - `tasks` (taskUpdated): the tasks of one episode, each time one of them changes (their state
 *   when it starts is loaded as its baseline, not sent);
 * - `user` (myEpisodesUpdated): every episode of one user.
 * They are kept by topic (`episode:<id>` for the first two, `user:<id>`) so that a burst finds
 * the followers of a changed episode without looking at anyone else's. A follower only hears
 * bursts numbered from `firstBurst` on: a burst that loaded before it existed may hold a state
 * older than the one it started from.
 */
import type { FeedSubscription } from "../feed-subscription.ts";
import type { EpisodeUpdate, Subscriber, TaskUpdate } from "./types.ts";

export type Follower = {
  subscriber: Subscriber;
  /** The first burst that may deliver to it: bursts that loaded before it existed may not. */
  firstBurst: number;
} & (
  | { kind: "episode"; episodeId: string; stream: FeedSubscription<EpisodeUpdate>; primed: boolean }
  | {
      kind: "tasks";
      episodeId: string;
      stream: FeedSubscription<TaskUpdate>;
      /** Task id → fingerprint of the state last sent (or loaded as the baseline). */
      seen: Map<string, string>;
      /** Its baseline has loaded: from now on it is sent what differs from `seen`. */
      primed: boolean;
    }
  | { kind: "user"; stream: FeedSubscription<EpisodeUpdate> }
);

export type TasksFollower = Extract<Follower, { kind: "tasks" }>;

export const episodeTopic = (episodeId: string) => `episode:${episodeId}`;
export const userTopic = (userId: string) => `user:${userId}`;

/** The open followers of one instance, by topic. */
export class FollowerRegistry {
  readonly #topics = new Map<string, Set<Follower>>();
  #size = 0;

  /** Open followers, of every kind. */
  get size(): number {
    return this.#size;
  }

  add(follower: Follower): void {
    const topic = topicOf(follower);
    const followers = this.#topics.get(topic) ?? new Set();
    followers.add(follower);
    this.#topics.set(topic, followers);
    this.#size += 1;
  }

  /**
   * The open followers that every change committed from now on reaches: all but task followers
   * whose baseline has not loaded yet (a change committed meanwhile becomes part of it).
   */
  get hearing(): number {
    let waiting = 0;
    for (const follower of this.all()) if (follower.kind === "tasks" && !follower.primed) waiting++;
    return this.#size - waiting;
  }

  /** False when it was not (or no longer) here. */
  remove(follower: Follower): boolean {
    const topic = topicOf(follower);
    const followers = this.#topics.get(topic);
    if (!followers?.delete(follower)) return false;
    this.#size -= 1;
    if (followers.size === 0) this.#topics.delete(topic);
    return true;
  }

  /** The followers of `topic` that burst number `burst` may deliver to. */
  of(topic: string, burst: number): Follower[] {
    const followers: Follower[] = [];
    for (const follower of this.#topics.get(topic) ?? []) {
      if (follower.firstBurst <= burst) followers.push(follower);
    }
    return followers;
  }

  /** Every open follower; with `burst`, only those that burst may deliver to. */
  all(burst = Number.POSITIVE_INFINITY): Follower[] {
    const all: Follower[] = [];
    for (const followers of this.#topics.values()) {
      for (const follower of followers) if (follower.firstBurst <= burst) all.push(follower);
    }
    return all;
  }

  /** The users whose dashboard feed (myEpisodesUpdated) burst number `burst` delivers to. */
  usersFollowed(burst: number): string[] {
    const users = new Set<string>();
    for (const [topic, followers] of this.#topics) {
      if (!topic.startsWith("user:")) continue;
      for (const follower of followers) {
        if (follower.firstBurst <= burst) users.add(follower.subscriber.userId);
      }
    }
    return [...users];
  }
}

function topicOf(follower: Follower): string {
  return follower.kind === "user"
    ? userTopic(follower.subscriber.userId)
    : episodeTopic(follower.episodeId);
}
