import {
  ProcessingTask,
  type TASK_STATUSES,
  type TASK_TYPES,
} from "../entities/processing-task.entity.ts";
import { builder } from "./builder.ts";

export const TaskTypeEnum = builder.enumType("TaskType", {
  description: "What a processing task makes of the episode's upload.",
  values: {
    AUDIO_EXTRACTION: { description: "The podcast MP3." },
    VIDEO_TRANSCODE: { description: "The YouTube-ready MP4 (H.264, 1080p)." },
    TRANSCRIPT_GENERATION: { description: "The transcript, with timed segments." },
    CHAPTER_DETECTION: { description: "Chapter markers." },
  } satisfies Record<(typeof TASK_TYPES)[number], { description: string }>,
});

export const TaskStatusEnum = builder.enumType("TaskStatus", {
  description: "Where a task is. It only moves forward: PENDING → PROCESSING → COMPLETED | FAILED.",
  values: {
    PENDING: { description: "Created at Ittybit, not started." },
    PROCESSING: { description: "Ittybit is working on it." },
    COMPLETED: { description: "Done; its output is ready." },
    FAILED: { description: "Ittybit could not do it; `error` says why." },
  } satisfies Record<(typeof TASK_STATUSES)[number], { description: string }>,
});

export const ProcessingTaskRef = builder.objectType(ProcessingTask, {
  name: "ProcessingTask",
  description: "One processing task at Ittybit for an episode (the latest attempt of its type).",
  fields: (t) => ({
    id: t.exposeID("id", { description: "Podflow's id of the task." }),
    type: t.field({
      type: TaskTypeEnum,
      description: "What the task makes.",
      resolve: (task) => task.type,
    }),
    status: t.field({
      type: TaskStatusEnum,
      description: "Where the task is.",
      resolve: (task) => task.status,
    }),
    progress: t.int({
      nullable: true,
      description: "0–100 as Ittybit reports it; null until it says.",
      resolve: (task) => task.progress ?? null,
    }),
    error: t.string({
      nullable: true,
      description: "Why the task failed, when it did.",
      resolve: (task) => task.errorMessage ?? null,
    }),
    outputUrl: t.string({
      nullable: true,
      description: "Where Ittybit serves the task's output, once completed.",
      resolve: (task) => task.outputUrl ?? null,
    }),
    ittybitTaskId: t.exposeString("ittybitTaskId", { description: "The task's id at Ittybit." }),
    attempt: t.exposeInt("attempt", { description: "1 for the first try; retries count up." }),
    updatedAt: t.field({
      type: "DateTime",
      description: "When the task last changed.",
      resolve: (task) => task.updatedAt,
    }),
  }),
});
