import type { Job } from "pg-boss";
import type { AppDeps } from "../deps.ts";
import { startProcessing } from "../services/processing.ts";
import { episodeJobPayload } from "./queues.ts";

export function processEpisodeHandler(deps: AppDeps) {
  return async ([job]: Job<unknown>[]) => {
    if (!job) return;
    const { episodeId } = episodeJobPayload.parse(job.data);
    await startProcessing(deps, episodeId);
  };
}
