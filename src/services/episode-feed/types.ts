/**
 * What the episode feed offers the GraphQL subscriptions, and what it delivers. Kept apart from
 * the feed's parts so that each of them (scheduler, loader, followers, token watch) can name
 * these types without importing the module that wires them together.
 */
import type { EpisodeView, TaskView } from "../episodes.ts";

/** Who follows: the viewer, and the token they signed in with (null: never re-checked). */
export interface Subscriber {
  userId: string;
  tokenHash: string | null;
}

/**
 * An episode as committed, with the latest attempt of each of its tasks, loaded together: plain
 * read-only rows, as a list shows them (EpisodeRow, TaskView).
 */
export interface EpisodeUpdate {
  episode: EpisodeView;
  tasks: TaskView[];
}

export interface TaskUpdate {
  task: TaskView;
}

export interface EpisodeFeedOptions {
  /** How often the tokens of open subscriptions are checked for revocation (also on each event). */
  tokenRecheckMs?: number;
  /** Slack on a resync's "changed since": updated_at comes from the clocks of many instances. */
  resyncMarginMs?: number;
}

/**
 * The subscriptions of one instance, fed by its PubSub listener. Changes are handled in bursts,
 * one at a time: every change heard while a burst loads goes into the next one, each burst reads
 * its episodes and their tasks in one statement (however many subscribers) or applies the task
 * changes their announcements carried to the states it knows, and bursts are
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
   * Each change of one of the episode's tasks, including tasks created later: not their state
   * when it starts (the feed loads that itself, as a baseline), only what differs from it.
   * Check access first.
   */
  followTasks(subscriber: Subscriber, episodeId: string): AsyncIterableIterator<TaskUpdate>;
  /** Each change of any of the subscriber's episodes. */
  followUserEpisodes(subscriber: Subscriber): AsyncIterableIterator<EpisodeUpdate>;
  /** Called with each token hash found revoked; its subscriptions have ended by then. */
  onRevoked(listener: (tokenHash: string) => void): () => void;
  /**
   * Open subscriptions that every change committed from now on reaches: an episode or dashboard
   * subscription as soon as it starts, a task subscription once its baseline has loaded (a
   * change committed before that is part of the baseline, so it is not sent).
   */
  readonly size: number;
}

/** Thrown by follow* once the feed has stopped. */
export class FeedStoppedError extends Error {
  override name = "FeedStoppedError";
}
