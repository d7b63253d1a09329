/**
 * The last state this instance loaded or derived of each episode it serves, so that a change a
 * task's announcement carries in full (see the task_states migration) is delivered without
 * reading the episode back: the known state with that task replaced is what a read would give.
 *
 * Why that holds. Announcements arrive in commit order, each transaction's together, and each
 * carries its task's row as that transaction left it. A state loaded from the database is that
 * of the load's snapshot: it holds exactly the transactions the snapshot sees. So from a loaded
 * state, the announcements of transactions the snapshot does not see are applied in the order
 * they come, and those it sees (committed before the load, heard after it started) are skipped:
 * applying one of those could put back a row that a later transaction, also already in the
 * state, had changed again.
 *
 * A known state is only right while every announcement of its episode reaches it. The feed
 * forgets an episode's state whenever it lets an announcement of it pass (nobody here followed
 * it), forgets everything after a resync (announcements may have been missed), and reads the
 * episode again after an announcement that carried no task (episode rows are read back).
 */
import { type TaskView, type TaskViewTuple, taskViewOfTuple, withLatestTask } from "../episodes.ts";
import type { EpisodeUpdate } from "./types.ts";

/** A task's state as its announcement carried it, and the transaction that committed it. */
export interface TaskChange {
  txid: number;
  task: TaskView;
}

/** Which transactions a load saw: PostgreSQL's pg_snapshot (xmin, xmax, those in progress). */
export interface Snapshot {
  xmin: number;
  xmax: number;
  inProgress: ReadonlySet<number>;
}

/** `pg_current_snapshot()::text` ("xmin:xmax:xip,…"), or null when it is not one. */
export function parseSnapshot(text: unknown): Snapshot | null {
  if (typeof text !== "string") return null;
  const match = /^(\d+):(\d+):([\d,]*)$/.exec(text);
  if (!match) return null;
  const inProgress = match[3] ? match[3].split(",").map(Number) : [];
  const xmin = Number(match[1]);
  const xmax = Number(match[2]);
  if (![xmin, xmax, ...inProgress].every(Number.isSafeInteger)) return null;
  return { xmin, xmax, inProgress: new Set(inProgress) };
}

/** Whether a state read with `snapshot` holds what transaction `txid` committed. */
export function sees(snapshot: Snapshot, txid: number): boolean {
  if (txid < snapshot.xmin) return true;
  return txid < snapshot.xmax && !snapshot.inProgress.has(txid);
}

/** An announced transaction id (xid8 as text), or null when it is not one. */
export function txidOf(text: unknown): number | null {
  if (typeof text !== "string" || !/^\d+$/.test(text)) return null;
  const txid = Number(text);
  return Number.isSafeInteger(txid) ? txid : null;
}

/** A task change from an announcement's `txid` and `task`, or null when they are not one. */
export function taskChangeOf(text: unknown, tuple: unknown): TaskChange | null {
  const txid = txidOf(text);
  if (txid === null || !Array.isArray(tuple) || tuple.length !== 9) return null;
  if (!tuple.every((value) => value === null || typeof value === "string")) return null;
  return { txid, task: taskViewOfTuple(tuple as TaskViewTuple) };
}

interface Known {
  update: EpisodeUpdate;
  snapshot: Snapshot;
}

/** Enough for every episode of a busy instance's dashboards; the oldest are forgotten first. */
const DEFAULT_LIMIT = 10_000;

export class KnownStates {
  readonly #states = new Map<string, Known>();
  readonly #limit: number;

  constructor(limit = DEFAULT_LIMIT) {
    this.#limit = limit;
  }

  get size(): number {
    return this.#states.size;
  }

  has(episodeId: string): boolean {
    return this.#states.has(episodeId);
  }

  /** The episode as a load with `snapshot` read it. */
  loaded(episodeId: string, update: EpisodeUpdate, snapshot: Snapshot): void {
    this.#states.delete(episodeId);
    this.#states.set(episodeId, { update, snapshot });
    if (this.#states.size > this.#limit) {
      const oldest = this.#states.keys().next().value;
      if (oldest !== undefined) this.#states.delete(oldest);
    }
  }

  forget(episodeId: string): void {
    this.#states.delete(episodeId);
  }

  clear(): void {
    this.#states.clear();
  }

  /**
   * The episode's state after these announced changes (in the order they were heard), which
   * becomes its known state; null when its state is not known.
   */
  advance(episodeId: string, changes: readonly TaskChange[]): EpisodeUpdate | null {
    const known = this.#states.get(episodeId);
    if (!known) return null;
    let update = known.update;
    for (const { txid, task } of changes) {
      if (sees(known.snapshot, txid)) continue;
      update = withLatestTask(update, task) ?? update;
    }
    known.update = update;
    return update;
  }
}
