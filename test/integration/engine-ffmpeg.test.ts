import { chmod, writeFile } from "node:fs/promises";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  FfmpegError,
  FfmpegStalledError,
  InsufficientDiskSpaceError,
  MediaTaskAbortedError,
} from "../../src/engine/local/errors.ts";
import { runFfmpeg } from "../../src/engine/local/ffmpeg.ts";
import { MediaToolsMissingError, resolveMediaTools } from "../../src/engine/local/media-tools.ts";
import { NotMediaError, probeMedia } from "../../src/engine/local/probe.ts";
import { assertDiskSpace } from "../../src/engine/local/tasks/context.ts";
import {
  isProcessAlive,
  makeCorruptFile,
  makeMediaDir,
  makeQuietAudio,
  makeVideoWithAudio,
  testMediaTools,
} from "../support/media.ts";

const tools = testMediaTools();
let media: Awaited<ReturnType<typeof makeMediaDir>>;

beforeAll(async () => {
  media = await makeMediaDir();
});
afterAll(() => media?.cleanup());

describe("resolveMediaTools", () => {
  it("prefers FFMPEG_PATH/FFPROBE_PATH, then PATH, then the npm builds", async () => {
    const fakeBin = path.join(media.dir, "bin");
    await (await import("node:fs/promises")).mkdir(fakeBin, { recursive: true });
    for (const name of ["ffmpeg", "ffprobe"]) {
      await writeFile(path.join(fakeBin, name), "#!/bin/sh\nexit 0\n");
      await chmod(path.join(fakeBin, name), 0o755);
    }
    const fromPath = resolveMediaTools({ PATH: `/nonexistent:${fakeBin}` });
    expect(fromPath).toMatchObject({
      ffmpeg: path.join(fakeBin, "ffmpeg"),
      sources: { ffmpeg: "path", ffprobe: "path" },
    });

    const fromNpm = resolveMediaTools({ PATH: "/nonexistent" });
    expect(fromNpm.sources).toEqual({ ffmpeg: "npm", ffprobe: "npm" });
    expect(fromNpm.ffmpeg).toMatch(/@ffmpeg-installer/);
    expect(fromNpm.ffprobe).toMatch(/@ffprobe-installer/);

    const fromEnv = resolveMediaTools({
      PATH: fakeBin,
      FFMPEG_PATH: fromNpm.ffmpeg,
      FFPROBE_PATH: fromNpm.ffprobe,
    });
    expect(fromEnv).toMatchObject({ ffmpeg: fromNpm.ffmpeg, sources: { ffmpeg: "env" } });

    expect(() => resolveMediaTools({ FFMPEG_PATH: path.join(media.dir, "missing") })).toThrow(
      MediaToolsMissingError,
    );
  });
});

describe("probeMedia", () => {
  it("describes a video with audio and an audio-only file", async () => {
    const video = await probeMedia(tools, await makeVideoWithAudio(tools, media.dir, 3));
    expect(video).toMatchObject({ hasAudio: true, hasVideo: true, width: 640, height: 480 });
    expect(video.durationSeconds).toBeCloseTo(3, 0);
    const audio = await probeMedia(tools, await makeQuietAudio(tools, media.dir, 3));
    expect(audio).toMatchObject({
      hasAudio: true,
      hasVideo: false,
      width: null,
      formatName: "mp3",
    });
  });

  it("rejects corrupt, empty, textual and missing files with NotMediaError", async () => {
    const text = path.join(media.dir, "notes.txt");
    await writeFile(text, "Show notes: nothing to hear here.\n");
    const empty = path.join(media.dir, "empty.mp3");
    await writeFile(empty, "");
    for (const file of [await makeCorruptFile(media.dir), text, empty, `${text}.missing`]) {
      const error = await probeMedia(tools, file).catch((caught: unknown) => caught);
      expect(error).toBeInstanceOf(NotMediaError);
      expect((error as NotMediaError).message).toBe("not a media file ffprobe can read");
      expect((error as NotMediaError).detail).not.toBe("");
    }
  });
});

describe("runFfmpeg", () => {
  // A 30 s source read at its native rate: it runs until it is stopped.
  const endless = ["-re", "-f", "lavfi", "-i", "sine=duration=30", "-f", "null", "-"];

  it("reports progress from -progress and ends at 100", async () => {
    const progress: number[] = [];
    await runFfmpeg(tools, ["-f", "lavfi", "-i", "sine=duration=20", "-f", "null", "-"], {
      durationSeconds: 20,
      onProgress: (percent) => progress.push(percent),
    });
    expect(progress.length).toBeGreaterThan(1);
    expect(progress.at(-1)).toBe(100);
    expect([...progress].sort((a, b) => a - b)).toEqual(progress);
  });

  it("kills ffmpeg with SIGKILL when the signal aborts", async () => {
    const controller = new AbortController();
    let pid = 0;
    const run = runFfmpeg(tools, endless, {
      signal: controller.signal,
      durationSeconds: 30,
      onSpawn: (spawned) => {
        pid = spawned;
      },
      onProgress: () => controller.abort(),
    });
    await expect(run).rejects.toBeInstanceOf(MediaTaskAbortedError);
    expect(pid).toBeGreaterThan(0);
    expect(isProcessAlive(pid)).toBe(false);
  });

  it("kills an ffmpeg that makes no progress and rejects with FfmpegStalledError", async () => {
    const silentFfmpeg = path.join(media.dir, "silent-ffmpeg");
    // Behaves like an ffmpeg stuck on a dead network input: alive, printing nothing.
    await writeFile(silentFfmpeg, "#!/bin/sh\nexec sleep 30\n");
    await chmod(silentFfmpeg, 0o755);
    let pid = 0;
    const run = runFfmpeg({ ...tools, ffmpeg: silentFfmpeg }, ["-i", "x", "-f", "null", "-"], {
      stallTimeoutMs: 300,
      onSpawn: (spawned) => {
        pid = spawned;
      },
    });
    const error = await run.catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(FfmpegStalledError);
    expect((error as FfmpegStalledError).stallTimeoutMs).toBe(300);
    expect(isProcessAlive(pid)).toBe(false);
  });

  it("rejects with FfmpegError carrying the stderr tail when ffmpeg fails", async () => {
    const error = await runFfmpeg(tools, [
      "-i",
      path.join(media.dir, "nope.wav"),
      "-f",
      "null",
      "-",
    ]).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(FfmpegError);
    expect((error as FfmpegError).exitCode).not.toBe(0);
    expect((error as FfmpegError).stderrTail).toMatch(/No such file/);
  });

  it("rejects with FfmpegError when the binary cannot start", async () => {
    const run = runFfmpeg({ ...tools, ffmpeg: path.join(media.dir, "no-ffmpeg") }, ["-version"]);
    await expect(run).rejects.toThrow(/ffmpeg could not start/);
  });
});

describe("disk space check", () => {
  it("refuses to start when the work directory's disk has less than the bound", async () => {
    await expect(assertDiskSpace(media.dir, 1)).resolves.toBeUndefined();
    const error = await assertDiskSpace(media.dir, Number.MAX_SAFE_INTEGER).catch(
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(InsufficientDiskSpaceError);
    expect((error as InsufficientDiskSpaceError).availableBytes).toBeGreaterThan(0);
  });
});
