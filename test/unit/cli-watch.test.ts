import { describe, expect, it } from "vitest";
import type { PodflowApi } from "../../src/cli/api.ts";
import { type Output, watchCommand } from "../../src/cli/remote.ts";

const task = (
  type: string,
  status: string,
  progress: number | null,
  error: string | null = null,
) => ({
  type,
  status,
  progress,
  error,
  outputUrl: status === "COMPLETED" ? `http://podflow.test/media/${type}` : null,
});

const episode = (
  status: string,
  tasks: ReturnType<typeof task>[],
  failureReason: string | null = null,
) => ({
  id: "RXBpc29kZTox",
  title: "Pilot",
  status,
  progress: 0,
  failureReason,
  tasks,
  outputs: {
    audioUrl: status === "PROCESSED" ? "http://podflow.test/media/a.mp3" : null,
    videoUrl: status === "PROCESSED" ? "http://podflow.test/media/v.mp4" : null,
    transcriptAvailable: false,
  },
});

/** An API whose query answers `first` and whose subscription then sends `updates`. */
function fakeApi(first: unknown, updates: unknown[]): PodflowApi & { closed: boolean } {
  const api = {
    closed: false,
    request: async <T>() => ({ episode: first }) as T,
    subscribe: async <T>(
      _q: string,
      _v: Record<string, unknown>,
      onNext: (data: T) => boolean | undefined,
    ) => {
      for (const update of updates) {
        await new Promise((resolve) => setImmediate(resolve));
        if (onNext({ episodeUpdated: update } as T)) return;
      }
    },
    close: async () => {
      api.closed = true;
    },
  };
  return api;
}

function capture(tty: boolean): Output & { stdout: string[]; stderr: string[] } {
  const stdout: string[] = [];
  const stderr: string[] = [];
  return {
    stdout,
    stderr,
    tty,
    out: (line) => stdout.push(line),
    err: (line) => stderr.push(line),
  };
}

describe("podflow watch", () => {
  const updates = [
    episode("PROCESSING", [
      task("AUDIO_EXTRACTION", "PROCESSING", 40),
      task("VIDEO_TRANSCODE", "PENDING", null),
    ]),
    episode("PROCESSING", [
      task("AUDIO_EXTRACTION", "PROCESSING", 40),
      task("VIDEO_TRANSCODE", "PENDING", null),
    ]),
    episode("PROCESSED", [
      task("AUDIO_EXTRACTION", "COMPLETED", 100),
      task("VIDEO_TRANSCODE", "COMPLETED", 100),
    ]),
  ];

  it("prints one line per change without a terminal and exits 0 with the outputs", async () => {
    const output = capture(false);
    const api = fakeApi(updates[0], updates.slice(1));
    expect(await watchCommand(api, "RXBpc29kZTox", output)).toBe(0);
    expect(output.stderr).toEqual([
      "episode PROCESSING",
      "AUDIO_EXTRACTION PROCESSING 40%",
      "VIDEO_TRANSCODE PENDING",
      "episode PROCESSED",
      "AUDIO_EXTRACTION COMPLETED 100%",
      "VIDEO_TRANSCODE COMPLETED 100%",
    ]);
    expect(output.stdout).toEqual([
      "Episode RXBpc29kZTox PROCESSED: Pilot",
      "audio: http://podflow.test/media/a.mp3",
      "video: http://podflow.test/media/v.mp4",
    ]);
    expect(api.closed).toBe(true);
  });

  it("draws bars on a terminal and exits 1 with the reason when the episode fails", async () => {
    const output = capture(true);
    const failed = episode(
      "FAILED",
      [
        task("AUDIO_EXTRACTION", "FAILED", 10, "bad audio"),
        task("VIDEO_TRANSCODE", "COMPLETED", 100),
      ],
      "AUDIO_EXTRACTION failed: bad audio",
    );
    const api = fakeApi(updates[0], [failed]);
    expect(await watchCommand(api, "RXBpc29kZTox", output)).toBe(1);
    expect(output.stderr).toEqual([
      "Episode RXBpc29kZTox FAILED: AUDIO_EXTRACTION failed: bad audio",
      "Try again with: podflow retry RXBpc29kZTox --watch",
    ]);
    expect(output.stdout).toEqual([]);
  });

  it("ends at once when the episode had already ended", async () => {
    const output = capture(false);
    const api = fakeApi(updates[2], []);
    expect(await watchCommand(api, "RXBpc29kZTox", output)).toBe(0);
    expect(output.stdout[0]).toBe("Episode RXBpc29kZTox PROCESSED: Pilot");
  });
});
