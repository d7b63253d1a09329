import SrtParser from "srt-parser-2";
import { describe, expect, it } from "vitest";
import { WebVTTParser } from "webvtt-parser";
import type { TranscriptSegment } from "../../src/entities/episode.entity.ts";
import {
  captionCues,
  formatTimestamp,
  MAX_CUE_SECONDS,
  MAX_LINE_CHARS,
  MAX_LINES,
  MIN_CUE_SECONDS,
  toSrt,
  toWebVtt,
} from "../../src/services/exports/captions.ts";
import { renderExport } from "../../src/services/exports/exports.ts";

const SHORT: TranscriptSegment[] = [
  { start: 0.5, end: 2.25, text: "Welcome to the show." },
  { start: 2.25, end: 5, text: "Today we talk about feeds." },
  { start: 3600.125, end: 3603.5, text: "One hour in." },
];

const LONG: TranscriptSegment = {
  start: 10,
  end: 40,
  text: "This is a long passage that goes on and on about podcast feeds, enclosures, byte lengths and the rules that Apple Podcasts checks before it lists a show, so that it needs several cues to fit the limits.",
};

function vttCues(text: string) {
  const parsed = new WebVTTParser().parse(text, "metadata");
  expect(parsed.errors).toEqual([]);
  return parsed.cues;
}

const words = (text: string) => text.split(/\s+/).filter(Boolean);

describe("captions", () => {
  it("write timestamps as the formats want them", () => {
    expect(formatTimestamp(3723.4567, ".")).toBe("01:02:03.457");
    expect(formatTimestamp(0, ",")).toBe("00:00:00,000");
  });

  it("turn short segments into one cue each that a WebVTT parser reads back as the same segments", () => {
    const cues = vttCues(toWebVtt(SHORT));
    expect(cues.map((cue) => ({ start: cue.startTime, end: cue.endTime, text: cue.text }))).toEqual(
      SHORT.map((segment) => ({ start: segment.start, end: segment.end, text: segment.text })),
    );
  });

  it("turn short segments into SRT an SRT parser reads back as the same segments", () => {
    const srt = toSrt(SHORT);
    expect(srt).toContain("01:00:00,125 --> 01:00:03,500");
    const cues = new SrtParser().fromSrt(srt);
    expect(cues.map((cue) => cue.id)).toEqual(["1", "2", "3"]);
    expect(
      cues.map((cue) => ({ start: cue.startSeconds, end: cue.endSeconds, text: cue.text })),
    ).toEqual(SHORT.map((s) => ({ start: s.start, end: s.end, text: s.text })));
  });

  it("split a long segment into cues within the line and duration limits, covering it exactly", () => {
    const cues = captionCues([LONG]);
    expect(cues.length).toBeGreaterThan(1);
    for (const cue of cues) {
      expect(cue.lines.length).toBeLessThanOrEqual(MAX_LINES);
      for (const line of cue.lines) expect(line.length).toBeLessThanOrEqual(MAX_LINE_CHARS);
      expect(cue.end - cue.start).toBeLessThanOrEqual(MAX_CUE_SECONDS + 1e-9);
      expect(cue.end).toBeGreaterThan(cue.start);
    }
    expect(cues[0]?.start).toBe(LONG.start);
    expect(cues.at(-1)?.end).toBe(LONG.end);
    for (let i = 1; i < cues.length; i += 1) expect(cues[i]?.start).toBe(cues[i - 1]?.end);

    // Both formats read back: the same words, the same span, the same limits.
    const vtt = vttCues(toWebVtt([LONG]));
    const srt = new SrtParser().fromSrt(toSrt([LONG]));
    for (const parsed of [
      vtt.map((c) => ({ start: c.startTime, end: c.endTime, text: c.text })),
      srt.map((c) => ({ start: c.startSeconds, end: c.endSeconds, text: c.text })),
    ]) {
      expect(parsed.length).toBe(cues.length);
      expect(words(parsed.map((cue) => cue.text).join(" "))).toEqual(words(LONG.text));
      expect(parsed[0]?.start).toBe(LONG.start);
      expect(parsed.at(-1)?.end).toBe(LONG.end);
      for (const cue of parsed) {
        const lines = cue.text.split("\n");
        expect(lines.length).toBeLessThanOrEqual(MAX_LINES);
        expect(Math.max(...lines.map((line) => line.length))).toBeLessThanOrEqual(MAX_LINE_CHARS);
      }
    }
  });

  it("split a slow segment for the duration limit even when its text would fit one cue", () => {
    const cues = captionCues([{ start: 0, end: 20, text: "A few slow words spoken here" }]);
    expect(cues.length).toBe(3);
    for (const cue of cues) expect(cue.end - cue.start).toBeLessThanOrEqual(MAX_CUE_SECONDS);
  });

  it("hold a too-short cue for a second when the next leaves room, never overlapping it", () => {
    const cues = captionCues([
      { start: 0, end: 0.3, text: "Hi." },
      { start: 5, end: 5.2, text: "Yes." },
      { start: 5.6, end: 8, text: "Then more." },
    ]);
    expect(cues.map((cue) => [cue.start, cue.end])).toEqual([
      [0, MIN_CUE_SECONDS],
      [5, 5.6],
      [5.6, 8],
    ]);
  });

  it("escape markup in WebVTT, name speakers with voice spans, and prefix SRT speaker changes", () => {
    const segments = [
      { start: 0, end: 2, text: "Q&A <starts> now", speaker: "Tom & Jerry" },
      { start: 2, end: 4, text: "Still me", speaker: "Tom & Jerry" },
      { start: 4, end: 6, text: "My turn", speaker: "Sarah" },
    ];
    const vtt = toWebVtt(segments);
    expect(vtt).toContain("<v Tom &amp; Jerry>Q&amp;A &lt;starts&gt; now");
    const cues = vttCues(vtt);
    expect(cues.map((cue) => cue.text)).toEqual([
      "<v Tom &amp; Jerry>Q&amp;A &lt;starts&gt; now",
      "<v Tom &amp; Jerry>Still me",
      "<v Sarah>My turn",
    ]);
    const srt = new SrtParser().fromSrt(toSrt(segments));
    expect(srt.map((cue) => cue.text)).toEqual([
      "Tom & Jerry: Q&A starts now",
      "Still me",
      "Sarah: My turn",
    ]);
  });
});

describe("exports", () => {
  const source = {
    transcript: "Welcome to the show. Today we talk about feeds.",
    transcriptSegments: SHORT,
    chapters: [
      { start: 0, end: 60, title: "Intro" },
      { start: 60, end: null, title: "Feeds" },
    ],
  };

  it("write the Podcasting 2.0 JSON transcript and JSON chapters 1.2", () => {
    const transcript = JSON.parse(renderExport("transcript.json", source) ?? "");
    expect(transcript.version).toBe("1.0.0");
    expect(transcript.segments[0]).toEqual({
      startTime: 0.5,
      endTime: 2.25,
      body: "Welcome to the show.",
    });
    const chapters = JSON.parse(renderExport("chapters.json", source) ?? "");
    expect(chapters).toEqual({
      version: "1.2.0",
      chapters: [
        { startTime: 0, endTime: 60, title: "Intro" },
        { startTime: 60, title: "Feeds" },
      ],
    });
    expect(renderExport("transcript.txt", source)).toBe(`${source.transcript}\n`);
  });

  it("have nothing to export without a transcript or chapters", () => {
    const empty = { transcript: null, transcriptSegments: [], chapters: null };
    for (const file of [
      "transcript.vtt",
      "transcript.srt",
      "transcript.json",
      "chapters.json",
      "transcript.txt",
    ] as const) {
      expect(renderExport(file, empty)).toBeNull();
    }
  });
});
