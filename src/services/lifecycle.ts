import { LockMode } from "@mikro-orm/core";
import type { EntityManager } from "@mikro-orm/postgresql";
import { assertEpisodeMove, type EpisodeStatus } from "../domain/episode-lifecycle.ts";
import { Episode } from "../entities/episode.entity.ts";

/**
 * The one way an episode changes: under its row lock, inside a transaction, through the moves of
 * the lifecycle (src/domain/episode-lifecycle.ts). Nobody announces anything by hand: triggers on
 * `episodes` and `processing_tasks` NOTIFY every committed row change (see the migration that
 * creates them), so a change reaches subscribers exactly when, and only if, it commits.
 */

/**
 * The episode with this id under a row lock held until the transaction ends, loaded as it is
 * once the lock is ours (never a stale copy from the identity map); null if there is none. The
 * caller is inside a transaction.
 */
export function lockEpisode(
  em: EntityManager,
  where: { id: string; user?: string },
): Promise<Episode | null> {
  return em.findOne(Episode, where, {
    lockMode: LockMode.PESSIMISTIC_WRITE,
    refresh: true,
  });
}

/**
 * Runs `change` on the locked episode in a transaction and commits it (joining the caller's
 * transaction when there is one). Resolves with what `change` returns, or null when the episode
 * does not exist.
 */
export function changeEpisode<T>(
  em: EntityManager,
  where: { id: string; user?: string },
  change: (episode: Episode, tx: EntityManager) => Promise<T> | T,
): Promise<T | null> {
  return em.transactional(async (tx) => {
    const episode = await lockEpisode(tx, where);
    if (!episode) return null;
    const result = await change(episode, tx);
    await tx.flush();
    return result;
  });
}

/**
 * Moves the episode to `to`, with what the move implies: a retry opens a new processing round;
 * an end records when it ended, and a failure why (`reason`, required for FAILED). A move the
 * lifecycle does not have throws IllegalEpisodeMoveError. The caller holds the row lock (see
 * changeEpisode).
 */
export function moveEpisode(episode: Episode, to: EpisodeStatus, reason?: string): void {
  assertEpisodeMove(episode.status, to);
  if (to === "FAILED" && !reason) throw new Error("a failed episode needs a reason");
  const now = new Date();
  if (to === "PROCESSING" && episode.status === "FAILED") {
    episode.processingRound += 1;
    episode.failureReason = null;
    episode.processingCompletedAt = null;
  }
  if (to === "PROCESSING") episode.processingStartedAt ??= now;
  if (to === "PROCESSED" || to === "FAILED") episode.processingCompletedAt = now;
  if (to === "FAILED") episode.failureReason = reason ?? null;
  episode.status = to;
}
