/**
 * The vocabulary of processing tasks, defined once: which tasks an episode has, the statuses a
 * task moves through, and how far a status is along. The entity, the GraphQL enums, the Ittybit
 * request builders and the local engine all use these names.
 */

/** The four processing steps of an episode, in the order the pipeline creates them. */
export const TASK_TYPES = [
  "AUDIO_EXTRACTION",
  "VIDEO_TRANSCODE",
  "TRANSCRIPT_GENERATION",
  "CHAPTER_DETECTION",
] as const;
export type TaskType = (typeof TASK_TYPES)[number];

/**
 * In the order a task moves through them. COMPLETED, FAILED and SKIPPED are its ends: SKIPPED is
 * neither a success nor a failure (the engine could not do that step here, e.g. speech without a
 * model) and lets the episode finish with its other outputs.
 */
export const TASK_STATUSES = ["PENDING", "PROCESSING", "COMPLETED", "FAILED", "SKIPPED"] as const;
export type TaskStatus = (typeof TASK_STATUSES)[number];

/** How far along a status is. A task only moves to a higher rank; the ends rank alike, so none undoes another. */
const RANK: Record<TaskStatus, number> = {
  PENDING: 0,
  PROCESSING: 1,
  COMPLETED: 2,
  FAILED: 2,
  SKIPPED: 2,
};

/** Whether a task in status `from` may move to `to`: forward only. */
export function movesForward(from: TaskStatus, to: TaskStatus): boolean {
  return RANK[to] > RANK[from];
}

export function isTaskEnded(status: TaskStatus): boolean {
  return RANK[status] === 2;
}

/** A progress report as a whole percentage 0–100, whatever the reporter sent; null stays null. */
export function clampProgress(value: number | null | undefined): number | null {
  if (value == null || !Number.isFinite(value)) return null;
  return Math.min(100, Math.max(0, Math.round(value)));
}

const TASK_LABELS: Record<TaskType, string> = {
  AUDIO_EXTRACTION: "audio extraction",
  VIDEO_TRANSCODE: "video transcode",
  TRANSCRIPT_GENERATION: "transcript generation",
  CHAPTER_DETECTION: "chapter detection",
};

/** How a producer reads the task's name in a failure reason. */
export function taskLabel(type: TaskType): string {
  return TASK_LABELS[type];
}
