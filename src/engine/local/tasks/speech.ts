/**
 * Offline transcription with whisper.cpp. Without a model file there is nothing to run: the task
 * answers `skipped` with a reason a producer can act on. ffmpeg decodes the episode to the 16 kHz
 * mono samples whisper expects (with progress and stall detection); whisper runs in a child
 * process (see speech-worker.ts) that is killed on abort.
 */

import { fork } from "node:child_process";
import { availableParallelism } from "node:os";
import { fileURLToPath } from "node:url";
import type { TranscriptSegment } from "../../../entities/episode.entity.ts";
import { MediaTaskAbortedError } from "../errors.ts";
import { firstAudioTrackArgs, runFfmpeg } from "../ffmpeg.ts";
import { monotonicProgress, progressSlice } from "../progress.ts";
import {
  assertDiskSpaceForInput,
  type LocalTaskContext,
  partialPath,
  removeQuietly,
} from "./context.ts";
import type {
  SpeechWorkerInput,
  SpeechWorkerMessage,
  WhisperSegmentTimes,
} from "./speech-worker.ts";

export const WHISPER_SAMPLE_RATE = 16_000;

export const SPEECH_SKIPPED_NO_MODEL =
  "No speech model is configured: set PODFLOW_WHISPER_MODEL to the path of a whisper.cpp ggml " +
  "model file (e.g. ggml-base.en.bin) to get transcripts from the local engine.";

export type SpeechResult =
  | { skipped: string }
  | { text: string; segments: TranscriptSegment[]; language: string | null };

export class SpeechRecognitionError extends Error {
  override name = "SpeechRecognitionError";
}

export function speechDecodeCommand(ctx: Pick<LocalTaskContext, "input">, outputFile: string) {
  return [
    ...firstAudioTrackArgs(ctx.input),
    "-ac",
    "1",
    "-ar",
    String(WHISPER_SAMPLE_RATE),
    "-f",
    "f32le",
    "-c:a",
    "pcm_f32le",
    outputFile,
  ];
}

/** whisper.cpp reports segment times in centiseconds. */
export function toTranscriptSegment(segment: WhisperSegmentTimes): TranscriptSegment {
  return { start: segment.start / 100, end: segment.end / 100, text: segment.text.trim() };
}

export interface SpeechOptions {
  modelPath: string | undefined;
  /** whisper threads; defaults to the machine's cores. */
  threads?: number;
  /** Called when whisper starts transcribing, with the pid of the process it runs in. */
  onTranscribing?: (pid: number) => void;
}

export async function runSpeechTask(
  ctx: LocalTaskContext,
  options: SpeechOptions,
): Promise<SpeechResult> {
  if (!options.modelPath) return { skipped: SPEECH_SKIPPED_NO_MODEL };
  if (!ctx.probe.hasAudio) return { skipped: "The episode has no audio track to transcribe." };
  await assertDiskSpaceForInput(ctx);
  const progress = monotonicProgress(ctx.onProgress);
  const samplesFile = partialPath(ctx, "f32");
  try {
    await runFfmpeg(ctx.tools, speechDecodeCommand(ctx, samplesFile), {
      signal: ctx.signal,
      durationSeconds: ctx.probe.durationSeconds,
      onProgress: progressSlice(progress, 0, 20),
      stallTimeoutMs: ctx.stallTimeoutMs,
    });
    const result = await transcribeInWorker(
      ctx.signal,
      {
        modelPath: options.modelPath,
        samplesFile,
        threads: options.threads ?? Math.max(1, availableParallelism()),
      },
      (pid) => {
        progress(25);
        options.onTranscribing?.(pid);
      },
    );
    progress(100);
    return {
      text: result.text.trim(),
      segments: result.segments.map(toTranscriptSegment),
      language: result.language,
    };
  } finally {
    await removeQuietly(samplesFile);
  }
}

function transcribeInWorker(
  signal: AbortSignal,
  input: SpeechWorkerInput,
  onTranscribing: (pid: number) => void,
): Promise<Extract<SpeechWorkerMessage, { type: "done" }>> {
  if (signal.aborted) return Promise.reject(new MediaTaskAbortedError());
  return new Promise((resolve, reject) => {
    const worker = fork(
      fileURLToPath(new URL("./speech-worker.ts", import.meta.url)),
      [JSON.stringify(input)],
      // No inherited loader flags (a test runner's), whisper's own log lines go to our stderr.
      { execArgv: [], stdio: ["ignore", "ignore", "pipe", "ipc"] },
    );
    let stderrTail = "";
    worker.stderr?.setEncoding("utf8");
    worker.stderr?.on("data", (chunk: string) => {
      stderrTail = (stderrTail + chunk).slice(-4000);
    });
    let settled = false;
    const settle = (action: () => void) => {
      if (settled) return;
      settled = true;
      signal.removeEventListener("abort", onAbort);
      action();
      if (worker.exitCode === null && worker.signalCode === null) worker.kill("SIGKILL");
    };
    // Settle once the process is gone, so nothing of it outlives the rejected task.
    let aborted = false;
    const onAbort = () => {
      aborted = true;
      worker.kill("SIGKILL");
    };
    signal.addEventListener("abort", onAbort, { once: true });
    worker.on("message", (message: SpeechWorkerMessage) => {
      if (message.type === "transcribing" && worker.pid !== undefined) onTranscribing(worker.pid);
      else if (message.type === "done") settle(() => resolve(message));
      else if (message.type === "error") {
        settle(() => reject(new SpeechRecognitionError(`whisper failed: ${message.message}`)));
      }
    });
    worker.on("error", (error) => {
      settle(() => reject(new SpeechRecognitionError(`whisper process failed: ${error.message}`)));
    });
    worker.on("exit", (code, exitSignal) => {
      const lastLine = stderrTail.trim().split("\n").at(-1) ?? "";
      settle(() =>
        reject(
          aborted
            ? new MediaTaskAbortedError()
            : new SpeechRecognitionError(
                `whisper process exited with ${code ?? exitSignal}${lastLine ? `: ${lastLine}` : ""}`,
              ),
        ),
      );
    });
  });
}
