import { defineEntity, p } from "@mikro-orm/core";
import { TASK_STATUSES, TASK_TYPES } from "../domain/tasks.ts";
import { Episode } from "./episode.entity.ts";

/**
 * One processing task of one episode at its media engine. A retry of a failed task is a new row with
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
    /** The task's id at its engine: Ittybit's `task_…` id, or the local engine's own. */
    engineTaskId: p.string().length(64).unique(),
    /** Only ever moves forward (src/domain/tasks.ts), through applyTaskEvent. */
    status: p.enum(TASK_STATUSES).default("PENDING"),
    /** 0–100 as the engine reports it; null until it says. */
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
