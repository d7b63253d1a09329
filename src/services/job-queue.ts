import type { EntityManager } from "@mikro-orm/postgresql";
import { type Db, fromKysely, type PgBoss, type SendOptions } from "pg-boss";
import type { JobPayloads } from "../jobs/queues.ts";

/**
 * Queues a job through the EntityManager's current transaction: the job exists if and only if
 * the transaction commits (pg-boss writes its row with our connection).
 */
export async function enqueue<Queue extends keyof JobPayloads>(
  boss: PgBoss,
  em: EntityManager,
  queue: Queue,
  payload: JobPayloads[Queue],
  options: SendOptions = {},
): Promise<string | null> {
  return boss.send(queue, payload, { ...options, db: fromKysely(em.getKysely()) });
}

/**
 * Queues a job on a connection whose transaction the caller holds (pg-boss's `db` adapter):
 * the job exists if and only if that transaction commits.
 */
export async function enqueueOn<Queue extends keyof JobPayloads>(
  boss: PgBoss,
  db: Db,
  queue: Queue,
  payload: JobPayloads[Queue],
  options: SendOptions = {},
): Promise<string | null> {
  return boss.send(queue, payload, { ...options, db });
}
