/** The four processing steps of an episode, in the order the pipeline creates them. */
export const PODFLOW_TASK_TYPES = [
  "AUDIO_EXTRACTION",
  "VIDEO_TRANSCODE",
  "TRANSCRIPT_GENERATION",
  "CHAPTER_DETECTION",
] as const;
export type PodflowTaskType = (typeof PODFLOW_TASK_TYPES)[number];

export type TaskOptionValue = string | number | boolean;

/**
 * Changes to a task's defaults. `kind`, `file_id` and `webhook_url` are not options: the kind
 * is what the task type means, and the other two are fixed by the episode and our own URL.
 */
export type TaskOverrides = { readonly [option: string]: TaskOptionValue | undefined } & {
  readonly kind?: never;
  readonly file_id?: never;
  readonly webhook_url?: never;
};

/** A `POST /tasks` body in the 2025-08-20 shape: options sit flat beside `kind`. */
export interface TaskRequest {
  kind: string;
  file_id: string;
  webhook_url: string;
  [option: string]: TaskOptionValue;
}

type TaskDefaults = { readonly kind: string; readonly ref: string } & {
  readonly [option: string]: TaskOptionValue;
};

// `ref` names each output in the media item's `urls` map (reference §3), so it also tells the
// outputs of one episode apart. `channels` and `language` are not documented Ittybit options
// (reference §4.1) but are what the seed asks for; Ittybit ignores or honours them.
export const TASK_DEFAULTS = {
  AUDIO_EXTRACTION: {
    kind: "audio",
    format: "mp3",
    bitrate: 192_000,
    channels: 2,
    ref: "podcast_audio",
  },
  VIDEO_TRANSCODE: {
    kind: "video",
    format: "mp4",
    codec: "h264",
    width: 1920,
    height: 1080,
    fps: 30,
    bitrate: 5_000_000,
    ref: "youtube_video",
  },
  TRANSCRIPT_GENERATION: { kind: "speech", language: "en", ref: "transcript" },
  CHAPTER_DETECTION: { kind: "chapters", ref: "chapters" },
} as const satisfies Record<PodflowTaskType, TaskDefaults>;

/** Where Ittybit reports task changes: `PUBLIC_URL` + `/webhooks/ittybit`. */
export function webhookUrlFor(publicUrl: string): string {
  // Concatenated, not resolved with `new URL`, so a PUBLIC_URL with a path prefix keeps it.
  return `${publicUrl.replace(/\/+$/, "")}/webhooks/ittybit`;
}

const FIXED_FIELDS = new Set(["kind", "file_id", "webhook_url"]);

export function buildTaskRequest(
  type: PodflowTaskType,
  target: { fileId: string; webhookUrl: string },
  overrides: TaskOverrides = {},
): TaskRequest {
  const request: TaskRequest = {
    ...TASK_DEFAULTS[type],
    file_id: target.fileId,
    webhook_url: target.webhookUrl,
  };
  for (const [option, value] of Object.entries(overrides)) {
    // Overrides are often spread from optional fields, where `undefined` means "keep the default".
    if (value !== undefined && !FIXED_FIELDS.has(option)) request[option] = value;
  }
  return request;
}

export interface TaskRequestBuilders {
  buildTaskRequest(type: PodflowTaskType, fileId: string, overrides?: TaskOverrides): TaskRequest;
  audioTask(fileId: string, overrides?: TaskOverrides): TaskRequest;
  videoTask(fileId: string, overrides?: TaskOverrides): TaskRequest;
  transcriptTask(fileId: string, overrides?: TaskOverrides): TaskRequest;
  chaptersTask(fileId: string, overrides?: TaskOverrides): TaskRequest;
}

export function createTaskRequestBuilders(webhookUrl: string): TaskRequestBuilders {
  const forType =
    (type: PodflowTaskType) =>
    (fileId: string, overrides?: TaskOverrides): TaskRequest =>
      buildTaskRequest(type, { fileId, webhookUrl }, overrides);
  return {
    buildTaskRequest: (type, fileId, overrides) => forType(type)(fileId, overrides),
    audioTask: forType("AUDIO_EXTRACTION"),
    videoTask: forType("VIDEO_TRANSCODE"),
    transcriptTask: forType("TRANSCRIPT_GENERATION"),
    chaptersTask: forType("CHAPTER_DETECTION"),
  };
}
