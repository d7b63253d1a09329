import { randomUUID } from "node:crypto";
import type { EntityManager } from "@mikro-orm/postgresql";
import type { PgBoss } from "pg-boss";
import { z } from "zod";
import type { EngineKind } from "../domain/engines.ts";
import type { EpisodeStatus } from "../domain/episode-lifecycle.ts";
import { isTaskEnded, TASK_TYPES } from "../domain/tasks.ts";
import { Episode } from "../entities/episode.entity.ts";
import { ProcessingTask } from "../entities/processing-task.entity.ts";
import type { User } from "../entities/user.entity.ts";
import { engineFor, type MediaEngines, type UploadTarget } from "./engines/engine.ts";
import {
  ConflictError,
  InvalidMediaError,
  NotFoundError,
  ProcessingUnavailableError,
  validateInput,
} from "./errors.ts";
import { enqueue } from "./job-queue.ts";
import { changeEpisode, moveEpisode } from "./lifecycle.ts";
import { assertEpisodeAllowance, lockProducer } from "./producer-limits.ts";
import { findShow } from "./shows.ts";

/** What the media engines accept for processing into audio, video, transcript and chapters. */
export const MEDIA_EXTENSIONS = [
  "mp4",
  "mov",
  "mkv",
  "webm",
  "m4a",
  "mp3",
  "wav",
  "flac",
  "aac",
  "ogg",
] as const;

export interface PrepareUploadInput {
  filename: string;
  title: string;
  description?: string | null;
  filesize: number;
  /** The uuid of one of the user's shows to put the episode in. */
  showId?: string | null;
}

export interface PreparedUpload {
  episode: Episode;
  upload: UploadTarget;
}

function prepareUploadSchema(maxUploadBytes: number) {
  return z.object({
    title: z.string().trim().min(1, "must not be empty").max(200, "must be at most 200 characters"),
    description: z
      .string()
      .trim()
      .max(5000, "must be at most 5000 characters")
      .nullish()
      .transform((value) => value || null),
    filename: z
      .string()
      .trim()
      .min(1, "must not be empty")
      .max(255, "must be at most 255 characters")
      .refine((name) => !/[/\\\0]/.test(name), "must be a file name, not a path")
      .refine(
        (name) => (MEDIA_EXTENSIONS as readonly string[]).includes(extensionOf(name)),
        `must end in one of .${MEDIA_EXTENSIONS.join(", .")}`,
      ),
    filesize: z
      .number()
      .int("must be a whole number of bytes")
      .positive("must be more than 0 bytes")
      .max(maxUploadBytes, `must be at most ${maxUploadBytes} bytes`),
  });
}

function extensionOf(filename: string): string {
  const dot = filename.lastIndexOf(".");
  return dot < 0 ? "" : filename.slice(dot + 1).toLowerCase();
}

/**
 * Creates an episode awaiting its upload, with where to send the file — processed by this
 * server's media engine, which the episode keeps. The engine is asked for the upload target
 * before anything is stored, so a refusal leaves nothing behind. A producer creates at most
 * `maxEpisodesPerHour` episodes in any hour (a RateLimitError, checked before the engine is
 * asked and again, under the producer's lock, when the episode is stored).
 */
export async function prepareUpload(
  deps: {
    em: EntityManager;
    engines: MediaEngines;
    engine: EngineKind;
    maxUploadBytes: number;
    maxEpisodesPerHour: number;
  },
  user: User,
  input: PrepareUploadInput,
): Promise<PreparedUpload> {
  const valid = validateInput(prepareUploadSchema(deps.maxUploadBytes), input);
  const show = input.showId == null ? null : await findShow(deps.em, user, input.showId);
  if (input.showId != null && !show) throw new NotFoundError("No such show");
  await assertEpisodeAllowance(deps.em, user.id, deps.maxEpisodesPerHour);
  const id = randomUUID();
  const { target, folder } = await engineFor(deps.engines, deps.engine).prepareUpload({
    episodeId: id,
    filename: valid.filename,
    filesize: valid.filesize,
  });
  const episode = await deps.em.transactional(async (tx) => {
    await lockProducer(tx, user.id);
    await assertEpisodeAllowance(tx, user.id, deps.maxEpisodesPerHour);
    return tx.create(Episode, {
      id,
      user,
      title: valid.title,
      description: valid.description,
      originalFilename: valid.filename,
      fileSize: valid.filesize,
      engine: deps.engine,
      ittybitFolder: folder,
      status: "AWAITING_UPLOAD",
      show,
    });
  });
  return { episode, upload: target };
}

export interface ConfirmUploadInput {
  episodeId: string;
  fileId: string;
}

/**
 * Records the uploaded file and queues processing, in one transaction. Confirming again with
 * the same file is answered with the episode as it is and queues nothing; another file once
 * one was confirmed is a conflict. Concurrent confirms serialise on the episode's row lock.
 */
export async function confirmUpload(
  deps: { em: EntityManager; engines: MediaEngines; boss: PgBoss; maxUploadBytes: number },
  user: User,
  input: ConfirmUploadInput,
): Promise<Episode> {
  const { fileId } = validateInput(
    z.object({
      episodeId: z.string(),
      fileId: z
        .string()
        .trim()
        .min(1, "must not be empty")
        .max(64, "is too long")
        .regex(/^[A-Za-z0-9_-]+$/, "must be letters, digits, '_' or '-'"),
    }),
    input,
  );
  const episode = await findEpisode(deps.em, user, input.episodeId);
  if (!episode) throw new NotFoundError("No such episode");
  if (episode.fileId === fileId) return episode;
  assertCanConfirm(episode, fileId);
  const file = await engineFor(deps.engines, episode.engine).checkUploadedFile(episode, fileId);
  assertUploadedSize(episode, fileId, file.bytes, deps.maxUploadBytes);

  const confirmed = await changeEpisode(deps.em, { id: episode.id }, async (locked, tx) => {
    // Another confirm may have won the lock while the engine looked at the file.
    if (locked.fileId === fileId) return locked;
    assertCanConfirm(locked, fileId);
    locked.fileId = fileId;
    moveEpisode(locked, "UPLOADED");
    await enqueue(deps.boss, tx, "process-episode", { episodeId: locked.id });
    return locked;
  });
  if (!confirmed) throw new NotFoundError("No such episode");
  return confirmed;
}

/**
 * The real file is what prepareUpload declared, and within the upload limit: the declared size
 * was checked then, the bytes only now (an Ittybit upload is not bounded by Podflow).
 */
function assertUploadedSize(
  episode: Episode,
  fileId: string,
  bytes: number | null,
  maxUploadBytes: number,
): void {
  if (bytes === null) {
    throw new ProcessingUnavailableError(
      `The size of file ${fileId} is not known yet; confirm again in a moment`,
    );
  }
  if (bytes > maxUploadBytes) {
    throw new InvalidMediaError(
      `File ${fileId} is ${bytes} bytes, over the upload limit of ${maxUploadBytes} bytes`,
    );
  }
  if (episode.fileSize != null && bytes !== episode.fileSize) {
    throw new InvalidMediaError(
      `File ${fileId} is ${bytes} bytes, not the ${episode.fileSize} bytes declared in prepareUpload`,
    );
  }
}

function assertCanConfirm(episode: Episode, fileId: string): void {
  if (episode.status !== "AWAITING_UPLOAD") {
    throw new ConflictError(
      `This episode is ${episode.status.toLowerCase().replace("_", " ")} with file ${episode.fileId}; it cannot take file ${fileId}`,
    );
  }
}

/** The user's episode with this id, or null — also for a malformed id or another's episode. */
export async function findEpisode(
  em: EntityManager,
  user: User,
  episodeId: string,
): Promise<Episode | null> {
  if (!z.uuid().safeParse(episodeId).success) return null;
  return em.findOne(Episode, { id: episodeId, user: user.id });
}

/** The user's episodes among these ids, in no particular order (for batched loading). */
export async function findEpisodes(
  em: EntityManager,
  user: User,
  episodeIds: readonly string[],
): Promise<Episode[]> {
  const valid = episodeIds.filter((id) => z.uuid().safeParse(id).success);
  if (valid.length === 0) return [];
  return em.find(Episode, { id: { $in: valid }, user: user.id });
}

/** Position of an episode in the newest-first order, as a page's cursor names it. */
export interface EpisodeCursor {
  createdAt: Date;
  id: string;
}

/**
 * Up to `limit` of the user's episodes, newest first, after a position, by keyset on
 * (createdAt, id): stable while episodes are added, and one indexed query whatever the page.
 */
export async function listEpisodes(
  em: EntityManager,
  user: User,
  options: { limit: number; after?: EpisodeCursor | null; status?: EpisodeStatus | null },
): Promise<Episode[]> {
  const { limit, after, status } = options;
  return em.find(
    Episode,
    {
      user: user.id,
      ...(status ? { status } : {}),
      ...(after
        ? {
            $or: [
              { createdAt: { $lt: after.createdAt } },
              { createdAt: after.createdAt, id: { $lt: after.id } },
            ],
          }
        : {}),
    },
    { orderBy: [{ createdAt: "desc" }, { id: "desc" }], limit },
  );
}

/**
 * The latest attempt of each task type for each episode, in one query whatever the number of
 * episodes (for a page of episodes through a dataloader).
 */
export async function latestTasksByEpisode(
  em: EntityManager,
  episodeIds: readonly string[],
): Promise<Map<string, ProcessingTask[]>> {
  const tasks = await em.find(
    ProcessingTask,
    { episode: { $in: [...episodeIds] } },
    { orderBy: { attempt: "asc" } },
  );
  const latest = new Map<string, Map<string, ProcessingTask>>();
  for (const task of tasks) {
    const episodeId = task.episode.id;
    const byType = latest.get(episodeId) ?? new Map<string, ProcessingTask>();
    byType.set(task.type, task);
    latest.set(episodeId, byType);
  }
  const order = (task: ProcessingTask) => TASK_TYPES.indexOf(task.type);
  return new Map(
    episodeIds.map((id) => [
      id,
      [...(latest.get(id)?.values() ?? [])].sort((a, b) => order(a) - order(b)),
    ]),
  );
}

/** 0–100: the share of the episode's tasks that ended (completed, failed or skipped). */
export function episodeProgress(episode: Episode, tasks: readonly ProcessingTask[]): number {
  if (episode.status === "PROCESSED") return 100;
  const ended = tasks.filter((task) => isTaskEnded(task.status));
  return Math.floor((100 * ended.length) / TASK_TYPES.length);
}
