/**
 * Runs whisper.cpp (through @napi-rs/whisper) in a child process of its own. Its full() call
 * blocks the thread it runs on for the whole transcription, so it cannot run in the worker's main
 * thread; a worker_thread would do for that, but a model file whisper.cpp rejects crashed the whole
 * process with SIGSEGV when the worker thread exited (@napi-rs/whisper 0.0.4). In a child process
 * such a crash is a failed task, and SIGKILL cancels it at once.
 * Input: 16 kHz mono float32 PCM in a file. Segment callbacks are delivered to this process's
 * event loop, which is blocked during full(); they are collected and sent after it returns.
 */
import { readFile } from "node:fs/promises";
import { Whisper, WhisperFullParams, WhisperSamplingStrategy } from "@napi-rs/whisper";

export interface SpeechWorkerInput {
  modelPath: string;
  samplesFile: string;
  threads: number;
}

export interface WhisperSegmentTimes {
  text: string;
  start: number;
  end: number;
}

export type SpeechWorkerMessage =
  | { type: "loaded" }
  | { type: "transcribing" }
  | { type: "done"; text: string; segments: WhisperSegmentTimes[]; language: string | null }
  | { type: "error"; message: string };

const input = JSON.parse(process.argv[2] ?? "{}") as SpeechWorkerInput;
const post = (message: SpeechWorkerMessage) =>
  new Promise<void>((resolve) => {
    if (!process.send) return resolve();
    process.send(message, undefined, {}, () => resolve());
  });

try {
  const whisper = new Whisper(input.modelPath);
  post({ type: "loaded" });
  const bytes = await readFile(input.samplesFile);
  const samples = new Float32Array(bytes.buffer, bytes.byteOffset, Math.floor(bytes.length / 4));
  const segments: WhisperSegmentTimes[] = [];
  const params = new WhisperFullParams(WhisperSamplingStrategy.Greedy);
  params.nThreads = input.threads;
  params.printProgress = false;
  params.printRealtime = false;
  params.onNewSegment = (segment) => {
    segments.push({ text: segment.text, start: segment.start, end: segment.end });
  };
  post({ type: "transcribing" });
  const text = whisper.full(params, samples);
  // Let queued segment callbacks reach this thread before answering.
  await new Promise((resolve) => setImmediate(resolve));
  await new Promise((resolve) => setTimeout(resolve, 0));
  const language = Whisper.lang(whisper.fullLangId);
  await post({ type: "done", text, segments, language });
} catch (error) {
  await post({ type: "error", message: (error as Error).message ?? String(error) });
}
process.disconnect?.();
