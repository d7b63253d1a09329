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
  /**
   * Jobs this process started again after their last run was lost, by queue and by what ended
   * it: `missed_heartbeat` (its worker died or hung: heartbeat timeout or expiry) or `stop` (its
   * Podflow was stopped). See src/jobs/in-hand.ts.
   */
  jobsResumed: Counter<"queue" | "after">;
  /** Jobs this process handed back, unfinished, when it was stopped, by queue. */
  jobsHandedBack: Counter<"queue">;
  /**
   * Subscription events handed to subscribers, by whether this one ran the GraphQL execution
   * (`executed`) or was given the result already executed for a subscriber with the same
   * viewer, operation and variables (`shared`). See src/schema/shared-executions.ts.
   */
  subscriptionEvents: Counter<"execution">;
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
    jobsResumed: new Counter({
      name: "podflow_jobs_resumed_total",
      help: "Jobs started again after their last run was lost, by queue and cause (missed_heartbeat, stop)",
      labelNames: ["queue", "after"],
      registers: [registry],
    }),
    jobsHandedBack: new Counter({
      name: "podflow_jobs_handed_back_total",
      help: "Jobs handed back unfinished when this Podflow was stopped, by queue",
      labelNames: ["queue"],
      registers: [registry],
    }),
    subscriptionEvents: new Counter({
      name: "podflow_subscription_events_total",
      help: "Subscription events handed to subscribers, by execution (executed: ran it; shared: reused the result of a subscriber with the same viewer, operation and variables)",
      labelNames: ["execution"],
      registers: [registry],
    }),
  };
}
