/** The podcast MP3: loudness-normalised, 192 kbps CBR stereo, with the episode title in ID3. */
import { rename } from "node:fs/promises";
import path from "node:path";
import { firstAudioTrackArgs, runFfmpeg } from "../ffmpeg.ts";
import { monotonicProgress, progressSlice } from "../progress.ts";
import {
  assertDiskSpaceForInput,
  type LocalTaskContext,
  type MediaOutput,
  partialPath,
  withScratchFiles,
} from "./context.ts";
import {
  type LoudnessMeasurement,
  measureArgs,
  measureLoudness,
  normaliseFilter,
} from "./loudness.ts";

export const AUDIO_BITRATE = "192k";
export const AUDIO_SAMPLE_RATE = 44_100;

export interface TaskCommands {
  /** The loudness measurement pass. */
  measure: string[];
  /** The encoding pass for a given measurement (null: silent input, no normalisation). */
  encode(measured: LoudnessMeasurement | null): string[];
}

/** The exact ffmpeg arguments (after the common flags of runFfmpeg) the audio task runs. */
export function audioTaskCommands(
  ctx: Pick<LocalTaskContext, "input" | "title">,
  outputFile: string,
): TaskCommands {
  return {
    measure: measureArgs(ctx),
    encode: (measured) => {
      const filter = normaliseFilter(measured);
      return [
        ...firstAudioTrackArgs(ctx.input),
        "-map_metadata",
        "-1",
        ...(filter ? ["-af", filter] : []),
        // loudnorm resamples to 192 kHz internally; bring it back to a podcast rate.
        "-ar",
        String(AUDIO_SAMPLE_RATE),
        "-ac",
        "2",
        "-c:a",
        "libmp3lame",
        "-b:a",
        AUDIO_BITRATE,
        "-id3v2_version",
        "3",
        "-metadata",
        `title=${ctx.title}`,
        "-f",
        "mp3",
        outputFile,
      ];
    },
  };
}

export async function runAudioTask(ctx: LocalTaskContext): Promise<MediaOutput> {
  if (!ctx.probe.hasAudio) throw new Error("the episode has no audio track to make an MP3 from");
  await assertDiskSpaceForInput(ctx);
  const progress = monotonicProgress(ctx.onProgress);
  return withScratchFiles(async (scratch) => {
    const partial = scratch(partialPath(ctx, "mp3"));
    const commands = audioTaskCommands(ctx, partial);
    // The measure pass decodes only; the encode pass does more work per second of audio.
    const measured = await measureLoudness(ctx, commands.measure, progressSlice(progress, 0, 35));
    await runFfmpeg(ctx.tools, commands.encode(measured), {
      signal: ctx.signal,
      durationSeconds: ctx.probe.durationSeconds,
      onProgress: progressSlice(progress, 35, 100),
      stallTimeoutMs: ctx.stallTimeoutMs,
    });
    const file = scratch(path.join(ctx.workDir, "audio.mp3"));
    await rename(partial, file);
    progress(100);
    return {
      file,
      contentType: "audio/mpeg",
      extension: "mp3",
      metadata: {
        bitrate: 192_000,
        sampleRate: AUDIO_SAMPLE_RATE,
        channels: 2,
        loudnessTarget: -16,
        normalised: measured !== null,
        measuredLoudness: measured ? Number(measured.inputI) : null,
        durationSeconds: ctx.probe.durationSeconds,
      },
    };
  });
}
