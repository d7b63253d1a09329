/**
 * The bare ffmpeg work of the local engine's media tasks, for the engine-overhead baseline, and
 * what reads an episode's outputs back. The baseline calls the same run*Task functions the
 * engine's task runner calls — the measure pass then the encode pass for audio and video, one
 * silencedetect pass for chapters — so the commands are exactly the engine's, without its jobs,
 * database writes, storage moves and progress reports.
 */
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import type { MediaTools } from "../../src/engine/local/media-tools.ts";
import { type MediaProbe, probeMedia } from "../../src/engine/local/probe.ts";
import { runAudioTask } from "../../src/engine/local/tasks/audio.ts";
import { DEFAULT_CHAPTER_OPTIONS, runChapterTask } from "../../src/engine/local/tasks/chapters.ts";
import type { LocalTaskContext } from "../../src/engine/local/tasks/context.ts";
import { runVideoTask } from "../../src/engine/local/tasks/video.ts";
import { ffprobeStreams } from "../../test/support/media.ts";

/** Seconds each bare task took, in the order the engine's single media slot runs them. */
export interface BareTaskSeconds {
  audio: number;
  video: number;
  chapters: number;
}

/**
 * Runs audio, video and chapters one after the other on `input`, as the engine does with its
 * default PODFLOW_MEDIA_CONCURRENCY of 1. The input is probed once before the clock starts: the
 * engine probes again in every task, which is part of the overhead measured.
 */
export async function runBareTasks(
  tools: MediaTools,
  input: string,
  title: string,
): Promise<BareTaskSeconds> {
  const probe: MediaProbe = await probeMedia(tools, input);
  const workRoot = await mkdtemp(path.join(tmpdir(), "podflow-bench-bare-"));
  try {
    const context = async (name: string): Promise<LocalTaskContext> => {
      const workDir = path.join(workRoot, name);
      await rm(workDir, { recursive: true, force: true });
      await mkdir(workDir, { recursive: true });
      return {
        tools,
        input,
        probe,
        workDir,
        title,
        signal: new AbortController().signal,
        onProgress: () => undefined,
      };
    };
    const timed = async (work: () => Promise<unknown>) => {
      const started = performance.now();
      await work();
      return (performance.now() - started) / 1000;
    };
    const audioContext = await context("audio");
    const audio = await timed(() => runAudioTask(audioContext));
    const videoContext = await context("video");
    const video = await timed(() => runVideoTask(videoContext));
    const chaptersContext = await context("chapters");
    const chapters = await timed(() =>
      runChapterTask(chaptersContext, { ...DEFAULT_CHAPTER_OPTIONS, transcriptSegments: null }),
    );
    return { audio, video, chapters };
  } finally {
    await rm(workRoot, { recursive: true, force: true });
  }
}

/** Fetches an output from its URL and names the codecs ffprobe finds in it, e.g. "h264+aac". */
export async function codecsAt(tools: MediaTools, url: string): Promise<string> {
  const response = await fetch(url);
  if (response.status !== 200) return `HTTP ${response.status}`;
  const dir = await mkdtemp(path.join(tmpdir(), "podflow-bench-output-"));
  try {
    const file = path.join(dir, "output");
    await writeFile(file, Buffer.from(await response.arrayBuffer()));
    const probed = await ffprobeStreams(tools, file);
    return probed.streams.map((stream) => stream.codec_name).join("+");
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
