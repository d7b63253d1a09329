import { taskLabel } from "../../domain/tasks.ts";
import type { Episode } from "../../entities/episode.entity.ts";
import type { ProcessingTask } from "../../entities/processing-task.entity.ts";
import { ProcessingUnavailableError, UnknownFileError } from "../errors.ts";
import type { IttybitClient } from "../ittybit/client.ts";
import { IttybitError } from "../ittybit/errors.ts";
import { buildTaskRequest } from "../ittybit/task-options.ts";
import { OutputError, type OutputFetcher, parseChapters, parseTranscript } from "../outputs.ts";
import { EngineRefusal, type MediaEngine } from "./engine.ts";

/** Ittybit's file ids: `file_` and letters and digits (docs' examples, the SDK's types). */
const ITTYBIT_FILE_ID = /^file_[A-Za-z0-9_-]{1,64}$/;

/** How long a signed upload URL stays valid: a multi-gigabyte upload on a slow line takes hours. */
const UPLOAD_URL_LIFETIME_MS = 12 * 60 * 60 * 1000;

/**
 * Ittybit as a media engine: uploads go straight to Ittybit's storage through a signed URL, tasks
 * are created at Ittybit with idempotency keys derived from what they create, and their changes
 * come back through webhooks (and the reconciler).
 */
export function createIttybitEngine(options: {
  ittybit: IttybitClient;
  outputs: OutputFetcher;
  /** Where Ittybit posts task changes. */
  webhookUrl: string;
}): MediaEngine {
  const { ittybit, outputs, webhookUrl } = options;
  return {
    kind: "ittybit",

    async prepareUpload({ episodeId, filename }) {
      const folder = `episodes/${episodeId}`;
      const signature = await ittybit
        .createSignature({
          folder,
          filename,
          method: "put",
          expiry: new Date(Date.now() + UPLOAD_URL_LIFETIME_MS),
        })
        .catch((error: unknown) => unavailable(error, "sign an upload URL"));
      return {
        target: { url: signature.url, method: "PUT", expiresAt: signature.expiresAt, tusUrl: null },
        folder,
      };
    },

    async checkUploadedFile(episode, fileId) {
      // Checked before the id goes into a URL path at Ittybit (with the API key).
      if (!ITTYBIT_FILE_ID.test(fileId)) {
        throw new UnknownFileError(`${fileId} is not an Ittybit file id (file_…)`);
      }
      const file = await ittybit.getFile(fileId).catch((error: unknown) => {
        if (error instanceof IttybitError && error.status === 404) {
          throw new UnknownFileError(`Ittybit has no file ${fileId}`);
        }
        return unavailable(error, "look up the file");
      });
      // Every producer's uploads live in one Ittybit project: a file uploaded for another episode
      // (another producer's, say) is not this episode's to process. Uploads through the signed
      // URL always land in the episode's folder, so a file without one is not ours either.
      if (!file.folder || !episode.ittybitFolder || file.folder !== episode.ittybitFolder) {
        throw new UnknownFileError(`Ittybit's file ${fileId} was not uploaded for this episode`);
      }
      return { bytes: typeof file.filesize === "number" ? file.filesize : null };
    },

    async createTask(episode: Episode, type, attempt, signal) {
      const fileId = episode.fileId as string;
      try {
        if (!episode.ittybitMediaId) {
          const media = await ittybit.createMedia(
            {
              title: episode.title,
              metadata: { podflowEpisodeId: episode.id, description: episode.description ?? null },
            },
            { idempotencyKey: `podflow:media:${episode.id}`, signal },
          );
          // Saved with the first task, in its transaction (startProcessing flushes the job's
          // EntityManager, which manages this episode, there), not in one of its own before the
          // task request: the idempotency key already makes a repeated createMedia answer this
          // same media, so saving it first only added three round trips before the first task.
          episode.ittybitMediaId = media.id;
        }
        const request = buildTaskRequest(type, { fileId, webhookUrl });
        const created = await ittybit.createTask(request, {
          idempotencyKey: `podflow:task:${episode.id}:${type}:${attempt}`,
          signal,
        });
        return { engineTaskId: created.id, metadata: { ref: request.ref, kind: request.kind } };
      } catch (error) {
        // A stop, not Ittybit's answer: never a refusal that would fail the episode.
        if (signal?.aborted) throw error;
        if (error instanceof IttybitError && !error.retryable) {
          throw new EngineRefusal(
            `Ittybit refused to start processing: ${error.ittybitMessage ?? error.message}${error.status ? ` (HTTP ${error.status})` : ""}`,
          );
        }
        throw error;
      }
    },

    async readOutputs({ transcript, chapters }, signal) {
      const transcriptFile = await fetchOutput(outputs, transcript, "transcript", signal);
      const chaptersFile = await fetchOutput(outputs, chapters, "chapters file", signal);
      return {
        transcript: transcriptFile && parseTranscript(transcriptFile.body),
        chapters: chaptersFile && parseChapters(chaptersFile.body, chaptersFile.contentType),
      };
    },

    // Ittybit's task output names no size: its file server answers HEAD with Content-Length.
    async measureAudio({ url }) {
      if (!url) throw new OutputError("Ittybit reported no URL for the episode's MP3");
      return { bytes: await outputs.contentLength(url, "podcast MP3"), durationSeconds: null };
    },
    async openOutput({ url }, what) {
      if (!url) throw new OutputError(`Ittybit reported no URL for the episode's ${what}`);
      const bytes = await outputs.contentLength(url, what);
      return {
        bytes,
        read: (start, length, signal) => outputs.range(url, what, start, length, signal),
      };
    },
  };
}

/** A skipped task has no output (Ittybit skips nothing today, but the lifecycle allows it). */
async function fetchOutput(
  outputs: OutputFetcher,
  task: ProcessingTask,
  what: string,
  signal?: AbortSignal,
) {
  if (task.status === "SKIPPED") return null;
  if (!task.outputUrl) {
    throw new OutputError(`Ittybit reported no output for ${taskLabel(task.type)}`);
  }
  return outputs.fetch(task.outputUrl, what, signal);
}

/** A failure of Ittybit itself (after the client's retries) is the producer's to retry later. */
function unavailable(error: unknown, action: string): never {
  if (error instanceof IttybitError) {
    const answer = error.status ? `it answered ${error.status}` : `no answer (${error.failure})`;
    throw new ProcessingUnavailableError(
      `Ittybit could not ${action} (${answer}); try again later`,
    );
  }
  throw error;
}
