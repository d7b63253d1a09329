import type { AppDeps } from "../deps.ts";
import { completeEpisode } from "../services/completion.ts";
import { jobHandler } from "./handler.ts";
import { episodeJobPayload } from "./queues.ts";

export function completeEpisodeHandler(deps: AppDeps) {
  return jobHandler(episodeJobPayload, ({ episodeId }, job) =>
    completeEpisode(deps, episodeId, job.signal),
  );
}
