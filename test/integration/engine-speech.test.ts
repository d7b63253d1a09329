import { readdir } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { MediaTaskAbortedError } from "../../src/engine/local/errors.ts";
import { runSpeechTask, SpeechRecognitionError } from "../../src/engine/local/tasks/speech.ts";
import {
  isProcessAlive,
  makeMediaDir,
  makeToneWithPauses,
  taskContext,
  testMediaTools,
} from "../support/media.ts";

const testModel = fileURLToPath(
  new URL("../fixtures/whisper/for-tests-ggml-tiny.en.bin", import.meta.url),
);
const tools = testMediaTools();
let media: Awaited<ReturnType<typeof makeMediaDir>>;
let episode: string;

beforeAll(async () => {
  media = await makeMediaDir();
  episode = await makeToneWithPauses(tools, media.dir);
});
afterAll(() => media?.cleanup());

async function context(name: string, signal?: AbortSignal) {
  const workDir = path.join(media.dir, name);
  await (await import("node:fs/promises")).mkdir(workDir);
  return taskContext(tools, episode, workDir, signal ? { signal } : {});
}

describe("speech task", () => {
  it("is skipped with a reason naming PODFLOW_WHISPER_MODEL when no model is set", async () => {
    const ctx = await context("no-model");
    const result = await runSpeechTask(ctx, { modelPath: undefined });
    expect(result).toEqual({ skipped: expect.stringContaining("PODFLOW_WHISPER_MODEL") });
    expect(await readdir(ctx.workDir)).toEqual([]);
  });

  it("loads the model and transcribes in a child process without blocking the event loop", async () => {
    const ctx = await context("test-model");
    let transcriptionFinished = false;
    let loopTurnedDuringTranscription: Promise<boolean> | null = null;
    const transcription = runSpeechTask(ctx, {
      modelPath: testModel,
      threads: 1,
      onTranscribing: () => {
        // whisper's full() is running now; if it ran on this thread, no immediate could fire
        // before the task's promise settles.
        loopTurnedDuringTranscription = new Promise((resolve) =>
          setImmediate(() => resolve(!transcriptionFinished)),
        );
      },
    }).finally(() => {
      transcriptionFinished = true;
    });

    const result = await transcription;
    expect(loopTurnedDuringTranscription).not.toBeNull();
    expect(await loopTurnedDuringTranscription).toBe(true);
    // The zero-weight test model recognises nothing: the result is empty, well-formed English.
    expect(result).toEqual({ text: "", segments: [], language: "en" });
    expect(ctx.progress.at(-1)).toBe(100);
    expect(await readdir(ctx.workDir)).toEqual([]);
  });

  it("kills the whisper process on abort and removes the decoded samples", async () => {
    const controller = new AbortController();
    const ctx = await context("abort", controller.signal);
    let whisperPid = 0;
    const transcription = runSpeechTask(ctx, {
      modelPath: testModel,
      threads: 1,
      onTranscribing: (pid) => {
        whisperPid = pid;
        controller.abort();
      },
    });
    await expect(transcription).rejects.toBeInstanceOf(MediaTaskAbortedError);
    expect(whisperPid).toBeGreaterThan(0);
    expect(isProcessAlive(whisperPid)).toBe(false);
    expect(await readdir(ctx.workDir)).toEqual([]);
  });

  it("fails with SpeechRecognitionError for a model file that is not a model", async () => {
    const ctx = await context("bad-model");
    const transcription = runSpeechTask(ctx, { modelPath: episode, threads: 1 });
    await expect(transcription).rejects.toBeInstanceOf(SpeechRecognitionError);
    expect(await readdir(ctx.workDir)).toEqual([]);
  });
});
