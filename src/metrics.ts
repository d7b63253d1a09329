import { Counter, collectDefaultMetrics, Registry } from "prom-client";

/**
 * This process's metrics, served in Prometheus's text format at `GET /metrics`. One registry per
 * running Podflow (never prom-client's global one), so several in one process (tests) stay apart.
 */
export interface Metrics {
  registry: Registry;
  /**
   * Webhook deliveries by how they were verified (`signature`, `refetch`, `both`, or `url` when
   * the URL was refused before any check) and what became of them.
   */
  webhookDeliveries: Counter<"verification" | "result">;
  /** Questions asked of Ittybit about a delivered task, by result (`answered`, `failed`). */
  webhookRefetches: Counter<"result">;
}

export function createMetrics(): Metrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: "podflow_" });
  return {
    registry,
    webhookDeliveries: new Counter({
      name: "podflow_webhook_deliveries_total",
      help: "Ittybit webhook deliveries, by verification mode and result",
      labelNames: ["verification", "result"],
      registers: [registry],
    }),
    webhookRefetches: new Counter({
      name: "podflow_webhook_refetches_total",
      help: "GET /tasks/{id} requests made to verify webhook deliveries, by result",
      labelNames: ["result"],
      registers: [registry],
    }),
  };
}
