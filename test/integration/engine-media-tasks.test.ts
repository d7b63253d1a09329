import { readdir, writeFile } from "node:fs/promises";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { MediaTaskAbortedError } from "../../src/engine/local/errors.ts";
import { runAudioTask } from "../../src/engine/local/tasks/audio.ts";
import { runChapterTask } from "../../src/engine/local/tasks/chapters.ts";
import { runVideoTask } from "../../src/engine/local/tasks/video.ts";
import {
  ebur128,
  ffprobeStreams,
  makeMediaDir,
  makeQuietAudio,
  makeToneWithPauses,
  makeVideoWithAudio,
  mp4TopLevelBoxes,
  taskContext,
  testMediaTools,
} from "../support/media.ts";

const tools = testMediaTools();
let media: Awaited<ReturnType<typeof makeMediaDir>>;
let quietAudio: string;
let video: string;
let tonePauses: string;

beforeAll(async () => {
  media = await makeMediaDir();
  [quietAudio, video, tonePauses] = await Promise.all([
    makeQuietAudio(tools, media.dir),
    makeVideoWithAudio(tools, media.dir),
    makeToneWithPauses(tools, media.dir),
  ]);
});
afterAll(() => media?.cleanup());

async function workDir(name: string): Promise<string> {
  const dir = path.join(media.dir, name);
  await (await import("node:fs/promises")).mkdir(dir, { recursive: true });
  return dir;
}

function expectProgressMonotonicTo100(progress: number[]): void {
  expect(progress.length).toBeGreaterThan(1);
  for (const [index, value] of progress.entries()) {
    expect(Number.isInteger(value)).toBe(true);
    expect(value).toBeGreaterThanOrEqual(0);
    if (index > 0) expect(value).toBeGreaterThan(progress[index - 1] ?? -1);
  }
  expect(progress.at(-1)).toBe(100);
}

async function expectLoudnessNormalised(file: string): Promise<void> {
  const loudness = await ebur128(tools, file);
  expect(Math.abs(loudness.integrated - -16)).toBeLessThanOrEqual(1);
  expect(loudness.truePeak).toBeLessThanOrEqual(-1);
}

describe("audio task", () => {
  it("makes a 192 kbps CBR stereo MP3 at -16 LUFS with the title in ID3", async () => {
    const ctx = await taskContext(tools, quietAudio, await workDir("audio"));
    const output = await runAudioTask(ctx);

    expect(output).toMatchObject({ contentType: "audio/mpeg", extension: "mp3" });
    expect(path.dirname(output.file)).toBe(ctx.workDir);
    expect(await readdir(ctx.workDir)).toEqual(["audio.mp3"]);
    const probed = await ffprobeStreams(tools, output.file);
    expect(probed.streams).toHaveLength(1);
    const [audio] = probed.streams;
    expect(audio?.codec_name).toBe("mp3");
    expect(audio?.bit_rate).toBe("192000");
    expect(["44100", "48000"]).toContain(audio?.sample_rate);
    expect(audio?.channels).toBe(2);
    // CBR: the container's average stays at the nominal rate (ID3 header adds a little).
    expect(Math.abs(Number(probed.format.bit_rate) - 192_000)).toBeLessThan(4_000);
    expect(probed.format.tags?.title).toBe("Episode 12: Café talk");
    await expectLoudnessNormalised(output.file);
    expectProgressMonotonicTo100(ctx.progress);
  });
});

describe("video task", () => {
  async function expectYouTubeMp4(file: string): Promise<void> {
    const probed = await ffprobeStreams(tools, file);
    const videoStream = probed.streams.find((stream) => stream.codec_type === "video");
    const audioStream = probed.streams.find((stream) => stream.codec_type === "audio");
    expect(videoStream).toMatchObject({ codec_name: "h264", width: 1920, height: 1080 });
    expect(videoStream?.avg_frame_rate).toBe("30/1");
    expect(audioStream).toMatchObject({ codec_name: "aac", channels: 2 });
    const boxes = await mp4TopLevelBoxes(file);
    expect(boxes.indexOf("moov")).toBeGreaterThanOrEqual(0);
    expect(boxes.indexOf("moov")).toBeLessThan(boxes.indexOf("mdat"));
    await expectLoudnessNormalised(file);
  }

  it("letterboxes a 4:3 video into 1080p30 H.264 + AAC with faststart", async () => {
    const ctx = await taskContext(tools, video, await workDir("video"));
    const output = await runVideoTask(ctx);
    expect(output).toMatchObject({ contentType: "video/mp4", extension: "mp4" });
    await expectYouTubeMp4(output.file);
    const probed = await ffprobeStreams(tools, output.file);
    // ~5 Mbps target: the test pattern must get a real video bitrate, capped by maxrate.
    const videoBitrate = Number(probed.streams.find((s) => s.codec_type === "video")?.bit_rate);
    expect(videoBitrate).toBeGreaterThan(500_000);
    expect(videoBitrate).toBeLessThan(6_000_000);
    expect(await readdir(ctx.workDir)).toEqual(["video.mp4"]);
    expectProgressMonotonicTo100(ctx.progress);
  });

  it("gives an audio-only episode a still waveform card as its video track", async () => {
    const ctx = await taskContext(tools, quietAudio, await workDir("still"));
    const output = await runVideoTask(ctx);
    expect(output.metadata.stillCard).toBe(true);
    await expectYouTubeMp4(output.file);
    expect(await readdir(ctx.workDir)).toEqual(["video.mp4"]);
    expectProgressMonotonicTo100(ctx.progress);
  });

  it("kills ffmpeg on abort and leaves no partial file", async () => {
    const controller = new AbortController();
    const ctx = await taskContext(tools, video, await workDir("abort"), {
      signal: controller.signal,
      onProgress: (percent) => {
        // Abort inside the encoding pass, while ffmpeg is writing the MP4.
        if (percent > 20) controller.abort();
      },
    });
    await expect(runVideoTask(ctx)).rejects.toBeInstanceOf(MediaTaskAbortedError);
    expect(await readdir(ctx.workDir)).toEqual([]);
  });

  it("removes partial files when ffmpeg fails", async () => {
    const dir = await workDir("failure");
    const ctx = await taskContext(tools, quietAudio, dir);
    // The upload turns out empty after probing: ffmpeg fails, nothing is left behind.
    const vanishing = path.join(dir, "..", "vanishing.mp3");
    await writeFile(vanishing, "");
    await expect(runAudioTask({ ...ctx, input: vanishing })).rejects.toThrow(/ffmpeg exited/);
    expect(await readdir(dir)).toEqual([]);
  });
});

describe("chapter task", () => {
  it("starts chapters where speech resumes after each pause", async () => {
    const ctx = await taskContext(tools, tonePauses, await workDir("chapters"));
    const { chapters } = await runChapterTask(ctx, {
      minChapterSeconds: 1.5,
      minSilenceSeconds: 1,
    });
    expect(chapters.map((chapter) => chapter.title)).toEqual([
      "Chapter 1",
      "Chapter 2",
      "Chapter 3",
    ]);
    expect(chapters[0]).toMatchObject({ start: 0 });
    expect(chapters[1]?.start).toBeCloseTo(4, 0);
    expect(chapters[2]?.start).toBeCloseTo(8, 0);
    expect(chapters[2]?.end).toBeCloseTo(10, 1);
    expectProgressMonotonicTo100(ctx.progress);
  });

  it("merges chapters shorter than minChapterSeconds and titles them from the transcript", async () => {
    const ctx = await taskContext(tools, tonePauses, await workDir("chapters-merged"));
    const { chapters } = await runChapterTask(ctx, {
      minChapterSeconds: 3,
      minSilenceSeconds: 1,
      transcriptSegments: [
        { start: 0.2, end: 1.8, text: "Welcome to the show" },
        { start: 4.1, end: 5.9, text: "Now the news of the week, in brief" },
      ],
    });
    // 8 s would leave a 2 s last chapter: that boundary is dropped.
    expect(chapters).toHaveLength(2);
    expect(chapters[0]).toMatchObject({ start: 0, title: "Welcome to the show" });
    expect(chapters[1]?.start).toBeCloseTo(4, 0);
    expect(chapters[1]?.end).toBeCloseTo(10, 1);
    expect(chapters[1]?.title).toBe("Now the news of the week…");
  });

  it("finds no pause shorter than minSilenceSeconds", async () => {
    const ctx = await taskContext(tools, tonePauses, await workDir("chapters-none"));
    const { chapters } = await runChapterTask(ctx, {
      minChapterSeconds: 1,
      minSilenceSeconds: 2.5,
    });
    expect(chapters).toHaveLength(1);
    expect(chapters[0]).toMatchObject({ start: 0, title: "Chapter 1" });
  });
});
