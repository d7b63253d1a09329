import type { EntityManager } from "@mikro-orm/postgresql";
import { fromKysely, type PgBoss, type SendOptions } from "pg-boss";
import type { EpisodeJobPayload, QUEUES } from "../jobs/queues.ts";

type EpisodeQueue = typeof QUEUES.processEpisode | typeof QUEUES.completeEpisode;

/**
 * Queues a job through the EntityManager's current transaction: the job exists if and only if
 * the transaction commits (pg-boss writes its row with our connection).
 */
export async function enqueue(
  boss: PgBoss,
  em: EntityManager,
  queue: EpisodeQueue,
  payload: EpisodeJobPayload,
  options: SendOptions = {},
): Promise<string | null> {
  return boss.send(queue, payload, { ...options, db: fromKysely(em.getKysely()) });
}
