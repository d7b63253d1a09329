import { createHash } from "node:crypto";
import type { AppDeps } from "../deps.ts";
import {
  type IttybitClient,
  IttybitError,
  normalizeTaskPayload,
  type TaskEvent,
} from "./ittybit/index.ts";
import { applyTaskEvent, type TaskEventOutcome } from "./task-events.ts";

/** What Ittybit's API says about one task: the task as it answered, and what that means. */
export interface IttybitTaskState {
  event: TaskEvent;
  /** Ittybit's answer as received (kept in the webhook inbox beside the delivery); null for a 404. */
  task: unknown;
}

/**
 * Asks Ittybit about a task (`GET /tasks/{id}`). A task it no longer knows (404) is failed with
 * that reason; any other trouble is thrown for the caller to retry.
 *
 * The task, not `GET /events/{id}`, for every delivery shape: an event is a snapshot of the task
 * when it was sent, which may be older than what we already have; the task is what is true now.
 */
export async function fetchTaskState(
  ittybit: IttybitClient,
  taskId: string,
): Promise<IttybitTaskState> {
  try {
    const task = await ittybit.getTask(taskId);
    return { event: normalizeTaskPayload(task), task };
  } catch (error) {
    if (!(error instanceof IttybitError) || error.status !== 404) throw error;
    return {
      event: {
        taskId,
        status: "FAILED",
        progress: null,
        output: null,
        error: "Ittybit no longer knows this task (404)",
        deliveryId: null,
        rawStatus: "not_found",
      },
      task: null,
    };
  }
}

/**
 * Applies what Ittybit says about a task, on behalf of a webhook delivery, through the one apply
 * path. The inbox key is derived from Ittybit's answer, not from the delivery: a repeat of a state
 * already applied is answered `duplicate`, and no sender can use up a key a genuine delivery will
 * need (the delivery's own id was never verified).
 */
export async function applyTaskState(
  deps: Pick<AppDeps, "orm" | "boss" | "logger">,
  state: IttybitTaskState,
  delivered: unknown,
): Promise<TaskEventOutcome> {
  const { event } = state;
  const fingerprint = createHash("sha256")
    .update(
      JSON.stringify([event.rawStatus, event.status, event.progress, event.output, event.error]),
    )
    .digest("hex");
  return applyTaskEvent(deps, event, {
    id: `ittybit-state:${event.taskId}:${fingerprint}`,
    payload: { delivered, ittybit: state.task },
  });
}

/**
 * Coalesces loads by key: a caller joins a load of its key that has not started yet, else queues
 * one to start when the running one ends. So each caller gets an answer from a load that began
 * after it asked (it sees what its caller was told about), at most one load per key runs at a
 * time, and a burst of any size costs at most two.
 */
export function coalesceByKey<T>(load: (key: string) => Promise<T>): (key: string) => Promise<T> {
  interface Slot {
    /** Settles when the last queued load has ended. */
    tail: Promise<void>;
    /** A queued load that has not started: new callers join it. */
    waiting: Promise<T> | null;
  }
  const slots = new Map<string, Slot>();
  return (key) => {
    let slot = slots.get(key);
    if (!slot) {
      slot = { tail: Promise.resolve(), waiting: null };
      slots.set(key, slot);
    }
    if (slot.waiting) return slot.waiting;
    const current = slot;
    const waiting: Promise<T> = current.tail.then(() => {
      if (current.waiting === waiting) current.waiting = null;
      return load(key);
    });
    current.waiting = waiting;
    const tail = waiting.then(
      () => undefined,
      () => undefined,
    );
    current.tail = tail;
    void tail.then(() => {
      if (current.tail === tail && slots.get(key) === current) slots.delete(key);
    });
    return waiting;
  };
}
