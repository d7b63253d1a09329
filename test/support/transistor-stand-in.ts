import { randomUUID } from "node:crypto";
import type { FailFault, FaultTarget } from "./ittybit-stand-in-faults.ts";
import { type RecordedRequest, type StandInAnswer, startStandInServer } from "./stand-in-server.ts";

// An in-memory Transistor.fm on 127.0.0.1 for tests: the `x-api-key` check, the 10 requests per
// 10 seconds limit with its 10-second block, JSON:API documents with string ids, signed upload
// URLs (served here) that check Content-Type and expiry, draft episodes whose audio processes
// after a few polls, publishing with a validated status, paginated show lists and episode
// searches. Errors look like `{"errors": [{"title": …}]}`.

export interface TransistorStandInOptions {
  apiKey: string;
  userName?: string;
  /** Window and block of the rate limit; Transistor's are 10 requests / 10 s and a 10 s block. */
  rateLimit?: { limit?: number; windowMs?: number; blockMs?: number };
  /** Retry-After seconds on 429; unset: no header (Transistor documents none). */
  retryAfterSeconds?: number | null;
  /** `GET /v1/episodes/:id` answers still processing this many times after a create. */
  processingPolls?: number;
  /** Lifetime of a signed upload URL, seconds. */
  uploadExpiresIn?: number;
  /** The content type authorize_upload hands out (Transistor: `audio/mpeg` for .mp3). */
  uploadContentType?: string;
  /** Items per page when the client does not ask. */
  defaultPageSize?: number;
  /** Most items one page holds whatever the client asks (reportedly 100 at Transistor). */
  maxPageSize?: number;
}

export interface StandInShow {
  id: string;
  apiKey: string;
  attributes: { title: string; slug: string; time_zone: string | null; [key: string]: unknown };
}

export interface StandInEpisode {
  id: string;
  showId: string;
  /** The `episode` fields as the client sent them on create. */
  created: Record<string, unknown>;
  attributes: Record<string, unknown>;
  pollsLeft: number;
}

export interface StandInUpload {
  key: string;
  filename: string;
  contentType: string;
  expiresAt: number;
  audioUrl: string;
  uploadUrl: string;
  /** What the last successful PUT stored. */
  body: Buffer | null;
  puts: number;
}

const STATUSES = ["draft", "published", "scheduled"] as const;
const TYPES = ["full", "trailer", "bonus"];

export async function startTransistorStandIn(options: TransistorStandInOptions) {
  const limit = options.rateLimit?.limit ?? 10;
  const windowMs = options.rateLimit?.windowMs ?? 10_000;
  const blockMs = options.rateLimit?.blockMs ?? 10_000;
  let retryAfterSeconds = options.retryAfterSeconds ?? null;
  const processingPolls = options.processingPolls ?? 2;
  const keys = new Map<string, { name: string }>([
    [options.apiKey, { name: options.userName ?? "Test Producer" }],
  ]);
  const shows = new Map<string, StandInShow>();
  const episodes = new Map<string, StandInEpisode>();
  const uploads = new Map<string, StandInUpload>();
  const windows = new Map<string, { times: number[]; blockedUntil: number }>();
  let nextId = 1000;
  let rateLimitedCount = 0;
  let uploadExpiresIn = options.uploadExpiresIn ?? 600;

  const server = await startStandInServer(handle, (status) => ({
    errors: [{ title: status >= 500 ? "Internal Server Error" : `HTTP ${status}` }],
  }));
  const url = server.url;

  function handle(request: RecordedRequest): StandInAnswer {
    // A PUT cut short stores nothing (S3 keeps no partial objects), nor does anything else.
    if (request.aborted) return { drop: true };
    if (request.path.startsWith("/_upload/")) return upload(request);
    if (request.path !== "/v1" && !request.path.startsWith("/v1/")) return fail(404, "Not Found");
    const key = header(request, "x-api-key");
    if (!key || !keys.has(key)) return fail(401, "Unauthorized", "Invalid API key");
    const limited = rateLimit(key);
    if (limited) return limited;
    return route(request, key);
  }

  function rateLimit(key: string): StandInAnswer | null {
    const now = Date.now();
    const window = windows.get(key) ?? { times: [], blockedUntil: 0 };
    windows.set(key, window);
    const retryHeaders: Record<string, string> =
      retryAfterSeconds === null ? {} : { "retry-after": String(retryAfterSeconds) };
    if (now < window.blockedUntil) {
      rateLimitedCount += 1;
      return { ...fail(429, "Too Many Requests"), headers: retryHeaders };
    }
    window.times = window.times.filter((time) => time > now - windowMs);
    window.times.push(now);
    if (window.times.length > limit) {
      window.blockedUntil = now + blockMs;
      window.times = [];
      rateLimitedCount += 1;
      return { ...fail(429, "Too Many Requests"), headers: retryHeaders };
    }
    return null;
  }

  function route(request: RecordedRequest, key: string): StandInAnswer {
    const { method, path } = request;
    if (path === "/v1" && method === "GET") {
      return ok({
        id: "1",
        type: "user",
        attributes: {
          name: keys.get(key)?.name,
          time_zone: "UTC",
          created_at: stamp(),
          updated_at: stamp(),
        },
      });
    }
    if (path === "/v1/shows" && method === "GET") {
      const mine = [...shows.values()].filter((show) => show.apiKey === key);
      return page(request, mine.map(showResource));
    }
    const showMatch = /^\/v1\/shows\/([^/]+)$/.exec(path);
    if (showMatch && method === "GET") {
      const show = findShow(decodeURIComponent(showMatch[1] ?? ""), key);
      return show ? ok(showResource(show)) : fail(404, "Not Found", "Show not found");
    }
    if (path === "/v1/episodes/authorize_upload" && method === "GET") return authorize(request);
    if (path === "/v1/episodes" && method === "POST") return createEpisode(request, key);
    if (path === "/v1/episodes" && method === "GET") return listEpisodes(request, key);
    const publishMatch = /^\/v1\/episodes\/([^/]+)\/publish$/.exec(path);
    if (publishMatch && method === "PATCH") {
      return publish(request, key, decodeURIComponent(publishMatch[1] ?? ""));
    }
    const episodeMatch = /^\/v1\/episodes\/([^/]+)$/.exec(path);
    if (episodeMatch && method === "GET") {
      const episode = ownEpisode(decodeURIComponent(episodeMatch[1] ?? ""), key);
      if (!episode) return fail(404, "Not Found", "Episode not found");
      // `processingPolls` answers still say processing, the next ones are done.
      if (episode.pollsLeft > 0) episode.pollsLeft -= 1;
      else episode.attributes.audio_processing = false;
      return ok(episodeResource(episode));
    }
    return fail(404, "Not Found");
  }

  function authorize(request: RecordedRequest): StandInAnswer {
    const filename = request.query.get("filename");
    if (!filename) return fail(422, "Unprocessable Entity", "filename is required");
    const key = randomUUID();
    const expiresAt = Date.now() + uploadExpiresIn * 1000;
    const extension = /\.[A-Za-z0-9]+$/.exec(filename)?.[0] ?? "";
    const contentType = options.uploadContentType ?? "audio/mpeg";
    const entry: StandInUpload = {
      key,
      filename,
      contentType,
      expiresAt,
      audioUrl: `${url}/_files/${key}${extension}`,
      uploadUrl: `${url}/_upload/${key}${extension}?X-Amz-Expires=${uploadExpiresIn}&X-Amz-Signature=${randomUUID()}`,
      body: null,
      puts: 0,
    };
    uploads.set(key, entry);
    return ok({
      id: key,
      type: "audio_upload",
      attributes: {
        upload_url: entry.uploadUrl,
        content_type: contentType,
        expires_in: uploadExpiresIn,
        audio_url: entry.audioUrl,
      },
    });
  }

  function upload(request: RecordedRequest): StandInAnswer {
    const key = request.path.slice("/_upload/".length).replace(/\.[A-Za-z0-9]+$/, "");
    const entry = uploads.get(key);
    const s3Error = (code: string, message: string): StandInAnswer => ({
      status: 403,
      text: `<?xml version="1.0" encoding="UTF-8"?><Error><Code>${code}</Code><Message>${message}</Message></Error>`,
      headers: { "content-type": "application/xml" },
    });
    if (request.method !== "PUT") return { status: 405, text: "Method Not Allowed" };
    if (!entry || request.query.get("X-Amz-Signature") === null) {
      return s3Error("AccessDenied", "Access Denied");
    }
    if (Date.now() > entry.expiresAt) return s3Error("AccessDenied", "Request has expired");
    if (header(request, "content-type") !== entry.contentType) {
      return s3Error(
        "SignatureDoesNotMatch",
        "The request signature we calculated does not match the signature you provided.",
      );
    }
    entry.puts += 1;
    entry.body = request.rawBody;
    return { status: 200, text: "" };
  }

  function createEpisode(request: RecordedRequest, key: string): StandInAnswer {
    const fields = episodeFields(request);
    if (!fields) return fail(400, "Bad Request", "episode parameters missing");
    const showId =
      typeof fields.show_id === "string" ? fields.show_id : String(fields.show_id ?? "");
    const show = findShow(showId, key);
    if (!show) return fail(404, "Not Found", "Show not found");
    if (fields.type !== undefined && !TYPES.includes(String(fields.type))) {
      return fail(422, "Unprocessable Entity", "Type is not included in the list");
    }
    const audioUrl = typeof fields.audio_url === "string" ? fields.audio_url : null;
    const upload = audioUrl ? [...uploads.values()].find((u) => u.audioUrl === audioUrl) : null;
    if (audioUrl?.startsWith(`${url}/_files/`) && !upload?.body) {
      return fail(422, "Unprocessable Entity", "Audio file could not be found");
    }
    const id = String(nextId++);
    const slug = randomUUID().slice(0, 8);
    const episode: StandInEpisode = {
      id,
      showId: show.id,
      created: fields,
      pollsLeft: audioUrl ? processingPolls : 0,
      attributes: {
        title: fields.title ?? "",
        summary: fields.summary ?? null,
        description: fields.description ?? null,
        number: fields.number ?? null,
        season: fields.season ?? null,
        type: fields.type ?? "full",
        image_url: fields.image_url ?? null,
        status: "draft",
        published_at: null,
        duration: null,
        audio_processing: Boolean(audioUrl) && processingPolls > 0,
        media_url: audioUrl ? `https://media.transistor.example/${slug}/${id}.mp3` : null,
        share_url: `https://share.transistor.example/s/${slug}`,
        transcript_url: null,
        transcripts: [],
        created_at: stamp(),
        updated_at: stamp(),
      },
    };
    episodes.set(id, episode);
    return { status: 201, json: { data: episodeResource(episode) } };
  }

  function listEpisodes(request: RecordedRequest, key: string): StandInAnswer {
    const showParam = request.query.get("show_id");
    const show = showParam ? findShow(showParam, key) : null;
    if (showParam && !show) return fail(404, "Not Found", "Show not found");
    const query = request.query.get("query")?.toLowerCase();
    const status = request.query.get("status");
    const matching = [...episodes.values()]
      .filter((episode) => shows.get(episode.showId)?.apiKey === key)
      .filter((episode) => !show || episode.showId === show.id)
      .filter((episode) => !status || episode.attributes.status === status)
      .filter(
        (episode) => !query || String(episode.attributes.title).toLowerCase().includes(query),
      );
    return page(request, matching.map(episodeResource));
  }

  function publish(request: RecordedRequest, key: string, id: string): StandInAnswer {
    const episode = ownEpisode(id, key);
    if (!episode) return fail(404, "Not Found", "Episode not found");
    const fields = episodeFields(request) ?? {};
    const status = fields.status;
    if (!STATUSES.includes(status as (typeof STATUSES)[number])) {
      return fail(422, "Unprocessable Entity", "Status must be published, scheduled or draft");
    }
    const publishedAt = typeof fields.published_at === "string" ? fields.published_at : null;
    if (publishedAt !== null && !/^\d{4}-\d{2}-\d{2} \d{2}:\d{2}(:\d{2})?$/.test(publishedAt)) {
      return fail(422, "Unprocessable Entity", "Published at is not a valid date");
    }
    if (status === "scheduled" && publishedAt === null) {
      return fail(422, "Unprocessable Entity", "Published at is required to schedule");
    }
    episode.attributes.status = status;
    episode.attributes.published_at =
      status === "draft" ? null : publishedAt ? `${publishedAt} ${zoneOf(episode)}` : stamp();
    episode.attributes.updated_at = stamp();
    return ok(episodeResource(episode));
  }

  function zoneOf(episode: StandInEpisode): string {
    return shows.get(episode.showId)?.attributes.time_zone ?? "UTC";
  }

  function findShow(idOrSlug: string, key: string): StandInShow | undefined {
    return [...shows.values()].find(
      (show) => show.apiKey === key && (show.id === idOrSlug || show.attributes.slug === idOrSlug),
    );
  }

  function ownEpisode(id: string, key: string): StandInEpisode | undefined {
    const episode = episodes.get(id);
    return episode && shows.get(episode.showId)?.apiKey === key ? episode : undefined;
  }

  function page(request: RecordedRequest, resources: unknown[]): StandInAnswer {
    const per = Math.max(
      1,
      Math.min(
        options.maxPageSize ?? 100,
        Number(request.query.get("pagination[per]") ?? options.defaultPageSize ?? 10),
      ),
    );
    // Pages count from 1; 0 (the documented default) is the first page too.
    const requested = Number(request.query.get("pagination[page]") ?? 1) || 1;
    const totalPages = Math.max(1, Math.ceil(resources.length / per));
    const data = resources.slice((requested - 1) * per, requested * per);
    return {
      status: 200,
      json: {
        data,
        meta: { currentPage: requested, totalPages, totalCount: resources.length },
      },
    };
  }

  return {
    url,
    /** The API key every request must carry. */
    apiKey: options.apiKey,
    requests: server.requests,
    shows,
    episodes,
    uploads,
    /** How many requests were answered 429. */
    get rateLimitedCount() {
      return rateLimitedCount;
    },

    /** Another user with their own key (and shows). */
    addKey(apiKey: string, name = "Another Producer") {
      keys.set(apiKey, { name });
    },
    addShow(
      show: { title: string; slug?: string; timeZone?: string | null; id?: string },
      apiKey = options.apiKey,
    ): StandInShow {
      const id = show.id ?? String(nextId++);
      const created: StandInShow = {
        id,
        apiKey,
        attributes: {
          title: show.title,
          slug: show.slug ?? `show-${id}`,
          time_zone: show.timeZone === undefined ? "America/New_York" : show.timeZone,
          feed_url: `https://feeds.transistor.example/show-${id}`,
          created_at: stamp(),
          updated_at: stamp(),
        },
      };
      shows.set(id, created);
      return created;
    },
    /** Retry-After seconds sent with 429 from now on; null: none. */
    setRetryAfter(seconds: number | null) {
      retryAfterSeconds = seconds;
    },
    /** Lifetime of signed upload URLs handed out from now on. */
    setUploadExpiresIn(seconds: number) {
      uploadExpiresIn = seconds;
    },
    /** Lifts every key's 429 block and forgets the window. */
    resetRateLimit() {
      windows.clear();
    },
    failNext: (fault: FailFault) => server.failNext(fault),
    dropNext: (target: FaultTarget) => server.dropNext(target),
    clearFaults: () => server.clearFaults(),
    close: () => server.close(),
  };
}

export type TransistorStandIn = Awaited<ReturnType<typeof startTransistorStandIn>>;

function ok(data: unknown): StandInAnswer {
  return { status: 200, json: { data } };
}

function fail(status: number, title: string, detail?: string): StandInAnswer {
  return { status, json: { errors: [{ title, ...(detail ? { detail } : {}) }] } };
}

function header(request: RecordedRequest, name: string): string | undefined {
  const value = request.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

/** Transistor's timestamp format: "2026-12-02 12:00:00 UTC". */
function stamp(date = new Date()): string {
  return `${date.toISOString().slice(0, 19).replace("T", " ")} UTC`;
}

function showResource(show: StandInShow) {
  return { id: show.id, type: "show", attributes: show.attributes, relationships: {} };
}

function episodeResource(episode: StandInEpisode) {
  return {
    id: episode.id,
    type: "episode",
    attributes: episode.attributes,
    relationships: { show: { data: { id: episode.showId, type: "show" } } },
  };
}

/** `{"episode": {...}}` JSON, or the form-encoded `episode[title]=…` the docs use. */
function episodeFields(request: RecordedRequest): Record<string, unknown> | null {
  const type = header(request, "content-type") ?? "";
  const text = request.rawBody.toString("utf8");
  if (type.includes("json")) {
    try {
      const body = JSON.parse(text) as { episode?: unknown };
      return body.episode && typeof body.episode === "object"
        ? (body.episode as Record<string, unknown>)
        : null;
    } catch {
      return null;
    }
  }
  if (type.includes("x-www-form-urlencoded")) {
    const fields: Record<string, unknown> = {};
    for (const [name, value] of new URLSearchParams(text)) {
      const match = /^episode\[(\w+)\]$/.exec(name);
      if (match?.[1]) fields[match[1]] = value;
    }
    return Object.keys(fields).length > 0 ? fields : null;
  }
  return null;
}
