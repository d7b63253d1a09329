import { randomUUID } from "node:crypto";
import got, { type Got, type Method, type OptionsInit, RequestError, type RetryObject } from "got";
import type { Logger } from "pino";
import { z } from "zod";
import packageJson from "../../../package.json" with { type: "json" };
import { IttybitError, isRetryableStatus, parseErrorBody, parseRetryAfter } from "./errors.ts";
import { DEFAULT_RETRY_SETTINGS, type RetrySettings, retryDelay } from "./retry-policy.ts";
import type { TaskRequest } from "./task-options.ts";
import {
  type IttybitFile,
  IttybitFileSchema,
  type IttybitMedia,
  IttybitMediaSchema,
  type IttybitTask,
  IttybitTaskSchema,
  type SignatureMethod,
  SignatureSchema,
  type UploadSignature,
} from "./types.ts";

/** The API version whose shapes this client speaks (the 2025-08-20 version, the one its stored documentation describes). */
export const ITTYBIT_API_VERSION = "2025-08-20";

const DEFAULT_TIMEOUT_MS = 30_000;
const DEFAULT_SIGNATURE_TTL_MS = 60 * 60 * 1000;

// Statuses got may retry on; whether there is time and count left is decided in `calculateDelay`.
const RETRYABLE_STATUS_CODES = Array.from({ length: 200 }, (_, index) => 400 + index).filter(
  isRetryableStatus,
);
const RETRYABLE_ERROR_CODES = [
  "ETIMEDOUT",
  "ECONNRESET",
  "ECONNREFUSED",
  "EPIPE",
  "ENOTFOUND",
  "ENETUNREACH",
  "EAI_AGAIN",
  // A 2xx whose body is not JSON is a broken transfer or a proxy's page, not Ittybit's answer.
  "ERR_BODY_PARSE_FAILURE",
];

export interface IttybitClientOptions {
  apiUrl: string;
  apiKey: string;
  logger: Logger;
  /** Per attempt. */
  timeoutMs?: number;
  retry?: Partial<RetrySettings>;
}

export interface IdempotentRequest {
  /** Chosen by the caller and stable across every retry of the same logical request. */
  idempotencyKey: string;
  /**
   * Ends the request and its retries when aborted (a stopping Podflow hands its job back); the
   * call then rejects with the signal's reason, never with an IttybitError.
   */
  signal?: AbortSignal;
}

/** Ittybit's HTTP API, transport only: what to ask for is built elsewhere (task-options.ts). */
export interface IttybitClient {
  /** A signed URL for uploading (`put`, the default) or reading a file without our key. */
  createSignature(request: {
    folder?: string;
    filename: string;
    expiry?: Date;
    method?: SignatureMethod;
  }): Promise<UploadSignature>;
  getFile(id: string): Promise<IttybitFile>;
  createMedia(
    media: { title?: string; metadata?: Record<string, unknown> },
    options: IdempotentRequest,
  ): Promise<IttybitMedia>;
  createTask(task: TaskRequest, options: IdempotentRequest): Promise<IttybitTask>;
  getTask(id: string): Promise<IttybitTask>;
}

interface RequestContext extends Record<string, unknown> {
  startedAt: number;
}

export function createIttybitClient(options: IttybitClientOptions): IttybitClient {
  const logger = options.logger.child({ component: "ittybit" });
  const retry: RetrySettings = { ...DEFAULT_RETRY_SETTINGS, ...options.retry };
  const secrets = [options.apiKey];
  const http = createHttp(options, retry, logger);

  async function send<Schema extends z.ZodType>(
    schema: Schema,
    method: Method,
    path: string,
    init: Pick<OptionsInit, "json" | "headers" | "signal">,
  ): Promise<z.infer<Schema>> {
    const context: RequestContext = { startedAt: Date.now() };
    let body: unknown;
    try {
      const response = await http(path.replace(/^\//, ""), { method, context, ...init });
      body = response.body;
    } catch (error) {
      if (init.signal?.aborted) throw init.signal.reason ?? error;
      throw toIttybitError(error, method, path, secrets);
    }
    const parsed = schema.safeParse(body);
    if (!parsed.success) {
      // The shape is Ittybit's choice; asking again will not change it.
      throw new IttybitError({
        method,
        path,
        failure: "unexpected_shape",
        retryable: false,
        detail: z.prettifyError(parsed.error),
      });
    }
    return parsed.data;
  }

  const get = <Schema extends z.ZodType>(schema: Schema, path: string) =>
    send(schema, "GET", path, {});

  // Every POST carries an idempotency key, the same on each retry: that is what lets got retry
  // POSTs at all, since Ittybit answers a repeat with what the first attempt created.
  const post = async <Schema extends z.ZodType>(
    schema: Schema,
    path: string,
    json: unknown,
    idempotencyKey: string,
    signal?: AbortSignal,
  ) =>
    send(schema, "POST", path, {
      json,
      headers: { "idempotency-key": requireKey(idempotencyKey) },
      ...(signal ? { signal } : {}),
    });

  return {
    async createSignature({ folder, filename, expiry, method = "put" }) {
      const expiresAt = expiry ?? new Date(Date.now() + DEFAULT_SIGNATURE_TTL_MS);
      const signature = await post(
        SignatureSchema,
        "/signatures",
        { filename, folder, expiry: Math.floor(expiresAt.getTime() / 1000), method },
        // Signing creates nothing, so no caller needs to know the key; one per call suffices.
        randomUUID(),
      );
      return {
        url: signature.url,
        method: signature.method ?? method,
        expiresAt: signature.expiry ? new Date(signature.expiry * 1000) : expiresAt,
        domain: signature.domain ?? null,
        filename: signature.filename ?? filename,
        folder: signature.folder ?? folder ?? null,
      };
    },
    getFile: (id) => get(IttybitFileSchema, `/files/${pathId(id)}`),
    createMedia: (media, { idempotencyKey, signal }) =>
      post(IttybitMediaSchema, "/media", media, idempotencyKey, signal),
    createTask: (task, { idempotencyKey, signal }) =>
      post(IttybitTaskSchema, "/tasks", task, idempotencyKey, signal),
    getTask: (id) => get(IttybitTaskSchema, `/tasks/${pathId(id)}`),
  };
}

/**
 * An id placed in a URL path: letters, digits, `_` and `-` only. Encoding alone would let `..`
 * through, which URL resolution turns into another endpoint (requested with the API key).
 */
function pathId(id: string): string {
  if (!/^[A-Za-z0-9_-]{1,128}$/.test(id)) {
    throw new TypeError(`not an Ittybit id: ${JSON.stringify(id.slice(0, 80))}`);
  }
  return id;
}

function createHttp(options: IttybitClientOptions, retry: RetrySettings, logger: Logger): Got {
  return got.extend({
    prefixUrl: options.apiUrl,
    headers: {
      authorization: `Bearer ${options.apiKey}`,
      "accept-version": ITTYBIT_API_VERSION,
      accept: "application/json",
      "user-agent": `Podflow/${packageJson.version} (podcast automation)`,
    },
    responseType: "json",
    timeout: { request: options.timeoutMs ?? DEFAULT_TIMEOUT_MS },
    retry: {
      limit: retry.limit,
      methods: ["GET", "POST"],
      statusCodes: RETRYABLE_STATUS_CODES,
      errorCodes: RETRYABLE_ERROR_CODES,
      // got refuses a Retry-After above this before asking calculateDelay; the budget decides.
      maxRetryAfter: retry.totalTimeoutMs,
      calculateDelay: (attempt) => {
        const delayMs = nextDelay(attempt, retry);
        if (delayMs > 0) logRetry(logger, attempt, delayMs);
        return delayMs;
      },
    },
  });
}

function nextDelay({ attemptCount, error, retryAfter }: RetryObject, retry: RetrySettings): number {
  const { startedAt } = error.options.context as RequestContext;
  return retryDelay(
    { attempt: attemptCount, elapsedMs: Date.now() - startedAt, retryAfterMs: retryAfter },
    retry,
  );
}

function logRetry(logger: Logger, { attemptCount, error }: RetryObject, delayMs: number): void {
  // Method, path and status only: the request options hold the Authorization header.
  const url = error.options.url;
  logger.warn(
    {
      method: error.options.method,
      path: url instanceof URL ? url.pathname : undefined,
      status: error.response?.statusCode,
      code: error.code,
      attempt: attemptCount,
      delayMs,
    },
    "retrying Ittybit request",
  );
}

function toIttybitError(
  error: unknown,
  method: string,
  path: string,
  secrets: readonly string[],
): IttybitError {
  if (!(error instanceof RequestError)) throw error;
  const response = error.response;
  if (error.code === "ERR_BODY_PARSE_FAILURE") {
    return new IttybitError({
      method,
      path,
      failure: "malformed_body",
      retryable: true,
      status: response?.statusCode,
    });
  }
  if (response) {
    const retryAfter = response.headers["retry-after"];
    return new IttybitError({
      method,
      path,
      failure: "http_status",
      status: response.statusCode,
      retryable: isRetryableStatus(response.statusCode),
      retryAfterMs: parseRetryAfter(Array.isArray(retryAfter) ? retryAfter[0] : retryAfter),
      ...parseErrorBody(response.body, secrets),
    });
  }
  return new IttybitError({
    method,
    path,
    failure: error.code === "ETIMEDOUT" ? "timeout" : "network",
    code: error.code,
    retryable: true,
  });
}

function requireKey(idempotencyKey: string): string {
  if (!idempotencyKey.trim()) throw new TypeError("an idempotency key is required");
  return idempotencyKey;
}
