/**
 * Two-pass EBU R128 normalisation with ffmpeg's loudnorm: measure, then apply one linear gain
 * computed from the measurement. Podcasts target −16 LUFS integrated; the true-peak target leaves
 * 0.5 dB below the −1 dBTP ceiling for the MP3/AAC encoder's overshoot.
 */
import { runFfmpeg } from "../ffmpeg.ts";
import type { ProgressListener } from "../progress.ts";
import type { LocalTaskContext } from "./context.ts";

export const TARGET_LOUDNESS = { integrated: -16, truePeak: -1.5, range: 11 } as const;

export interface LoudnessMeasurement {
  inputI: string;
  inputTp: string;
  inputLra: string;
  inputThresh: string;
  targetOffset: string;
}

function loudnormTargets(): string {
  const t = TARGET_LOUDNESS;
  return `loudnorm=I=${t.integrated}:TP=${t.truePeak}:LRA=${t.range}`;
}

export function measureFilter(): string {
  return `${loudnormTargets()}:print_format=json`;
}

/** The filter for the second pass, or null when the input is silent (nothing to normalise). */
export function normaliseFilter(measured: LoudnessMeasurement | null): string | null {
  if (!measured) return null;
  return (
    `${loudnormTargets()}:measured_I=${measured.inputI}:measured_TP=${measured.inputTp}` +
    `:measured_LRA=${measured.inputLra}:measured_thresh=${measured.inputThresh}` +
    `:offset=${measured.targetOffset}:linear=true:print_format=summary`
  );
}

export function measureArgs(ctx: Pick<LocalTaskContext, "input">): string[] {
  return ["-i", ctx.input, "-map", "0:a:0", "-vn", "-af", measureFilter(), "-f", "null", "-"];
}

/** loudnorm prints its JSON block last on stderr; silent input measures as "-inf". */
export function parseLoudnormReport(stderr: string): LoudnessMeasurement | null {
  const start = stderr.lastIndexOf("{");
  const end = stderr.lastIndexOf("}");
  if (start < 0 || end < start) throw new Error("loudnorm printed no measurement");
  const report = JSON.parse(stderr.slice(start, end + 1)) as Record<string, string>;
  const measurement: LoudnessMeasurement = {
    inputI: String(report.input_i),
    inputTp: String(report.input_tp),
    inputLra: String(report.input_lra),
    inputThresh: String(report.input_thresh),
    targetOffset: String(report.target_offset),
  };
  const finite = Object.values(measurement).every((value) => Number.isFinite(Number(value)));
  return finite ? measurement : null;
}

export async function measureLoudness(
  ctx: LocalTaskContext,
  args: string[],
  onProgress: ProgressListener,
): Promise<LoudnessMeasurement | null> {
  const run = await runFfmpeg(ctx.tools, args, {
    signal: ctx.signal,
    durationSeconds: ctx.probe.durationSeconds,
    onProgress,
    stallTimeoutMs: ctx.stallTimeoutMs,
  });
  return parseLoudnormReport(run.stderrTail);
}
