import { describe, expect, it } from "vitest";
import { OutputError, parseChapters, parseTranscript } from "../../src/services/outputs.ts";

const json = (value: unknown) => Buffer.from(JSON.stringify(value));

describe("parseTranscript", () => {
  it("reads the 2025-08-20 speech JSON (language, confidence, indexed timeline)", () => {
    const transcript = parseTranscript(
      json({
        id: "file_abc",
        object: "intelligence",
        kind: "speech",
        detected: true,
        speakers: 2,
        language: "en",
        confidence: 0.72,
        text: ["Hello there.", "Hi!"],
        timeline: [
          {
            index: 0,
            start: 12,
            end: 14.5,
            detected: true,
            speaker: 0,
            text: " Hello there. ",
            confidence: 0.89,
          },
          {
            index: 1,
            start: 14.5,
            end: 15,
            detected: true,
            speaker: 1,
            text: "Hi!",
            confidence: 0.9,
          },
        ],
      }),
    );
    expect(transcript).toEqual({
      text: "Hello there.\nHi!",
      segments: [
        { start: 12, end: 14.5, text: "Hello there.", speaker: "0" },
        { start: 14.5, end: 15, text: "Hi!", speaker: "1" },
      ],
    });
  });

  it("reads the later shape (languages[], no index) and builds the text from the timeline when absent", () => {
    const transcript = parseTranscript(
      json({
        kind: "speech",
        languages: ["en", "de"],
        speakers: 1,
        timeline: [{ start: 0, end: 1.25, speaker: 0, text: "Guten Tag" }],
      }),
    );
    expect(transcript.text).toBe("Guten Tag");
    expect(transcript.segments).toEqual([{ start: 0, end: 1.25, text: "Guten Tag", speaker: "0" }]);
  });

  it.each([
    ["not JSON", Buffer.from("<html>")],
    ["JSON of another shape", json({ timeline: "soon" })],
    ["an empty transcript", json({ text: [], timeline: [] })],
  ])("refuses %s with an OutputError", (_case, body) => {
    expect(() => parseTranscript(body)).toThrow(OutputError);
  });
});

describe("parseChapters", () => {
  it("reads chapter JSON, in start order", () => {
    expect(
      parseChapters(
        json({
          chapters: [
            { index: 1, start: 60.2, end: 90, title: "Interview " },
            { index: 0, start: 0, end: 60.2, title: "Introduction" },
          ],
        }),
        "application/json",
      ),
    ).toEqual([
      { start: 0, end: 60.2, title: "Introduction" },
      { start: 60.2, end: 90, title: "Interview" },
    ]);
  });

  it("reads the outline form {timeline: [{title, start, end}]}", () => {
    expect(
      parseChapters(
        json({ kind: "outline", timeline: [{ title: "Only", start: 0, end: null }] }),
        null,
      ),
    ).toEqual([{ start: 0, end: null, title: "Only" }]);
  });

  it("reads WebVTT chapters, with cue ids, hours and multi-line titles", () => {
    const vtt = [
      "WEBVTT",
      "",
      "chapter-1",
      "00:00.000 --> 01:00.500",
      "Cold open",
      "",
      "chapter-2",
      "01:00:00.500 --> 01:30:00.000",
      "The long",
      "interview",
      "",
    ].join("\n");
    expect(parseChapters(Buffer.from(vtt), "text/vtt")).toEqual([
      { start: 0, end: 60.5, title: "Cold open" },
      { start: 3600.5, end: 5400, title: "The long interview" },
    ]);
  });

  it.each([
    ["JSON without chapters", json({ title: "x" }), "application/json"],
    ["WebVTT without cues", Buffer.from("WEBVTT\n\nNOTE nothing here\n"), "text/vtt"],
    ["garbage", Buffer.from("%%%"), "application/octet-stream"],
  ])("refuses %s with an OutputError", (_case, body, type) => {
    expect(() => parseChapters(body, type)).toThrow(OutputError);
  });
});
