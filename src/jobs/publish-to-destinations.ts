import type { JobWithMetadata } from "pg-boss";
import type { AppDeps } from "../deps.ts";
import { failPublication } from "../services/distribution/publications.ts";
import { publishToTransistor } from "../services/distribution/transistor-publisher.ts";
import { publishToYouTube } from "../services/distribution/youtube-publisher.ts";
import { originalError } from "./episode-dead-letter.ts";
import { jobHandler } from "./handler.ts";
import { publicationJobPayload } from "./queues.ts";

/** publish-to-transistor: one run of one publication; pg-boss aborts `job.signal` on stop. */
export function publishToTransistorHandler(deps: AppDeps) {
  return jobHandler(publicationJobPayload, (payload, job: JobWithMetadata<unknown>) =>
    publishToTransistor(deps, payload, job.signal),
  );
}

/** publish-to-youtube: one run of one publication; an interrupted upload resumes on the next. */
export function publishToYouTubeHandler(deps: AppDeps) {
  return jobHandler(publicationJobPayload, (payload, job: JobWithMetadata<unknown>) =>
    publishToYouTube(deps, payload, job.signal),
  );
}

/**
 * A publication job that spent its retries lands here: the publication is FAILED with the last
 * error, never left UPLOADING for ever. retryPublication starts it again.
 */
export function publicationDeadLetterHandler(deps: AppDeps) {
  return jobHandler(publicationJobPayload, async (payload, job: JobWithMetadata<unknown>) => {
    const lastError = await originalError(deps.boss, job);
    const attempts = (job.sourceRetryCount ?? 0) + 1;
    const reason = `Podflow gave up after ${attempts} attempts${lastError ? `: ${lastError}` : ""}`;
    await failPublication(deps, payload.publicationId, payload.run, reason);
  });
}
