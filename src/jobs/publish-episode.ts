import type { AppDeps } from "../deps.ts";
import { publishWhenDue } from "../services/publishing.ts";
import { jobHandler } from "./handler.ts";
import { publishJobPayload } from "./queues.ts";

export function publishEpisodeHandler(deps: AppDeps) {
  return jobHandler(publishJobPayload, (payload) => publishWhenDue(deps, payload));
}
