import { defineEntity, p } from "@mikro-orm/core";

/**
 * The webhook inbox: one row per delivery id, written in the transaction that applies the
 * delivery, so a repeated delivery is recognised and applied once (docs/architecture.md).
 */
export const WebhookDeliverySchema = defineEntity({
  name: "WebhookDelivery",
  tableName: "webhook_deliveries",
  properties: {
    /** `webhook-id`, the event id, or a hash of task id + status + body. */
    id: p.string().length(200).primary(),
    ittybitTaskId: p.string().length(64).nullable(),
    receivedAt: p.datetime().onCreate(() => new Date()),
    payload: p.json<unknown>(),
    /** What applying it did, e.g. `applied`, `stale`. */
    outcome: p.string().length(32),
  },
  // Pruning after PODFLOW_WEBHOOK_RETENTION_DAYS reads the oldest first (src/services/maintenance.ts).
  indexes: [{ properties: ["receivedAt"] }],
});

export class WebhookDelivery extends WebhookDeliverySchema.class {}
WebhookDeliverySchema.setClass(WebhookDelivery);
