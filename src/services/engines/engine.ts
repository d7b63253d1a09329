import type { EntityManager } from "@mikro-orm/postgresql";
import type { EngineKind } from "../../domain/engines.ts";
import type { TaskType } from "../../domain/tasks.ts";
import type { Chapter, Episode, TranscriptSegment } from "../../entities/episode.entity.ts";
import type { ProcessingTask } from "../../entities/processing-task.entity.ts";
import { ProcessingUnavailableError } from "../errors.ts";

/** Where and how a producer sends an episode's file. */
export interface UploadTarget {
  /** A signed URL to PUT the bytes to; the answer is JSON `{ "id": "<file id>", … }`. */
  url: string;
  method: "PUT";
  expiresAt: Date;
  /** The tus 1.0 creation endpoint for resumable uploads, when the engine offers them. */
  tusUrl: string | null;
}

/** The podcast MP3 as a feed's enclosure needs it. */
export interface AudioFacts {
  bytes: number;
  /** Null when the engine cannot tell. */
  durationSeconds: number | null;
}

export interface EpisodeOutputs {
  transcript: { text: string; segments: TranscriptSegment[] } | null;
  chapters: Chapter[] | null;
}

/**
 * A media engine, as processing, completion and retry see it: they never ask which one they
 * drive. Every call is safe to repeat (jobs are at-least-once).
 */
export interface MediaEngine {
  readonly kind: EngineKind;
  /**
   * Where the producer sends the file of a new episode; asked before the episode is stored, so
   * a refusal leaves nothing behind. `folder` is what the engine wants kept on the episode.
   */
  prepareUpload(upload: {
    episodeId: string;
    filename: string;
    filesize: number;
  }): Promise<{ target: UploadTarget; folder: string | null }>;
  /**
   * Checks that `fileId` names a file uploaded for this episode that the engine can process;
   * a typed domain error (UnknownFileError, InvalidMediaError, ProcessingUnavailableError) if not.
   * Answers the file's real size in bytes (null when the engine does not know it yet), which
   * confirmUpload holds against the declared size and the upload limit.
   */
  checkUploadedFile(episode: Episode, fileId: string): Promise<{ bytes: number | null }>;
  /**
   * Makes the engine's side of one task attempt; the same (episode, type, attempt) always gets
   * the same task back, never a second one. What the engine keeps on the episode it sets on the
   * entity: it is saved with the task, in the task's transaction. An aborted `signal` (the job
   * handed back on stop) ends the call with the signal's reason.
   */
  createTask(
    episode: Episode,
    type: TaskType,
    attempt: number,
    signal?: AbortSignal,
  ): Promise<{ engineTaskId: string; metadata: Record<string, unknown> }>;
  /** Runs in the transaction that saves a new task row (the local engine queues its job there). */
  taskSaved?(tx: EntityManager, task: ProcessingTask): Promise<void>;
  /**
   * The transcript and chapters of a finished round (null for a task that was skipped).
   * OutputError for a permanent problem; anything else is thrown for the job to retry (an
   * aborted `signal` too).
   */
  readOutputs(
    tasks: {
      transcript: ProcessingTask;
      chapters: ProcessingTask;
    },
    signal?: AbortSignal,
  ): Promise<EpisodeOutputs>;
  /**
   * The exact size (and the duration, when known) of an episode's podcast MP3, for the feed's
   * enclosure: the file in storage for the local engine, a HEAD request for Ittybit's URL.
   */
  measureAudio(audio: { fileId: string | null; url: string | null }): Promise<AudioFacts>;
  /**
   * Random access to a finished output for publishing it elsewhere (YouTube, Transistor): the
   * file in storage for the local engine, range requests to Ittybit's URL. OutputError when it
   * is not there.
   */
  openOutput(
    output: { fileId: string | null; url: string | null },
    what: string,
  ): Promise<OutputFile>;
}

/** A finished output (the MP3, the MP4), read in pieces for uploading it elsewhere. */
export interface OutputFile {
  bytes: number;
  /** `length` bytes from `start` (fewer only at the end of the file). */
  read(start: number, length: number, signal?: AbortSignal): Promise<Buffer>;
}

/** The engines this installation has; a kind that is not configured is absent. */
export type MediaEngines = Partial<Record<EngineKind, MediaEngine>>;

/**
 * The engine to use for an episode. "Not configured" is answered here and nowhere else: the
 * episode keeps its engine, and its jobs fail (and are retried) until the engine is back.
 */
export function engineFor(engines: MediaEngines, kind: EngineKind): MediaEngine {
  const engine = engines[kind];
  if (!engine) {
    throw new ProcessingUnavailableError(
      kind === "ittybit"
        ? "Media processing with Ittybit is not configured on this server (ITTYBIT_API_KEY is not set)"
        : "The local media engine is not enabled on this server",
    );
  }
  return engine;
}

/**
 * The engine refused a task for good (e.g. Ittybit answered 4xx): retrying the job cannot help,
 * so the episode fails with this reason. Anything else an engine throws is retried.
 */
export class EngineRefusal extends Error {
  override readonly name = "EngineRefusal";
}
