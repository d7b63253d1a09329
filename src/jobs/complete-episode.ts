import type { Job } from "pg-boss";
import type { AppDeps } from "../deps.ts";
import { completeEpisode } from "../services/completion.ts";
import { episodeJobPayload } from "./queues.ts";

export function completeEpisodeHandler(deps: AppDeps) {
  return async ([job]: Job<unknown>[]) => {
    if (!job) return;
    const { episodeId } = episodeJobPayload.parse(job.data);
    await completeEpisode(deps, episodeId);
  };
}
