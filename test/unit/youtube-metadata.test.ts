import { describe, expect, it } from "vitest";
import {
  chapterTimestamp,
  nextPacificMidnight,
  youtubeChapters,
  youtubeDescription,
  youtubeTitle,
} from "../../src/services/distribution/youtube-metadata.ts";

const bytes = (text: string) => Buffer.byteLength(text, "utf8");

describe("youtubeTitle", () => {
  it("keeps a title that already fits", () => {
    expect(youtubeTitle("Episode 12: The Return")).toBe("Episode 12: The Return");
  });

  it("removes < and > and folds whitespace and newlines", () => {
    expect(youtubeTitle("  Why <3 beats\n> everything  ")).toBe("Why 3 beats everything");
  });

  it("cuts to 100 characters with an ellipsis, counting emoji as one", () => {
    const long = `${"🎙️".repeat(60)}${"a".repeat(60)}`;
    const title = youtubeTitle(long);
    const characters = [...new Intl.Segmenter("en", { granularity: "grapheme" }).segment(title)];
    expect(characters).toHaveLength(100);
    expect(title.endsWith("…")).toBe(true);
    expect(title.startsWith("🎙️🎙️")).toBe(true);
    expect(youtubeTitle("x".repeat(100))).toBe("x".repeat(100));
  });

  it("never returns an empty title", () => {
    expect(youtubeTitle(" <> ")).toBe("Untitled episode");
  });
});

describe("chapterTimestamp", () => {
  it("writes M:SS under an hour and H:MM:SS from one, flooring seconds", () => {
    expect(chapterTimestamp(0)).toBe("0:00");
    expect(chapterTimestamp(65.9)).toBe("1:05");
    expect(chapterTimestamp(600)).toBe("10:00");
    expect(chapterTimestamp(3600)).toBe("1:00:00");
    expect(chapterTimestamp(3723)).toBe("1:02:03");
  });
});

describe("youtubeChapters", () => {
  const chapter = (startSeconds: number, title = `At ${startSeconds}`) => ({ startSeconds, title });

  it("keeps valid chapters as they are", () => {
    const chapters = [chapter(0, "Intro"), chapter(60, "Topic"), chapter(300, "Outro")];
    expect(youtubeChapters(chapters, 600)).toEqual(chapters);
  });

  it("moves the first chapter to 0:00 and sorts", () => {
    expect(youtubeChapters([chapter(120), chapter(4), chapter(60)], 600)).toEqual([
      { startSeconds: 0, title: "At 4" },
      chapter(60),
      chapter(120),
    ]);
  });

  it("folds a chapter under ten seconds into the one before it", () => {
    expect(
      youtubeChapters([chapter(0), chapter(60), chapter(195, "Blip"), chapter(200)], 600).map(
        (c) => c.title,
      ),
    ).toEqual(["At 0", "At 60", "At 200"]);
  });

  it("lets the next chapter open the video when the first is under ten seconds", () => {
    expect(
      youtubeChapters(
        [chapter(0, "Cold open"), chapter(5, "Welcome"), chapter(60), chapter(200)],
        600,
      ),
    ).toEqual([{ startSeconds: 0, title: "Welcome" }, chapter(60), chapter(200)]);
  });

  it("drops a last chapter that starts less than ten seconds before the end", () => {
    expect(
      youtubeChapters([chapter(0), chapter(60), chapter(200), chapter(595, "Sting")], 600).map(
        (c) => c.title,
      ),
    ).toEqual(["At 0", "At 60", "At 200"]);
    expect(
      youtubeChapters([chapter(0), chapter(60), chapter(200), chapter(700)], 600),
    ).toHaveLength(3);
  });

  it("gives no chapters when fewer than three can be kept", () => {
    expect(youtubeChapters([chapter(0), chapter(60)], 600)).toEqual([]);
    expect(youtubeChapters([chapter(0), chapter(5), chapter(12)], 20)).toEqual([]);
    expect(youtubeChapters([], 600)).toEqual([]);
  });

  it("cleans titles: one line, no < or >, a name when empty", () => {
    expect(
      youtubeChapters([chapter(0, "<Intro>\nand more"), chapter(60, "  "), chapter(120)], 600),
    ).toEqual([
      { startSeconds: 0, title: "Intro and more" },
      { startSeconds: 60, title: "Chapter 2" },
      chapter(120),
    ]);
  });
});

describe("youtubeDescription", () => {
  const chapters = [
    { startSeconds: 0, title: "Intro" },
    { startSeconds: 95, title: "The interview" },
    { startSeconds: 3725, title: "Wrap-up" },
  ];

  it("puts the notes, then the chapter lines", () => {
    expect(youtubeDescription({ notes: "Show notes.", chapters, durationSeconds: 4000 })).toBe(
      "Show notes.\n\n0:00 Intro\n1:35 The interview\n1:02:05 Wrap-up",
    );
  });

  it("turns HTML notes into plain text without < or >", () => {
    const description = youtubeDescription({
      notes: "<p>First &amp; foremost</p><p>Links: <a href='https://x.test'>here</a> 3 > 2</p>",
      chapters: [],
      durationSeconds: 100,
    });
    expect(description).not.toMatch(/[<>]/);
    expect(description).toBe("First &amp; foremost\nLinks: here 3  2");
  });

  it("leaves the chapter block out when YouTube would reject it", () => {
    expect(
      youtubeDescription({ notes: "Notes", chapters: chapters.slice(0, 2), durationSeconds: 4000 }),
    ).toBe("Notes");
  });

  it("shortens the notes to fit 5,000 bytes, keeping the chapter block whole", () => {
    const notes = "Ünïcödé wörds ".repeat(600);
    const description = youtubeDescription({ notes, chapters, durationSeconds: 4000 });
    expect(bytes(description)).toBeLessThanOrEqual(5000);
    expect(bytes(description)).toBeGreaterThan(4900);
    expect(description.endsWith("0:00 Intro\n1:35 The interview\n1:02:05 Wrap-up")).toBe(true);
    expect(description).toContain("…\n\n0:00 Intro");
    expect(description).not.toContain("\uFFFD");
  });

  it("keeps long notes under 5,000 bytes without chapters too", () => {
    const description = youtubeDescription({
      notes: "😀".repeat(2000),
      chapters: [],
      durationSeconds: 10,
    });
    expect(bytes(description)).toBeLessThanOrEqual(5000);
    expect(description.endsWith("…")).toBe(true);
    expect(Buffer.from(description, "utf8").toString("utf8")).toBe(description);
  });
});

describe("nextPacificMidnight", () => {
  it("is the coming midnight in Los Angeles in winter (UTC−8)", () => {
    expect(nextPacificMidnight(new Date("2026-01-15T20:00:00Z")).toISOString()).toBe(
      "2026-01-16T08:00:00.000Z",
    );
  });

  it("is the coming midnight in summer (UTC−7)", () => {
    expect(nextPacificMidnight(new Date("2026-07-04T06:59:59.900Z")).toISOString()).toBe(
      "2026-07-04T07:00:00.000Z",
    );
    expect(nextPacificMidnight(new Date("2026-07-04T07:00:00Z")).toISOString()).toBe(
      "2026-07-05T07:00:00.000Z",
    );
  });

  it("is right across the daylight-saving changes", () => {
    // Saturday 7 March 2026 noon PST; DST begins Sunday 8 March at 2:00 — midnight is still PST.
    expect(nextPacificMidnight(new Date("2026-03-07T20:00:00Z")).toISOString()).toBe(
      "2026-03-08T08:00:00.000Z",
    );
    // Sunday 8 March after the change (PDT): the next midnight is UTC−7.
    expect(nextPacificMidnight(new Date("2026-03-08T20:00:00Z")).toISOString()).toBe(
      "2026-03-09T07:00:00.000Z",
    );
    // Sunday 1 November 2026, 00:30 PDT; DST ends at 2:00 — next midnight is PST.
    expect(nextPacificMidnight(new Date("2026-11-01T07:30:00Z")).toISOString()).toBe(
      "2026-11-02T08:00:00.000Z",
    );
  });

  it("is always strictly later and within 25 hours", () => {
    for (
      let t = Date.parse("2026-03-01T00:00:00Z");
      t < Date.parse("2026-03-12T00:00:00Z");
      t += 3_600_000 * 7 + 13_000
    ) {
      const now = new Date(t);
      const midnight = nextPacificMidnight(now);
      expect(midnight.getTime()).toBeGreaterThan(now.getTime());
      expect(midnight.getTime() - now.getTime()).toBeLessThanOrEqual(25 * 3_600_000);
      expect(
        new Intl.DateTimeFormat("en-US", {
          timeZone: "America/Los_Angeles",
          hour: "2-digit",
          minute: "2-digit",
          hourCycle: "h23",
        }).format(midnight),
      ).toBe("00:00");
    }
  });
});
