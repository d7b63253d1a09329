import { randomInt } from "node:crypto";

// The Ittybit resources the stand-in keeps, in their 2025-08-20 shapes.
// They are written out here rather than imported from src/, so the stand-in stays an independent
// account of the protocol that the client is checked against.

export interface FileObject {
  id: string;
  object: "source" | "track" | "intelligence";
  kind: string;
  type: string;
  media_id: string;
  url: string;
  filesize: number;
  folder: string | null;
  filename: string | null;
  ref: string | null;
  status: string;
  original: boolean;
  metadata: Record<string, unknown>;
  created: string;
  updated: string;
  [field: string]: unknown;
}

export interface MediaObject {
  id: string;
  object: "media";
  title: string | null;
  alt: string | null;
  metadata: Record<string, unknown>;
  created: string;
  updated: string;
}

export interface TaskObject {
  id: string;
  object: "task";
  kind: string;
  status: string;
  progress: number;
  input: FileObject | null;
  options: Record<string, unknown>;
  output: FileObject | null;
  error: string | null;
  created_by: string;
  created: string;
  updated: string;
  [field: string]: unknown;
}

/** A task as the stand-in keeps it: the API object plus the body it was created with. */
export interface StandInTask {
  task: TaskObject;
  request: Record<string, unknown>;
}

export interface SignatureObject {
  domain: string;
  filename: string;
  folder: string | null;
  expiry: number;
  method: "get" | "put";
  signature: string;
  url: string;
}

export interface StoredContent {
  body: Buffer;
  contentType: string;
}

// Every `kind` POST /tasks accepts in 2025-08-20.
export const TASK_KINDS = new Set([
  "ingest",
  "video",
  "image",
  "audio",
  "chapters",
  "subtitles",
  "thumbnails",
  "nsfw",
  "speech",
  "description",
  "outline",
  "prompt",
  "workflow",
  "conditions",
  "http",
]);

const ID_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/** A prefix and a 12-character random suffix, as in the 2025 examples. */
export function newId(prefix: "file" | "med" | "task" | "key"): string {
  const suffix = Array.from({ length: 12 }, () => ID_ALPHABET[randomInt(ID_ALPHABET.length)]);
  return `${prefix}_${suffix.join("")}`;
}

export function now(): string {
  return new Date().toISOString();
}

export function newMedia(fields: Partial<MediaObject> = {}): MediaObject {
  const at = now();
  return {
    id: newId("med"),
    object: "media",
    title: null,
    alt: null,
    metadata: {},
    created: at,
    updated: at,
    ...fields,
  };
}

export function newFile(
  fields: Partial<FileObject> & { media_id: string },
  fileUrl: (id: string) => string,
): FileObject {
  const at = now();
  const id = fields.id ?? newId("file");
  return {
    id,
    object: "source",
    kind: "video",
    type: "video/mp4",
    url: fileUrl(id),
    filesize: 0,
    folder: null,
    filename: null,
    ref: null,
    status: "ready",
    original: false,
    metadata: {},
    created: at,
    updated: at,
    ...fields,
  };
}

/** What a finished task of each kind produces when a test does not say. */
export function defaultOutput(
  task: TaskObject,
  ref: string | null,
): {
  file: Pick<FileObject, "object" | "kind" | "type" | "filename">;
  content: StoredContent;
} {
  const format = typeof task.options.format === "string" ? task.options.format : undefined;
  switch (task.kind) {
    case "speech":
      return {
        file: {
          object: "intelligence",
          kind: "speech",
          type: "application/json",
          filename: "speech.json",
        },
        content: json(defaultTranscript()),
      };
    case "chapters":
      return {
        file: {
          object: "track",
          kind: "chapters",
          type: "application/json",
          filename: "chapters.json",
        },
        content: json(defaultChapters()),
      };
    case "audio": {
      const type = format === "mp3" || format === undefined ? "audio/mpeg" : `audio/${format}`;
      const filename = `${ref ?? "audio"}.${format ?? "mp3"}`;
      return { file: { object: "source", kind: "audio", type, filename }, content: bytes(type) };
    }
    case "video": {
      const type = `video/${format ?? "mp4"}`;
      const filename = `${ref ?? "video"}.${format ?? "mp4"}`;
      return { file: { object: "source", kind: "video", type, filename }, content: bytes(type) };
    }
    default:
      return {
        file: {
          object: "source",
          kind: task.kind,
          type: "application/octet-stream",
          filename: null,
        },
        content: bytes("application/octet-stream"),
      };
  }
}

function defaultTranscript() {
  return {
    object: "intelligence",
    kind: "speech",
    detected: true,
    speakers: 2,
    language: "en",
    confidence: 0.91,
    text: ["Welcome to the show.", "Thanks for having me."],
    timeline: [
      {
        index: 0,
        start: 0,
        end: 2.5,
        detected: true,
        speaker: 0,
        text: "Welcome to the show.",
        confidence: 0.93,
      },
      {
        index: 1,
        start: 2.5,
        end: 5,
        detected: true,
        speaker: 1,
        text: "Thanks for having me.",
        confidence: 0.89,
      },
    ],
  };
}

function defaultChapters() {
  return {
    object: "track",
    kind: "chapters",
    chapters: [
      { index: 0, start: 0, end: 60, title: "Introduction" },
      { index: 1, start: 60, end: 300, title: "Interview" },
    ],
  };
}

function json(document: unknown): StoredContent {
  return { body: Buffer.from(JSON.stringify(document)), contentType: "application/json" };
}

function bytes(contentType: string): StoredContent {
  return { body: Buffer.from(`stand-in ${contentType} bytes`), contentType };
}
