import { describe, expect, it } from "vitest";
import {
  KnownStates,
  parseSnapshot,
  sees,
  type TaskChange,
  taskChangeOf,
} from "../../src/services/episode-feed/known-states.ts";
import type { EpisodeUpdate } from "../../src/services/episode-feed/types.ts";
import { EpisodeRow, type EpisodeView, type TaskView } from "../../src/services/episodes.ts";

// The rules that let the feed deliver a task's announced state without reading the episode:
// which transactions a read saw, what an announcement may carry, and how a task replaces the one
// a state shows.

const task = (type: TaskView["type"], attempt: number, progress: number | null): TaskView => ({
  id: `${type}-${attempt}`,
  type,
  status: "PROCESSING",
  progress,
  errorMessage: null,
  outputUrl: null,
  engineTaskId: `task_${type}_${attempt}`,
  attempt,
  updatedAt: new Date(1_000 + attempt),
});

function state(tasks: TaskView[]): EpisodeUpdate {
  const episode = Object.setPrototypeOf(
    { id: "e1", title: "One", latestTasks: tasks },
    EpisodeRow.prototype,
  ) as EpisodeView;
  return { episode, tasks };
}

describe("snapshots", () => {
  it("parses pg_current_snapshot's text, and nothing else", () => {
    expect(parseSnapshot("100:105:100,103")).toEqual({
      xmin: 100,
      xmax: 105,
      inProgress: new Set([100, 103]),
    });
    expect(parseSnapshot("7:7:")).toEqual({ xmin: 7, xmax: 7, inProgress: new Set() });
    for (const text of [null, undefined, 7, "", "7:7", "a:b:", "1:99999999999999999999:"]) {
      expect(parseSnapshot(text)).toBeNull();
    }
  });

  it("sees what committed before it: below xmin, or below xmax and not in progress", () => {
    const snapshot = parseSnapshot("100:105:100,103");
    if (!snapshot) throw new Error("not parsed");
    expect([99, 100, 101, 102, 103, 104, 105, 200].map((txid) => sees(snapshot, txid))).toEqual([
      true,
      false,
      true,
      true,
      false,
      true,
      false,
      false,
    ]);
  });
});

describe("taskChangeOf", () => {
  it("takes an announcement's txid and nine-value task tuple, and refuses anything else", () => {
    const tuple = ["t1", "AUDIO_EXTRACTION", "PROCESSING", "40", null, null, "task_1", "2", "1700"];
    expect(taskChangeOf("812", tuple)).toEqual({
      txid: 812,
      task: {
        id: "t1",
        type: "AUDIO_EXTRACTION",
        status: "PROCESSING",
        progress: 40,
        errorMessage: null,
        outputUrl: null,
        engineTaskId: "task_1",
        attempt: 2,
        updatedAt: new Date(1700),
      },
    });
    for (const [txid, candidate] of [
      [undefined, tuple],
      ["812", undefined],
      [812, tuple],
      ["-1", tuple],
      ["812", tuple.slice(1)],
      ["812", [...tuple.slice(0, 8), 1700]],
    ]) {
      expect(taskChangeOf(txid, candidate)).toBeNull();
    }
  });
});

describe("KnownStates", () => {
  const snapshot = { xmin: 100, xmax: 105, inProgress: new Set([103]) };
  const change = (txid: number, view: TaskView): TaskChange => ({ txid, task: view });

  it("applies the changes its snapshot did not see, in order, to a copy", () => {
    const known = new KnownStates();
    const loaded = state([task("AUDIO_EXTRACTION", 1, 10), task("CHAPTER_DETECTION", 1, null)]);
    known.loaded("e1", loaded, snapshot);
    const next = known.advance("e1", [
      change(99, task("AUDIO_EXTRACTION", 1, 5)), // seen: already in the state
      change(103, task("AUDIO_EXTRACTION", 1, 30)), // in progress then: not seen
      change(106, task("VIDEO_TRANSCODE", 1, 1)), // after it
      change(107, task("AUDIO_EXTRACTION", 1, 40)),
    ]);
    expect(next?.tasks.map((view) => [view.type, view.progress])).toEqual([
      ["AUDIO_EXTRACTION", 40],
      ["VIDEO_TRANSCODE", 1],
      ["CHAPTER_DETECTION", null],
    ]);
    // The episode shows the same tasks, and is still an EpisodeRow; the loaded state is as it was.
    expect(next?.episode.latestTasks).toBe(next?.tasks);
    expect(next?.episode).toBeInstanceOf(EpisodeRow);
    expect(next?.episode.title).toBe("One");
    expect(loaded.tasks.map((view) => view.progress)).toEqual([10, null]);
    // What it gave is what it knows now.
    expect(known.advance("e1", [])).toBe(next);
  });

  it("lets a new attempt replace the one shown, and an older attempt change nothing", () => {
    const known = new KnownStates();
    known.loaded("e1", state([task("CHAPTER_DETECTION", 2, null)]), snapshot);
    const older = known.advance("e1", [change(110, task("CHAPTER_DETECTION", 1, 99))]);
    expect(older?.tasks.map((view) => [view.attempt, view.progress])).toEqual([[2, null]]);
    const newer = known.advance("e1", [change(111, task("CHAPTER_DETECTION", 3, 1))]);
    expect(newer?.tasks.map((view) => [view.attempt, view.progress])).toEqual([[3, 1]]);
  });

  it("knows nothing it was not given, forgets on request, and keeps only the latest `limit`", () => {
    const known = new KnownStates(2);
    expect(known.advance("e1", [])).toBeNull();
    known.loaded("e1", state([]), snapshot);
    known.loaded("e2", state([]), snapshot);
    known.loaded("e1", state([]), snapshot); // read again: now the newest
    known.loaded("e3", state([]), snapshot);
    expect(["e1", "e2", "e3"].map((id) => known.has(id))).toEqual([true, false, true]);
    known.forget("e1");
    expect(known.has("e1")).toBe(false);
    known.clear();
    expect(known.size).toBe(0);
  });
});
