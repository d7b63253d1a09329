/**
 * The local engine's outputs: where they are kept, the public URLs they are served at, and the
 * formats of the transcript and chapters files — the Podcasting 2.0 JSON transcript and JSON
 * chapters 1.2, which podcast apps read as they are, so a feed can point at the same files.
 */
import { randomBytes } from "node:crypto";
import { z } from "zod";
import type { Chapter, TranscriptSegment } from "../../entities/episode.entity.ts";
import type { ProcessingTask } from "../../entities/processing-task.entity.ts";
import { OutputError } from "../outputs.ts";
import type { MediaStorage } from "../storage.ts";
import type { EpisodeOutputs } from "./engine.ts";

export const MEDIA_PATH_PREFIX = "/media/";

/** An output's name: 128 random bits (unguessable, never reused) and its extension. */
export const OUTPUT_NAME = /^[A-Za-z0-9_-]{22}\.(mp3|mp4|json)$/;

export function newOutputName(extension: string): string {
  return `${randomBytes(16).toString("base64url")}.${extension}`;
}

export function outputKey(name: string): string {
  return `outputs/${name}`;
}

export function outputUrl(publicUrl: string, name: string): string {
  return `${publicUrl}${MEDIA_PATH_PREFIX}${name}`;
}

export function transcriptDocument(segments: readonly TranscriptSegment[]) {
  return {
    version: "1.0.0",
    segments: segments.map((segment) => ({
      startTime: segment.start,
      endTime: segment.end,
      body: segment.text,
    })),
  };
}

export function chaptersDocument(chapters: readonly Chapter[]) {
  return {
    version: "1.2.0",
    chapters: chapters.map((chapter) => ({
      startTime: chapter.start,
      ...(chapter.end == null ? {} : { endTime: chapter.end }),
      title: chapter.title,
    })),
  };
}

const TranscriptFile = z.object({
  segments: z.array(z.object({ startTime: z.number(), endTime: z.number(), body: z.string() })),
});
const ChaptersFile = z.object({
  chapters: z.array(
    z.object({ startTime: z.number(), endTime: z.number().optional(), title: z.string() }),
  ),
});

export function parseTranscriptDocument(body: Buffer): {
  text: string;
  segments: TranscriptSegment[];
} {
  const parsed = TranscriptFile.safeParse(parseJson(body));
  if (!parsed.success) throw new OutputError("the local transcript file is damaged");
  const segments = parsed.data.segments.map((segment) => ({
    start: segment.startTime,
    end: segment.endTime,
    text: segment.body,
  }));
  return { text: segments.map((segment) => segment.text).join(" "), segments };
}

export function parseChaptersDocument(body: Buffer): Chapter[] {
  const parsed = ChaptersFile.safeParse(parseJson(body));
  if (!parsed.success) throw new OutputError("the local chapters file is damaged");
  return parsed.data.chapters.map((chapter) => ({
    start: chapter.startTime,
    end: chapter.endTime ?? null,
    title: chapter.title,
  }));
}

function parseJson(body: Buffer): unknown {
  try {
    return JSON.parse(body.toString("utf8"));
  } catch {
    return null;
  }
}

/** A skipped task has no output; a completed one names its file in `outputFileId`. */
export async function readLocalOutputs(
  storage: MediaStorage,
  tasks: { transcript: ProcessingTask; chapters: ProcessingTask },
): Promise<EpisodeOutputs> {
  const read = async (task: ProcessingTask) => {
    if (task.status === "SKIPPED") return null;
    if (!task.outputFileId || !OUTPUT_NAME.test(task.outputFileId)) {
      throw new OutputError(`the ${task.type} task reported no output file`);
    }
    return storage.read(outputKey(task.outputFileId)).catch((error: NodeJS.ErrnoException) => {
      if (error.code === "ENOENT") throw new OutputError(`the ${task.type} output file is gone`);
      throw error;
    });
  };
  const transcript = await read(tasks.transcript);
  const chapters = await read(tasks.chapters);
  return {
    transcript: transcript && parseTranscriptDocument(transcript),
    chapters: chapters && parseChaptersDocument(chapters),
  };
}
