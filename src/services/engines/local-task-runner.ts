/**
 * Runs one task of the local engine (the `run-local-task` job): ffmpeg or whisper.cpp on the
 * episode's uploaded file in a work directory of its own, reporting through applyTaskEvent — the
 * path webhooks take — so progress, completion, failure and SKIPPED reach subscribers and
 * complete-episode exactly as Ittybit's would. A retried run starts its step over cleanly: the
 * work directory is emptied first and removed after, and outputs are stored only when complete.
 */
import { mkdir, rm, writeFile } from "node:fs/promises";
import path from "node:path";
import type { AppDeps } from "../../deps.ts";
import { isTaskEnded, type TaskStatus } from "../../domain/tasks.ts";
import { MediaTaskAbortedError, NotMediaError } from "../../engine/local/errors.ts";
import type { MediaTools } from "../../engine/local/media-tools.ts";
import { probeMedia } from "../../engine/local/probe.ts";
import { runAudioTask } from "../../engine/local/tasks/audio.ts";
import { runChapterTask } from "../../engine/local/tasks/chapters.ts";
import type { LocalTaskContext, MediaOutput } from "../../engine/local/tasks/context.ts";
import { runSpeechTask } from "../../engine/local/tasks/speech.ts";
import { runVideoTask } from "../../engine/local/tasks/video.ts";
import type { Episode } from "../../entities/episode.entity.ts";
import { ProcessingTask } from "../../entities/processing-task.entity.ts";
import type { Metrics } from "../../metrics.ts";
import type { TaskEvent, TaskEventOutput } from "../ittybit/task-event.ts";
import type { MediaStorage } from "../storage.ts";
import { applyTaskEvent } from "../task-events.ts";
import {
  chaptersDocument,
  newOutputName,
  OUTPUT_NAME,
  outputKey,
  outputUrl,
  parseTranscriptDocument,
  transcriptDocument,
} from "./local-outputs.ts";
import { uploadKey } from "./local-uploads.ts";

export interface LocalRunnerDeps extends Pick<AppDeps, "orm" | "boss" | "logger"> {
  /** Task durations and transitions for GET /metrics, when given. */
  metrics?: Pick<Metrics, "engineTaskDuration" | "taskTransitions">;
  storage: MediaStorage;
  tools: MediaTools;
  publicUrl: string;
  settings: {
    whisperModel: string | undefined;
    chapterMinSeconds: number;
    chapterMinSilenceSeconds: number;
    /** Where runs keep their scratch files; on the same disk as the storage, so outputs move. */
    workRoot: string;
    stallTimeoutMs?: number;
  };
}

/** Progress is written at most this often: every write is a commit and a NOTIFY. */
const PROGRESS_INTERVAL_MS = 1_000;

/**
 * Runs the task; resolves once its outcome is recorded. Throws (so the job is retried) when the
 * run was stopped or failed for a reason that may pass — unless `lastAttempt`, when the failure
 * is recorded on the task instead, so the episode ends rather than waits.
 */
export async function runLocalTask(
  deps: LocalRunnerDeps,
  taskId: string,
  job: { signal: AbortSignal; lastAttempt: boolean },
): Promise<void> {
  const task = await deps.orm.em
    .fork()
    .findOne(ProcessingTask, { id: taskId }, { populate: ["episode"] });
  if (!task || isTaskEnded(task.status)) return;
  const episode = task.episode;
  const logger = deps.logger.child({ episodeId: episode.id, taskId, type: task.type });
  const report = (status: TaskStatus, extra: Partial<TaskEvent> = {}) =>
    applyTaskEvent(deps, localTaskEvent(task, status, extra), null);
  const workDir = path.join(deps.settings.workRoot, task.id);
  await rm(workDir, { recursive: true, force: true });
  await mkdir(workDir, { recursive: true });
  const progress = progressReporter((percent) => report("PROCESSING", { progress: percent }));
  const started = performance.now();
  const timed = (outcome: "completed" | "skipped" | "failed" | "retried") =>
    deps.metrics?.engineTaskDuration.observe(
      { engine: "local", type: task.type, outcome },
      (performance.now() - started) / 1_000,
    );
  try {
    await report("PROCESSING", { progress: 0 });
    logger.info({ attempt: task.attempt }, "local task started");
    if (!episode.fileId) throw new Error("the episode has no uploaded file");
    const input = deps.storage.localPath(uploadKey(episode.id, episode.fileId));
    const ctx: LocalTaskContext = {
      tools: deps.tools,
      input,
      probe: await probeMedia(deps.tools, input, job.signal),
      workDir,
      title: episode.title,
      signal: job.signal,
      onProgress: progress.update,
      stallTimeoutMs: deps.settings.stallTimeoutMs,
    };
    const outcome = await runStep(deps, task, episode, ctx);
    await progress.settled();
    if ("skipped" in outcome) {
      await report("SKIPPED", { error: outcome.skipped });
      timed("skipped");
      logger.info({ reason: outcome.skipped }, "local task skipped");
      return;
    }
    await report("COMPLETED", { progress: 100, output: outcome });
    timed("completed");
    logger.info({ output: outcome.url }, "local task completed");
  } catch (error) {
    await progress.settled();
    if (error instanceof NotMediaError || (job.lastAttempt && !job.signal.aborted)) {
      await report("FAILED", { error: (error as Error).message ?? String(error) });
      timed("failed");
      logger.warn({ err: error }, "local task failed");
      return;
    }
    timed("retried");
    if (!(error instanceof MediaTaskAbortedError))
      logger.warn({ err: error }, "local task will be retried");
    throw error;
  } finally {
    await rm(workDir, { recursive: true, force: true });
  }
}

type StepOutcome = { skipped: string } | TaskEventOutput;

async function runStep(
  deps: LocalRunnerDeps,
  task: ProcessingTask,
  episode: Episode,
  ctx: LocalTaskContext,
): Promise<StepOutcome> {
  switch (task.type) {
    case "AUDIO_EXTRACTION":
      return store(deps, await runAudioTask(ctx));
    case "VIDEO_TRANSCODE":
      return store(deps, await runVideoTask(ctx));
    case "TRANSCRIPT_GENERATION": {
      const result = await runSpeechTask(ctx, { modelPath: deps.settings.whisperModel });
      if ("skipped" in result) return result;
      return store(deps, await jsonOutput(ctx, transcriptDocument(result.segments)));
    }
    case "CHAPTER_DETECTION": {
      const { chapters } = await runChapterTask(ctx, {
        minChapterSeconds: deps.settings.chapterMinSeconds,
        minSilenceSeconds: deps.settings.chapterMinSilenceSeconds,
        transcriptSegments: await transcriptSegmentsSoFar(deps, episode),
      });
      return store(deps, await jsonOutput(ctx, chaptersDocument(chapters)));
    }
  }
}

/** Chapter titles come from the transcript when it is already done (tasks run in any order). */
async function transcriptSegmentsSoFar(deps: LocalRunnerDeps, episode: Episode) {
  const transcript = await deps.orm.em
    .fork()
    .findOne(
      ProcessingTask,
      { episode: episode.id, type: "TRANSCRIPT_GENERATION", status: "COMPLETED" },
      { orderBy: { attempt: "desc" } },
    );
  const name = transcript?.outputFileId;
  if (!name || !OUTPUT_NAME.test(name)) return null;
  return parseTranscriptDocument(await deps.storage.read(outputKey(name))).segments;
}

async function jsonOutput(ctx: LocalTaskContext, document: unknown): Promise<MediaOutput> {
  const file = path.join(ctx.workDir, "output.json");
  await writeFile(file, JSON.stringify(document));
  return { file, contentType: "application/json", extension: "json", metadata: {} };
}

/** Moves a finished output to storage under a new unguessable name, served at a public URL. */
async function store(deps: LocalRunnerDeps, output: MediaOutput): Promise<TaskEventOutput> {
  const name = newOutputName(output.extension);
  await deps.storage.adopt(outputKey(name), output.file);
  return {
    fileId: name,
    url: outputUrl(deps.publicUrl, name),
    kind: null,
    type: output.contentType,
  };
}

/** What the local engine reports about one of its tasks, in the shape webhooks are applied in. */
export function localTaskEvent(
  task: ProcessingTask,
  status: TaskStatus,
  extra: Partial<TaskEvent> = {},
): TaskEvent {
  return {
    taskId: task.engineTaskId,
    status,
    progress: null,
    output: null,
    error: null,
    deliveryId: null,
    rawStatus: status.toLowerCase(),
    ...extra,
  };
}

/**
 * Progress from ffmpeg arrives many times a second; one write at a time, at most once per
 * interval, and the latest value wins. `settled` waits for the write in flight.
 */
function progressReporter(write: (percent: number) => Promise<unknown>) {
  let lastWrite = 0;
  let pending: number | null = null;
  let chain: Promise<unknown> = Promise.resolve();
  const flush = () => {
    if (pending === null) return;
    const percent = pending;
    pending = null;
    lastWrite = Date.now();
    chain = chain.then(() => write(percent)).catch(() => undefined);
  };
  return {
    update(percent: number) {
      pending = percent;
      if (Date.now() - lastWrite >= PROGRESS_INTERVAL_MS) flush();
    },
    settled: () => chain,
  };
}
