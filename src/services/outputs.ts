import got, { type Got, RequestError } from "got";
import type { Logger } from "pino";
import { z } from "zod";
import type { Chapter, TranscriptSegment } from "../entities/episode.entity.ts";
import {
  loggableUrl,
  OUTPUT_HOST_REFUSED,
  type OutputHostPolicy,
} from "../security/output-hosts.ts";
import { PODFLOW_VERSION } from "../version.ts";

/** Transcripts and chapter files are text; anything this large is not one. */
const MAX_OUTPUT_BYTES = 25 * 1024 * 1024;

/** An output that could not be fetched or read; its message is the reason shown to producers. */
export class OutputError extends Error {
  override name = "OutputError";
}

export interface OutputFetcher {
  /**
   * Downloads an output file: bounded in size and time, retried on transient failures. A
   * permanent failure (too large, refused) is an OutputError naming `what`; a transient one that
   * outlasted the retries is thrown as it is, for the job to try again later. An aborted
   * `signal` (the job handed back on stop) ends the download with the signal's reason.
   */
  fetch(
    url: string,
    what: string,
    signal?: AbortSignal,
  ): Promise<{ body: Buffer; contentType: string | null }>;
  /**
   * `length` bytes of a media output from `start`, by a Range request (for uploading a large
   * file elsewhere piece by piece, never whole in memory). Errors as for `fetch`.
   */
  range(
    url: string,
    what: string,
    start: number,
    length: number,
    signal?: AbortSignal,
  ): Promise<Buffer>;
  /** The file's size from a HEAD request's Content-Length; OutputError when it tells none. */
  contentLength(url: string, what: string): Promise<number>;
}

/**
 * Output files live on Ittybit's storage behind their own (signed) URLs, so this is a got
 * instance of its own, and it never sends the API key. A URL comes from a webhook or an answer
 * of Ittybit's: it is fetched only from the allowed hosts, and each redirect is checked again
 * (src/security/output-hosts.ts). Producers see a generic reason; the log has the detail, with
 * the URL's query (its signature) left out.
 */
export function createOutputFetcher(options: {
  logger: Logger;
  /** Where outputs may come from: PODFLOW_OUTPUT_HOSTS. */
  hosts: OutputHostPolicy;
  timeoutMs?: number;
  maxBytes?: number;
  retryLimit?: number;
}): OutputFetcher {
  const { hosts } = options;
  const maxBytes = options.maxBytes ?? MAX_OUTPUT_BYTES;
  const http: Got = got.extend({
    responseType: "buffer",
    timeout: { request: options.timeoutMs ?? 30_000 },
    headers: { "user-agent": `Podflow/${PODFLOW_VERSION}` },
    dnsLookup: hosts.lookup,
    retry: {
      limit: options.retryLimit ?? 3,
      methods: ["GET"],
      statusCodes: [408, 429, 500, 502, 503, 504],
      backoffLimit: 5_000,
    },
    hooks: {
      beforeRedirect: [
        (redirected) => {
          const target = redirected.url ? new URL(redirected.url.toString()) : null;
          const refusal = target ? hosts.refusal(target) : "a redirect without a target";
          if (refusal) {
            throw Object.assign(new Error(`redirect refused: ${refusal}`), {
              code: OUTPUT_HOST_REFUSED,
            });
          }
        },
      ],
      beforeRetry: [
        (error, retryCount) =>
          options.logger.warn(
            { url: loggableUrl(error.options.url ?? ""), retryCount, err: error.message },
            "retrying an output download",
          ),
      ],
    },
  });
  /** Throws, and logs why, when the URL is not one outputs may be fetched from. */
  function refuseUnlisted(url: string, what: string): void {
    const parsed = URL.canParse(url) ? new URL(url) : null;
    const refusal = parsed ? hosts.refusal(parsed) : "not a URL";
    if (!refusal) return;
    options.logger.warn(
      { url: parsed ? loggableUrl(parsed) : "(not a URL)", refusal, what },
      "refused to download an output",
    );
    throw new OutputError(`the ${what} could not be downloaded`);
  }

  return {
    async contentLength(url, what) {
      refuseUnlisted(url, what);
      let length: string | undefined;
      try {
        length = (await http.head(url, { retry: { methods: ["HEAD"] } })).headers["content-length"];
      } catch (error) {
        const status = error instanceof RequestError ? error.response?.statusCode : undefined;
        throw new OutputError(
          `the ${what} could not be measured (${status ? `HTTP ${status}` : (error as Error).message})`,
        );
      }
      const bytes = Number(length);
      if (!length || !Number.isSafeInteger(bytes) || bytes <= 0) {
        throw new OutputError(`the ${what}'s server did not tell its size`);
      }
      return bytes;
    },
    async range(url, what, start, length, signal) {
      if (length <= 0) return Buffer.alloc(0);
      const { body, status } = await download(url, what, {
        signal,
        limit: length,
        headers: { range: `bytes=${start}-${start + length - 1}` },
      });
      // A server that ignores Range sends the whole file: not what was asked for.
      if (status !== 206 && !(start === 0 && body.length <= length)) {
        throw new OutputError(`the ${what}'s server does not answer range requests`);
      }
      return body;
    },
    fetch: (url, what, signal) => download(url, what, { signal, limit: maxBytes }),
  };

  async function download(
    url: string,
    what: string,
    wanted: { signal?: AbortSignal; limit: number; headers?: Record<string, string> },
  ): Promise<{ body: Buffer; contentType: string | null; status: number }> {
    {
      const { signal } = wanted;
      refuseUnlisted(url, what);
      const tooLarge = new AbortController();
      const request = http.get(url, {
        responseType: "buffer",
        headers: wanted.headers,
        signal: signal ? AbortSignal.any([tooLarge.signal, signal]) : tooLarge.signal,
      });
      request.on("downloadProgress", (progress) => {
        if (progress.transferred > wanted.limit || (progress.total ?? 0) > wanted.limit) {
          tooLarge.abort();
        }
      });
      try {
        const response = await request;
        return {
          body: Buffer.from(response.body),
          contentType: response.headers["content-type"] ?? null,
          status: response.statusCode,
        };
      } catch (error) {
        if (signal?.aborted) throw signal.reason ?? error;
        if (tooLarge.signal.aborted) {
          throw new OutputError(`the ${what} is larger than ${wanted.limit} bytes`);
        }
        const code = (error as { code?: string }).code;
        const status = error instanceof RequestError ? error.response?.statusCode : undefined;
        // The detail (an address, a resolver's answer) is for the operator, not for producers.
        options.logger.warn(
          { url: loggableUrl(url), what, status, code, err: (error as Error).message },
          "output download failed",
        );
        if (code === OUTPUT_HOST_REFUSED) {
          throw new OutputError(`the ${what} could not be downloaded`);
        }
        if (status && status >= 400 && status < 500 && status !== 408 && status !== 429) {
          throw new OutputError(`the ${what} could not be downloaded (HTTP ${status})`);
        }
        throw new Error(
          `the ${what} could not be downloaded (${status ? `HTTP ${status}` : "no answer"})`,
        );
      }
    }
  }
}

// Speech JSON: 2025-08-20 has `language`, the later shape `languages[]`; both
// have `text` (a list of passages) and `timeline` (timed segments, speakers as 0-based numbers).
const SpeechSchema = z.looseObject({
  text: z.union([z.array(z.string()), z.string()]).nullish(),
  timeline: z
    .array(
      z.looseObject({
        start: z.number(),
        end: z.number(),
        text: z.string().nullish(),
        speaker: z.union([z.number(), z.string()]).nullish(),
      }),
    )
    .nullish(),
});

export function parseTranscript(body: Buffer): { text: string; segments: TranscriptSegment[] } {
  const parsed = SpeechSchema.safeParse(parseJson(body, "transcript"));
  if (!parsed.success) throw new OutputError("the transcript is not speech JSON Podflow can read");
  const segments = (parsed.data.timeline ?? []).map((segment) => ({
    start: segment.start,
    end: segment.end,
    text: (segment.text ?? "").trim(),
    speaker: segment.speaker == null ? null : String(segment.speaker),
  }));
  const text = Array.isArray(parsed.data.text)
    ? parsed.data.text.join("\n")
    : (parsed.data.text ?? segments.map((segment) => segment.text).join("\n"));
  if (!text.trim() && segments.length === 0) throw new OutputError("the transcript is empty");
  return { text, segments };
}

// Chapters: JSON `{chapters: [{start, end, title}]}`, the later outline
// `{timeline: [{title, start, end}]}`, or a WebVTT track whose cues are the titles.
const ChapterListSchema = z.array(
  z.looseObject({ start: z.number(), end: z.number().nullish(), title: z.string() }),
);
const ChaptersJsonSchema = z.looseObject({
  chapters: ChapterListSchema.optional(),
  timeline: ChapterListSchema.optional(),
});

export function parseChapters(body: Buffer, contentType: string | null): Chapter[] {
  const text = body.toString("utf8").replace(/^\uFEFF/, "");
  if (contentType?.includes("vtt") || text.trimStart().startsWith("WEBVTT"))
    return parseVttChapters(text);
  const parsed = ChaptersJsonSchema.safeParse(parseJson(body, "chapters file"));
  const list = parsed.success ? (parsed.data.chapters ?? parsed.data.timeline) : undefined;
  if (!list) throw new OutputError("the chapters file is neither chapter JSON nor WebVTT");
  return list
    .map((chapter) => ({
      start: chapter.start,
      end: chapter.end ?? null,
      title: chapter.title.trim(),
    }))
    .sort((a, b) => a.start - b.start);
}

const CUE_TIMING = /^((?:\d+:)?\d{1,2}:\d{2}[.,]\d{3})\s+-->\s+((?:\d+:)?\d{1,2}:\d{2}[.,]\d{3})/;

function parseVttChapters(text: string): Chapter[] {
  const chapters: Chapter[] = [];
  for (const block of text.split(/\r?\n\r?\n/)) {
    const lines = block.split(/\r?\n/);
    const timingIndex = lines.findIndex((line) => CUE_TIMING.test(line));
    if (timingIndex < 0) continue;
    const [, start, end] = CUE_TIMING.exec(lines[timingIndex] ?? "") ?? [];
    const title = lines
      .slice(timingIndex + 1)
      .join(" ")
      .trim();
    if (start && end && title)
      chapters.push({ start: vttSeconds(start), end: vttSeconds(end), title });
  }
  if (chapters.length === 0) throw new OutputError("the WebVTT chapters file has no cues");
  return chapters;
}

function vttSeconds(timestamp: string): number {
  const parts = timestamp.replace(",", ".").split(":").map(Number);
  return parts.reduce((total, part) => total * 60 + part, 0);
}

function parseJson(body: Buffer, what: string): unknown {
  try {
    return JSON.parse(body.toString("utf8"));
  } catch {
    throw new OutputError(`the ${what} is not valid JSON`);
  }
}
