import { createHash } from "node:crypto";
import type { Readable } from "node:stream";
import { setTimeout as sleep } from "node:timers/promises";
import got, { type Method, RequestError, type Response } from "got";
import pThrottle from "p-throttle";
import type { Logger } from "pino";
import railsTimeZones from "rails-timezone";
import { z } from "zod";
import packageJson from "../../../package.json" with { type: "json" };
import { parseRetryAfter, redact } from "../ittybit/errors.ts";
import { wallClock } from "./wall-clock.ts";

// Transistor.fm's API (api.transistor.fm/v1), transport only: JSON:API documents in, plain
// objects out. Authentication is the producer's own API key in `x-api-key`, passed per call
// because every producer has their own; the key never appears in an error, a log line or a URL.

export const DEFAULT_TRANSISTOR_API_URL = "https://api.transistor.fm";

export interface TransistorShow {
  id: string;
  title: string;
  timeZone: string | null;
  slug: string | null;
}

export interface TransistorEpisode {
  id: string;
  status: "draft" | "published" | "scheduled";
  audioProcessing: boolean;
  shareUrl: string | null;
  mediaUrl: string | null;
  title: string;
  createdAt: string | null;
}

export interface TransistorEpisodeFields {
  showId: string;
  title: string;
  summary?: string;
  description?: string;
  audioUrl: string;
  transcriptText?: string;
  season?: number | null;
  number?: number | null;
  type?: "full" | "trailer" | "bonus";
  imageUrl?: string;
}

export interface TransistorUploadTarget {
  uploadUrl: string;
  contentType: string;
  audioUrl: string;
  /** Seconds the signed URL stays valid, counted from the authorize call. */
  expiresIn: number;
}

export interface TransistorClient {
  /** `GET /v1`: the user the key belongs to; the cheapest check that a key works. */
  whoAmI(apiKey: string): Promise<{ name: string }>;
  /** Every show the key can see, all pages. */
  listShows(apiKey: string): Promise<TransistorShow[]>;
  /** One show by id or slug. */
  getShow(apiKey: string, showId: string): Promise<TransistorShow>;
  /** A pre-signed URL to PUT an audio file to, and the `audio_url` to create the episode with. */
  authorizeUpload(apiKey: string, filename: string): Promise<TransistorUploadTarget>;
  /**
   * PUTs the bytes to the signed URL with exactly `contentType` (no API key: the URL is the
   * credential). `body` is called for a fresh stream on every attempt; `bytes` is its length.
   */
  uploadAudio(
    target: { uploadUrl: string; contentType: string },
    body: () => NodeJS.ReadableStream,
    bytes: number,
    onProgress?: (sent: number) => void,
    /** Stops the upload (a stopping worker hands its job back); rejects with its reason. */
    signal?: AbortSignal,
  ): Promise<void>;
  /**
   * `POST /v1/episodes`: a new draft. Not retried on an ambiguous failure (5xx, a lost answer):
   * the episode may exist, and the caller adopts it with `findEpisodes` instead of making two.
   */
  createEpisode(apiKey: string, fields: TransistorEpisodeFields): Promise<TransistorEpisode>;
  getEpisode(apiKey: string, id: string): Promise<TransistorEpisode>;
  /**
   * Episodes of a show matching a search (`GET /v1/episodes?show_id&query&status`), to adopt an
   * episode created by a run that died before saving its id. Transistor's `query` is a search,
   * not an exact match: compare titles before adopting.
   */
  findEpisodes(
    apiKey: string,
    q: { showId: string; query: string; status?: "draft" | "published" | "scheduled" },
  ): Promise<TransistorEpisode[]>;
  /** `PATCH /v1/episodes/:id/publish`; `publishedAt` in the show's time zone (see transistorPublishedAt). */
  publishEpisode(
    apiKey: string,
    id: string,
    p: { status: "published" | "scheduled" | "draft"; publishedAt?: string },
  ): Promise<TransistorEpisode>;
}

export interface TransistorRateLimit {
  /** Requests allowed per key in any `intervalMs` window (Transistor: 10 per 10 s). */
  limit: number;
  intervalMs: number;
  /** Wait after a 429 without Retry-After (Transistor blocks the key for 10 s). */
  blockedWaitMs: number;
  /** 429s waited out per call before giving up with a retryable error. */
  maxRateLimitRetries: number;
}

export interface TransistorClientOptions {
  apiUrl?: string;
  logger?: Logger;
  rateLimit?: Partial<TransistorRateLimit>;
  /** Quick retries of 5xx and connection failures (idempotent calls only). */
  transientRetries?: number;
  /** First transient retry's delay; it doubles. */
  transientDelayMs?: number;
  /** Per attempt, API calls. */
  timeoutMs?: number;
  /** Per attempt, the audio PUT. */
  uploadTimeoutMs?: number;
}

// Transistor counts requests when they arrive, we when they leave: a second of margin keeps a
// request delayed on its way from landing in the same window as the tenth after it.
export const DEFAULT_TRANSISTOR_RATE_LIMIT: TransistorRateLimit = {
  limit: 10,
  intervalMs: 11_000,
  blockedWaitMs: 10_000,
  maxRateLimitRetries: 3,
};

/** What went wrong talking to Transistor, phrased for the producer. */
export class TransistorError extends Error {
  override readonly name = "TransistorError";
  /** HTTP status, or null when no answer came (timeout, connection reset). */
  readonly status: number | null;
  /** True when the same request may succeed later (429, 5xx, connection failures). */
  readonly retryable: boolean;
  /** How long Transistor asked us to wait, when it did (or its documented 10 s block on 429). */
  readonly retryAfterMs: number | null;

  constructor(
    message: string,
    details: { status: number | null; retryable: boolean; retryAfterMs?: number | null },
  ) {
    super(message);
    this.status = details.status;
    this.retryable = details.retryable;
    this.retryAfterMs = details.retryAfterMs ?? null;
  }
}

const ResourceSchema = z.object({
  id: z.union([z.string(), z.number()]).transform(String),
  type: z.string().optional(),
  attributes: z.looseObject({}).default({}),
});

const nullableString = z
  .string()
  .nullish()
  .catch(null)
  .transform((value) => value ?? null);

const ShowAttributesSchema = z.looseObject({
  title: z
    .string()
    .nullish()
    .transform((value) => value ?? ""),
  time_zone: nullableString,
  slug: nullableString,
});

const EpisodeAttributesSchema = z.looseObject({
  title: z
    .string()
    .nullish()
    .transform((value) => value ?? ""),
  status: z.enum(["draft", "published", "scheduled"]),
  audio_processing: z
    .boolean()
    .nullish()
    .transform((value) => value ?? false),
  share_url: nullableString,
  media_url: nullableString,
  created_at: nullableString,
});

const UserAttributesSchema = z.looseObject({
  name: z
    .string()
    .nullish()
    .transform((value) => value ?? ""),
});

const UploadAttributesSchema = z.looseObject({
  upload_url: z.url(),
  content_type: z.string().min(1),
  audio_url: z.url(),
  expires_in: z
    .number()
    .nullish()
    .transform((value) => value ?? 600),
});

const SingleSchema = z.object({ data: ResourceSchema });
const CollectionSchema = z.object({
  data: z.array(ResourceSchema),
  meta: z
    .looseObject({
      currentPage: z.number().optional(),
      totalPages: z.number().optional(),
    })
    .optional(),
});

const MAX_PAGES = 100;
const PAGE_SIZE = 100;

/** A per-key limiter: the key itself is not kept, only a hash of it. */
type Slot = () => Promise<void>;

export function createTransistorClient(options: TransistorClientOptions = {}): TransistorClient {
  const apiUrl = (options.apiUrl ?? DEFAULT_TRANSISTOR_API_URL).replace(/\/+$/, "");
  const logger = options.logger?.child({ component: "transistor" });
  const rateLimit = { ...DEFAULT_TRANSISTOR_RATE_LIMIT, ...options.rateLimit };
  const transientRetries = options.transientRetries ?? 2;
  const transientDelayMs = options.transientDelayMs ?? 500;
  const timeoutMs = options.timeoutMs ?? 30_000;
  const uploadTimeoutMs = options.uploadTimeoutMs ?? 60 * 60_000;

  const slots = new Map<string, { slot: Slot; blockedUntil: number }>();
  function limiterFor(apiKey: string) {
    const id = createHash("sha256").update(apiKey).digest("base64url");
    let entry = slots.get(id);
    if (!entry) {
      const throttle = pThrottle({
        limit: rateLimit.limit,
        interval: rateLimit.intervalMs,
        strict: true,
      });
      entry = { slot: throttle(async () => {}), blockedUntil: 0 };
      slots.set(id, entry);
    }
    return entry;
  }

  async function request(
    apiKey: string,
    method: Method,
    path: string,
    init: { searchParams?: URLSearchParams; json?: unknown; idempotent?: boolean } = {},
  ): Promise<unknown> {
    if (!apiKey)
      throw new TransistorError("Transistor: no API key", { status: 401, retryable: false });
    const idempotent = init.idempotent ?? method !== "POST";
    const limiter = limiterFor(apiKey);
    let rateLimited = 0;
    let transient = 0;
    for (;;) {
      const wait = limiter.blockedUntil - Date.now();
      if (wait > 0) await sleep(wait);
      await limiter.slot();
      // Another call may have met a 429 while this one queued for its slot.
      if (limiter.blockedUntil > Date.now()) continue;
      let response: Response<string>;
      try {
        response = await got(`${apiUrl}${path}`, {
          method,
          headers: {
            "x-api-key": apiKey,
            accept: "application/json",
            "user-agent": `Podflow/${packageJson.version} (podcast automation)`,
          },
          ...(init.searchParams ? { searchParams: init.searchParams } : {}),
          ...(init.json !== undefined ? { json: init.json } : {}),
          responseType: "text",
          throwHttpErrors: false,
          followRedirect: false,
          retry: { limit: 0 },
          timeout: { request: timeoutMs },
        });
      } catch (error) {
        if (!(error instanceof RequestError)) throw error;
        // A refused connection never reached Transistor, so even a POST may be sent again.
        const safe = idempotent || error.code === "ECONNREFUSED";
        if (safe && transient < transientRetries) {
          transient += 1;
          logger?.warn({ method, path: pathOnly(path), code: error.code }, "retrying Transistor");
          await sleep(transientDelayMs * 2 ** (transient - 1));
          continue;
        }
        throw new TransistorError(
          `Transistor could not be reached (${error.code ?? "network error"}) on ${method} ${pathOnly(path)}`,
          { status: null, retryable: true },
        );
      }
      const status = response.statusCode;
      if (status >= 200 && status < 300) return parseJson(response.body, method, path);
      if (status === 429) {
        const retryAfterMs =
          parseRetryAfter(headerValue(response.headers["retry-after"])) ?? rateLimit.blockedWaitMs;
        limiter.blockedUntil = Math.max(limiter.blockedUntil, Date.now() + retryAfterMs);
        if (rateLimited < rateLimit.maxRateLimitRetries) {
          rateLimited += 1;
          logger?.warn(
            { method, path: pathOnly(path), retryAfterMs, attempt: rateLimited },
            "Transistor rate limit reached; waiting",
          );
          continue;
        }
        throw httpError(response, method, path, apiKey, { retryable: true, retryAfterMs });
      }
      if (status >= 500 && idempotent && transient < transientRetries) {
        transient += 1;
        logger?.warn({ method, path: pathOnly(path), status }, "retrying Transistor");
        await sleep(transientDelayMs * 2 ** (transient - 1));
        continue;
      }
      throw httpError(response, method, path, apiKey, {
        retryable: status >= 500 || status === 408,
      });
    }
  }

  async function getEpisodeList(apiKey: string, searchParams: URLSearchParams) {
    const body = await request(apiKey, "GET", "/v1/episodes", { searchParams });
    return parseShape(CollectionSchema, body, "GET", "/v1/episodes").data.map((resource) =>
      toEpisode(resource, "GET /v1/episodes"),
    );
  }

  return {
    async whoAmI(apiKey) {
      const body = await request(apiKey, "GET", "/v1");
      const { data } = parseShape(SingleSchema, body, "GET", "/v1");
      return { name: parseShape(UserAttributesSchema, data.attributes, "GET", "/v1").name };
    },

    async listShows(apiKey) {
      const shows = new Map<string, TransistorShow>();
      for (let page = 1; page <= MAX_PAGES; page += 1) {
        const searchParams = new URLSearchParams({
          "pagination[page]": String(page),
          "pagination[per]": String(PAGE_SIZE),
        });
        const body = await request(apiKey, "GET", "/v1/shows", { searchParams });
        const { data, meta } = parseShape(CollectionSchema, body, "GET", "/v1/shows");
        const before = shows.size;
        for (const resource of data) shows.set(resource.id, toShow(resource));
        const current = meta?.currentPage ?? page;
        const total = meta?.totalPages ?? current;
        // A page that adds nothing new also ends the walk, whatever the meta says.
        if (data.length === 0 || shows.size === before || current >= total) break;
      }
      return [...shows.values()];
    },

    async getShow(apiKey, showId) {
      const path = `/v1/shows/${pathId(showId)}`;
      const body = await request(apiKey, "GET", path);
      return toShow(parseShape(SingleSchema, body, "GET", path).data);
    },

    async authorizeUpload(apiKey, filename) {
      const path = "/v1/episodes/authorize_upload";
      const body = await request(apiKey, "GET", path, {
        searchParams: new URLSearchParams({ filename }),
      });
      const { data } = parseShape(SingleSchema, body, "GET", path);
      const attributes = parseShape(UploadAttributesSchema, data.attributes, "GET", path);
      return {
        uploadUrl: attributes.upload_url,
        contentType: attributes.content_type,
        audioUrl: attributes.audio_url,
        expiresIn: attributes.expires_in,
      };
    },

    async uploadAudio(target, body, bytes, onProgress, signal) {
      let transient = 0;
      for (;;) {
        let response: Response<string>;
        const stream = body();
        try {
          const request = got.put(target.uploadUrl, {
            body: stream as NodeJS.ReadableStream & AsyncIterable<Buffer>,
            headers: { "content-type": target.contentType, "content-length": String(bytes) },
            responseType: "text",
            throwHttpErrors: false,
            followRedirect: false,
            retry: { limit: 0 },
            timeout: { request: uploadTimeoutMs },
            ...(signal ? { signal } : {}),
          });
          if (onProgress)
            request.on("uploadProgress", (progress) => onProgress(progress.transferred));
          response = await request;
        } catch (error) {
          // A failed attempt's stream (often a file) is closed before the next one opens.
          (stream as Partial<Readable>).destroy?.();
          if (signal?.aborted) throw signal.reason ?? error;
          if (!(error instanceof RequestError)) throw error;
          if (transient < transientRetries) {
            transient += 1;
            logger?.warn({ code: error.code }, "retrying the Transistor audio upload");
            await sleep(transientDelayMs * 2 ** (transient - 1));
            continue;
          }
          throw new TransistorError(
            `Transistor's upload storage could not be reached (${error.code ?? "network error"})`,
            { status: null, retryable: true },
          );
        }
        const status = response.statusCode;
        if (status >= 200 && status < 300) return;
        if (status >= 500 && transient < transientRetries) {
          transient += 1;
          await sleep(transientDelayMs * 2 ** (transient - 1));
          continue;
        }
        const why =
          status === 403
            ? ": the signed upload URL expired or was refused; authorize the upload again"
            : "";
        throw new TransistorError(
          `Transistor's upload storage answered HTTP ${status}${why}${storageMessage(response.body)}`,
          { status, retryable: status >= 500 || status === 403 },
        );
      }
    },

    async createEpisode(apiKey, fields) {
      const episode: Record<string, unknown> = {
        show_id: fields.showId,
        title: fields.title,
        audio_url: fields.audioUrl,
      };
      if (fields.summary !== undefined) episode.summary = fields.summary;
      if (fields.description !== undefined) episode.description = fields.description;
      if (fields.transcriptText !== undefined) episode.transcript_text = fields.transcriptText;
      if (fields.season != null) episode.season = fields.season;
      if (fields.number != null) episode.number = fields.number;
      if (fields.type !== undefined) episode.type = fields.type;
      if (fields.imageUrl !== undefined) episode.image_url = fields.imageUrl;
      const body = await request(apiKey, "POST", "/v1/episodes", { json: { episode } });
      return toEpisode(parseShape(SingleSchema, body, "POST", "/v1/episodes").data, "POST");
    },

    async getEpisode(apiKey, id) {
      const path = `/v1/episodes/${pathId(id)}`;
      const body = await request(apiKey, "GET", path);
      return toEpisode(parseShape(SingleSchema, body, "GET", path).data, `GET ${path}`);
    },

    findEpisodes(apiKey, { showId, query, status }) {
      const searchParams = new URLSearchParams({
        show_id: showId,
        query,
        "pagination[page]": "1",
        "pagination[per]": String(PAGE_SIZE),
      });
      if (status) searchParams.set("status", status);
      return getEpisodeList(apiKey, searchParams);
    },

    async publishEpisode(apiKey, id, { status, publishedAt }) {
      const path = `/v1/episodes/${pathId(id)}/publish`;
      const episode: Record<string, string> = { status };
      if (publishedAt !== undefined) episode.published_at = publishedAt;
      const body = await request(apiKey, "PATCH", path, { json: { episode } });
      return toEpisode(parseShape(SingleSchema, body, "PATCH", path).data, `PATCH ${path}`);
    },
  };
}

/**
 * `published_at` as Transistor reads it: "YYYY-MM-DD HH:MM:SS" wall-clock time in the show's
 * time zone — an IANA name, or a Rails one ("Eastern Time (US & Canada)"), Transistor being a
 * Rails application; in UTC when the zone is unknown.
 */
export function transistorPublishedAt(date: Date, timeZone: string | null): string {
  const format = wallClock(ianaTimeZone(timeZone) ?? "UTC");
  const parts = Object.fromEntries(format.formatToParts(date).map((p) => [p.type, p.value]));
  return `${parts.year}-${parts.month}-${parts.day} ${parts.hour}:${parts.minute}:${parts.second}`;
}

/** The IANA name of an IANA or Rails time zone name, or null when neither. */
export function ianaTimeZone(timeZone: string | null): string | null {
  if (!timeZone) return null;
  for (const candidate of [timeZone, railsTimeZones.from(timeZone)]) {
    if (!candidate) continue;
    try {
      return wallClock(candidate).resolvedOptions().timeZone;
    } catch {
      // Not a zone Intl knows.
    }
  }
  return null;
}

function toShow(resource: z.infer<typeof ResourceSchema>): TransistorShow {
  const attributes = parseShape(ShowAttributesSchema, resource.attributes, "GET", "/v1/shows");
  return {
    id: resource.id,
    title: attributes.title,
    timeZone: attributes.time_zone,
    slug: attributes.slug,
  };
}

function toEpisode(resource: z.infer<typeof ResourceSchema>, where: string): TransistorEpisode {
  const attributes = parseShape(EpisodeAttributesSchema, resource.attributes, where, "");
  return {
    id: resource.id,
    status: attributes.status,
    audioProcessing: attributes.audio_processing,
    shareUrl: attributes.share_url,
    mediaUrl: attributes.media_url,
    title: attributes.title,
    createdAt: attributes.created_at,
  };
}

function parseShape<Schema extends z.ZodType>(
  schema: Schema,
  value: unknown,
  method: string,
  path: string,
): z.infer<Schema> {
  const parsed = schema.safeParse(value);
  if (parsed.success) return parsed.data;
  throw new TransistorError(
    `Transistor answered ${`${method} ${pathOnly(path)}`.trim()} with an unexpected shape: ${z.prettifyError(parsed.error)}`,
    { status: null, retryable: false },
  );
}

function parseJson(text: string, method: string, path: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    throw new TransistorError(
      `Transistor answered ${method} ${pathOnly(path)} with a body that is not JSON`,
      { status: null, retryable: true },
    );
  }
}

const ErrorBodySchema = z.looseObject({
  errors: z
    .array(
      z.looseObject({
        title: z.string().optional().catch(undefined),
        detail: z.string().optional().catch(undefined),
      }),
    )
    .optional()
    .catch(undefined),
  message: z.string().optional().catch(undefined),
  error: z.string().optional().catch(undefined),
});

const STATUS_MEANINGS: Record<number, string> = {
  401: "the API key was refused",
  403: "this API key's user may not do that on this show",
  404: "not found",
  408: "Transistor timed out",
  422: "Transistor rejected the data",
  429: "Transistor's rate limit (10 requests per 10 seconds) was reached",
};

function httpError(
  response: Response<string>,
  method: string,
  path: string,
  apiKey: string,
  details: { retryable: boolean; retryAfterMs?: number },
): TransistorError {
  const status = response.statusCode;
  const meaning = STATUS_MEANINGS[status] ?? (status >= 500 ? "Transistor had an error" : "");
  const said = describeBody(response.body, [apiKey]);
  const message = `Transistor answered HTTP ${status}${meaning ? ` (${meaning})` : ""} to ${method} ${pathOnly(path)}${said ? `: ${said}` : ""}`;
  return new TransistorError(message, { status, ...details });
}

/** `errors[].title`/`detail`, else `message`: JSON:API errors as Transistor's clients see them. */
export function describeBody(body: string, secrets: readonly string[]): string {
  let json: unknown;
  try {
    json = JSON.parse(body);
  } catch {
    return "";
  }
  const parsed = ErrorBodySchema.safeParse(json);
  if (!parsed.success) return "";
  const fromErrors = (parsed.data.errors ?? [])
    .map(({ title, detail }) =>
      [title, detail].filter((part): part is string => Boolean(part)).join(": "),
    )
    .filter(Boolean);
  const text =
    fromErrors.length > 0
      ? fromErrors.join("; ")
      : (parsed.data.message ?? parsed.data.error ?? "");
  return redact(text, secrets).slice(0, 500);
}

function storageMessage(body: string): string {
  // S3 answers XML: <Code>…</Code><Message>…</Message>.
  const code = /<Code>([^<]{1,100})<\/Code>/.exec(body)?.[1];
  const message = /<Message>([^<]{1,300})<\/Message>/.exec(body)?.[1];
  const said = [code, message].filter(Boolean).join(": ");
  return said ? ` (${said})` : "";
}

/** Query strings never reach messages: a signed or searched URL is nobody's business. */
function pathOnly(path: string): string {
  return path.split("?")[0] ?? path;
}

function headerValue(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

/** Ids and slugs in a path: no `/`, `..` or query characters. */
function pathId(id: string): string {
  if (!/^[A-Za-z0-9_-]{1,128}$/.test(id)) {
    throw new TypeError(`not a Transistor id: ${JSON.stringify(id.slice(0, 80))}`);
  }
  return id;
}
