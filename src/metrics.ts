import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from "prom-client";

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
   * HTTP requests by route class (`graphql`, `webhook`, `media`, … see src/server.ts), method and
   * status, timed from arrival until the response ended (an SSE stream: until it closed).
   */
  httpRequestDuration: Histogram<"route" | "method" | "status">;
  /** GraphQL operations by type (`query`, `mutation`, `subscription`) and result (`ok`, `error`). */
  graphqlOperationDuration: Histogram<"operation" | "result">;
  /** Jobs this process ran, by queue and outcome (`completed`, `failed`, `stopped`). */
  jobDuration: Histogram<"queue" | "outcome">;
  /** Task status changes applied (any engine), by task type and the status moved to. */
  taskTransitions: Counter<"type" | "to">;
  /** GraphQL subscriptions running on this instance (WebSocket and SSE). */
  subscriptionsOpen: Gauge;
  /** WebSockets open on this instance (set from the server when scraped). */
  websocketsOpen: Gauge;
  /** Times the episode change listener's connection was re-established. */
  listenerReconnects: Counter;
  /** Local engine tasks run here, by type and outcome (`completed`, `skipped`, `failed`, `retried`). */
  engineTaskDuration: Histogram<"engine" | "type" | "outcome">;
  /** Webhook deliveries deleted from the inbox after PODFLOW_WEBHOOK_RETENTION_DAYS. */
  webhookDeliveriesPruned: Counter;
  /** Episodes the sweeper failed, by the status they were stuck in. */
  episodesSwept: Counter<"status">;
  /**
   * Subscription events handed to subscribers, by whether this one ran the GraphQL execution
   * (`executed`) or was given the result already executed for a subscriber with the same
   * viewer, operation and variables (`shared`). See src/schema/shared-executions.ts.
   */
  subscriptionEvents: Counter<"execution">;
  /**
   * Counts one subscription event in subscriptionEvents. It is counted per subscriber, so ten
   * thousand times for one change with ten thousand dashboards: plain numbers here, added to
   * the counter when it is read, rather than prom-client's inc(), which hashes its labels on
   * every call.
   */
  countSubscriptionEvent: (execution: "executed" | "shared") => void;
}

export function createMetrics(): Metrics {
  const registry = new Registry();
  const subscriptionEventsUncollected = { executed: 0, shared: 0 };
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
    httpRequestDuration: new Histogram({
      name: "podflow_http_request_duration_seconds",
      help: "HTTP requests, by route class, method and status, from arrival to the end of the response",
      labelNames: ["route", "method", "status"],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300],
      registers: [registry],
    }),
    graphqlOperationDuration: new Histogram({
      name: "podflow_graphql_operation_duration_seconds",
      help: "GraphQL operations executed, by type and result (a subscription: until its stream is set up)",
      labelNames: ["operation", "result"],
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers: [registry],
    }),
    jobDuration: new Histogram({
      name: "podflow_job_duration_seconds",
      help: "Jobs run by this process, by queue and outcome (completed, failed, stopped)",
      labelNames: ["queue", "outcome"],
      buckets: [0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 3600],
      registers: [registry],
    }),
    taskTransitions: new Counter({
      name: "podflow_task_transitions_total",
      help: "Processing task status changes applied by this process, by task type and new status",
      labelNames: ["type", "to"],
      registers: [registry],
    }),
    subscriptionsOpen: new Gauge({
      name: "podflow_graphql_subscriptions_open",
      help: "GraphQL subscriptions running on this instance (WebSocket and SSE)",
      registers: [registry],
    }),
    websocketsOpen: new Gauge({
      name: "podflow_websockets_open",
      help: "WebSocket connections open on this instance",
      registers: [registry],
    }),
    listenerReconnects: new Counter({
      name: "podflow_listener_reconnects_total",
      help: "Times the episode change listener reconnected to PostgreSQL",
      registers: [registry],
    }),
    engineTaskDuration: new Histogram({
      name: "podflow_engine_task_duration_seconds",
      help: "Media tasks run by the local engine in this process, by type and outcome",
      labelNames: ["engine", "type", "outcome"],
      buckets: [0.5, 1, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 7200],
      registers: [registry],
    }),
    webhookDeliveriesPruned: new Counter({
      name: "podflow_webhook_deliveries_pruned_total",
      help: "Webhook deliveries deleted from the inbox after the retention period",
      registers: [registry],
    }),
    episodesSwept: new Counter({
      name: "podflow_episodes_swept_total",
      help: "Episodes failed by the sweeper after being stuck, by the status they were stuck in",
      labelNames: ["status"],
      registers: [registry],
    }),
    subscriptionEvents: new Counter({
      name: "podflow_subscription_events_total",
      help: "Subscription events handed to subscribers, by execution (executed: ran it; shared: reused the result of a subscriber with the same viewer, operation and variables)",
      labelNames: ["execution"],
      registers: [registry],
      collect() {
        for (const execution of ["executed", "shared"] as const) {
          const count = subscriptionEventsUncollected[execution];
          if (count === 0) continue;
          this.inc({ execution }, count);
          subscriptionEventsUncollected[execution] = 0;
        }
      },
    }),
    countSubscriptionEvent: (execution) => {
      subscriptionEventsUncollected[execution] += 1;
    },
  };
}
