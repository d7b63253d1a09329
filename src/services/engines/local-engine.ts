import { createHash } from "node:crypto";
import { open } from "node:fs/promises";
import type { PgBoss } from "pg-boss";
import type { MediaTools } from "../../engine/local/media-tools.ts";
import { NotMediaError, probeMedia } from "../../engine/local/probe.ts";
import { InvalidMediaError, UnknownFileError } from "../errors.ts";
import { enqueue } from "../job-queue.ts";
import { OutputError } from "../outputs.ts";
import type { MediaStorage } from "../storage.ts";
import type { MediaEngine } from "./engine.ts";
import { OUTPUT_NAME, outputKey, readLocalOutputs } from "./local-outputs.ts";
import { TUS_PATH } from "./local-tus.ts";
import {
  FILE_ID,
  signUploadUrl,
  UPLOAD_PATH_PREFIX,
  UPLOAD_URL_LIFETIME_MS,
  uploadKey,
} from "./local-uploads.ts";

/**
 * The local media engine: uploads come to Podflow itself (local-uploads.ts), each task is a
 * `run-local-task` job on the worker role that runs ffmpeg (and whisper.cpp) on the machine
 * (local-task-runner.ts), and reports through applyTaskEvent like a webhook would. Outputs are
 * stored and served by Podflow (local-media-files.ts).
 */
export function createLocalEngine(options: {
  storage: MediaStorage;
  tools: MediaTools;
  boss: PgBoss;
  publicUrl: string;
  /** Signs upload URLs; the same on every instance. */
  uploadSecret: Buffer;
}): MediaEngine {
  const { storage, tools, boss, publicUrl, uploadSecret } = options;
  return {
    kind: "local",

    async prepareUpload({ episodeId }) {
      const expiresAt = new Date(Date.now() + UPLOAD_URL_LIFETIME_MS);
      return {
        target: {
          url: signUploadUrl(
            uploadSecret,
            `${publicUrl}${UPLOAD_PATH_PREFIX}`,
            episodeId,
            expiresAt,
          ),
          method: "PUT",
          expiresAt,
          tusUrl: signUploadUrl(uploadSecret, `${publicUrl}${TUS_PATH}/`, episodeId, expiresAt),
        },
        folder: null,
      };
    },

    async checkUploadedFile(episode, fileId) {
      const key = uploadKey(episode.id, fileId);
      // The key holds the episode id: a file uploaded for another episode is simply not here.
      const stat = FILE_ID.test(fileId) ? await storage.stat(key) : null;
      if (!stat) throw new UnknownFileError(`No file ${fileId} was uploaded for this episode`);
      try {
        const probe = await probeMedia(tools, storage.localPath(key));
        if (!probe.hasAudio && !probe.hasVideo) throw new NotMediaError("no audio or video stream");
      } catch (error) {
        if (error instanceof NotMediaError) {
          throw new InvalidMediaError(
            `The uploaded file is not a media file ffprobe can read (${error.detail})`,
          );
        }
        throw error;
      }
      return { bytes: stat.bytes };
    },

    async createTask(episode, type, attempt) {
      // Derived from what it names, so a repeated call makes the same task.
      const digest = createHash("sha256")
        .update(`${episode.id}:${type}:${attempt}`)
        .digest("hex")
        .slice(0, 40);
      return { engineTaskId: `local_${digest}`, metadata: { engine: "local" } };
    },

    async taskSaved(tx, task) {
      // The episode id only labels the job's log lines (jobs queued before it was added lack it).
      await enqueue(boss, tx, "run-local-task", {
        taskId: task.id,
        episodeId: task.episode.id,
      });
    },

    readOutputs: (tasks) => readLocalOutputs(storage, tasks),

    async measureAudio({ fileId }) {
      const stored =
        fileId && OUTPUT_NAME.test(fileId) ? await storage.stat(outputKey(fileId)) : null;
      if (!stored || !fileId) throw new OutputError("the episode's MP3 is not in storage");
      const probe = await probeMedia(tools, storage.localPath(outputKey(fileId)));
      return { bytes: stored.bytes, durationSeconds: probe.durationSeconds };
    },

    async openOutput({ fileId }, what) {
      const stored =
        fileId && OUTPUT_NAME.test(fileId) ? await storage.stat(outputKey(fileId)) : null;
      if (!stored || !fileId) throw new OutputError(`the episode's ${what} is not in storage`);
      const file = storage.localPath(outputKey(fileId));
      return {
        bytes: stored.bytes,
        async read(start, length) {
          const handle = await open(file, "r");
          try {
            const buffer = Buffer.alloc(Math.max(0, Math.min(length, stored.bytes - start)));
            const { bytesRead } = await handle.read(buffer, 0, buffer.length, start);
            return buffer.subarray(0, bytesRead);
          } finally {
            await handle.close();
          }
        },
      };
    },
  };
}
