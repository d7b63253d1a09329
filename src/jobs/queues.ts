import type { Queue } from "pg-boss";
import { z } from "zod";

/**
 * Queue names, payload schemas and policies. Services import this file to enqueue work without
 * importing job handlers (docs/architecture.md).
 */
export const QUEUES = {
  processEpisode: "process-episode",
  completeEpisode: "complete-episode",
  reconcileTasks: "reconcile-tasks",
  /** Where process-episode and complete-episode jobs go when their retries are spent. */
  episodeDeadLetter: "episode-dead-letter",
  /** One task of the local media engine: ffmpeg (or whisper.cpp) on the worker. */
  runLocalTask: "run-local-task",
  /** Where run-local-task jobs go when their retries are spent (a worker died each time). */
  localTaskDeadLetter: "local-task-dead-letter",
  /** Asks Ittybit about a delivered task when the webhook could not (refetch verification). */
  refetchIttybitTask: "refetch-ittybit-task",
  /** Puts a scheduled episode in its show's feed, sent with `startAfter` = its publish time. */
  publishEpisode: "publish-episode",
  /** Publishes one episode to Transistor.fm: upload, create, publish or schedule. */
  publishToTransistor: "publish-to-transistor",
  /** Publishes one episode to YouTube: resumable upload, then captions. */
  publishToYouTube: "publish-to-youtube",
  /** Where publication jobs go when their retries are spent: the publication is FAILED. */
  publicationDeadLetter: "publication-dead-letter",
  /** Housekeeping (src/services/maintenance.ts), on PODFLOW_MAINTENANCE_CRON: old webhook deliveries go. */
  pruneWebhookDeliveries: "prune-webhook-deliveries",
  /** Housekeeping: episodes stuck UPLOADED or PROCESSING past PODFLOW_STUCK_EPISODE_HOURS fail. */
  sweepStuckEpisodes: "sweep-stuck-episodes",
} as const;

export type QueueName = (typeof QUEUES)[keyof typeof QUEUES];

export const episodeJobPayload = z.object({ episodeId: z.uuid() });
export type EpisodeJobPayload = z.infer<typeof episodeJobPayload>;

export const localTaskJobPayload = z.object({ taskId: z.uuid(), episodeId: z.uuid().optional() });
export type LocalTaskJobPayload = z.infer<typeof localTaskJobPayload>;

export const refetchTaskJobPayload = z.object({ engineTaskId: z.string().min(1) });
export type RefetchTaskJobPayload = z.infer<typeof refetchTaskJobPayload>;
/** The publication this job makes due; a later reschedule or unpublish makes it a no-op. */
export const publishJobPayload = z.object({ episodeId: z.uuid(), publishAt: z.iso.datetime() });
export type PublishJobPayload = z.infer<typeof publishJobPayload>;

/** One run of one publication; a later run (a retry, a new publishEpisode) makes it a no-op. */
export const publicationJobPayload = z.object({ publicationId: z.uuid(), run: z.int().positive() });
export type PublicationJobPayload = z.infer<typeof publicationJobPayload>;

/** What each queue's jobs carry. */
export interface JobPayloads {
  "process-episode": EpisodeJobPayload;
  "complete-episode": EpisodeJobPayload;
  "run-local-task": LocalTaskJobPayload;
  "refetch-ittybit-task": RefetchTaskJobPayload;
  "publish-episode": PublishJobPayload;
  "publish-to-transistor": PublicationJobPayload;
  "publish-to-youtube": PublicationJobPayload;
}

/**
 * Policies, created in this order (a dead letter queue must exist before the queues that use it).
 * Every queue sends a NOTIFY on insert, so workers pick jobs up at once rather than at the
 * next poll.
 */
/** A dead letter's handler only records an end: a few quick retries if the database blips. */
const DEAD_LETTER_POLICY = {
  policy: "standard",
  retryLimit: 5,
  retryDelay: 5,
  retryBackoff: true,
  expireInSeconds: 60,
  notify: true,
} as const;

/**
 * The policies with one heartbeat for every queue that has one (PODFLOW_JOB_HEARTBEAT_SECONDS;
 * tests use pg-boss's minimum, 10 s); unset, each queue keeps its own.
 */
export function queuePolicies(heartbeatSeconds?: number): ReadonlyArray<Queue> {
  if (heartbeatSeconds === undefined) return DEFAULT_POLICIES;
  return DEFAULT_POLICIES.map((queue) =>
    queue.heartbeatSeconds ? { ...queue, heartbeatSeconds } : queue,
  );
}

const DEFAULT_POLICIES: ReadonlyArray<Queue> = [
  {
    name: QUEUES.episodeDeadLetter,
    ...DEAD_LETTER_POLICY,
  },
  {
    name: QUEUES.processEpisode,
    // Retried with backoff for about 10 minutes of Ittybit trouble; then the dead letter queue.
    policy: "standard",
    retryLimit: 8,
    retryDelay: 2,
    retryBackoff: true,
    retryDelayMax: 300,
    // A worker that dies mid-run stops its heartbeat: the job is failed and retried within
    // seconds. The expiry, longer than a worst-case run (four tasks, each up to a minute of
    // retries), only bounds a handler that is alive but stuck.
    heartbeatSeconds: 10,
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
    heartbeatSeconds: 10,
    expireInSeconds: 300,
    deadLetter: QUEUES.episodeDeadLetter,
    notify: true,
  },
  {
    name: QUEUES.localTaskDeadLetter,
    ...DEAD_LETTER_POLICY,
  },
  {
    name: QUEUES.runLocalTask,
    policy: "standard",
    // A failure the runner cannot tell from a passing one (a killed worker, a full disk, a
    // stalled ffmpeg) gets two more tries; the last is recorded on the task (see the runner).
    retryLimit: 2,
    retryDelay: 10,
    retryBackoff: true,
    // The worker's heartbeat, not the expiry, tells a dead worker from a long encode: a job
    // whose heartbeat stops for 20 s is failed and retried, by any living worker. The expiry only bounds a
    // handler stuck for good (ffmpeg's own stall detection ends a silent one much sooner).
    heartbeatSeconds: 20,
    expireInSeconds: 6 * 60 * 60,
    deadLetter: QUEUES.localTaskDeadLetter,
    notify: true,
  },
  {
    name: QUEUES.refetchIttybitTask,
    // One waiting question per task (the singleton key is the task id): a burst of deliveries
    // Ittybit could not be asked about makes one job, and it asks for what is true when it runs.
    policy: "short",
    // About half an hour of Ittybit trouble; after that the reconciler, which asks about every
    // quiet task, is the backstop.
    retryLimit: 10,
    retryDelay: 2,
    retryBackoff: true,
    retryDelayMax: 300,
    expireInSeconds: 120,
    notify: true,
  },
  {
    name: QUEUES.publishEpisode,
    // Waits in the queue until its time (startAfter); the run is one row update.
    policy: "standard",
    retryLimit: 10,
    retryDelay: 5,
    retryBackoff: true,
    retryDelayMax: 300,
    expireInSeconds: 60,
    notify: true,
  },
  {
    name: QUEUES.publicationDeadLetter,
    ...DEAD_LETTER_POLICY,
  },
  ...[QUEUES.publishToTransistor, QUEUES.publishToYouTube].map((name) => ({
    name,
    // One active job per publication (its id is the singleton key): two runs never upload or
    // create the same remote episode side by side, whatever retries and new runs queue up.
    policy: "singleton" as const,
    // About two hours of a service's trouble (5xx, timeouts, rate limits) with backoff; then
    // the dead letter queue records the last reason on the publication. Each run continues
    // from what the publication recorded (the uploaded bytes, the remote id), so a retry never
    // repeats a finished step.
    retryLimit: 12,
    retryDelay: 10,
    retryBackoff: true,
    retryDelayMax: 1_800,
    // An upload runs for minutes; a worker that dies mid-upload stops its heartbeat, and a
    // living worker resumes the upload within seconds from the byte YouTube holds.
    heartbeatSeconds: 20,
    expireInSeconds: 6 * 60 * 60,
    deadLetter: QUEUES.publicationDeadLetter,
    notify: true,
  })),
  {
    name: QUEUES.reconcileTasks,
    // A run that overlaps the next minute's would only repeat its work.
    policy: "singleton",
    retryLimit: 0,
    expireInSeconds: 120,
    notify: true,
  },
  // Housekeeping: one run at a time; a run that fails is simply done again at the next tick.
  {
    name: QUEUES.pruneWebhookDeliveries,
    policy: "singleton",
    retryLimit: 0,
    expireInSeconds: 600,
    notify: true,
  },
  {
    name: QUEUES.sweepStuckEpisodes,
    policy: "singleton",
    retryLimit: 0,
    expireInSeconds: 600,
    notify: true,
  },
];
