import { randomBytes } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import got, { type Method, RequestError, type Response } from "got";
import type { Logger } from "pino";
import { z } from "zod";
import packageJson from "../../../package.json" with { type: "json" };
import { parseRetryAfter, redact } from "../ittybit/errors.ts";

// YouTube Data API v3, transport only: channels.list, the resumable videos.insert protocol
// (session start, status query, chunk PUTs) and captions.insert. Upload chunks are never retried
// here: after a failed chunk the job asks the server what it holds (queryUpload) and resumes
// there, which a blind retry would get wrong.

export const DEFAULT_YOUTUBE_API_URL = "https://www.googleapis.com/youtube/v3";
export const DEFAULT_YOUTUBE_UPLOAD_URL = "https://www.googleapis.com/upload/youtube/v3";

/** Every chunk but the last must be a multiple of this many bytes. */
export const YOUTUBE_CHUNK_MULTIPLE = 256 * 1024;

export interface YouTubeVideoMetadata {
  title: string;
  description: string;
  privacyStatus: "public" | "private" | "unlisted";
  /** ISO 8601; YouTube only takes it with privacyStatus "private". */
  publishAt?: string;
  categoryId?: string;
  tags?: string[];
  madeForKids?: boolean;
}

export type UploadState = { done: true; videoId: string } | { done: false; offset: number };

export interface YouTubeClient {
  /** The channel the token belongs to (`channels.list?part=snippet&mine=true`). */
  channel(accessToken: string): Promise<{ id: string; title: string }>;
  /** Starts a resumable upload session; returns the session URI (persist it before sending bytes). */
  startUpload(
    accessToken: string,
    p: { metadata: YouTubeVideoMetadata; bytes: number; contentType: string },
  ): Promise<string>;
  /**
   * Status query (`Content-Range: bytes *\/total`): done, or the next byte to send (0 when the
   * server holds nothing). Throws YouTubeSessionExpiredError on 404/410.
   */
  queryUpload(accessToken: string, sessionUri: string, total: number): Promise<UploadState>;
  /**
   * PUTs one chunk [start, start + chunk.length) with Content-Range; returns done or the
   * server's next offset (from its Range header, not assumed). Not retried.
   */
  uploadChunk(
    accessToken: string,
    sessionUri: string,
    p: {
      start: number;
      chunk: Buffer;
      total: number;
      contentType: string;
      /** Stops the PUT (a stopping worker hands its job back); rejects with its reason. */
      signal?: AbortSignal;
    },
  ): Promise<UploadState>;
  /**
   * captions.insert (multipart/related); throws YouTubeError with reason "captionExists" on 409 —
   * also what a retry meets when the first attempt landed but its answer was lost.
   */
  insertCaption(
    accessToken: string,
    p: { videoId: string; language: string; name: string; body: string; contentType: string },
  ): Promise<{ id: string }>;
}

export interface YouTubeClientOptions {
  apiUrl?: string;
  uploadUrl?: string;
  logger?: Logger;
  /** Retries of transient failures for calls other than chunk PUTs. */
  transientRetries?: number;
  transientDelayMs?: number;
  timeoutMs?: number;
  /** Per chunk PUT. */
  chunkTimeoutMs?: number;
}

/**
 * - `quota`: the project's daily quota (or upload bucket) is spent — wait for midnight Pacific;
 * - `rateLimit`: too many requests right now — back off and retry;
 * - `auth`: the access token was refused — refresh it and retry once;
 * - `transient`: 5xx or a lost connection — retry with backoff (uploads: query and resume);
 * - `fatal`: YouTube will answer the same again (bad metadata, upload limit, forbidden, …).
 */
export type YouTubeErrorKind = "quota" | "rateLimit" | "auth" | "transient" | "fatal";

export class YouTubeError extends Error {
  override readonly name = "YouTubeError";
  readonly status: number | null;
  /** `error.errors[0].reason`, e.g. quotaExceeded, uploadLimitExceeded, captionExists. */
  readonly reason: string | null;
  readonly kind: YouTubeErrorKind;
  readonly retryAfterMs: number | null;

  constructor(
    message: string,
    details: {
      status: number | null;
      reason: string | null;
      kind: YouTubeErrorKind;
      retryAfterMs?: number | null;
    },
  ) {
    super(message);
    this.status = details.status;
    this.reason = details.reason;
    this.kind = details.kind;
    this.retryAfterMs = details.retryAfterMs ?? null;
  }
}

/** The upload session is gone (404/410): start a new one from byte 0. */
export class YouTubeSessionExpiredError extends Error {
  override readonly name = "YouTubeSessionExpiredError";
}

const ErrorBodySchema = z.object({
  error: z.looseObject({
    code: z.number().optional().catch(undefined),
    message: z.string().optional().catch(undefined),
    status: z.string().optional().catch(undefined),
    errors: z
      .array(
        z.looseObject({
          reason: z.string().optional().catch(undefined),
          domain: z.string().optional().catch(undefined),
          message: z.string().optional().catch(undefined),
        }),
      )
      .optional()
      .catch(undefined),
  }),
});

const VideoSchema = z.looseObject({ id: z.string().min(1) });
const CaptionSchema = z.looseObject({ id: z.string().min(1) });
const ChannelListSchema = z.looseObject({
  items: z
    .array(
      z.looseObject({
        id: z.string(),
        snippet: z.looseObject({ title: z.string().nullish() }).optional(),
      }),
    )
    .optional(),
});

export function createYouTubeClient(options: YouTubeClientOptions = {}): YouTubeClient {
  const apiUrl = (options.apiUrl ?? DEFAULT_YOUTUBE_API_URL).replace(/\/+$/, "");
  const uploadUrl = (options.uploadUrl ?? DEFAULT_YOUTUBE_UPLOAD_URL).replace(/\/+$/, "");
  const uploadOrigin = new URL(uploadUrl).origin;
  const logger = options.logger?.child({ component: "youtube" });
  const transientRetries = options.transientRetries ?? 2;
  const transientDelayMs = options.transientDelayMs ?? 500;
  const timeoutMs = options.timeoutMs ?? 30_000;
  const chunkTimeoutMs = options.chunkTimeoutMs ?? 10 * 60_000;

  async function send(
    operation: string,
    accessToken: string,
    init: {
      method: Method;
      url: string;
      headers?: Record<string, string>;
      body?: Buffer | string;
      retries: number;
      timeoutMs?: number;
      signal?: AbortSignal;
    },
  ): Promise<Response<string>> {
    let attempt = 0;
    for (;;) {
      try {
        const response = await got(init.url, {
          method: init.method,
          headers: {
            authorization: `Bearer ${accessToken}`,
            "user-agent": `Podflow/${packageJson.version} (podcast automation)`,
            ...init.headers,
          },
          ...(init.body !== undefined ? { body: init.body } : {}),
          responseType: "text",
          throwHttpErrors: false,
          // 308 is "Resume Incomplete" here, never a redirect.
          followRedirect: false,
          retry: { limit: 0 },
          timeout: { request: init.timeoutMs ?? timeoutMs },
          ...(init.signal ? { signal: init.signal } : {}),
        });
        if (response.statusCode >= 500 && attempt < init.retries) {
          attempt += 1;
          logger?.warn({ operation, status: response.statusCode, attempt }, "retrying YouTube");
          await sleep(transientDelayMs * 2 ** (attempt - 1));
          continue;
        }
        return response;
      } catch (error) {
        if (init.signal?.aborted) throw init.signal.reason ?? error;
        if (!(error instanceof RequestError)) throw error;
        if (attempt < init.retries) {
          attempt += 1;
          logger?.warn({ operation, code: error.code, attempt }, "retrying YouTube");
          await sleep(transientDelayMs * 2 ** (attempt - 1));
          continue;
        }
        throw new YouTubeError(
          `YouTube ${operation} failed: no answer (${error.code ?? "network error"})`,
          { status: null, reason: error.code ?? null, kind: "transient" },
        );
      }
    }
  }

  function sessionUrl(sessionUri: string): string {
    // The bearer token goes only where uploads go, whatever a stored session URI says.
    const url = new URL(sessionUri);
    if (url.origin !== uploadOrigin) {
      throw new TypeError(`not a YouTube upload session URI (origin ${url.origin})`);
    }
    return url.toString();
  }

  function uploadState(operation: string, response: Response<string>, token: string): UploadState {
    const status = response.statusCode;
    if (status === 200 || status === 201) {
      const video = VideoSchema.safeParse(parseJson(response.body));
      if (!video.success) {
        throw new YouTubeError(
          `YouTube ${operation}: the finished upload came without a video id`,
          {
            status,
            reason: null,
            kind: "transient",
          },
        );
      }
      return { done: true, videoId: video.data.id };
    }
    if (status === 308) return { done: false, offset: nextOffset(response.headers.range) };
    if (status === 404 || status === 410) {
      throw new YouTubeSessionExpiredError(
        `YouTube ${operation}: the upload session expired (HTTP ${status}); start a new one`,
      );
    }
    throw toYouTubeError(operation, response, [token]);
  }

  return {
    async channel(accessToken) {
      const url = `${apiUrl}/channels?part=snippet&mine=true`;
      const response = await send("channels.list", accessToken, {
        method: "GET",
        url,
        headers: { accept: "application/json" },
        retries: transientRetries,
      });
      if (response.statusCode !== 200)
        throw toYouTubeError("channels.list", response, [accessToken]);
      const parsed = ChannelListSchema.safeParse(parseJson(response.body));
      const item = parsed.success ? parsed.data.items?.[0] : undefined;
      if (!item) {
        throw new YouTubeError(
          "YouTube channels.list: this Google account has no YouTube channel; create one first",
          { status: 200, reason: "youtubeSignupRequired", kind: "fatal" },
        );
      }
      return { id: item.id, title: item.snippet?.title ?? "" };
    },

    async startUpload(accessToken, { metadata, bytes, contentType }) {
      const parts = "snippet,status";
      const url = `${uploadUrl}/videos?uploadType=resumable&part=${encodeURIComponent(parts)}`;
      const body = JSON.stringify(videoResource(metadata));
      const response = await send("videos.insert", accessToken, {
        method: "POST",
        url,
        headers: {
          "content-type": "application/json; charset=UTF-8",
          "x-upload-content-length": String(bytes),
          "x-upload-content-type": contentType,
        },
        body,
        retries: transientRetries,
      });
      if (response.statusCode !== 200 && response.statusCode !== 201) {
        throw toYouTubeError("videos.insert", response, [accessToken]);
      }
      const location = response.headers.location;
      if (!location) {
        throw new YouTubeError("YouTube videos.insert: no upload session URI in the answer", {
          status: response.statusCode,
          reason: null,
          kind: "transient",
        });
      }
      return new URL(location, uploadUrl).toString();
    },

    async queryUpload(accessToken, sessionUri, total) {
      const response = await send("upload status query", accessToken, {
        method: "PUT",
        url: sessionUrl(sessionUri),
        headers: { "content-range": `bytes */${total}`, "content-length": "0" },
        retries: transientRetries,
      });
      return uploadState("upload status query", response, accessToken);
    },

    async uploadChunk(accessToken, sessionUri, { start, chunk, total, contentType, signal }) {
      if (chunk.length === 0 || start + chunk.length > total) {
        throw new RangeError(`chunk [${start}, ${start + chunk.length}) outside 0..${total}`);
      }
      const end = start + chunk.length - 1;
      const response = await send("upload chunk", accessToken, {
        method: "PUT",
        url: sessionUrl(sessionUri),
        headers: {
          "content-type": contentType,
          "content-range": `bytes ${start}-${end}/${total}`,
        },
        body: chunk,
        retries: 0,
        timeoutMs: chunkTimeoutMs,
        ...(signal ? { signal } : {}),
      });
      return uploadState("upload chunk", response, accessToken);
    },

    async insertCaption(accessToken, { videoId, language, name, body, contentType }) {
      const boundary = `podflow_${randomBytes(12).toString("hex")}`;
      const metadata = JSON.stringify({ snippet: { videoId, language, name, isDraft: false } });
      const multipart = Buffer.concat([
        Buffer.from(
          `--${boundary}\r\nContent-Type: application/json; charset=UTF-8\r\n\r\n${metadata}\r\n` +
            `--${boundary}\r\nContent-Type: ${contentType}\r\n\r\n`,
        ),
        Buffer.from(body, "utf8"),
        Buffer.from(`\r\n--${boundary}--\r\n`),
      ]);
      const response = await send("captions.insert", accessToken, {
        method: "POST",
        url: `${uploadUrl}/captions?part=snippet&uploadType=multipart`,
        headers: {
          "content-type": `multipart/related; boundary=${boundary}`,
          accept: "application/json",
        },
        body: multipart,
        retries: transientRetries,
      });
      if (response.statusCode !== 200 && response.statusCode !== 201) {
        throw toYouTubeError("captions.insert", response, [accessToken]);
      }
      const caption = CaptionSchema.safeParse(parseJson(response.body));
      if (!caption.success) {
        throw new YouTubeError("YouTube captions.insert: the answer had no caption id", {
          status: response.statusCode,
          reason: null,
          kind: "fatal",
        });
      }
      return { id: caption.data.id };
    },
  };
}

function videoResource(metadata: YouTubeVideoMetadata) {
  return {
    snippet: {
      title: metadata.title,
      description: metadata.description,
      ...(metadata.tags?.length ? { tags: metadata.tags } : {}),
      ...(metadata.categoryId ? { categoryId: metadata.categoryId } : {}),
    },
    status: {
      privacyStatus: metadata.privacyStatus,
      ...(metadata.publishAt ? { publishAt: metadata.publishAt } : {}),
      selfDeclaredMadeForKids: metadata.madeForKids ?? false,
    },
  };
}

/** `Range: bytes=0-N` → N + 1; no Range → 0 (the server holds nothing). */
export function nextOffset(range: string | undefined): number {
  if (!range) return 0;
  const match = /bytes=\d+-(\d+)/.exec(range);
  return match?.[1] === undefined ? 0 : Number(match[1]) + 1;
}

const RATE_LIMIT_REASONS = new Set(["rateLimitExceeded", "userRateLimitExceeded"]);
const QUOTA_REASONS = new Set(["quotaExceeded", "dailyLimitExceeded"]);

/** Classifies a Google JSON error answer by status and `error.errors[0].reason`. */
export function classifyYouTubeError(
  status: number,
  reason: string | null,
  message: string,
): YouTubeErrorKind {
  if (reason && QUOTA_REASONS.has(reason)) return "quota";
  // The per-day upload bucket answers 429 rateLimitExceeded "… 'Video Uploads per day' …".
  if (status === 429 && /per day/i.test(message)) return "quota";
  if (reason && RATE_LIMIT_REASONS.has(reason)) return "rateLimit";
  if (status === 429) return "rateLimit";
  if (status === 401) return "auth";
  if (status >= 500 || status === 408) return "transient";
  return "fatal";
}

function toYouTubeError(
  operation: string,
  response: Response<string>,
  secrets: readonly string[],
): YouTubeError {
  const status = response.statusCode;
  const parsed = ErrorBodySchema.safeParse(parseJson(response.body));
  const first = parsed.success ? parsed.data.error.errors?.[0] : undefined;
  const reason = first?.reason ?? null;
  const rawMessage =
    (parsed.success ? parsed.data.error.message : undefined) ?? first?.message ?? "";
  // Google's messages carry HTML links ("exceeded your <a href=…>quota</a>").
  const message = redact(rawMessage.replace(/<[^>]*>/g, ""), secrets).slice(0, 500);
  const kind = classifyYouTubeError(status, reason, message);
  const retryAfter = response.headers["retry-after"];
  const advice = ADVICE[kind];
  return new YouTubeError(
    `YouTube ${operation} failed: HTTP ${status}${reason ? ` ${reason}` : ""}${message ? `: ${message}` : ""}${advice ? ` (${advice})` : ""}`,
    {
      status,
      reason,
      kind,
      retryAfterMs: parseRetryAfter(Array.isArray(retryAfter) ? retryAfter[0] : retryAfter) ?? null,
    },
  );
}

const ADVICE: Record<YouTubeErrorKind, string> = {
  quota: "the daily YouTube API quota is used up; it resets at midnight Pacific time",
  rateLimit: "too many requests; retrying later",
  auth: "the access token was refused",
  transient: "",
  fatal: "",
};

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
