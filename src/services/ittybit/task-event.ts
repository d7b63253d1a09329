import { z } from "zod";
import { clampProgress, type TaskStatus } from "../../domain/tasks.ts";
import { containsNul } from "../../security/nul-text.ts";
import { IttybitTaskSchema, type KnownTaskStatus, type TaskOutput } from "./types.ts";

/** What Ittybit's status words can mean; SKIPPED is the local engine's alone. */
type TaskEventStatus = Exclude<TaskStatus, "SKIPPED">;

export interface TaskEventOutput {
  fileId: string | null;
  url: string | null;
  /** Ittybit's kind of output, e.g. `source`/`speech` (2025-08-20) or `track` (later). */
  kind: string | null;
  /** MIME type, e.g. `audio/mpeg`. */
  type: string | null;
}

/**
 * One report about one processing task, whichever engine made it: an Ittybit task (whichever API
 * version or channel it came through) or a local engine task. `taskId` is the engine's id.
 */
export interface TaskEvent {
  taskId: string;
  status: TaskStatus;
  progress: number | null;
  output: TaskEventOutput | null;
  error: string | null;
  /** The webhook delivery's id (`webhook-id` header, else the event's `evt_…` id). */
  deliveryId: string | null;
  /** Ittybit's own status word, kept for logs and for statuses we do not know yet. */
  rawStatus: string;
}

export class TaskEventParseError extends Error {
  override readonly name = "TaskEventParseError";
}

// Every status word any documented version uses; `satisfies` makes
// the compiler insist each known word is mapped. A Map, so words like "constructor" find nothing.
const STATUS_BY_WORD = new Map<string, TaskEventStatus>(
  Object.entries({
    pending: "PENDING",
    waiting: "PENDING",
    validating: "PENDING",
    queued: "PENDING",
    processing: "PROCESSING",
    finishing: "PROCESSING",
    completed: "COMPLETED",
    ready: "COMPLETED",
    succeeded: "COMPLETED",
    failed: "FAILED",
    error: "FAILED",
    cancelled: "FAILED",
  } satisfies Record<KnownTaskStatus, TaskEventStatus>),
);

// What an event's topic says when its task carries no status word we know.
const STATUS_BY_TOPIC = new Map<string, TaskEventStatus>([
  ["task.created", "PENDING"],
  ["task.succeeded", "COMPLETED"],
  ["task.failed", "FAILED"],
]);

const EventEnvelopeSchema = z.looseObject({
  id: z.string().nullish(),
  object: z.literal("event"),
  kind: z.string(),
  data: z.unknown(),
});

// A task as it arrives in a webhook: like the API's task, but the status may be missing when the
// event's topic says it, and the 2025-08-20 webhook examples carry `results` instead of `output`.
const DeliveredTaskSchema = IttybitTaskSchema.extend({
  status: z.string().nullish(),
  results: z.looseObject({ url: z.string().nullish() }).nullish().catch(null),
});
type DeliveredTask = z.infer<typeof DeliveredTaskSchema>;

/**
 * Turns any documented task payload into a TaskEvent: the 2025-08-20 task object, the later task
 * with `outputs[]` and `succeeded`, or the event envelope `{object: "event", kind: "task.*", data}`.
 * A status word nobody documented maps to PENDING: it claims no progress, so it can never move a
 * task forward by mistake, and `rawStatus` keeps the word for the logs.
 */
export function normalizeTaskPayload(payload: unknown, deliveryId?: string): TaskEvent {
  // PostgreSQL stores no NUL in text or jsonb: such a body could never be recorded.
  if (containsNul(payload)) throw new TaskEventParseError("the body contains NUL characters");
  const envelope = EventEnvelopeSchema.safeParse(payload);
  if (envelope.success && !envelope.data.kind.startsWith("task.")) {
    throw new TaskEventParseError(`event ${envelope.data.kind} is not about a task`);
  }
  const task = parseTask(envelope.success ? envelope.data.data : payload);
  const eventKind = envelope.success ? envelope.data.kind : undefined;
  const rawStatus = task.status ?? eventKind;
  if (!rawStatus) throw new TaskEventParseError(`task ${task.id} has no status`);

  return {
    taskId: task.id,
    status:
      STATUS_BY_WORD.get(rawStatus.toLowerCase()) ??
      (eventKind ? STATUS_BY_TOPIC.get(eventKind) : undefined) ??
      "PENDING",
    progress: typeof task.progress === "number" ? clampProgress(task.progress) : null,
    output: outputOf(task),
    error: errorOf(task),
    deliveryId: deliveryId ?? (envelope.success ? (envelope.data.id ?? null) : null),
    rawStatus,
  };
}

function parseTask(candidate: unknown): DeliveredTask {
  const parsed = DeliveredTaskSchema.safeParse(candidate);
  if (!parsed.success) {
    throw new TaskEventParseError(`not a task payload: ${z.prettifyError(parsed.error)}`);
  }
  if (parsed.data.object && parsed.data.object !== "task") {
    throw new TaskEventParseError(`payload is a ${parsed.data.object}, not a task`);
  }
  return parsed.data;
}

function outputOf(task: DeliveredTask): TaskEventOutput | null {
  const output: TaskOutput | null =
    task.output ?? task.outputs?.[0] ?? (task.results?.url ? { url: task.results.url } : null);
  if (!output) return null;
  return {
    fileId: output.id ?? null,
    url: httpUrlOrNull(output.url),
    kind: output.kind ?? null,
    type: output.type ?? null,
  };
}

/**
 * Output URLs are shown to producers (dashboards link them) and downloaded: anything but an
 * absolute http(s) URL (`javascript:`, `file:`, a relative path) is taken as no URL yet.
 */
function httpUrlOrNull(url: string | null | undefined): string | null {
  if (!url || !URL.canParse(url)) return null;
  const { protocol } = new URL(url);
  return protocol === "https:" || protocol === "http:" ? url : null;
}

function errorOf(task: DeliveredTask): string | null {
  const message = typeof task.error === "string" ? task.error : task.error?.message;
  return message || null;
}
