/** Typed failures of the local media engine, so a job can tell "bad input" from "retry me". */

/** ffmpeg ran and failed; `stderrTail` is for logs, never for producers. */
export class FfmpegError extends Error {
  override name = "FfmpegError";
  readonly exitCode: number | null;
  readonly stderrTail: string;
  constructor(message: string, exitCode: number | null, stderrTail: string) {
    super(message);
    this.exitCode = exitCode;
    this.stderrTail = stderrTail;
  }
}

/** ffmpeg made no progress for `stallTimeoutMs` and was killed. */
export class FfmpegStalledError extends Error {
  override name = "FfmpegStalledError";
  readonly stallTimeoutMs: number;
  constructor(stallTimeoutMs: number) {
    super(`ffmpeg made no progress for ${stallTimeoutMs} ms and was stopped`);
    this.stallTimeoutMs = stallTimeoutMs;
  }
}

/** The task's AbortSignal fired (the worker stopped or the job was cancelled). */
export class MediaTaskAbortedError extends Error {
  override name = "AbortError";
  constructor(message = "the media task was stopped") {
    super(message);
  }
}

/** Input ffprobe cannot read. The message is what a producer sees; `detail` is for logs. */
export class NotMediaError extends Error {
  override name = "NotMediaError";
  readonly detail: string;
  constructor(detail: string) {
    super("not a media file ffprobe can read");
    this.detail = detail;
  }
}

/** Not enough free disk in the work directory to start a task. */
export class InsufficientDiskSpaceError extends Error {
  override name = "InsufficientDiskSpaceError";
  readonly requiredBytes: number;
  readonly availableBytes: number;
  constructor(requiredBytes: number, availableBytes: number) {
    super(
      `not enough free disk space for the media task: ${availableBytes} bytes free, ${requiredBytes} needed`,
    );
    this.requiredBytes = requiredBytes;
    this.availableBytes = availableBytes;
  }
}

export function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw new MediaTaskAbortedError();
}
