import type { Queue } from "pg-boss";
import { z } from "zod";

/**
 * Queue names, payload schemas and policies. Services import this file to enqueue work without
 * importing job handlers (DESIGN §3).
 */
export const QUEUES = {
  processEpisode: "process-episode",
  completeEpisode: "complete-episode",
  reconcileTasks: "reconcile-tasks",
  /** Where process-episode and complete-episode jobs go when their retries are spent. */
  episodeDeadLetter: "episode-dead-letter",
} as const;

export type QueueName = (typeof QUEUES)[keyof typeof QUEUES];

export const episodeJobPayload = z.object({ episodeId: z.uuid() });
export type EpisodeJobPayload = z.infer<typeof episodeJobPayload>;

/**
 * Policies, created in this order (a dead letter queue must exist before the queues that use it).
 * Every queue sends a NOTIFY on insert, so workers pick jobs up at once rather than at the
 * next poll.
 */
export const QUEUE_POLICIES: ReadonlyArray<Queue> = [
  {
    name: QUEUES.episodeDeadLetter,
    policy: "standard",
    retryLimit: 5,
    retryDelay: 5,
    retryBackoff: true,
    expireInSeconds: 60,
    notify: true,
  },
  {
    name: QUEUES.processEpisode,
    // Retried with backoff for about 10 minutes of Ittybit trouble; then the dead letter queue.
    policy: "standard",
    retryLimit: 8,
    retryDelay: 2,
    retryBackoff: true,
    retryDelayMax: 300,
    // Longer than a worst-case run (media and four tasks, each up to a minute of retries), so a
    // slow run is not started a second time beside itself.
    expireInSeconds: 900,
    deadLetter: QUEUES.episodeDeadLetter,
    notify: true,
  },
  {
    name: QUEUES.completeEpisode,
    policy: "standard",
    retryLimit: 8,
    retryDelay: 2,
    retryBackoff: true,
    retryDelayMax: 300,
    expireInSeconds: 300,
    deadLetter: QUEUES.episodeDeadLetter,
    notify: true,
  },
  {
    name: QUEUES.reconcileTasks,
    // A run that overlaps the next minute's would only repeat its work.
    policy: "singleton",
    retryLimit: 0,
    expireInSeconds: 120,
    notify: true,
  },
];
