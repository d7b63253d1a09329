import { describe, expect, it } from "vitest";
import {
  canMoveEpisode,
  EPISODE_STATUSES,
  type EpisodeStatus,
  IllegalEpisodeMoveError,
} from "../../src/domain/episode-lifecycle.ts";
import { isTaskEnded, movesForward, TASK_STATUSES } from "../../src/domain/tasks.ts";
import type { Episode } from "../../src/entities/episode.entity.ts";
import { moveEpisode } from "../../src/services/lifecycle.ts";

const ALLOWED: Array<[EpisodeStatus, EpisodeStatus]> = [
  ["AWAITING_UPLOAD", "UPLOADED"],
  ["UPLOADED", "PROCESSING"],
  ["UPLOADED", "FAILED"],
  ["PROCESSING", "PROCESSED"],
  ["PROCESSING", "FAILED"],
  ["FAILED", "PROCESSING"],
];

function episodeIn(status: EpisodeStatus): Episode {
  return {
    status,
    processingRound: 1,
    failureReason: null,
    processingStartedAt: null,
    processingCompletedAt: null,
  } as unknown as Episode;
}

describe("the episode lifecycle", () => {
  it("allows exactly the moves of its table", () => {
    for (const from of EPISODE_STATUSES) {
      for (const to of EPISODE_STATUSES) {
        const allowed = ALLOWED.some(([a, b]) => a === from && b === to);
        expect(canMoveEpisode(from, to), `${from} → ${to}`).toBe(allowed);
      }
    }
  });

  it("refuses a move outside the table, changing nothing", () => {
    const episode = episodeIn("PROCESSED");
    expect(() => moveEpisode(episode, "PROCESSING")).toThrow(IllegalEpisodeMoveError);
    expect(episode.status).toBe("PROCESSED");
    expect(episode.processingRound).toBe(1);
  });

  it("records why an episode failed, and opens a new round when it is retried", () => {
    const episode = episodeIn("PROCESSING");
    expect(() => moveEpisode(episode, "FAILED")).toThrow(/reason/);
    moveEpisode(episode, "FAILED", "audio extraction: bad codec");
    expect(episode).toMatchObject({
      status: "FAILED",
      failureReason: "audio extraction: bad codec",
    });
    expect(episode.processingCompletedAt).toBeInstanceOf(Date);

    moveEpisode(episode, "PROCESSING");
    expect(episode).toMatchObject({
      status: "PROCESSING",
      processingRound: 2,
      failureReason: null,
      processingCompletedAt: null,
    });
  });
});

describe("task statuses", () => {
  it("only move forward, and COMPLETED, FAILED and SKIPPED are ends none undoes", () => {
    const ends = TASK_STATUSES.filter(isTaskEnded);
    expect(ends).toEqual(["COMPLETED", "FAILED", "SKIPPED"]);
    for (const end of ends) {
      for (const to of TASK_STATUSES) expect(movesForward(end, to)).toBe(false);
    }
    expect(movesForward("PENDING", "PROCESSING")).toBe(true);
    expect(movesForward("PROCESSING", "SKIPPED")).toBe(true);
    expect(movesForward("PROCESSING", "PENDING")).toBe(false);
  });
});
