/**
 * The episode lifecycle: its statuses and the only moves between them. Every status change of an
 * episode goes through `assertEpisodeMove` (src/services/lifecycle.ts calls it), so a move that
 * is not in this table is a programming error caught in one place, not a state on disk.
 *
 *   AWAITING_UPLOAD ─confirm─▶ UPLOADED ─start─▶ PROCESSING ─complete─▶ PROCESSED
 *                                  │                  │
 *                                  └──────fail────────┴──▶ FAILED ─retry─▶ PROCESSING
 */

export const EPISODE_STATUSES = [
  "AWAITING_UPLOAD",
  "UPLOADED",
  "PROCESSING",
  "PROCESSED",
  "FAILED",
] as const;
export type EpisodeStatus = (typeof EPISODE_STATUSES)[number];

const MOVES: Record<EpisodeStatus, readonly EpisodeStatus[]> = {
  AWAITING_UPLOAD: ["UPLOADED"],
  // Processing starts, or the engine refuses the file (or the job gives up) before it could.
  UPLOADED: ["PROCESSING", "FAILED"],
  PROCESSING: ["PROCESSED", "FAILED"],
  PROCESSED: [],
  // retryEpisode: a new processing round.
  FAILED: ["PROCESSING"],
};

/** Whether the lifecycle allows an episode in `from` to move to `to`. */
export function canMoveEpisode(from: EpisodeStatus, to: EpisodeStatus): boolean {
  return MOVES[from].includes(to);
}

/** A status change outside the table: a bug in the caller, never a producer's mistake. */
export class IllegalEpisodeMoveError extends Error {
  override readonly name = "IllegalEpisodeMoveError";
  readonly from: EpisodeStatus;
  readonly to: EpisodeStatus;
  constructor(from: EpisodeStatus, to: EpisodeStatus) {
    super(`an episode cannot move from ${from} to ${to}`);
    this.from = from;
    this.to = to;
  }
}

export function assertEpisodeMove(from: EpisodeStatus, to: EpisodeStatus): void {
  if (!canMoveEpisode(from, to)) throw new IllegalEpisodeMoveError(from, to);
}
