import { z } from "zod";

/**
 * What went wrong, independent of Ittybit's own `kind`:
 * - `http_status`: Ittybit answered with a 4xx/5xx status;
 * - `timeout` / `network`: no complete answer arrived;
 * - `malformed_body`: a 2xx whose body is not JSON (truncated, or a proxy's page);
 * - `unexpected_shape`: valid JSON that does not look like the documented resource.
 */
export type IttybitFailure =
  | "http_status"
  | "timeout"
  | "network"
  | "malformed_body"
  | "unexpected_shape";

export interface IttybitErrorDetails {
  method: string;
  path: string;
  failure: IttybitFailure;
  retryable: boolean;
  status?: number;
  kind?: string;
  ittybitMessage?: string;
  code?: string;
  retryAfterMs?: number;
  /** Our own explanation, e.g. which field of a response did not fit. */
  detail?: string;
}

/**
 * The one error every Ittybit operation throws. It deliberately keeps no reference to the
 * underlying got error: that error carries the request options, Authorization header included,
 * and would leak the API key into any log that serialises the error with its cause.
 */
export class IttybitError extends Error {
  override readonly name = "IttybitError";
  readonly method: string;
  readonly path: string;
  readonly failure: IttybitFailure;
  /** True when the same request may succeed later (timeouts, 408, 429, 5xx, broken bodies). */
  readonly retryable: boolean;
  readonly status?: number;
  /** Ittybit's error `kind` (2025-11 and later error bodies), e.g. `task_not_found`. */
  readonly kind?: string;
  /** Ittybit's human-readable `message`, with any secret removed. */
  readonly ittybitMessage?: string;
  /** The transport error code for `timeout`/`network` failures, e.g. `ECONNRESET`. */
  readonly code?: string;
  /** How long Ittybit asked us to wait (Retry-After), when it said. */
  readonly retryAfterMs?: number;

  constructor(details: IttybitErrorDetails) {
    super(describe(details));
    this.method = details.method;
    this.path = details.path;
    this.failure = details.failure;
    this.retryable = details.retryable;
    this.status = details.status;
    this.kind = details.kind;
    this.ittybitMessage = details.ittybitMessage;
    this.code = details.code;
    this.retryAfterMs = details.retryAfterMs;
  }
}

function describe(details: IttybitErrorDetails): string {
  const what = details.status === undefined ? details.failure : `HTTP ${details.status}`;
  const kind = details.kind ? ` (${details.kind})` : "";
  const message = details.ittybitMessage ? `: ${details.ittybitMessage}` : "";
  const code = details.code ? ` [${details.code}]` : "";
  const detail = details.detail ? `\n${details.detail}` : "";
  return `Ittybit ${details.method} ${details.path} failed with ${what}${kind}${code}${message}${detail}`;
}

/** 408, 429 and 5xx are worth another try; every other 4xx would fail the same way again. */
export function isRetryableStatus(status: number): boolean {
  return status === 408 || status === 429 || status >= 500;
}

const ErrorFieldsSchema = z.looseObject({
  kind: z.string().optional().catch(undefined),
  message: z.string().optional().catch(undefined),
});

// The documented error bodies: `{message}` (2025-08-20), `{kind, message}` (2025-11 on) and the
// older envelope `{meta, data: null, error: {message}}`.
const ErrorBodySchema = z.looseObject({
  kind: z.string().optional().catch(undefined),
  message: z.string().optional().catch(undefined),
  error: ErrorFieldsSchema.nullish().catch(undefined),
});

const MAX_MESSAGE_LENGTH = 500;

/** Reads Ittybit's `kind` and `message` out of an error body of any documented shape. */
export function parseErrorBody(
  body: unknown,
  secrets: readonly string[],
): { kind?: string; ittybitMessage?: string } {
  const parsed = ErrorBodySchema.safeParse(typeof body === "string" ? parseJson(body) : body);
  if (!parsed.success) return {};
  const kind = parsed.data.kind ?? parsed.data.error?.kind;
  const message = parsed.data.message ?? parsed.data.error?.message;
  return {
    ...(kind ? { kind } : {}),
    ...(message ? { ittybitMessage: redact(message, secrets).slice(0, MAX_MESSAGE_LENGTH) } : {}),
  };
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/** An API echoing the key back ("invalid key sk_…") must not put it into our errors and logs. */
export function redact(text: string, secrets: readonly string[]): string {
  return secrets.reduce(
    (result, secret) => (secret ? result.replaceAll(secret, "[redacted]") : result),
    text,
  );
}

/** Retry-After as delta-seconds or an HTTP date, in milliseconds from `now`. */
export function parseRetryAfter(header: string | undefined, now = Date.now()): number | undefined {
  if (header === undefined) return undefined;
  const trimmed = header.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed) * 1000;
  const date = Date.parse(trimmed);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}
