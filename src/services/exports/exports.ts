/**
 * An episode's exports: captions (WebVTT, SRT), the Podcasting 2.0 JSON transcript, JSON
 * chapters 1.2 and plain text, made from the transcript and chapters stored on the episode
 * (whichever engine made them). Podcast apps and YouTube fetch them without a token, so each
 * episode's export URLs carry a key derived from an installation secret: stable, unguessable,
 * and nothing to store.
 */
import { createHmac, timingSafeEqual } from "node:crypto";
import type { Chapter, TranscriptSegment } from "../../entities/episode.entity.ts";
import { chaptersDocument } from "../engines/local-outputs.ts";
import { toSrt, toWebVtt } from "./captions.ts";

export const EXPORTS_PATH_PREFIX = "/exports/";

export const EXPORT_FILES = {
  "transcript.vtt": "text/vtt; charset=utf-8",
  "transcript.srt": "application/x-subrip; charset=utf-8",
  "transcript.json": "application/json; charset=utf-8",
  "chapters.json": "application/json+chapters; charset=utf-8",
  "transcript.txt": "text/plain; charset=utf-8",
} as const;

export type ExportFile = keyof typeof EXPORT_FILES;

export function exportKey(secret: Buffer, episodeId: string): string {
  return createHmac("sha256", secret)
    .update(`exports:${episodeId}`)
    .digest("base64url")
    .slice(0, 22);
}

export function isExportKey(secret: Buffer, episodeId: string, key: string): boolean {
  const expected = Buffer.from(exportKey(secret, episodeId));
  const given = Buffer.from(key);
  return given.length === expected.length && timingSafeEqual(given, expected);
}

export function exportUrl(
  publicUrl: string,
  secret: Buffer,
  episodeId: string,
  file: ExportFile,
): string {
  return `${publicUrl}${EXPORTS_PATH_PREFIX}${episodeId}/${exportKey(secret, episodeId)}/${file}`;
}

/** What an episode has to export from. */
export interface ExportSource {
  transcript?: string | null;
  transcriptSegments?: TranscriptSegment[] | null;
  chapters?: Chapter[] | null;
}

export function hasTimedTranscript(source: ExportSource): boolean {
  return (source.transcriptSegments?.length ?? 0) > 0;
}

export function hasChapters(source: ExportSource): boolean {
  return (source.chapters?.length ?? 0) > 0;
}

export function hasText(source: ExportSource): boolean {
  return Boolean(source.transcript?.trim()) || hasTimedTranscript(source);
}

/**
 * What an episode's outputs hold, without the outputs themselves: what a list needs to show
 * (transcriptAvailable, export links). The database can tell (episodeOutputFlagsSql) without
 * sending the transcript.
 */
export interface ExportFlags {
  /** The transcript text is stored (maybe empty). */
  transcript: boolean;
  /** hasTimedTranscript */
  timed: boolean;
  /** hasChapters */
  chapters: boolean;
  /** hasText */
  text: boolean;
}

export function exportFlags(source: ExportSource): ExportFlags {
  return {
    transcript: source.transcript != null,
    timed: hasTimedTranscript(source),
    chapters: hasChapters(source),
    text: hasText(source),
  };
}

/**
 * The same flags as exportFlags, computed by PostgreSQL from an `episodes` row (alias `e`):
 * columns has_transcript, has_timed, has_chapters, has_text. The whitespace class is
 * JavaScript's `trim()` one, so `text` agrees with hasText.
 */
export const EXPORT_FLAGS_SQL = `e.transcript is not null as has_transcript,
  coalesce(jsonb_typeof(e.transcript_segments) = 'array'
    and jsonb_array_length(e.transcript_segments) > 0, false) as has_timed,
  coalesce(jsonb_typeof(e.chapters) = 'array' and jsonb_array_length(e.chapters) > 0, false)
    as has_chapters,
  coalesce(e.transcript ~ '[^\t\n\v\f\r \u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff]', false)
    or coalesce(jsonb_typeof(e.transcript_segments) = 'array'
      and jsonb_array_length(e.transcript_segments) > 0, false) as has_text`;

/** Which exports an episode has (null where it has nothing to make the file from). */
export function availableExports(source: ExportSource | ExportFlags): Record<ExportFile, boolean> {
  const flags = "timed" in source ? source : exportFlags(source);
  return {
    "transcript.vtt": flags.timed,
    "transcript.srt": flags.timed,
    "transcript.json": flags.timed,
    "chapters.json": flags.chapters,
    "transcript.txt": flags.text,
  };
}

/** The Podcasting 2.0 JSON transcript (version 1.0.0), with speakers when known. */
export function jsonTranscript(segments: readonly TranscriptSegment[]) {
  return {
    version: "1.0.0",
    segments: segments.map((segment) => ({
      ...(segment.speaker ? { speaker: segment.speaker } : {}),
      startTime: segment.start,
      endTime: segment.end,
      body: segment.text,
    })),
  };
}

/** The file's body, or null when the episode has nothing to make it from. */
export function renderExport(file: ExportFile, source: ExportSource): string | null {
  if (!availableExports(source)[file]) return null;
  const segments = source.transcriptSegments ?? [];
  switch (file) {
    case "transcript.vtt":
      return toWebVtt(segments);
    case "transcript.srt":
      return toSrt(segments);
    case "transcript.json":
      return JSON.stringify(jsonTranscript(segments));
    case "chapters.json":
      return JSON.stringify(chaptersDocument(source.chapters ?? []));
    case "transcript.txt": {
      const text = source.transcript?.trim()
        ? source.transcript.trim()
        : segments.map((segment) => segment.text.trim()).join("\n");
      return `${text}\n`;
    }
  }
}
