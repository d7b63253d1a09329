/**
 * Small media made with ffmpeg's lavfi sources for the local engine's tests, and the checks that
 * read outputs back (ffprobe streams, ebur128 loudness, MP4 atom order). Every input lasts a few
 * seconds; the loudness input is 8 s so loudnorm's gated measurement means something.
 */
import { execFile } from "node:child_process";
import { mkdtemp, open, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { type MediaTools, resolveMediaTools } from "../../src/engine/local/media-tools.ts";
import { type MediaProbe, probeMedia } from "../../src/engine/local/probe.ts";
import type { LocalTaskContext } from "../../src/engine/local/tasks/context.ts";

const run = promisify(execFile);

/** The tools under test: FFMPEG_PATH/FFPROBE_PATH pick a build, else PATH, else npm. */
export function testMediaTools(): MediaTools {
  return resolveMediaTools(process.env);
}

export async function makeMediaDir(): Promise<{ dir: string; cleanup: () => Promise<void> }> {
  const dir = await mkdtemp(path.join(tmpdir(), "podflow-engine-"));
  return { dir, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

async function ffmpeg(tools: MediaTools, args: string[]): Promise<string> {
  const { stderr } = await run(tools.ffmpeg, ["-hide_banner", "-nostdin", "-y", ...args], {
    maxBuffer: 16 * 1024 * 1024,
  });
  return stderr;
}

/**
 * 10 s of stereo tone with two 2 s pauses: tone 0–2, silence 2–4, tone 4–6, silence 6–8,
 * tone 8–10. Speech resumes at 4 s and 8 s.
 */
export async function makeToneWithPauses(tools: MediaTools, dir: string): Promise<string> {
  const file = path.join(dir, "tone-with-pauses.wav");
  await ffmpeg(tools, [
    "-f",
    "lavfi",
    "-i",
    "aevalsrc=if(lt(mod(t\\,4)\\,2)\\,0.3*sin(2*PI*440*t)\\,0)|if(lt(mod(t\\,4)\\,2)\\,0.3*sin(2*PI*440*t)\\,0):s=44100:d=10",
    "-c:a",
    "pcm_s16le",
    file,
  ]);
  return file;
}

/** An 8 s quiet (about −33 LUFS) audio-only MP3 with an ID3 title: normalisation must raise it. */
export async function makeQuietAudio(tools: MediaTools, dir: string, seconds = 8): Promise<string> {
  const file = path.join(dir, "quiet-episode.mp3");
  await ffmpeg(tools, [
    "-f",
    "lavfi",
    "-i",
    `aevalsrc=0.03*sin(2*PI*330*t)*(0.6+0.4*sin(2*PI*0.5*t))|0.03*sin(2*PI*440*t)*(0.6+0.4*sin(2*PI*0.7*t)):s=48000:d=${seconds}`,
    "-c:a",
    "libmp3lame",
    "-b:a",
    "128k",
    file,
  ]);
  return file;
}

/** A 4:3 640×480 25 fps test-pattern video with a loud tone, `seconds` long. */
export async function makeVideoWithAudio(
  tools: MediaTools,
  dir: string,
  seconds = 6,
): Promise<string> {
  const file = path.join(dir, "episode-video.mp4");
  await ffmpeg(tools, [
    "-f",
    "lavfi",
    "-i",
    `testsrc=size=640x480:rate=25:duration=${seconds}`,
    "-f",
    "lavfi",
    "-i",
    `sine=frequency=520:sample_rate=44100:duration=${seconds},volume=0.9`,
    "-c:v",
    "libx264",
    "-preset",
    "ultrafast",
    "-pix_fmt",
    "yuv420p",
    "-c:a",
    "aac",
    "-shortest",
    file,
  ]);
  return file;
}

/** Bytes that look like nothing ffprobe knows, under a name that claims to be video. */
export async function makeCorruptFile(dir: string): Promise<string> {
  const file = path.join(dir, "corrupt.mp4");
  const bytes = Buffer.alloc(64 * 1024);
  for (let index = 0; index < bytes.length; index++) bytes[index] = (index * 7919) % 251;
  await writeFile(file, bytes);
  return file;
}

export interface ProbedStream {
  codec_type: string;
  codec_name: string;
  sample_rate?: string;
  channels?: number;
  width?: number;
  height?: number;
  avg_frame_rate?: string;
  r_frame_rate?: string;
  bit_rate?: string;
}

export async function ffprobeStreams(
  tools: MediaTools,
  file: string,
): Promise<{
  streams: ProbedStream[];
  format: {
    tags?: Record<string, string>;
    format_name: string;
    duration: string;
    bit_rate: string;
  };
}> {
  const { stdout } = await run(tools.ffprobe, [
    "-v",
    "error",
    "-print_format",
    "json",
    "-show_streams",
    "-show_format",
    file,
  ]);
  return JSON.parse(stdout);
}

/** Integrated loudness (LUFS) and true peak (dBTP) as ffmpeg's ebur128 filter measures them. */
export async function ebur128(
  tools: MediaTools,
  file: string,
): Promise<{ integrated: number; truePeak: number }> {
  const stderr = await ffmpeg(tools, [
    "-nostats",
    "-i",
    file,
    "-map",
    "0:a:0",
    "-af",
    "ebur128=peak=true",
    "-f",
    "null",
    "-",
  ]);
  const summary = stderr.slice(stderr.lastIndexOf("Summary:"));
  const integrated = /I:\s+(-?[\d.]+) LUFS/.exec(summary);
  const peak = /True peak:\s+Peak:\s+(-?[\d.]+|-inf) dBFS/.exec(summary);
  if (!integrated || !peak) throw new Error(`no ebur128 summary in:\n${summary}`);
  return { integrated: Number(integrated[1]), truePeak: Number(peak[1]) };
}

/** Top-level MP4 box names in file order (faststart puts moov before mdat). */
export async function mp4TopLevelBoxes(file: string): Promise<string[]> {
  const handle = await open(file, "r");
  try {
    const { size } = await handle.stat();
    const boxes: string[] = [];
    let offset = 0;
    const header = Buffer.alloc(16);
    while (offset + 8 <= size) {
      await handle.read(header, 0, 16, offset);
      let boxSize = header.readUInt32BE(0);
      boxes.push(header.toString("latin1", 4, 8));
      if (boxSize === 1) boxSize = Number(header.readBigUInt64BE(8));
      if (boxSize === 0) break;
      offset += boxSize;
    }
    return boxes;
  } finally {
    await handle.close();
  }
}

/** A task context on `input`, recording every progress report. */
export async function taskContext(
  tools: MediaTools,
  input: string,
  workDir: string,
  overrides: Partial<LocalTaskContext> = {},
): Promise<LocalTaskContext & { progress: number[]; probe: MediaProbe }> {
  const probe = await probeMedia(tools, input);
  const progress: number[] = [];
  return {
    tools,
    input,
    probe,
    workDir,
    title: "Episode 12: Café talk",
    signal: new AbortController().signal,
    onProgress: (percent) => progress.push(percent),
    ...overrides,
    progress,
  };
}

export function isProcessAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
