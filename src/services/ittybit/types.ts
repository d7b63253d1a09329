import { z } from "zod";

// Ittybit changed its shapes several times (2025-08-20 task bodies, later task and event shapes), so every schema here is lenient:
// unknown fields pass through, only what Podflow relies on is required, and enums accept any
// string while still naming the values we know.

/** A known value, or any other string a newer API version may send. */
export type OpenEnum<Known extends string> = Known | (string & {});

// The known values only shape the type: any string parses, so a new word cannot break a response.
function openEnum<const Known extends readonly [string, ...string[]]>(_known: Known) {
  return z.custom<OpenEnum<Known[number]>>((value) => typeof value === "string", {
    message: "expected a string",
  });
}

/** Every task status word a documented Ittybit API version uses. */
export const ITTYBIT_TASK_STATUS_WORDS = [
  // 2025-08-20
  "pending",
  "waiting",
  "processing",
  "ready",
  "completed",
  "failed",
  "error",
  "cancelled",
  // 2025-11 runs era
  "validating",
  "queued",
  "finishing",
  "succeeded",
] as const;
export type KnownTaskStatus = (typeof ITTYBIT_TASK_STATUS_WORDS)[number];
export type IttybitTaskStatus = OpenEnum<KnownTaskStatus>;

const FILE_STATUSES = ["waiting", "processing", "ready", "failed"] as const;
const FILE_OBJECTS = ["source", "track", "intelligence"] as const;

export const IttybitFileSchema = z.looseObject({
  id: z.string().min(1),
  media_id: z.string().nullish(),
  object: openEnum(FILE_OBJECTS).nullish(),
  kind: z.string().nullish(),
  /** MIME type. */
  type: z.string().nullish(),
  url: z.string().nullish(),
  filesize: z.number().nullish(),
  duration: z.number().nullish(),
  ref: z.string().nullish(),
  folder: z.string().nullish(),
  filename: z.string().nullish(),
  status: openEnum(FILE_STATUSES).nullish(),
  metadata: z.record(z.string(), z.unknown()).nullish(),
});
export type IttybitFile = z.infer<typeof IttybitFileSchema>;

export const IttybitMediaSchema = z.looseObject({
  id: z.string().min(1),
  object: z.string().nullish(),
  title: z.string().nullish(),
  metadata: z.record(z.string(), z.unknown()).nullish(),
  files: z.array(z.looseObject({ id: z.string() })).nullish(),
  /** Task outputs by their `ref`. */
  urls: z.record(z.string(), z.unknown()).nullish(),
});
export type IttybitMedia = z.infer<typeof IttybitMediaSchema>;

/** A task's result: a whole file object in 2025-08-20, `{kind, type, url}` items later. */
export const TaskOutputSchema = z.looseObject({
  id: z.string().nullish(),
  url: z.string().nullish(),
  kind: z.string().nullish(),
  type: z.string().nullish(),
});
export type TaskOutput = z.infer<typeof TaskOutputSchema>;

export const IttybitTaskSchema = z.looseObject({
  id: z.string().min(1),
  object: z.string().nullish(),
  kind: z.string().nullish(),
  status: openEnum(ITTYBIT_TASK_STATUS_WORDS),
  progress: z.number().nullish(),
  output: TaskOutputSchema.nullish(),
  outputs: z.array(TaskOutputSchema).nullish(),
  /** A string in 2025-08-20; runs-era errors may be `{kind, message}` objects. */
  error: z.union([z.string(), z.looseObject({ message: z.string().nullish() })]).nullish(),
});
export type IttybitTask = z.infer<typeof IttybitTaskSchema>;

export const SignatureSchema = z.looseObject({
  url: z.string().min(1),
  method: z.string().nullish(),
  /** Unix seconds. */
  expiry: z.coerce.number().nullish(),
  domain: z.string().nullish(),
  filename: z.string().nullish(),
  folder: z.string().nullish(),
  signature: z.string().nullish(),
});

export type SignatureMethod = "get" | "put";

/** A signed URL the producer's client can use without our API key. */
export interface UploadSignature {
  url: string;
  method: string;
  expiresAt: Date;
  domain: string | null;
  filename: string;
  folder: string | null;
}
