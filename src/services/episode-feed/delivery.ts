/**
 * What one burst sends to whom. Before loading, `planBurst` works out which followers the burst
 * reaches and which episodes it must load for them (only episodes someone here follows). Once
 * loaded, `deliverBurst` gives each kind of follower what its subscription promises:
 * - an episode follower its first state when the burst primes it, then the episode's state
 *   after each change;
 * - a tasks follower nothing when the burst primes it (its tasks' state becomes its baseline),
 *   then each task whose state differs from the one it last heard of (after a resync, all of
 *   them: changes may have been missed, and a repeat does no harm);
 * - a user follower each of the user's episodes that changed.
 * A follower whose episode is gone, or belongs to someone else, is ended: it may hear no more.
 */
import type { TaskView } from "../episodes.ts";
import {
  episodeTopic,
  type Follower,
  type FollowerRegistry,
  type TasksFollower,
  userTopic,
} from "./followers.ts";
import type { TaskChange } from "./known-states.ts";
import type { BurstLoad, BurstLoadRequest } from "./loader.ts";
import type { Burst } from "./scheduler.ts";
import { tokenHashesOf } from "./token-watch.ts";
import type { EpisodeUpdate, TaskUpdate } from "./types.ts";

export interface BurstPlan {
  /** The followers the burst may deliver to (or whose token it checks). */
  recipients: Set<Follower>;
  /** The episodes it delivers, in order (a resync may find more, delivered after these). */
  episodeIds: string[];
  /** What it must read; null when the announcements carried all it delivers. */
  load: BurstLoadRequest | null;
  /** The episodes whose state is their known one with these changes (see known-states.ts). */
  carried: Map<string, TaskChange[]>;
  /** Episodes announced that nobody here follows: their known state no longer holds. */
  unfollowed: string[];
}

/**
 * `resyncMarginMs`: slack on a resync's "changed since", for the clocks of many instances.
 * `isKnown`: whether the feed knows an episode's state, so its carried changes can be applied.
 */
export function planBurst(
  burst: Burst,
  followers: FollowerRegistry,
  resyncMarginMs: number,
  isKnown: (episodeId: string) => boolean,
): BurstPlan {
  const episodeIds = new Set<string>();
  const toRead = new Set<string>();
  const carried = new Map<string, TaskChange[]>();
  const unfollowed: string[] = [];
  const recipients = new Set<Follower>(burst.primes);
  for (const [episodeId, { userId, tasks }] of burst.changed) {
    let followed = false;
    // A follower new in this burst must not be sent a state older than its start: carried
    // changes hold only what was heard before the burst began, a read holds what has committed.
    let joining = false;
    for (const topic of [episodeTopic(episodeId), userTopic(userId)]) {
      const concerned = followers.of(topic, burst.number);
      if (concerned.length === 0) continue;
      followed = true;
      for (const follower of concerned) {
        recipients.add(follower);
        if (burst.primes.has(follower)) joining = true;
      }
    }
    if (!followed) {
      unfollowed.push(episodeId);
      continue;
    }
    episodeIds.add(episodeId);
    // Only changes of transactions announced whole (their end heard) are applied.
    const whole = tasks?.every((change) => burst.ended.has(change.txid));
    if (tasks && whole && !joining && burst.resyncSince === null && isKnown(episodeId)) {
      carried.set(episodeId, tasks);
    } else {
      toRead.add(episodeId);
    }
  }
  for (const follower of burst.primes) {
    if (follower.kind === "user") continue;
    // A first state is read (a changed episode it follows is not carried: it is joining).
    episodeIds.add(follower.episodeId);
    toRead.add(follower.episodeId);
  }
  let resync: BurstLoadRequest["resync"] = null;
  if (burst.resyncSince) {
    for (const follower of followers.all(burst.number)) {
      recipients.add(follower);
      if (follower.kind === "user") continue;
      episodeIds.add(follower.episodeId);
      toRead.add(follower.episodeId);
    }
    resync = {
      userIds: followers.usersFollowed(burst.number),
      since: new Date(burst.resyncSince.getTime() - resyncMarginMs),
    };
  }
  if (burst.sweepTokens) {
    for (const follower of followers.all()) recipients.add(follower);
  }
  // A burst that reads checks every recipient's token with it; one that only delivers carried
  // changes reads nothing: a revocation is announced like a change and ends its subscriptions
  // as soon as it is heard, and each new follower's token is checked in its first burst (which
  // reads), so none can have missed one.
  const reads = toRead.size > 0 || burst.primes.size > 0 || resync !== null || burst.sweepTokens;
  return {
    recipients,
    episodeIds: [...episodeIds],
    load: reads
      ? {
          episodeIds: [...episodeIds].filter((id) => toRead.has(id)),
          resync,
          tokenHashes: tokenHashesOf(recipients),
        }
      : null,
    carried,
    unfollowed,
  };
}

/**
 * Sends the burst's episodes (loaded or carried) to the followers still open (revoked ones have
 * ended by now). An episode looked for but not among `updates` is gone.
 */
export function deliverBurst(
  burst: Burst,
  followers: FollowerRegistry,
  loaded: Pick<BurstLoad, "episodeIds" | "updates" | "recentlyChanged">,
): void {
  // One update object per task and burst, handed to each of its followers: subscribers given
  // the same object share one GraphQL execution of it (src/schema/shared-executions.ts).
  const taskUpdates = new Map<TaskView, TaskUpdate>();
  const taskUpdate = (task: TaskView) => {
    let update = taskUpdates.get(task);
    if (!update) {
      update = { task };
      taskUpdates.set(task, update);
    }
    return update;
  };
  for (const episodeId of loaded.episodeIds) {
    const update = loaded.updates.get(episodeId);
    const changed = burst.changed.has(episodeId) || burst.resyncSince != null;
    const ofEpisode = followers.of(episodeTopic(episodeId), burst.number);
    if (!update) {
      // Gone: its followers have nothing more to hear.
      for (const follower of ofEpisode) {
        if (changed || burst.primes.has(follower)) follower.stream.end();
      }
      continue;
    }
    const { episode } = update;
    for (const follower of ofEpisode) {
      if (follower.subscriber.userId !== episode.user.id) {
        follower.stream.end();
      } else if (follower.kind === "episode") {
        const priming = burst.primes.has(follower);
        if (priming || (follower.primed && changed)) follower.stream.push(episode.id, update);
        if (priming) follower.primed = true;
      } else if (follower.kind === "tasks") {
        if (burst.primes.has(follower)) {
          // The baseline: loaded after the follower started, so whatever this burst merged is
          // in it already; every later change comes in a later burst, compared with it.
          for (const task of update.tasks) follower.seen.set(task.id, taskFingerprint(task));
          follower.primed = true;
        } else if (follower.primed && changed) {
          sendTaskChanges(follower, update.tasks, burst.resyncSince != null, taskUpdate);
        }
      }
    }
    if (burst.changed.has(episodeId) || loaded.recentlyChanged.has(episodeId)) {
      sendToDashboards(followers.of(userTopic(episode.user.id), burst.number), update);
    }
  }
}

function sendToDashboards(followers: Follower[], update: EpisodeUpdate): void {
  for (const follower of followers) {
    if (follower.kind === "user") follower.stream.push(update.episode.id, update);
  }
}

/**
 * Sends the tasks that changed since this follower last heard of them (all of them after a
 * resync). Whatever the announcement said, a task created or changed shows here.
 */
function sendTaskChanges(
  follower: TasksFollower,
  tasks: readonly TaskView[],
  all: boolean,
  updateOf: (task: TaskView) => TaskUpdate,
): void {
  for (const task of tasks) {
    const fingerprint = taskFingerprint(task);
    if (!all && follower.seen.get(task.id) === fingerprint) continue;
    follower.seen.set(task.id, fingerprint);
    follower.stream.push(task.id, updateOf(task));
  }
}

/** Every field a TaskView shows in GraphQL that can change. */
function taskFingerprint(task: TaskView): string {
  return JSON.stringify([
    task.status,
    task.progress,
    task.errorMessage,
    task.outputUrl,
    task.attempt,
    task.updatedAt.getTime(),
  ]);
}
