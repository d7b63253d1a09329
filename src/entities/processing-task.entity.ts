import { defineEntity, p } from "@mikro-orm/core";
import { Episode } from "./episode.entity.ts";

export const TASK_TYPES = [
  "AUDIO_EXTRACTION",
  "VIDEO_TRANSCODE",
  "TRANSCRIPT_GENERATION",
  "CHAPTER_DETECTION",
] as const;
export type TaskType = (typeof TASK_TYPES)[number];

/** In the order a task moves through them; a task never moves back (DESIGN §2.2). */
export const TASK_STATUSES = ["PENDING", "PROCESSING", "COMPLETED", "FAILED"] as const;
export type TaskStatus = (typeof TASK_STATUSES)[number];

/**
 * One processing task at Ittybit for one episode. A retry of a failed task is a new row with
 * the next `attempt`, so the history stays.
 */
export const ProcessingTaskSchema = defineEntity({
  name: "ProcessingTask",
  tableName: "processing_tasks",
  properties: {
    id: p.uuid().primary(),
    episode: () => p.manyToOne(Episode).deleteRule("cascade"),
    type: p.enum(TASK_TYPES),
    attempt: p.integer().default(1),
    /** The episode's processing round that created this attempt. */
    round: p.integer().default(1),
    ittybitTaskId: p.string().length(64).unique(),
    status: p.enum(TASK_STATUSES).default("PENDING"),
    /** 0–100 as Ittybit reports it; null until it says. */
    progress: p.integer().nullable(),
    outputFileId: p.string().length(64).nullable(),
    outputUrl: p.text().nullable(),
    errorMessage: p.text().nullable(),
    metadata: p.json<Record<string, unknown>>().nullable(),
    createdAt: p.datetime().onCreate(() => new Date()),
    updatedAt: p
      .datetime()
      .onCreate(() => new Date())
      .onUpdate(() => new Date()),
  },
  uniques: [{ properties: ["episode", "type", "attempt"] }],
  indexes: [
    // The reconciler's scan: tasks that have not ended and went quiet.
    { properties: ["status", "updatedAt"] },
  ],
});

export class ProcessingTask extends ProcessingTaskSchema.class {}
ProcessingTaskSchema.setClass(ProcessingTask);
