import { PgBoss } from "pg-boss";
import type { Logger } from "pino";
import { queuePolicies } from "./queues.ts";

/** pg-boss keeps its tables in their own schema of Podflow's database. */
export const BOSS_SCHEMA = "pgboss";

/**
 * Starts pg-boss on Podflow's database (it migrates its own schema, safely under concurrent
 * starts) and makes sure every queue exists with its policy. Scheduling (the reconciler's cron)
 * only runs where `schedule` is true: in worker processes.
 */
export async function startBoss(options: {
  databaseUrl: string;
  logger: Logger;
  schedule: boolean;
  poolMax?: number;
  /** Every heartbeat queue's heartbeat (PODFLOW_JOB_HEARTBEAT_SECONDS); unset: each queue's own. */
  heartbeatSeconds?: number;
  /** How often the supervisor fails jobs whose heartbeat stopped (PODFLOW_JOB_SUPERVISE_SECONDS). */
  superviseSeconds?: number;
  /** Tracing is on: a job carries the trace of what sent it, and its run continues that trace. */
  propagateTraceContext?: boolean;
}): Promise<PgBoss> {
  const { logger } = options;
  const boss = new PgBoss({
    connectionString: options.databaseUrl,
    schema: BOSS_SCHEMA,
    application_name: "podflow-jobs",
    max: options.poolMax ?? 10,
    // Workers are woken by NOTIFY the moment a job is created, not at the next poll.
    useListenNotify: true,
    schedule: options.schedule,
    supervise: options.schedule,
    // The supervisor fails jobs whose heartbeat stopped (a dead worker) when it next looks: every
    // 10 s rather than every minute, so a crash costs seconds. Each look is a few indexed updates.
    monitorIntervalSeconds: options.superviseSeconds ?? 10,
    superviseIntervalSeconds: options.superviseSeconds ?? 10,
    openTelemetry: { propagateContext: options.propagateTraceContext ?? false },
  });
  boss.on("error", (error) => logger.error({ err: error }, "job queue error"));
  boss.on("warning", (warning) => logger.warn({ warning }, "job queue warning"));
  await boss.start();
  for (const queue of queuePolicies(options.heartbeatSeconds)) {
    const { name, ...policy } = queue;
    if (await boss.getQueue(name)) {
      const { policy: _fixedAtCreation, partition: _partition, ...changeable } = policy;
      await boss.updateQueue(name, changeable);
    } else {
      await boss.createQueue(name, policy);
    }
  }
  return boss;
}
