import type { EntityManager } from "@mikro-orm/postgresql";
import { type Db, fromKysely, type PgBoss, type SendOptions } from "pg-boss";
import type { JobPayloads } from "../jobs/queues.ts";

/**
 * Queues a job in the caller's transaction: that of an EntityManager, or of a connection the
 * caller holds (pg-boss's `db` adapter). The job exists if and only if the transaction commits
 * (pg-boss writes its row with that connection).
 */
export async function enqueue<Queue extends keyof JobPayloads>(
  boss: PgBoss,
  on: EntityManager | Db,
  queue: Queue,
  payload: JobPayloads[Queue],
  options: SendOptions = {},
): Promise<string | null> {
  const db = "executeSql" in on ? on : fromKysely(on.getKysely());
  return boss.send(queue, payload, { ...options, db });
}
