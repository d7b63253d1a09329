import type { AppDeps } from "../deps.ts";
import { startProcessing } from "../services/processing.ts";
import { jobHandler } from "./handler.ts";
import { episodeJobPayload } from "./queues.ts";

export function processEpisodeHandler(deps: AppDeps) {
  return jobHandler(episodeJobPayload, ({ episodeId }, job) =>
    startProcessing(deps, episodeId, job.signal),
  );
}
