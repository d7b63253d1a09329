import type { TaskType } from "../../domain/tasks.ts";

export type TaskOptionValue = string | number | boolean;

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

// `ref` names each output in the media item's `urls` map, so it also tells the
// outputs of one episode apart. `channels` and `language` are not documented Ittybit options
// but are what Podflow asks for; Ittybit ignores or honours them.
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
} as const satisfies Record<TaskType, TaskDefaults>;

/**
 * Where Ittybit reports task changes: `PUBLIC_URL` + `/webhooks/ittybit/<token>`, the token a
 * secret of the installation (a delivery to any other URL is refused).
 */
export function webhookUrlFor(publicUrl: string, token: string): string {
  // Concatenated, not resolved with `new URL`, so a PUBLIC_URL with a path prefix keeps it.
  return `${publicUrl.replace(/\/+$/, "")}/webhooks/ittybit/${encodeURIComponent(token)}`;
}

/** The `POST /tasks` body that asks Ittybit for one of an episode's tasks. */
export function buildTaskRequest(
  type: TaskType,
  target: { fileId: string; webhookUrl: string },
): TaskRequest {
  return { ...TASK_DEFAULTS[type], file_id: target.fileId, webhook_url: target.webhookUrl };
}
