import type { TaskStatus, TaskType } from "../domain/tasks.ts";
import type { TaskView } from "../services/episodes.ts";
import { builder } from "./builder.ts";

export const TaskTypeEnum = builder.enumType("TaskType", {
  description: "What a processing task makes of the episode's upload.",
  values: {
    AUDIO_EXTRACTION: { description: "The podcast MP3." },
    VIDEO_TRANSCODE: { description: "The YouTube-ready MP4 (H.264, 1080p)." },
    TRANSCRIPT_GENERATION: { description: "The transcript, with timed segments." },
    CHAPTER_DETECTION: { description: "Chapter markers." },
  } satisfies Record<TaskType, { description: string }>,
});

export const TaskStatusEnum = builder.enumType("TaskStatus", {
  description:
    "Where a task is. It only moves forward: PENDING → PROCESSING → COMPLETED | FAILED | SKIPPED.",
  values: {
    PENDING: { description: "Created at the media engine, not started." },
    PROCESSING: { description: "The media engine is working on it." },
    COMPLETED: { description: "Done; its output is ready." },
    FAILED: { description: "The media engine could not do it; `error` says why." },
    SKIPPED: {
      description:
        "Not done on this server (e.g. speech recognition without a model); `error` says why. The episode finishes without this output.",
    },
  } satisfies Record<TaskStatus, { description: string }>,
});

// Entities (subscriptions, mutations) and plain rows (lists: latestTaskViews) alike. A field
// that shows a property as it is exposes it (no resolver): compiled queries read it in place,
// where a resolver costs a call and a resolve info with its path for each of a page's 400 tasks.
export const ProcessingTaskRef = builder.objectRef<TaskView>("ProcessingTask").implement({
  description:
    "One processing task of an episode at its media engine (the latest attempt of its type).",
  fields: (t) => ({
    id: t.exposeID("id", { description: "Podflow's id of the task." }),
    type: t.expose("type", { type: TaskTypeEnum, description: "What the task makes." }),
    status: t.expose("status", { type: TaskStatusEnum, description: "Where the task is." }),
    progress: t.exposeInt("progress", {
      nullable: true,
      description: "0–100 as the media engine reports it; null until it says.",
    }),
    error: t.string({
      nullable: true,
      description: "Why the task failed or was skipped, when it was.",
      resolve: (task) => task.errorMessage ?? null,
    }),
    outputUrl: t.exposeString("outputUrl", {
      nullable: true,
      description: "Where the media engine serves the task's output, once completed.",
    }),
    engineTaskId: t.exposeString("engineTaskId", {
      description: "The task's id at the episode's media engine.",
    }),
    ittybitTaskId: t.exposeString("engineTaskId", {
      description: "The task's id at Ittybit.",
      deprecationReason: "Use engineTaskId: episodes may be processed by the local engine.",
    }),
    attempt: t.exposeInt("attempt", { description: "1 for the first try; retries count up." }),
    updatedAt: t.expose("updatedAt", {
      type: "DateTime",
      description: "When the task last changed.",
    }),
  }),
});
