/**
 * The YouTube MP4: H.264 1920×1080 at 30 fps (letterboxed, aspect kept), ~5 Mbps, AAC stereo with
 * the same loudness normalisation as the podcast, moov atom first. Audio-only episodes get a still
 * card — the episode's waveform (showwavespic) on a dark background — because YouTube needs a
 * video track and the npm ffmpeg build has no fonts for drawtext.
 */
import { rename } from "node:fs/promises";
import path from "node:path";
import { runFfmpeg } from "../ffmpeg.ts";
import { monotonicProgress, progressSlice } from "../progress.ts";
import type { TaskCommands } from "./audio.ts";
import {
  assertDiskSpaceForInput,
  type LocalTaskContext,
  type MediaOutput,
  partialPath,
  removeQuietly,
  withScratchFiles,
} from "./context.ts";
import { measureArgs, measureFilter, measureLoudness, normaliseFilter } from "./loudness.ts";

export const VIDEO_WIDTH = 1920;
export const VIDEO_HEIGHT = 1080;
export const VIDEO_FPS = 30;
const CARD_COLOUR = "0x0f172a";
const WAVE_COLOUR = "0x38bdf8";

const FRAME_FILTER =
  `scale=${VIDEO_WIDTH}:${VIDEO_HEIGHT}:force_original_aspect_ratio=decrease,` +
  `pad=${VIDEO_WIDTH}:${VIDEO_HEIGHT}:(ow-iw)/2:(oh-ih)/2:color=black,setsar=1,` +
  `fps=${VIDEO_FPS},format=yuv420p`;

const AAC_ARGS = ["-c:a", "aac", "-b:a", "192k", "-ar", "48000", "-ac", "2"];
const MP4_ARGS = ["-movflags", "+faststart", "-f", "mp4"];

export interface VideoTaskCommands extends TaskCommands {
  /** For an audio-only episode: the file the measure pass also draws the waveform card into. */
  cardImage: string | null;
}

/** The exact ffmpeg arguments (after the common flags of runFfmpeg) the video task runs. */
export function videoTaskCommands(
  ctx: Pick<LocalTaskContext, "input" | "probe" | "workDir">,
  outputFile: string,
  cardImage = path.join(ctx.workDir, ".card.png"),
): VideoTaskCommands {
  if (ctx.probe.hasVideo) {
    return {
      cardImage: null,
      measure: ctx.probe.hasAudio ? measureArgs(ctx) : [],
      encode: (measured) => {
        const filter = normaliseFilter(measured);
        return [
          "-i",
          ctx.input,
          "-map",
          "0:v:0",
          ...(ctx.probe.hasAudio ? ["-map", "0:a:0"] : []),
          "-map_metadata",
          "-1",
          "-vf",
          FRAME_FILTER,
          "-c:v",
          "libx264",
          "-preset",
          "veryfast",
          "-profile:v",
          "high",
          "-b:v",
          "5M",
          "-maxrate",
          "5M",
          "-bufsize",
          "10M",
          "-g",
          String(VIDEO_FPS * 2),
          ...(ctx.probe.hasAudio ? [...(filter ? ["-af", filter] : []), ...AAC_ARGS] : []),
          ...MP4_ARGS,
          outputFile,
        ];
      },
    };
  }
  // Audio only: one pass measures loudness and draws the waveform card at the same time.
  const graph =
    `[0:a:0]asplit=2[measure][wave];[measure]${measureFilter()}[measured];` +
    `[wave]aformat=channel_layouts=mono,showwavespic=s=1600x400:colors=${WAVE_COLOUR}[card]`;
  return {
    cardImage,
    measure: [
      "-i",
      ctx.input,
      "-filter_complex",
      graph,
      "-map",
      "[measured]",
      "-f",
      "null",
      "-",
      "-map",
      "[card]",
      "-frames:v",
      "1",
      "-update",
      "1",
      cardImage,
    ],
    encode: (measured) => {
      const filter = normaliseFilter(measured);
      return [
        "-loop",
        "1",
        "-framerate",
        String(VIDEO_FPS),
        "-i",
        cardImage,
        "-i",
        ctx.input,
        "-map",
        "0:v:0",
        "-map",
        "1:a:0",
        "-map_metadata",
        "-1",
        "-vf",
        `pad=${VIDEO_WIDTH}:${VIDEO_HEIGHT}:(ow-iw)/2:(oh-ih)/2:color=${CARD_COLOUR},` +
          `setsar=1,fps=${VIDEO_FPS},format=yuv420p`,
        "-c:v",
        "libx264",
        "-preset",
        "veryfast",
        "-tune",
        "stillimage",
        "-crf",
        "28",
        "-maxrate",
        "5M",
        "-bufsize",
        "10M",
        // A still picture needs few key frames; 10 s keeps seeking usable.
        "-g",
        String(VIDEO_FPS * 10),
        ...(filter ? ["-af", filter] : []),
        ...AAC_ARGS,
        "-shortest",
        ...MP4_ARGS,
        outputFile,
      ];
    },
  };
}

export async function runVideoTask(ctx: LocalTaskContext): Promise<MediaOutput> {
  await assertDiskSpaceForInput(ctx);
  const progress = monotonicProgress(ctx.onProgress);
  return withScratchFiles(async (scratch) => {
    const partial = scratch(partialPath(ctx, "mp4"));
    const card = scratch(partialPath(ctx, "png"));
    const commands = videoTaskCommands(ctx, partial, card);
    const measureShare = ctx.probe.hasVideo ? 20 : 40;
    const measured =
      commands.measure.length > 0
        ? await measureLoudness(ctx, commands.measure, progressSlice(progress, 0, measureShare))
        : null;
    await runFfmpeg(ctx.tools, commands.encode(measured), {
      signal: ctx.signal,
      durationSeconds: ctx.probe.durationSeconds,
      onProgress: progressSlice(progress, measureShare, 100),
      stallTimeoutMs: ctx.stallTimeoutMs,
    });
    const file = scratch(path.join(ctx.workDir, "video.mp4"));
    await rename(partial, file);
    if (commands.cardImage) await removeQuietly(commands.cardImage);
    progress(100);
    return {
      file,
      contentType: "video/mp4",
      extension: "mp4",
      metadata: {
        width: VIDEO_WIDTH,
        height: VIDEO_HEIGHT,
        fps: VIDEO_FPS,
        stillCard: !ctx.probe.hasVideo,
        normalised: measured !== null,
        durationSeconds: ctx.probe.durationSeconds,
      },
    };
  });
}
