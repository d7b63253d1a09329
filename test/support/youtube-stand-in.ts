import { createHash, randomBytes } from "node:crypto";
import type { DelayFault, FailFault, FaultTarget } from "./ittybit-stand-in-faults.ts";
import { type RecordedRequest, type StandInAnswer, startStandInServer } from "./stand-in-server.ts";

// An in-memory Google for tests: the OAuth 2.0 authorization-code flow with PKCE (consent that a
// test approves or denies, single-use codes, refresh tokens that can be revoked) and the parts of
// the YouTube Data API Podflow uses — channels.list, the resumable videos.insert protocol (chunk
// size and Content-Range checks, 308 + Range, status queries, expired sessions) and multipart
// captions.insert — with quota counters and Google's error shapes. Every byte an upload session
// receives is recorded, so a test can prove nothing was sent twice.

export const CHUNK_MULTIPLE = 256 * 1024;

export interface YouTubeStandInOptions {
  clientId: string;
  clientSecret: string;
  /** When set, redirect URIs must be one of these exactly. */
  redirectUris?: string[];
  accessTokenTtlSeconds?: number;
  /** The channel of the (only) Google account; null: the account has none. */
  channel?: { id: string; title: string } | null;
  /** Daily upload bucket (videos.insert calls); YouTube's default is 100. */
  uploadsPerDay?: number;
  /** Shared daily units; YouTube's default is 10,000. */
  unitsPerDay?: number;
  /**
   * Charge videos.insert this many units of the shared bucket instead of the upload bucket (the
   * model before 2026: 1,600 units).
   */
  uploadCostUnits?: number;
  captionCostUnits?: number;
  /**
   * What a session keeps of a chunk whose upload was cut off (the client died or the connection
   * broke): every byte that arrived (`all`, the default), only whole 256 KiB units (`aligned`),
   * or nothing (`none`). Google does not document which; the status query tells the client.
   */
  keepFromAbortedChunk?: "all" | "aligned" | "none";
}

export interface StandInSession {
  id: string;
  total: number;
  contentType: string;
  metadata: Record<string, unknown>;
  /** Bytes held, contiguous from 0. */
  received: Buffer;
  /** Bytes that arrived again although the session already held them. */
  resentBytes: number;
  /** Every chunk PUT: its Content-Range and what was answered. */
  chunks: Array<{ start: number; end: number; status: number; kept: number }>;
  videoId: string | null;
  expired: boolean;
}

export interface StandInVideo {
  kind: "youtube#video";
  id: string;
  snippet: Record<string, unknown>;
  status: Record<string, unknown>;
}

export interface StandInCaption {
  id: string;
  videoId: string;
  language: string;
  name: string;
  contentType: string;
  body: string;
}

interface Grant {
  scopes: string[];
  revoked: boolean;
}

const QUOTA_MESSAGE =
  'The request cannot be completed because you have exceeded your <a href="/youtube/v3/getting-started#quota">quota</a>.';
const UPLOADS_PER_DAY_MESSAGE =
  "Quota exceeded for quota metric 'Video Uploads' and limit 'Video Uploads per day' of service 'youtube.googleapis.com' for consumer 'project_number:1'.";

export async function startYouTubeStandIn(options: YouTubeStandInOptions) {
  const ttl = options.accessTokenTtlSeconds ?? 3599;
  const channel =
    options.channel === undefined
      ? { id: "UCstandin0000000000000001", title: "Stand-in Channel" }
      : options.channel;
  const limits = {
    uploads: options.uploadsPerDay ?? 100,
    units: options.unitsPerDay ?? 10_000,
  };
  const quota = { uploads: 0, units: 0 };
  let quotaShape: 403 | 429 = 403;
  let consent: "approve" | "deny" = "approve";
  let grantedScopes: string[] | null = null;
  const codes = new Map<
    string,
    {
      clientId: string;
      redirectUri: string;
      challenge: string | null;
      method: string;
      scopes: string[];
      offline: boolean;
      expiresAt: number;
      used: boolean;
    }
  >();
  const grants = new Map<string, Grant>();
  const accessTokens = new Map<string, { grant: Grant; expiresAt: number }>();
  const sessions = new Map<string, StandInSession>();
  const videos = new Map<string, StandInVideo>();
  const captions = new Map<string, StandInCaption>();
  const interruptions: Array<{ keepBytes: number }> = [];

  const server = await startStandInServer(
    handle,
    (status) =>
      googleError(status, status >= 500 ? "backendError" : "badRequest", `HTTP ${status}`).json,
  );
  const url = server.url;

  function handle(request: RecordedRequest): StandInAnswer {
    const { method, path } = request;
    if (path === "/o/oauth2/v2/auth" && method === "GET") return authorize(request);
    if (path === "/token" && method === "POST") return token(request);
    if (path === "/revoke" && method === "POST") {
      const value = new URLSearchParams(request.rawBody.toString("utf8")).get("token") ?? "";
      const grant = grants.get(value) ?? accessTokens.get(value)?.grant;
      if (!grant) return { status: 400, json: { error: "invalid_token" } };
      grant.revoked = true;
      return { status: 200, json: {} };
    }
    if (path === "/youtube/v3/channels" && method === "GET") return channels(request);
    if (path === "/upload/youtube/v3/videos" && method === "POST") return startUpload(request);
    if (path === "/upload/youtube/v3/videos" && method === "PUT") return uploadPut(request);
    if (path === "/upload/youtube/v3/captions" && method === "POST") return insertCaption(request);
    return googleError(404, "notFound", "Not Found");
  }

  // --- OAuth -----------------------------------------------------------------------------------

  function authorize(request: RecordedRequest): StandInAnswer {
    const q = request.query;
    if (q.get("client_id") !== options.clientId) {
      return { status: 401, text: "Error 401: invalid_client" };
    }
    const redirectUri = q.get("redirect_uri") ?? "";
    if (!redirectUri || (options.redirectUris && !options.redirectUris.includes(redirectUri))) {
      return { status: 400, text: "Error 400: redirect_uri_mismatch" };
    }
    if (q.get("response_type") !== "code") {
      return { status: 400, text: "Error 400: unsupported_response_type" };
    }
    const method = q.get("code_challenge_method") ?? "plain";
    const challenge = q.get("code_challenge");
    if (challenge && method !== "S256" && method !== "plain") {
      return { status: 400, text: "Error 400: invalid_request" };
    }
    const back = new URL(redirectUri);
    const state = q.get("state");
    if (consent === "deny") {
      back.searchParams.set("error", "access_denied");
      if (state !== null) back.searchParams.set("state", state);
      return { status: 302, headers: { location: back.toString() } };
    }
    const requested = (q.get("scope") ?? "").split(/\s+/).filter(Boolean);
    const scopes = grantedScopes ? requested.filter((s) => grantedScopes?.includes(s)) : requested;
    const code = `4/${randomBytes(24).toString("base64url")}`;
    codes.set(code, {
      clientId: options.clientId,
      redirectUri,
      challenge,
      method,
      scopes,
      offline: q.get("access_type") === "offline",
      expiresAt: Date.now() + 10 * 60_000,
      used: false,
    });
    back.searchParams.set("code", code);
    if (state !== null) back.searchParams.set("state", state);
    back.searchParams.set("scope", scopes.join(" "));
    return { status: 302, headers: { location: back.toString() } };
  }

  function token(request: RecordedRequest): StandInAnswer {
    const form = new URLSearchParams(request.rawBody.toString("utf8"));
    const invalid = (error: string, description: string, status = 400): StandInAnswer => ({
      status,
      json: { error, error_description: description },
    });
    if (!String(request.headers["content-type"] ?? "").includes("x-www-form-urlencoded")) {
      return invalid("invalid_request", "Content-Type must be application/x-www-form-urlencoded");
    }
    if (
      form.get("client_id") !== options.clientId ||
      form.get("client_secret") !== options.clientSecret
    ) {
      return invalid("invalid_client", "Unauthorized", 401);
    }
    const grantType = form.get("grant_type");
    if (grantType === "authorization_code") {
      const code = codes.get(form.get("code") ?? "");
      if (!code || code.used || code.expiresAt < Date.now()) {
        return invalid("invalid_grant", "Malformed auth code.");
      }
      if (form.get("redirect_uri") !== code.redirectUri) {
        return invalid("redirect_uri_mismatch", "Bad Request");
      }
      if (code.challenge) {
        const verifier = form.get("code_verifier");
        if (!verifier) return invalid("invalid_grant", "Missing code verifier.");
        const computed =
          code.method === "S256"
            ? createHash("sha256").update(verifier).digest("base64url")
            : verifier;
        if (computed !== code.challenge) return invalid("invalid_grant", "Invalid code verifier.");
      }
      code.used = true;
      const grant: Grant = { scopes: code.scopes, revoked: false };
      const accessToken = issueAccessToken(grant);
      const refreshToken = code.offline ? `1//${randomBytes(32).toString("base64url")}` : null;
      if (refreshToken) grants.set(refreshToken, grant);
      return {
        status: 200,
        json: {
          access_token: accessToken,
          expires_in: ttl,
          ...(refreshToken ? { refresh_token: refreshToken } : {}),
          scope: grant.scopes.join(" "),
          token_type: "Bearer",
        },
      };
    }
    if (grantType === "refresh_token") {
      const grant = grants.get(form.get("refresh_token") ?? "");
      if (!grant || grant.revoked) {
        return invalid("invalid_grant", "Token has been expired or revoked.");
      }
      return {
        status: 200,
        json: {
          access_token: issueAccessToken(grant),
          expires_in: ttl,
          scope: grant.scopes.join(" "),
          token_type: "Bearer",
        },
      };
    }
    return invalid("unsupported_grant_type", "Invalid grant_type");
  }

  function issueAccessToken(grant: Grant): string {
    const accessToken = `ya29.${randomBytes(32).toString("base64url")}`;
    accessTokens.set(accessToken, { grant, expiresAt: Date.now() + ttl * 1000 });
    return accessToken;
  }

  /** The caller's grant, or the 401/403 answer Google gives. */
  function authenticate(
    request: RecordedRequest,
    anyOf: readonly string[],
  ): { grant: Grant } | { answer: StandInAnswer } {
    const header = String(request.headers.authorization ?? "");
    const entry = accessTokens.get(header.replace(/^Bearer /, ""));
    if (
      !header.startsWith("Bearer ") ||
      !entry ||
      entry.grant.revoked ||
      entry.expiresAt < Date.now()
    ) {
      return {
        answer: googleError(
          401,
          "authError",
          "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential.",
          "UNAUTHENTICATED",
        ),
      };
    }
    const full = "https://www.googleapis.com/auth/youtube";
    const allowed = [...anyOf, full].map((s) => (s.startsWith("https://") ? s : `${full}.${s}`));
    if (!entry.grant.scopes.some((scope) => allowed.includes(scope))) {
      return {
        answer: googleError(
          403,
          "insufficientPermissions",
          "Request had insufficient authentication scopes.",
          "PERMISSION_DENIED",
        ),
      };
    }
    return { grant: entry.grant };
  }

  function charge(units: number): StandInAnswer | null {
    if (quota.units + units > limits.units) return quotaError(false);
    quota.units += units;
    return null;
  }

  function quotaError(uploadBucket: boolean): StandInAnswer {
    if (uploadBucket && quotaShape === 429) {
      return googleError(429, "rateLimitExceeded", UPLOADS_PER_DAY_MESSAGE, "RESOURCE_EXHAUSTED");
    }
    return googleError(403, "quotaExceeded", QUOTA_MESSAGE, "PERMISSION_DENIED", "youtube.quota");
  }

  // --- YouTube -----------------------------------------------------------------------------------

  function channels(request: RecordedRequest): StandInAnswer {
    const auth = authenticate(request, ["readonly", "force-ssl"]);
    if ("answer" in auth) return auth.answer;
    if (request.query.get("mine") !== "true" || !request.query.get("part")) {
      return googleError(400, "missingRequiredParameter", "No filter selected.");
    }
    const charged = charge(1);
    if (charged) return charged;
    return {
      status: 200,
      json: {
        kind: "youtube#channelListResponse",
        pageInfo: { totalResults: channel ? 1 : 0, resultsPerPage: 5 },
        items: channel
          ? [{ kind: "youtube#channel", id: channel.id, snippet: { title: channel.title } }]
          : [],
      },
    };
  }

  function startUpload(request: RecordedRequest): StandInAnswer {
    const auth = authenticate(request, ["upload", "force-ssl"]);
    if ("answer" in auth) return auth.answer;
    if (request.query.get("uploadType") !== "resumable") {
      return googleError(400, "invalidUploadType", "Only resumable uploads are supported here.");
    }
    if (options.uploadCostUnits !== undefined) {
      const charged = charge(options.uploadCostUnits);
      if (charged) return charged;
    } else {
      if (quota.uploads + 1 > limits.uploads) return quotaError(true);
      quota.uploads += 1;
    }
    const total = Number(request.headers["x-upload-content-length"]);
    if (!Number.isInteger(total) || total <= 0) {
      return googleError(400, "badContent", "X-Upload-Content-Length is required.");
    }
    const contentType = String(request.headers["x-upload-content-type"] ?? "");
    if (!/^(video\/|application\/octet-stream)/.test(contentType)) {
      return googleError(400, "invalidContentType", "Media type not supported.");
    }
    let metadata: { snippet?: Record<string, unknown>; status?: Record<string, unknown> };
    try {
      metadata = JSON.parse(request.rawBody.toString("utf8"));
    } catch {
      return googleError(400, "parseError", "Parse Error");
    }
    const invalid = validateMetadata(metadata);
    if (invalid) return invalid;
    const id = randomBytes(16).toString("base64url");
    sessions.set(id, {
      id,
      total,
      contentType,
      metadata: metadata as Record<string, unknown>,
      received: Buffer.alloc(0),
      resentBytes: 0,
      chunks: [],
      videoId: null,
      expired: false,
    });
    const part = request.query.get("part") ?? "snippet,status";
    const location = `${url}/upload/youtube/v3/videos?uploadType=resumable&upload_id=${id}&part=${encodeURIComponent(part)}`;
    return { status: 200, headers: { location }, text: "" };
  }

  function uploadPut(request: RecordedRequest): StandInAnswer {
    if (request.aborted) {
      abortedChunk(request);
      return { drop: true };
    }
    const session = sessions.get(request.query.get("upload_id") ?? "");
    if (!session || session.expired) return { status: 404, text: "Not Found" };
    const auth = authenticate(request, ["upload", "force-ssl"]);
    if ("answer" in auth) return auth.answer;
    const range = String(request.headers["content-range"] ?? "");
    const status = /^bytes \*\/(\d+)$/.exec(range);
    if (status) {
      if (Number(status[1]) !== session.total) {
        return googleError(400, "badContent", "Content-Range total does not match the session.");
      }
      return uploadAnswer(session);
    }
    const match = /^bytes (\d+)-(\d+)\/(\d+)$/.exec(range);
    if (!match) return googleError(400, "badContent", "Content-Range is required.");
    const start = Number(match[1]);
    const end = Number(match[2]);
    const body = request.rawBody;
    if (Number(match[3]) !== session.total || end < start || end >= session.total) {
      return googleError(400, "badContent", "Content-Range does not fit the session.");
    }
    if (body.length !== end - start + 1) {
      return googleError(400, "badContent", "The body does not match Content-Range.");
    }
    const final = end + 1 === session.total;
    if (!final && body.length % CHUNK_MULTIPLE !== 0) {
      return googleError(
        400,
        "invalidChunkSize",
        `Every chunk but the last must be a multiple of ${CHUNK_MULTIPLE} bytes.`,
      );
    }
    if (session.videoId) return uploadAnswer(session);
    const held = session.received.length;
    if (start > held) {
      // Not contiguous with what is held: nothing is accepted.
      session.chunks.push({ start, end, status: 308, kept: 0 });
      return uploadAnswer(session);
    }
    const overlap = Math.min(end + 1, held) - start;
    session.resentBytes += overlap;
    let fresh = body.subarray(overlap);
    const interruption = interruptions.shift();
    if (interruption) fresh = fresh.subarray(0, Math.max(0, interruption.keepBytes));
    session.received = Buffer.concat([session.received, fresh]);
    if (session.received.length === session.total) finishUpload(session);
    const answer = interruption ? { drop: true as const } : uploadAnswer(session);
    session.chunks.push({
      start,
      end,
      status: "drop" in answer ? 0 : answer.status,
      kept: fresh.length,
    });
    return answer;
  }

  /** Keeps what arrived of a cut-off chunk, as `keepFromAbortedChunk` says. */
  function abortedChunk(request: RecordedRequest): void {
    const session = sessions.get(request.query.get("upload_id") ?? "");
    const match = /^bytes (\d+)-(\d+)\/(\d+)$/.exec(String(request.headers["content-range"] ?? ""));
    if (!session || session.expired || session.videoId || !match) return;
    if ("answer" in authenticate(request, ["upload", "force-ssl"])) return;
    const start = Number(match[1]);
    const held = session.received.length;
    if (start > held) return;
    const overlap = Math.min(request.rawBody.length, held - start);
    session.resentBytes += overlap;
    let fresh = request.rawBody.subarray(overlap);
    const policy = options.keepFromAbortedChunk ?? "all";
    if (policy === "none") fresh = fresh.subarray(0, 0);
    if (policy === "aligned") {
      const alignedEnd = Math.floor((held + fresh.length) / CHUNK_MULTIPLE) * CHUNK_MULTIPLE;
      fresh = fresh.subarray(0, Math.max(0, alignedEnd - held));
    }
    session.received = Buffer.concat([session.received, fresh]);
    session.chunks.push({ start, end: Number(match[2]), status: 0, kept: fresh.length });
  }

  function uploadAnswer(session: StandInSession): StandInAnswer {
    if (session.videoId) {
      return { status: 201, json: videos.get(session.videoId) };
    }
    const held = session.received.length;
    return { status: 308, headers: held > 0 ? { range: `bytes=0-${held - 1}` } : {}, text: "" };
  }

  function finishUpload(session: StandInSession): void {
    const id = randomBytes(8).toString("base64url").slice(0, 11);
    const metadata = session.metadata as {
      snippet?: Record<string, unknown>;
      status?: Record<string, unknown>;
    };
    videos.set(id, {
      kind: "youtube#video",
      id,
      snippet: {
        ...metadata.snippet,
        channelId: channel?.id,
        publishedAt: new Date().toISOString(),
      },
      status: { uploadStatus: "uploaded", ...metadata.status },
    });
    session.videoId = id;
  }

  function insertCaption(request: RecordedRequest): StandInAnswer {
    const auth = authenticate(request, ["force-ssl"]);
    if ("answer" in auth) return auth.answer;
    const charged = charge(options.captionCostUnits ?? 400);
    if (charged) return charged;
    const boundary = /boundary="?([^";]+)"?/.exec(
      String(request.headers["content-type"] ?? ""),
    )?.[1];
    if (!String(request.headers["content-type"]).startsWith("multipart/related") || !boundary) {
      return googleError(400, "badContent", "multipart/related body expected.");
    }
    const parts = parseMultipart(request.rawBody, boundary);
    let snippet: Record<string, unknown> | undefined;
    try {
      snippet = (
        JSON.parse(parts[0]?.body.toString("utf8") ?? "") as { snippet?: Record<string, unknown> }
      ).snippet;
    } catch {
      return googleError(400, "parseError", "Parse Error");
    }
    const media = parts[1];
    if (!media || media.body.length === 0) {
      return googleError(
        400,
        "contentRequired",
        "The request does not contain the caption track contents.",
      );
    }
    const videoId = String(snippet?.videoId ?? "");
    const language = String(snippet?.language ?? "");
    const name = String(snippet?.name ?? "");
    if (!videos.has(videoId)) {
      return googleError(
        404,
        "videoNotFound",
        "The video identified by the videoId parameter could not be found.",
      );
    }
    if (!language) return googleError(400, "invalidMetadata", "snippet.language is required.");
    const duplicate = [...captions.values()].some(
      (caption) =>
        caption.videoId === videoId && caption.language === language && caption.name === name,
    );
    if (duplicate) {
      return googleError(
        409,
        "captionExists",
        "The specified video already has a caption track with the given snippet.language and snippet.name.",
      );
    }
    const id = `AUieDa${randomBytes(12).toString("base64url")}`;
    captions.set(id, {
      id,
      videoId,
      language,
      name,
      contentType: media.headers["content-type"] ?? "",
      body: media.body.toString("utf8"),
    });
    return {
      status: 200,
      json: {
        kind: "youtube#caption",
        etag: randomBytes(8).toString("hex"),
        id,
        snippet: {
          videoId,
          lastUpdated: new Date().toISOString(),
          trackKind: "standard",
          language,
          name,
          audioTrackType: "unknown",
          isCC: false,
          isLarge: false,
          isEasyReader: false,
          isDraft: false,
          isAutoSynced: false,
          status: "serving",
        },
      },
    };
  }

  return {
    url,
    authorizeUrl: `${url}/o/oauth2/v2/auth`,
    tokenUrl: `${url}/token`,
    revokeUrl: `${url}/revoke`,
    apiUrl: `${url}/youtube/v3`,
    uploadUrl: `${url}/upload/youtube/v3`,
    requests: server.requests,
    sessions,
    videos,
    captions,
    /** Units and uploads spent today. */
    quota,

    /** What the next consent screens do: give a code, or send the user back with access_denied. */
    setConsent(decision: "approve" | "deny") {
      consent = decision;
    },
    /** The user unticks scopes: only these (of those asked for) are granted. null: all. */
    setGrantedScopes(scopes: string[] | null) {
      grantedScopes = scopes;
    },
    /** The user revokes the app: refresh answers invalid_grant, its access tokens 401. */
    revoke(refreshToken: string) {
      const grant = grants.get(refreshToken);
      if (!grant) throw new Error("the YouTube stand-in issued no such refresh token");
      grant.revoked = true;
    },
    /** Every access token issued so far is expired from now on. */
    expireAccessTokens() {
      for (const entry of accessTokens.values()) entry.expiresAt = 0;
    },
    /** The session is gone: PUTs to it answer 404. */
    expireSession(sessionId: string) {
      const session = sessions.get(sessionId);
      if (!session) throw new Error(`no upload session ${sessionId}`);
      session.expired = true;
    },
    /** The session id in a session URI. */
    sessionIdOf(sessionUri: string): string {
      return new URL(sessionUri).searchParams.get("upload_id") ?? "";
    },
    /** The bytes a session holds, contiguous from 0. */
    receivedBytes(sessionId: string): Buffer {
      return sessions.get(sessionId)?.received ?? Buffer.alloc(0);
    },
    /** Bytes that arrived although the session already held them (0 when nothing was re-sent). */
    bytesAcceptedTwice(sessionId: string): number {
      return sessions.get(sessionId)?.resentBytes ?? 0;
    },
    /**
     * The next chunk PUT keeps only its first `keepBytes` new bytes and the connection is closed
     * without an answer (a worker killed, a network cut). `keepBytes` of the whole chunk: the
     * chunk landed but its answer was lost.
     */
    interruptNextChunk(keepBytes: number) {
      interruptions.push({ keepBytes });
    },
    /** Spends the whole quota: the upload bucket (403 quotaExceeded, or the 429 shape) or the units. */
    exhaustQuota(bucket: "uploads" | "units", shape: 403 | 429 = 403) {
      quotaShape = shape;
      if (bucket === "uploads") quota.uploads = limits.uploads;
      else quota.units = limits.units;
    },
    /** Midnight Pacific: both buckets are full again. */
    resetQuota() {
      quota.uploads = 0;
      quota.units = 0;
    },
    failNext: (fault: FailFault) => server.failNext(fault),
    dropNext: (target: FaultTarget) => server.dropNext(target),
    delayNext: (fault: DelayFault) => server.delayNext(fault),
    clearFaults: () => server.clearFaults(),
    close: () => server.close(),
  };
}

export type YouTubeStandIn = Awaited<ReturnType<typeof startYouTubeStandIn>>;

/** The JSON body of a Google API error, for a test's scripted failNext. */
export function googleErrorBody(
  status: number,
  reason: string,
  message: string,
  domain?: string,
): unknown {
  return googleError(status, reason, message, undefined, domain).json;
}

function googleError(
  status: number,
  reason: string,
  message: string,
  statusText?: string,
  domain = reason === "quotaExceeded" ? "youtube.quota" : "youtube.api",
): StandInAnswer & { json: unknown } {
  return {
    status,
    json: {
      error: {
        code: status,
        message,
        errors: [{ message, domain, reason }],
        ...(statusText ? { status: statusText } : {}),
      },
    },
  };
}

function validateMetadata(metadata: {
  snippet?: Record<string, unknown>;
  status?: Record<string, unknown>;
}): StandInAnswer | null {
  const title = metadata.snippet?.title;
  if (typeof title !== "string" || !title.trim() || [...title].length > 100 || /[<>]/.test(title)) {
    return googleError(
      400,
      "invalidTitle",
      "The request metadata specifies an invalid or empty video title.",
    );
  }
  const description = metadata.snippet?.description ?? "";
  if (
    typeof description !== "string" ||
    Buffer.byteLength(description, "utf8") > 5000 ||
    /[<>]/.test(description)
  ) {
    return googleError(
      400,
      "invalidDescription",
      "The request metadata specifies an invalid video description.",
    );
  }
  const privacy = metadata.status?.privacyStatus;
  if (privacy !== undefined && !["public", "private", "unlisted"].includes(String(privacy))) {
    return googleError(400, "invalidVideoMetadata", "The request metadata is invalid.");
  }
  const publishAt = metadata.status?.publishAt;
  if (
    publishAt !== undefined &&
    (privacy !== "private" || Number.isNaN(Date.parse(String(publishAt))))
  ) {
    return googleError(
      400,
      "invalidPublishAt",
      "The request metadata specifies an invalid scheduled publishing time.",
    );
  }
  return null;
}

function parseMultipart(
  body: Buffer,
  boundary: string,
): Array<{ headers: Record<string, string>; body: Buffer }> {
  const text = body.toString("latin1");
  const delimiter = `--${boundary}`;
  const parts: Array<{ headers: Record<string, string>; body: Buffer }> = [];
  for (const raw of text.split(delimiter).slice(1)) {
    if (raw.startsWith("--")) break;
    const section = raw.replace(/^\r?\n/, "").replace(/\r?\n$/, "");
    const split = section.search(/\r?\n\r?\n/);
    if (split === -1) continue;
    const headerText = section.slice(0, split);
    const bodyStart = section.slice(split).match(/^\r?\n\r?\n/)?.[0].length ?? 0;
    const headers: Record<string, string> = {};
    for (const line of headerText.split(/\r?\n/)) {
      const colon = line.indexOf(":");
      if (colon > 0)
        headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
    }
    parts.push({ headers, body: Buffer.from(section.slice(split + bodyStart), "latin1") });
  }
  return parts;
}
