// YouTube's rules for a video's title and description, as pure functions: titles at most 100
// characters, descriptions at most 5,000 UTF-8 bytes, neither with `<` or `>`, and chapters as
// description timestamps that YouTube only shows when every rule holds (first at 0:00, at least
// three, each at least ten seconds long).

import { wallClock } from "./wall-clock.ts";

export const YOUTUBE_TITLE_MAX_CHARACTERS = 100;
export const YOUTUBE_DESCRIPTION_MAX_BYTES = 5000;
export const YOUTUBE_MIN_CHAPTERS = 3;
export const YOUTUBE_MIN_CHAPTER_SECONDS = 10;

const CHAPTER_TITLE_MAX_CHARACTERS = 100;
const ELLIPSIS = "…";

const segmenter = new Intl.Segmenter("en", { granularity: "grapheme" });

function graphemes(text: string): string[] {
  return Array.from(segmenter.segment(text), (segment) => segment.segment);
}

/** Removes `<` and `>` and folds runs of whitespace (newlines too) into one space. */
function oneLine(text: string): string {
  return text.replace(/[<>]/g, "").replace(/\s+/g, " ").trim();
}

function truncateCharacters(text: string, max: number): string {
  const parts = graphemes(text);
  if (parts.length <= max) return text;
  return `${parts
    .slice(0, max - 1)
    .join("")
    .trimEnd()}${ELLIPSIS}`;
}

/** A title YouTube accepts: one line, no `<`/`>`, at most 100 characters (an ellipsis when cut). */
export function youtubeTitle(title: string): string {
  const clean = oneLine(title);
  return clean ? truncateCharacters(clean, YOUTUBE_TITLE_MAX_CHARACTERS) : "Untitled episode";
}

export interface DescriptionChapter {
  startSeconds: number;
  title: string;
}

/** `M:SS` under an hour, `H:MM:SS` from one; seconds are floored. */
export function chapterTimestamp(seconds: number): string {
  const total = Math.max(0, Math.floor(seconds));
  const h = Math.floor(total / 3600);
  const m = Math.floor(total / 60) % 60;
  const s = total % 60;
  const ss = String(s).padStart(2, "0");
  return h > 0 ? `${h}:${String(m).padStart(2, "0")}:${ss}` : `${m}:${ss}`;
}

/**
 * The chapters YouTube will show, or none. The first is moved to 0:00; a chapter shorter than
 * ten seconds is folded into the one before it (the first one into the next, which then starts
 * at 0:00); so is a last chapter that starts less than ten seconds before the end. Fewer than
 * three left means no chapters at all, as YouTube would decide anyway.
 */
export function youtubeChapters(
  chapters: readonly DescriptionChapter[],
  durationSeconds: number,
): DescriptionChapter[] {
  const end = Number.isFinite(durationSeconds) && durationSeconds > 0 ? durationSeconds : null;
  let list = chapters
    .filter((chapter) => Number.isFinite(chapter.startSeconds) && chapter.startSeconds >= 0)
    .map((chapter, index) => ({
      startSeconds: Math.floor(chapter.startSeconds),
      title:
        truncateCharacters(oneLine(chapter.title), CHAPTER_TITLE_MAX_CHARACTERS) ||
        `Chapter ${index + 1}`,
    }))
    .filter((chapter) => end === null || chapter.startSeconds < end)
    .sort((a, b) => a.startSeconds - b.startSeconds);
  if (list.length === 0) return [];
  list[0] = { ...(list[0] as DescriptionChapter), startSeconds: 0 };

  const lengthOf = (index: number) => {
    const next = list[index + 1]?.startSeconds ?? end;
    return next === null ? Number.POSITIVE_INFINITY : next - (list[index]?.startSeconds ?? 0);
  };
  for (;;) {
    const short = list.findIndex((_, index) => lengthOf(index) < YOUTUBE_MIN_CHAPTER_SECONDS);
    if (short === -1 || list.length < YOUTUBE_MIN_CHAPTERS) break;
    if (short === 0) {
      // The opening chapter is too short: the next one takes over from 0:00.
      list = list.slice(1);
      list[0] = { ...(list[0] as DescriptionChapter), startSeconds: 0 };
    } else {
      list = list.filter((_, index) => index !== short);
    }
  }
  const valid =
    list.length >= YOUTUBE_MIN_CHAPTERS &&
    list.every((_, index) => lengthOf(index) >= YOUTUBE_MIN_CHAPTER_SECONDS);
  return valid ? list : [];
}

/** Strips HTML tags and any remaining `<`/`>`, keeping paragraphs (at most one blank line). */
function plainNotes(notes: string): string {
  return notes
    .replace(/<\s*br\s*\/?>/gi, "\n")
    .replace(/<\/\s*(p|div|li|h[1-6])\s*>/gi, "\n")
    .replace(/<[^>]*>/g, "")
    .replace(/[<>]/g, "")
    .replace(/\r\n?/g, "\n")
    .replace(/[ \t]+\n/g, "\n")
    .replace(/\n{3,}/g, "\n\n")
    .trim();
}

const utf8Length = (text: string) => Buffer.byteLength(text, "utf8");

/** Cuts text to at most `maxBytes` UTF-8 bytes on a character boundary, ending with "…" if cut. */
function truncateBytes(text: string, maxBytes: number): string {
  if (utf8Length(text) <= maxBytes) return text;
  const budget = maxBytes - utf8Length(ELLIPSIS);
  if (budget <= 0) return "";
  let result = "";
  let used = 0;
  for (const part of graphemes(text)) {
    const size = utf8Length(part);
    if (used + size > budget) break;
    result += part;
    used += size;
  }
  // Prefer ending at a word boundary when one is close.
  const space = result.search(/\s\S*$/);
  if (space > result.length - 40 && space > 0) result = result.slice(0, space);
  return `${result.trimEnd()}${ELLIPSIS}`;
}

/**
 * A description YouTube accepts: the notes as plain text, then the chapter timestamps when
 * YouTube's rules can be met, within 5,000 UTF-8 bytes. The notes are shortened to fit; the
 * chapter block is kept whole or left out, never cut.
 */
export function youtubeDescription(p: {
  notes: string;
  chapters: readonly DescriptionChapter[];
  durationSeconds: number;
}): string {
  const chapters = youtubeChapters(p.chapters, p.durationSeconds);
  let block = chapters
    .map((chapter) => `${chapterTimestamp(chapter.startSeconds)} ${chapter.title}`)
    .join("\n");
  if (utf8Length(block) > YOUTUBE_DESCRIPTION_MAX_BYTES) block = "";
  const notes = plainNotes(p.notes);
  if (!block) return truncateBytes(notes, YOUTUBE_DESCRIPTION_MAX_BYTES);
  const separator = "\n\n";
  const room = YOUTUBE_DESCRIPTION_MAX_BYTES - utf8Length(block) - utf8Length(separator);
  const fitted = room > 0 ? truncateBytes(notes, room) : "";
  return fitted ? `${fitted}${separator}${block}` : block;
}

const PACIFIC = wallClock("America/Los_Angeles");

/** Wall-clock fields in Los Angeles, as a UTC timestamp of the same fields. */
function pacificWallClock(date: Date): number {
  const parts = Object.fromEntries(
    PACIFIC.formatToParts(date).map((part) => [part.type, Number(part.value)]),
  ) as Record<string, number>;
  return Date.UTC(
    parts.year ?? 0,
    (parts.month ?? 1) - 1,
    parts.day ?? 1,
    parts.hour ?? 0,
    parts.minute ?? 0,
    parts.second ?? 0,
  );
}

/**
 * The next midnight in America/Los_Angeles after `now` — when YouTube's daily quota resets —
 * correct across daylight-saving changes (midnight itself is never skipped or repeated there).
 */
export function nextPacificMidnight(now: Date): Date {
  const wall = new Date(pacificWallClock(now));
  const midnightWall = Date.UTC(wall.getUTCFullYear(), wall.getUTCMonth(), wall.getUTCDate() + 1);
  // Find the instant whose Los Angeles wall clock reads midnightWall: start from the offset
  // now and correct by what the guess actually reads (twice covers a change of offset).
  const seconds = new Date(Math.floor(now.getTime() / 1000) * 1000);
  let guess = midnightWall + (seconds.getTime() - pacificWallClock(seconds));
  for (let i = 0; i < 3; i += 1) {
    const error = pacificWallClock(new Date(guess)) - midnightWall;
    if (error === 0) break;
    guess -= error;
  }
  return new Date(guess);
}
