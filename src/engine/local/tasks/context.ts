/** What every local media task receives and returns, plus the work-directory discipline. */
import { randomUUID } from "node:crypto";
import { rm, stat, statfs } from "node:fs/promises";
import path from "node:path";
import { InsufficientDiskSpaceError } from "../errors.ts";
import type { MediaTools } from "../media-tools.ts";
import type { MediaProbe } from "../probe.ts";

export interface LocalTaskContext {
  tools: MediaTools;
  /** Absolute path of the uploaded original. */
  input: string;
  probe: MediaProbe;
  /** A directory owned by this task run; outputs are written inside it. */
  workDir: string;
  /** The episode title: the MP3's ID3 title. */
  title: string;
  signal: AbortSignal;
  /** Integer percent 0–100, never decreasing, 100 exactly once at the end. */
  onProgress(percent: number): void;
  stallTimeoutMs?: number;
}

export interface MediaOutput {
  /** Absolute path inside workDir. */
  file: string;
  contentType: string;
  extension: string;
  metadata: Record<string, unknown>;
}

/**
 * Free space a task needs before it starts: twice the input (outputs of a re-encode are at most
 * about its size, plus decoded scratch for speech) and a fixed margin for the rest of the machine.
 */
export function requiredFreeBytes(inputBytes: number): number {
  return inputBytes * 2 + 256 * 1024 * 1024;
}

export async function assertDiskSpace(dir: string, requiredBytes: number): Promise<void> {
  const stats = await statfs(dir);
  const available = Number(stats.bavail) * Number(stats.bsize);
  if (available < requiredBytes) throw new InsufficientDiskSpaceError(requiredBytes, available);
}

export async function assertDiskSpaceForInput(ctx: LocalTaskContext): Promise<void> {
  const { size } = await stat(ctx.input);
  await assertDiskSpace(ctx.workDir, requiredFreeBytes(size));
}

/** A fresh path in workDir for a file that only becomes the output once it is complete. */
export function partialPath(ctx: LocalTaskContext, extension: string): string {
  return path.join(ctx.workDir, `.partial-${randomUUID()}.${extension}`);
}

/**
 * Runs `work` with a list of scratch files it may create; on any failure (including abort and
 * stall) they are all removed so a killed ffmpeg leaves nothing behind.
 */
export async function withScratchFiles<T>(
  work: (scratch: (file: string) => string) => Promise<T>,
): Promise<T> {
  const files: string[] = [];
  try {
    return await work((file) => {
      files.push(file);
      return file;
    });
  } catch (error) {
    await Promise.all(files.map((file) => rm(file, { force: true })));
    throw error;
  }
}

export async function removeQuietly(file: string): Promise<void> {
  await rm(file, { force: true });
}
