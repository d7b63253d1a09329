import type { JobWithMetadata, PgBoss } from "pg-boss";
import type { AppDeps } from "../deps.ts";
import { failEpisode } from "../services/processing.ts";
import { jobHandler } from "./handler.ts";
import { episodeJobPayload } from "./queues.ts";

/**
 * An episode job that spent its retries lands here: its episode is FAILED with the last error,
 * never left UPLOADED or PROCESSING.
 */
export function episodeDeadLetterHandler(deps: AppDeps) {
  return jobHandler(episodeJobPayload, async ({ episodeId }, job: JobWithMetadata<unknown>) => {
    const lastError = await originalError(deps.boss, job);
    const attempts = (job.sourceRetryCount ?? 0) + 1;
    const reason = `Podflow gave up on ${job.sourceName ?? "processing"} after ${attempts} attempts${lastError ? `: ${lastError}` : ""}`;
    await failEpisode(deps, episodeId, reason);
  });
}

/** The message the original job failed with, from its stored output. */
export async function originalError(
  boss: PgBoss,
  job: JobWithMetadata<unknown>,
): Promise<string | null> {
  if (!job.sourceName || !job.sourceId) return null;
  const original = await boss.getJobById(job.sourceName, job.sourceId).catch(() => null);
  const output = original?.output as { message?: unknown } | undefined;
  return typeof output?.message === "string" ? output.message : null;
}
