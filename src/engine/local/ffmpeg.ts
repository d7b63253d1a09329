/**
 * Runs one ffmpeg process for a media task: progress from `-progress pipe:1`, SIGKILL on abort,
 * SIGKILL when ffmpeg stops making progress, and a typed error carrying the stderr tail.
 */
import { spawn } from "node:child_process";
import { FfmpegError, FfmpegStalledError, MediaTaskAbortedError } from "./errors.ts";
import type { MediaTools } from "./media-tools.ts";
import type { ProgressListener } from "./progress.ts";

export const DEFAULT_STALL_TIMEOUT_MS = 120_000;
const STDERR_TAIL_BYTES = 64 * 1024;

export interface RunFfmpegOptions {
  signal?: AbortSignal;
  /** Length of the media being processed; without it progress is not reported until the end. */
  durationSeconds?: number;
  /** Percent 0–100 of this run, fractional; wrap with monotonicProgress for reporting. */
  onProgress?: ProgressListener;
  /** Kill ffmpeg when its output time has not advanced for this long. */
  stallTimeoutMs?: number;
  /** Every complete stderr line, e.g. for silencedetect or loudnorm's report. */
  onStderrLine?: (line: string) => void;
  /** The child's pid once started (tests prove it is gone after an abort). */
  onSpawn?: (pid: number) => void;
}

export interface FfmpegRun {
  /** The last ~64 KiB of stderr (loudnorm prints its JSON there at the end). */
  stderrTail: string;
}

/**
 * The flags every run gets: no stdin (a worker has none), machine-readable progress on stdout,
 * no human stats line, overwrite outputs inside the task's own work directory.
 */
/** Reads `input` and keeps only its first audio track: where the audio-only tasks start. */
export function firstAudioTrackArgs(input: string): string[] {
  return ["-i", input, "-map", "0:a:0", "-vn"];
}

export function ffmpegBaseArgs(): string[] {
  return ["-hide_banner", "-nostdin", "-nostats", "-y", "-progress", "pipe:1"];
}

export function runFfmpeg(
  tools: MediaTools,
  args: readonly string[],
  options: RunFfmpegOptions = {},
): Promise<FfmpegRun> {
  const { signal, durationSeconds, onProgress, onStderrLine } = options;
  const stallTimeoutMs = options.stallTimeoutMs ?? DEFAULT_STALL_TIMEOUT_MS;
  if (signal?.aborted) return Promise.reject(new MediaTaskAbortedError());

  return new Promise<FfmpegRun>((resolve, reject) => {
    const child = spawn(tools.ffmpeg, [...ffmpegBaseArgs(), ...args], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    if (child.pid !== undefined) options.onSpawn?.(child.pid);
    let stderrTail = "";
    let stderrPartial = "";
    let stdoutPartial = "";
    let lastOutTimeUs = -1;
    let failure: Error | null = null;
    let spawnError: Error | null = null;

    const kill = (reason: Error) => {
      if (failure) return;
      failure = reason;
      child.kill("SIGKILL");
    };
    let stallTimer = setTimeout(() => kill(new FfmpegStalledError(stallTimeoutMs)), stallTimeoutMs);
    const resetStallTimer = () => {
      clearTimeout(stallTimer);
      stallTimer = setTimeout(() => kill(new FfmpegStalledError(stallTimeoutMs)), stallTimeoutMs);
    };
    const onAbort = () => kill(new MediaTaskAbortedError());
    signal?.addEventListener("abort", onAbort, { once: true });

    child.stdout.setEncoding("utf8");
    child.stdout.on("data", (chunk: string) => {
      stdoutPartial += chunk;
      const lines = stdoutPartial.split("\n");
      stdoutPartial = lines.pop() ?? "";
      for (const line of lines) {
        // ffmpeg 4.x prints out_time_ms in microseconds too (a long-standing misnomer); 5.x adds
        // out_time_us. Either one is microseconds; "N/A" appears before the first frame.
        const match = /^out_time_(?:us|ms)=(\d+)/.exec(line.trim());
        if (!match) continue;
        const outTimeUs = Number(match[1]);
        if (outTimeUs <= lastOutTimeUs) continue;
        lastOutTimeUs = outTimeUs;
        resetStallTimer();
        if (onProgress && durationSeconds && durationSeconds > 0) {
          onProgress(Math.min(99.9, (outTimeUs / (durationSeconds * 1_000_000)) * 100));
        }
      }
    });
    child.stderr.setEncoding("utf8");
    child.stderr.on("data", (chunk: string) => {
      stderrTail = (stderrTail + chunk).slice(-STDERR_TAIL_BYTES);
      if (!onStderrLine) return;
      stderrPartial += chunk;
      const lines = stderrPartial.split(/\r?\n|\r/);
      stderrPartial = lines.pop() ?? "";
      for (const line of lines) onStderrLine(line);
    });
    child.on("error", (error) => {
      spawnError = error;
      // A binary that never started emits no "close" on every Node version: settle here.
      if (child.pid === undefined) finish(null, null);
    });
    let settled = false;
    const finish = (code: number | null, exitSignal: NodeJS.Signals | null) => {
      if (settled) return;
      settled = true;
      clearTimeout(stallTimer);
      signal?.removeEventListener("abort", onAbort);
      if (onStderrLine && stderrPartial) onStderrLine(stderrPartial);
      if (failure) return reject(failure);
      if (spawnError) {
        return reject(new FfmpegError(`ffmpeg could not start: ${spawnError.message}`, null, ""));
      }
      if (code !== 0) {
        const lastLine = lastMeaningfulLine(stderrTail);
        return reject(
          new FfmpegError(
            `ffmpeg exited with ${code ?? exitSignal}${lastLine ? `: ${lastLine}` : ""}`,
            code,
            stderrTail,
          ),
        );
      }
      onProgress?.(100);
      resolve({ stderrTail });
    };
    child.on("close", finish);
  });
}

function lastMeaningfulLine(stderr: string): string {
  const lines = stderr.split(/\r?\n/).filter((line) => line.trim() !== "");
  return (lines.at(-1) ?? "").trim().slice(0, 300);
}
