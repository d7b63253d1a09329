/**
 * Chapters from the pauses in speech: ffmpeg's silencedetect finds silences of at least
 * minSilenceSeconds, a chapter starts where speech resumes, and boundaries are dropped until no
 * chapter is shorter than minChapterSeconds. Titles come from the transcript when there is one.
 */
import type { Chapter, TranscriptSegment } from "../../../entities/episode.entity.ts";
import { firstAudioTrackArgs, runFfmpeg } from "../ffmpeg.ts";
import { monotonicProgress } from "../progress.ts";
import type { LocalTaskContext } from "./context.ts";

export interface ChapterOptions {
  minChapterSeconds: number;
  minSilenceSeconds: number;
  transcriptSegments?: TranscriptSegment[] | null;
}

export const DEFAULT_CHAPTER_OPTIONS = { minChapterSeconds: 120, minSilenceSeconds: 1.5 } as const;
/** Quieter than this counts as a pause; speech over room noise sits well above it. */
const SILENCE_NOISE_DB = -35;
const TITLE_WORDS = 6;

export interface Silence {
  start: number;
  end: number;
}

export function chapterTaskCommands(
  ctx: Pick<LocalTaskContext, "input">,
  minSilenceSeconds: number,
): string[] {
  return [
    ...firstAudioTrackArgs(ctx.input),
    "-af",
    `silencedetect=noise=${SILENCE_NOISE_DB}dB:d=${minSilenceSeconds}`,
    "-f",
    "null",
    "-",
  ];
}

/** Parses silencedetect's log lines; a silence still open at the end runs to the end. */
export function parseSilences(lines: readonly string[], durationSeconds: number): Silence[] {
  const silences: Silence[] = [];
  let open: number | null = null;
  for (const line of lines) {
    const start = /silence_start: (-?[\d.]+)/.exec(line);
    if (start) open = Math.max(0, Number(start[1]));
    const end = /silence_end: ([\d.]+)/.exec(line);
    if (end && open !== null) {
      silences.push({ start: open, end: Number(end[1]) });
      open = null;
    }
  }
  if (open !== null) silences.push({ start: open, end: durationSeconds });
  return silences;
}

/** Chapter boundaries covering [0, duration], none shorter than minChapterSeconds. */
export function chaptersFromSilences(
  silences: readonly Silence[],
  durationSeconds: number,
  options: ChapterOptions,
): Chapter[] {
  const starts = [0];
  for (const silence of silences) {
    // Speech resumes at the end of a pause; a pause running to the end starts nothing.
    const boundary = silence.end;
    if (boundary >= durationSeconds) continue;
    const previous = starts[starts.length - 1] ?? 0;
    if (boundary - previous < options.minChapterSeconds) continue;
    if (durationSeconds - boundary < options.minChapterSeconds) continue;
    starts.push(boundary);
  }
  return starts.map((start, index) => {
    const end = starts[index + 1] ?? durationSeconds;
    return {
      start: round(start),
      end: round(end),
      title: chapterTitle(options.transcriptSegments, start, end) ?? `Chapter ${index + 1}`,
    };
  });
}

function chapterTitle(
  segments: readonly TranscriptSegment[] | null | undefined,
  start: number,
  end: number,
): string | null {
  if (!segments) return null;
  const words = segments
    .filter((segment) => segment.start >= start && segment.start < end)
    .flatMap((segment) => segment.text.trim().split(/\s+/))
    .filter((word) => word !== "")
    .slice(0, TITLE_WORDS);
  if (words.length === 0) return null;
  const title = words.join(" ").replace(/[,;:.]+$/, "");
  return words.length === TITLE_WORDS ? `${title}…` : title;
}

function round(seconds: number): number {
  return Math.round(seconds * 1000) / 1000;
}

export async function runChapterTask(
  ctx: LocalTaskContext,
  options: ChapterOptions,
): Promise<{ chapters: Chapter[] }> {
  if (!ctx.probe.hasAudio) {
    return { chapters: chaptersFromSilences([], ctx.probe.durationSeconds, options) };
  }
  const progress = monotonicProgress(ctx.onProgress);
  const lines: string[] = [];
  await runFfmpeg(ctx.tools, chapterTaskCommands(ctx, options.minSilenceSeconds), {
    signal: ctx.signal,
    durationSeconds: ctx.probe.durationSeconds,
    onProgress: progress,
    stallTimeoutMs: ctx.stallTimeoutMs,
    onStderrLine: (line) => {
      if (line.includes("silence_")) lines.push(line);
    },
  });
  const silences = parseSilences(lines, ctx.probe.durationSeconds);
  progress(100);
  return { chapters: chaptersFromSilences(silences, ctx.probe.durationSeconds, options) };
}
