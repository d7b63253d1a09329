import type { AppDeps } from "../deps.ts";
import { pruneWebhookDeliveries, sweepStuckEpisodes } from "../services/maintenance.ts";

/** The prune-webhook-deliveries job: the inbox keeps PODFLOW_WEBHOOK_RETENTION_DAYS of deliveries. */
export function pruneWebhookDeliveriesHandler(deps: AppDeps) {
  return async () => {
    await pruneWebhookDeliveries(deps, {
      retentionDays: deps.config.maintenance.webhookRetentionDays,
    });
  };
}

/** The sweep-stuck-episodes job: fails episodes stuck past PODFLOW_STUCK_EPISODE_HOURS. */
export function sweepStuckEpisodesHandler(deps: AppDeps) {
  return async () => {
    await sweepStuckEpisodes(deps, { stuckHours: deps.config.maintenance.stuckEpisodeHours });
  };
}
