/**
 * WebVTT and SRT captions from transcript segments, within the limits players and YouTube keep
 * to: at most two lines of at most 42 characters per cue, at most 7 seconds per cue, and at
 * least 1 second where the next cue leaves room. A
 * longer segment is split at word boundaries into several cues, its time shared in proportion
 * to their text (or equally, where that would make a cue too long); a speaker change starts a new cue (segments never share one).
 */
import type { TranscriptSegment } from "../../entities/episode.entity.ts";

export const MAX_LINE_CHARS = 42;
export const MAX_LINES = 2;
export const MAX_CUE_SECONDS = 7;
/** Shorter cues flash by unread: one is held this long when the next cue leaves room. */
export const MIN_CUE_SECONDS = 1;

export interface Cue {
  start: number;
  end: number;
  lines: string[];
  speaker: string | null;
}

/** Words laid into lines of at most `width` characters; a longer word is cut. */
function wrap(words: readonly string[], width: number): string[] {
  const lines: string[] = [];
  let line = "";
  for (const word of words.flatMap((w) => cut(w, width))) {
    if (line && line.length + 1 + word.length > width) {
      lines.push(line);
      line = word;
    } else line = line ? `${line} ${word}` : word;
  }
  if (line) lines.push(line);
  return lines;
}

function cut(word: string, width: number): string[] {
  const pieces: string[] = [];
  for (let i = 0; i < word.length; i += width) pieces.push(word.slice(i, i + width));
  return pieces;
}

/** The cues of one segment: its words in as few cues as the line and time limits allow. */
function segmentCues(segment: TranscriptSegment): Cue[] {
  const words = segment.text.split(/\s+/).filter(Boolean);
  if (words.length === 0 || !(segment.end > segment.start)) return [];
  const duration = segment.end - segment.start;
  const lines = wrap(words, MAX_LINE_CHARS);
  const byLines = Math.ceil(lines.length / MAX_LINES);
  const byTime = Math.ceil(duration / MAX_CUE_SECONDS);
  let groups: string[][] = [];
  if (byTime <= byLines) {
    for (let i = 0; i < lines.length; i += MAX_LINES) groups.push(lines.slice(i, i + MAX_LINES));
  } else {
    // More cues than the text needs, for the time limit: the words shared evenly among them.
    const count = Math.min(byTime, words.length);
    groups = [];
    let from = 0;
    for (let i = 0; i < count; i += 1) {
      const to = Math.round(((i + 1) * words.length) / count);
      groups.push(...splitToFit(wrap(words.slice(from, to), MAX_LINE_CHARS)));
      from = to;
    }
  }
  // Time in proportion to the text, unless that makes a cue too long: then equal shares, which
  // fit, since there are at least duration / MAX_CUE_SECONDS cues (when the words allow).
  const chars = groups.map((group) => group.join(" ").length);
  const total = chars.reduce((sum, weight) => sum + weight, 0);
  const proportional = chars.every((c) => (duration * c) / total <= MAX_CUE_SECONDS);
  const weights = proportional ? chars : groups.map(() => 1);
  const weightTotal = proportional ? total : groups.length;
  const cues: Cue[] = [];
  let done = 0;
  let start = segment.start;
  groups.forEach((group, index) => {
    done += weights[index] ?? 0;
    const end =
      index === groups.length - 1 ? segment.end : segment.start + (duration * done) / weightTotal;
    cues.push({ start, end, lines: group, speaker: segment.speaker ?? null });
    start = end;
  });
  return cues;
}

function splitToFit(lines: string[]): string[][] {
  const groups: string[][] = [];
  for (let i = 0; i < lines.length; i += MAX_LINES) groups.push(lines.slice(i, i + MAX_LINES));
  return groups;
}

/**
 * The cues of the segments, in time order. With `speakerPrefix` (SRT) a speaker change puts
 * `Name:` before the segment's words, counted in its line length.
 */
export function captionCues(
  segments: readonly TranscriptSegment[],
  options: { speakerPrefix?: boolean } = {},
): Cue[] {
  let previous: string | null = null;
  const cues = [...segments]
    .sort((a, b) => a.start - b.start)
    .flatMap((segment) => {
      const speaker = segment.speaker ?? null;
      const prefixed = options.speakerPrefix && speaker && speaker !== previous;
      previous = speaker;
      return segmentCues(prefixed ? { ...segment, text: `${speaker}: ${segment.text}` } : segment);
    });
  cues.forEach((cue, index) => {
    const next = cues[index + 1]?.start ?? Number.POSITIVE_INFINITY;
    if (cue.end - cue.start < MIN_CUE_SECONDS) {
      cue.end = Math.max(cue.end, Math.min(cue.start + MIN_CUE_SECONDS, next));
    }
  });
  return cues;
}

/** `HH:MM:SS.mmm` (VTT) or `HH:MM:SS,mmm` (SRT). */
export function formatTimestamp(seconds: number, separator: "." | ","): string {
  const ms = Math.max(0, Math.round(seconds * 1000));
  const pad = (value: number, width = 2) => String(value).padStart(width, "0");
  const h = Math.floor(ms / 3_600_000);
  const m = Math.floor(ms / 60_000) % 60;
  const s = Math.floor(ms / 1000) % 60;
  return `${pad(h)}:${pad(m)}:${pad(s)}${separator}${pad(ms % 1000, 3)}`;
}

function escapeVtt(text: string): string {
  return text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}

/** WebVTT; a known speaker is a voice span, which Apple Podcasts shows. */
export function toWebVtt(segments: readonly TranscriptSegment[]): string {
  const blocks = captionCues(segments).map((cue) => {
    const timing = `${formatTimestamp(cue.start, ".")} --> ${formatTimestamp(cue.end, ".")}`;
    const lines = cue.lines.map(escapeVtt);
    if (cue.speaker) lines[0] = `<v ${escapeVtt(cue.speaker)}>${lines[0]}`;
    return `${timing}\n${lines.join("\n")}`;
  });
  return `WEBVTT\n\n${blocks.map((block) => `${block}\n\n`).join("")}`;
}

/** SubRip, plain text only (YouTube's "basic" SRT); a speaker change is a `Name:` prefix. */
export function toSrt(segments: readonly TranscriptSegment[]): string {
  const blocks = captionCues(segments, { speakerPrefix: true }).map((cue, index) => {
    const timing = `${formatTimestamp(cue.start, ",")} --> ${formatTimestamp(cue.end, ",")}`;
    const lines = cue.lines.map((line) => line.replace(/[<>]/g, ""));
    return `${index + 1}\n${timing}\n${lines.join("\n")}`;
  });
  return blocks.map((block) => `${block}\n\n`).join("");
}
