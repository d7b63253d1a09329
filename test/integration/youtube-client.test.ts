import { randomBytes } from "node:crypto";
import http from "node:http";
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import {
  createGoogleOAuth,
  type GoogleOAuth,
  OAuthError,
  pkcePair,
  YOUTUBE_SCOPES,
} from "../../src/services/distribution/google-oauth.ts";
import {
  createYouTubeClient,
  type UploadState,
  type YouTubeClient,
  YouTubeError,
  YouTubeSessionExpiredError,
  type YouTubeVideoMetadata,
} from "../../src/services/distribution/youtube-client.ts";
import {
  CHUNK_MULTIPLE,
  googleErrorBody,
  startYouTubeStandIn,
  type YouTubeStandIn,
} from "../support/youtube-stand-in.ts";

// Google OAuth (PKCE, single-use codes, refresh, revocation) and the YouTube client (channel,
// resumable upload in 256 KiB chunks, interrupted uploads resumed from the server's Range,
// expired sessions, quota and error kinds, captions) against the stand-in, through real HTTP.

const CLIENT_ID = "podflow-test.apps.googleusercontent.com";
const CLIENT_SECRET = "GOCSPX-test-secret-5b2e";
const REDIRECT_URI = "http://127.0.0.1:4000/connections/youtube/callback";

let google: YouTubeStandIn;
let oauth: GoogleOAuth;
let youtube: YouTubeClient;

const metadata: YouTubeVideoMetadata = {
  title: "Episode 1",
  description: "Notes\n\n0:00 Intro\n0:30 Topic\n1:00 Outro",
  privacyStatus: "private",
  categoryId: "22",
};

beforeAll(async () => {
  google = await startYouTubeStandIn({
    clientId: CLIENT_ID,
    clientSecret: CLIENT_SECRET,
    redirectUris: [REDIRECT_URI],
  });
  oauth = createGoogleOAuth({
    authorizeUrl: google.authorizeUrl,
    tokenUrl: google.tokenUrl,
    clientId: CLIENT_ID,
    clientSecret: CLIENT_SECRET,
  });
  youtube = createYouTubeClient({
    apiUrl: google.apiUrl,
    uploadUrl: google.uploadUrl,
    transientDelayMs: 10,
  });
});
afterAll(() => google.close());
beforeEach(() => {
  google.clearFaults();
  google.resetQuota();
  google.setConsent("approve");
  google.setGrantedScopes(null);
});

/** The user goes through the consent screen; returns where Google sends the browser back. */
async function consent(p: { state: string; challenge: string; scopes?: string[] }): Promise<URL> {
  const url = oauth.consentUrl({
    state: p.state,
    codeChallenge: p.challenge,
    redirectUri: REDIRECT_URI,
    scopes: p.scopes ?? YOUTUBE_SCOPES,
  });
  const response = await fetch(url, { redirect: "manual" });
  expect(response.status).toBe(302);
  return new URL(response.headers.get("location") ?? "");
}

/** A fresh connection: consent, code exchange; returns the tokens. */
async function connect() {
  const pkce = pkcePair();
  const back = await consent({ state: "s", challenge: pkce.challenge });
  return oauth.exchangeCode({
    code: back.searchParams.get("code") ?? "",
    codeVerifier: pkce.verifier,
    redirectUri: REDIRECT_URI,
  });
}

async function waitFor(condition: () => boolean): Promise<void> {
  for (let i = 0; i < 200 && !condition(); i += 1) await sleep(10);
  expect(condition()).toBe(true);
}

async function caught<T extends Error>(
  promise: Promise<unknown>,
  type: new (...args: never[]) => T,
) {
  const error = await promise.then(
    () => null,
    (failure: unknown) => failure,
  );
  expect(error).toBeInstanceOf(type);
  return error as T;
}

describe("Google OAuth", () => {
  it("asks for offline access with forced consent, the scopes, state and an S256 challenge", async () => {
    const { challenge } = pkcePair();
    const url = new URL(
      oauth.consentUrl({
        state: "st-1",
        codeChallenge: challenge,
        redirectUri: REDIRECT_URI,
        scopes: YOUTUBE_SCOPES,
      }),
    );
    expect(`${url.origin}${url.pathname}`).toBe(google.authorizeUrl);
    expect(Object.fromEntries(url.searchParams)).toMatchObject({
      client_id: CLIENT_ID,
      redirect_uri: REDIRECT_URI,
      response_type: "code",
      access_type: "offline",
      prompt: "consent",
      state: "st-1",
      code_challenge: challenge,
      code_challenge_method: "S256",
      scope: YOUTUBE_SCOPES.join(" "),
    });
    expect(url.searchParams.has("client_secret")).toBe(false);
  });

  it("exchanges an approved code with its verifier for tokens, once", async () => {
    const pkce = pkcePair();
    const back = await consent({ state: "producer-42", challenge: pkce.challenge });
    expect(back.searchParams.get("state")).toBe("producer-42");
    const code = back.searchParams.get("code") ?? "";
    const before = Date.now();
    const tokens = await oauth.exchangeCode({
      code,
      codeVerifier: pkce.verifier,
      redirectUri: REDIRECT_URI,
    });
    expect(tokens.refreshToken).toMatch(/^1\/\//);
    expect(tokens.scopes).toEqual(YOUTUBE_SCOPES);
    // 3599 s, reported a minute early.
    expect(tokens.expiresAt.getTime()).toBeGreaterThan(before + 3500_000);
    expect(tokens.expiresAt.getTime()).toBeLessThanOrEqual(Date.now() + 3599_000);
    const exchange = google.requests.at(-1);
    expect(exchange?.headers["content-type"]).toMatch(/^application\/x-www-form-urlencoded/);

    const again = await caught(
      oauth.exchangeCode({ code, codeVerifier: pkce.verifier, redirectUri: REDIRECT_URI }),
      OAuthError,
    );
    expect(again).toMatchObject({ code: "invalid_grant", status: 400, retryable: false });
  });

  it("refuses a code exchanged with the wrong PKCE verifier", async () => {
    const pkce = pkcePair();
    const back = await consent({ state: "s", challenge: pkce.challenge });
    const code = back.searchParams.get("code") ?? "";
    const error = await caught(
      oauth.exchangeCode({ code, codeVerifier: pkcePair().verifier, redirectUri: REDIRECT_URI }),
      OAuthError,
    );
    expect(error).toMatchObject({ code: "invalid_grant", status: 400, retryable: false });
    expect(error.message).toContain("Invalid code verifier");
    expect(error.message).not.toContain(code);
    expect(error.message).not.toContain(CLIENT_SECRET);
  });

  it("brings back access_denied when the user declines", async () => {
    google.setConsent("deny");
    const back = await consent({ state: "declined", challenge: pkcePair().challenge });
    expect(back.searchParams.get("error")).toBe("access_denied");
    expect(back.searchParams.get("state")).toBe("declined");
    expect(back.searchParams.has("code")).toBe(false);
  });

  it("reports the scopes the user actually granted", async () => {
    google.setGrantedScopes([YOUTUBE_SCOPES[0] ?? ""]);
    const tokens = await connect();
    expect(tokens.scopes).toEqual([YOUTUBE_SCOPES[0]]);
  });

  it("refreshes an access token, keeping the refresh token", async () => {
    const tokens = await connect();
    const refreshed = await oauth.refresh(tokens.refreshToken ?? "");
    expect(refreshed.accessToken).not.toBe(tokens.accessToken);
    expect(refreshed.scopes).toEqual(YOUTUBE_SCOPES);
    await expect(youtube.channel(refreshed.accessToken)).resolves.toMatchObject({
      title: "Stand-in Channel",
    });
  });

  it("answers invalid_grant once the grant is revoked, without the token in the message", async () => {
    const tokens = await connect();
    const refreshToken = tokens.refreshToken ?? "";
    google.revoke(refreshToken);
    const error = await caught(oauth.refresh(refreshToken), OAuthError);
    expect(error).toMatchObject({ code: "invalid_grant", status: 400, retryable: false });
    expect(error.message).toContain("connect YouTube again");
    expect(error.message).not.toContain(refreshToken);
  });

  it("says so when the client secret is wrong", async () => {
    const tokens = await connect();
    const wrong = createGoogleOAuth({
      tokenUrl: google.tokenUrl,
      clientId: CLIENT_ID,
      clientSecret: "GOCSPX-wrong",
    });
    const error = await caught(wrong.refresh(tokens.refreshToken ?? ""), OAuthError);
    expect(error).toMatchObject({ code: "invalid_client", status: 401, retryable: false });
    expect(error.message).not.toContain("GOCSPX-wrong");
  });

  it("retries a 5xx from the token endpoint", async () => {
    const tokens = await connect();
    google.failNext({ path: "/token", status: 503 });
    await expect(oauth.refresh(tokens.refreshToken ?? "")).resolves.toMatchObject({
      accessToken: expect.any(String),
    });
  });
});

describe("channel", () => {
  it("reads the token's channel with a bearer token", async () => {
    const { accessToken } = await connect();
    await expect(youtube.channel(accessToken)).resolves.toEqual({
      id: "UCstandin0000000000000001",
      title: "Stand-in Channel",
    });
    const request = google.requests.at(-1);
    expect(request?.url).toBe("/youtube/v3/channels?part=snippet&mine=true");
    expect(request?.headers.authorization).toBe(`Bearer ${accessToken}`);
  });

  it("says so when the Google account has no channel", async () => {
    const noChannel = await startYouTubeStandIn({
      clientId: CLIENT_ID,
      clientSecret: CLIENT_SECRET,
      channel: null,
    });
    try {
      const flow = createGoogleOAuth({
        authorizeUrl: noChannel.authorizeUrl,
        tokenUrl: noChannel.tokenUrl,
        clientId: CLIENT_ID,
        clientSecret: CLIENT_SECRET,
      });
      const pkce = pkcePair();
      const consentUrl = flow.consentUrl({
        state: "s",
        codeChallenge: pkce.challenge,
        redirectUri: REDIRECT_URI,
        scopes: YOUTUBE_SCOPES,
      });
      const back = new URL(
        (await fetch(consentUrl, { redirect: "manual" })).headers.get("location") ?? "",
      );
      const { accessToken } = await flow.exchangeCode({
        code: back.searchParams.get("code") ?? "",
        codeVerifier: pkce.verifier,
        redirectUri: REDIRECT_URI,
      });
      const client = createYouTubeClient({
        apiUrl: noChannel.apiUrl,
        uploadUrl: noChannel.uploadUrl,
      });
      const error = await caught(client.channel(accessToken), YouTubeError);
      expect(error).toMatchObject({ reason: "youtubeSignupRequired", kind: "fatal" });
      expect(error.message).toContain("no YouTube channel");
    } finally {
      await noChannel.close();
    }
  });

  it("classifies a refused token as auth, and a missing scope as fatal", async () => {
    const error = await caught(youtube.channel("ya29.not-a-token"), YouTubeError);
    expect(error).toMatchObject({ status: 401, reason: "authError", kind: "auth" });
    expect(error.message).not.toContain("ya29.not-a-token");

    google.setGrantedScopes([YOUTUBE_SCOPES[0] ?? ""]);
    const { accessToken } = await connect();
    const scopes = await caught(youtube.channel(accessToken), YouTubeError);
    expect(scopes).toMatchObject({ status: 403, reason: "insufficientPermissions", kind: "fatal" });
  });
});

describe("resumable upload", () => {
  let token: string;
  const video = randomBytes(2 * CHUNK_MULTIPLE + 123_457);
  const chunkSize = CHUNK_MULTIPLE;

  beforeAll(async () => {
    token = (await connect()).accessToken;
  });
  let chunkRequests: number;
  beforeEach(() => {
    chunkRequests = google.requests.length;
  });
  afterEach(() => {
    // The token went only into Authorization headers.
    const leaked = google.requests.filter(
      (r) => r.url.includes(token) || r.rawBody.toString("latin1").includes(token),
    );
    expect(leaked).toEqual([]);
  });

  async function sendFrom(sessionUri: string, offset: number): Promise<UploadState> {
    let state: UploadState = { done: false, offset };
    while (!state.done) {
      const chunk = video.subarray(state.offset, state.offset + chunkSize);
      state = await youtube.uploadChunk(token, sessionUri, {
        start: state.offset,
        chunk,
        total: video.length,
        contentType: "video/mp4",
      });
    }
    return state;
  }

  function putsSince(): Array<string | undefined> {
    return google.requests
      .slice(chunkRequests)
      .filter((r) => r.method === "PUT")
      .map((r) => r.headers["content-range"] as string | undefined);
  }

  it("starts a session with the metadata and uploads in 256 KiB chunks to one video", async () => {
    const videosBefore = google.videos.size;
    const sessionUri = await youtube.startUpload(token, {
      metadata,
      bytes: video.length,
      contentType: "video/mp4",
    });
    const init = google.requests.find(
      (r) => r.method === "POST" && r.path === "/upload/youtube/v3/videos",
    );
    expect(init?.query.get("uploadType")).toBe("resumable");
    expect(init?.query.get("part")).toBe("snippet,status");
    expect(init?.headers["x-upload-content-length"]).toBe(String(video.length));
    expect(init?.headers["x-upload-content-type"]).toBe("video/mp4");
    expect(JSON.parse(init?.rawBody.toString() ?? "")).toEqual({
      snippet: { title: "Episode 1", description: metadata.description, categoryId: "22" },
      status: { privacyStatus: "private", selfDeclaredMadeForKids: false },
    });

    const done = await sendFrom(sessionUri, 0);
    expect(done.done).toBe(true);
    const sessionId = google.sessionIdOf(sessionUri);
    expect(google.receivedBytes(sessionId).equals(video)).toBe(true);
    expect(google.bytesAcceptedTwice(sessionId)).toBe(0);
    expect(putsSince()).toEqual([
      `bytes 0-${chunkSize - 1}/${video.length}`,
      `bytes ${chunkSize}-${2 * chunkSize - 1}/${video.length}`,
      `bytes ${2 * chunkSize}-${video.length - 1}/${video.length}`,
    ]);
    expect(google.videos.size).toBe(videosBefore + 1);
    expect(done.done && google.videos.get(done.videoId)?.snippet.title).toBe("Episode 1");
  });

  it("resumes an interrupted chunk from the server's Range, never re-sending what it holds", async () => {
    const videosBefore = google.videos.size;
    const sessionUri = await youtube.startUpload(token, {
      metadata,
      bytes: video.length,
      contentType: "video/mp4",
    });
    const sessionId = google.sessionIdOf(sessionUri);
    // Nothing sent yet: the status query says start at 0 (308 without Range).
    await expect(youtube.queryUpload(token, sessionUri, video.length)).resolves.toEqual({
      done: false,
      offset: 0,
    });

    await youtube.uploadChunk(token, sessionUri, {
      start: 0,
      chunk: video.subarray(0, chunkSize),
      total: video.length,
      contentType: "video/mp4",
    });
    google.interruptNextChunk(100_000);
    const cut = await caught(
      youtube.uploadChunk(token, sessionUri, {
        start: chunkSize,
        chunk: video.subarray(chunkSize, 2 * chunkSize),
        total: video.length,
        contentType: "video/mp4",
      }),
      YouTubeError,
    );
    expect(cut.kind).toBe("transient");

    const state = await youtube.queryUpload(token, sessionUri, video.length);
    expect(state).toEqual({ done: false, offset: chunkSize + 100_000 });
    const statusQuery = google.requests.at(-1);
    expect(statusQuery?.headers["content-range"]).toBe(`bytes */${video.length}`);
    expect(statusQuery?.headers["content-length"]).toBe("0");

    const done = await sendFrom(sessionUri, chunkSize + 100_000);
    expect(done.done).toBe(true);
    expect(google.receivedBytes(sessionId).equals(video)).toBe(true);
    expect(google.bytesAcceptedTwice(sessionId)).toBe(0);
    expect(google.videos.size).toBe(videosBefore + 1);
  });

  it("resumes after the uploader died mid-chunk, from the bytes that arrived", async () => {
    const sessionUri = await youtube.startUpload(token, {
      metadata,
      bytes: video.length,
      contentType: "video/mp4",
    });
    const sessionId = google.sessionIdOf(sessionUri);
    await youtube.uploadChunk(token, sessionUri, {
      start: 0,
      chunk: video.subarray(0, chunkSize),
      total: video.length,
      contentType: "video/mp4",
    });
    // A worker killed while its second chunk is on the wire: 150,000 of its bytes went out.
    await sendHalfAndDie(sessionUri, chunkSize, video.subarray(chunkSize, 2 * chunkSize), 150_000);
    await waitFor(() => google.requests.some((r) => r.aborted));

    const state = await youtube.queryUpload(token, sessionUri, video.length);
    expect(state).toEqual({ done: false, offset: chunkSize + 150_000 });
    await sendFrom(sessionUri, chunkSize + 150_000);
    expect(google.receivedBytes(sessionId).equals(video)).toBe(true);
    expect(google.bytesAcceptedTwice(sessionId)).toBe(0);
  });

  /** A raw chunk PUT that sends `sent` bytes of `chunk` and then closes the connection. */
  async function sendHalfAndDie(sessionUri: string, start: number, chunk: Buffer, sent: number) {
    const url = new URL(sessionUri);
    const request = http.request(url, {
      method: "PUT",
      headers: {
        authorization: `Bearer ${token}`,
        "content-type": "video/mp4",
        "content-length": chunk.length,
        "content-range": `bytes ${start}-${start + chunk.length - 1}/${video.length}`,
      },
    });
    request.on("error", () => {});
    await new Promise<void>((resolve) => request.write(chunk.subarray(0, sent), () => resolve()));
    request.destroy();
  }

  it("takes the next offset from Range, not from what it sent", async () => {
    const sessionUri = await youtube.startUpload(token, {
      metadata,
      bytes: video.length,
      contentType: "video/mp4",
    });
    // The whole chunk landed but its answer was lost: the next byte is after it.
    google.interruptNextChunk(chunkSize);
    await expect(
      youtube.uploadChunk(token, sessionUri, {
        start: 0,
        chunk: video.subarray(0, chunkSize),
        total: video.length,
        contentType: "video/mp4",
      }),
    ).rejects.toMatchObject({ kind: "transient" });
    await expect(youtube.queryUpload(token, sessionUri, video.length)).resolves.toEqual({
      done: false,
      offset: chunkSize,
    });
    const done = await sendFrom(sessionUri, chunkSize);
    const sessionId = google.sessionIdOf(sessionUri);
    expect(google.bytesAcceptedTwice(sessionId)).toBe(0);
    // A status query after the end repeats the final answer.
    await expect(youtube.queryUpload(token, sessionUri, video.length)).resolves.toEqual(done);
  });

  it("does not retry a chunk that met a 5xx: the job queries and resumes", async () => {
    const sessionUri = await youtube.startUpload(token, {
      metadata,
      bytes: video.length,
      contentType: "video/mp4",
    });
    google.failNext({ method: "PUT", path: "/upload/youtube/v3/videos", status: 503 });
    const error = await caught(
      youtube.uploadChunk(token, sessionUri, {
        start: 0,
        chunk: video.subarray(0, chunkSize),
        total: video.length,
        contentType: "video/mp4",
      }),
      YouTubeError,
    );
    expect(error).toMatchObject({ status: 503, kind: "transient" });
    expect(putsSince()).toHaveLength(1);
    await expect(youtube.queryUpload(token, sessionUri, video.length)).resolves.toEqual({
      done: false,
      offset: 0,
    });
  });

  it("stops a chunk PUT when its signal aborts, rejecting with the signal's reason", async () => {
    const sessionUri = await youtube.startUpload(token, {
      metadata,
      bytes: video.length,
      contentType: "video/mp4",
    });
    const stopping = new Error("worker stopping");
    const controller = new AbortController();
    controller.abort(stopping);
    await expect(
      youtube.uploadChunk(token, sessionUri, {
        start: 0,
        chunk: video.subarray(0, chunkSize),
        total: video.length,
        contentType: "video/mp4",
        signal: controller.signal,
      }),
    ).rejects.toBe(stopping);
    await expect(youtube.queryUpload(token, sessionUri, video.length)).resolves.toEqual({
      done: false,
      offset: 0,
    });
  });

  it("throws YouTubeSessionExpiredError for a session the server forgot", async () => {
    const sessionUri = await youtube.startUpload(token, {
      metadata,
      bytes: video.length,
      contentType: "video/mp4",
    });
    google.expireSession(google.sessionIdOf(sessionUri));
    await caught(youtube.queryUpload(token, sessionUri, video.length), YouTubeSessionExpiredError);
    await caught(
      youtube.uploadChunk(token, sessionUri, {
        start: 0,
        chunk: video.subarray(0, chunkSize),
        total: video.length,
        contentType: "video/mp4",
      }),
      YouTubeSessionExpiredError,
    );
  });

  it("is held to 256 KiB multiples by the stand-in", async () => {
    const sessionUri = await youtube.startUpload(token, {
      metadata,
      bytes: video.length,
      contentType: "video/mp4",
    });
    const error = await caught(
      youtube.uploadChunk(token, sessionUri, {
        start: 0,
        chunk: video.subarray(0, 100_000),
        total: video.length,
        contentType: "video/mp4",
      }),
      YouTubeError,
    );
    expect(error).toMatchObject({ status: 400, reason: "invalidChunkSize", kind: "fatal" });
  });

  it("never sends the bearer token to another host than the upload host", async () => {
    await expect(
      youtube.queryUpload(token, "https://uploads.example.net/upload?upload_id=x", video.length),
    ).rejects.toThrow(TypeError);
    expect(google.requests.length).toBe(chunkRequests);
  });

  it("retries starting a session after a 5xx", async () => {
    google.failNext({ method: "POST", path: "/upload/youtube/v3/videos", status: 500 });
    const sessionUri = await youtube.startUpload(token, {
      metadata,
      bytes: video.length,
      contentType: "video/mp4",
    });
    expect(google.sessions.has(google.sessionIdOf(sessionUri))).toBe(true);
  });
});

describe("errors", () => {
  let token: string;
  beforeAll(async () => {
    token = (await connect()).accessToken;
  });
  const start = (meta: YouTubeVideoMetadata = metadata) =>
    youtube.startUpload(token, { metadata: meta, bytes: 1000, contentType: "video/mp4" });

  it("classifies a spent upload bucket (403 quotaExceeded) as quota, without Google's HTML", async () => {
    google.exhaustQuota("uploads");
    const error = await caught(start(), YouTubeError);
    expect(error).toMatchObject({ status: 403, reason: "quotaExceeded", kind: "quota" });
    expect(error.message).toContain("exceeded your quota");
    expect(error.message).toContain("midnight Pacific");
    expect(error.message).not.toMatch(/[<>]/);
  });

  it("classifies the 429 'Video Uploads per day' answer as quota too", async () => {
    google.exhaustQuota("uploads", 429);
    const error = await caught(start(), YouTubeError);
    expect(error).toMatchObject({ status: 429, reason: "rateLimitExceeded", kind: "quota" });
  });

  it("classifies a spent unit quota on captions as quota", async () => {
    google.exhaustQuota("units");
    const error = await caught(
      youtube.insertCaption(token, {
        videoId: "x",
        language: "en",
        name: "English",
        body: "WEBVTT\n",
        contentType: "text/vtt",
      }),
      YouTubeError,
    );
    expect(error).toMatchObject({ reason: "quotaExceeded", kind: "quota" });
  });

  it("classifies rateLimitExceeded as rateLimit and keeps Retry-After", async () => {
    google.failNext({
      method: "POST",
      path: "/upload/youtube/v3/videos",
      status: 403,
      headers: { "retry-after": "7" },
      body: {
        error: { code: 403, message: "Rate limit", errors: [{ reason: "userRateLimitExceeded" }] },
      },
    });
    const error = await caught(start(), YouTubeError);
    expect(error).toMatchObject({
      kind: "rateLimit",
      reason: "userRateLimitExceeded",
      retryAfterMs: 7000,
    });
  });

  it("makes uploadLimitExceeded and invalid metadata fatal, naming the reason", async () => {
    google.failNext({
      method: "POST",
      path: "/upload/youtube/v3/videos",
      status: 400,
      body: googleErrorBody(
        400,
        "uploadLimitExceeded",
        "The user has exceeded the number of videos they may upload.",
        "youtube.video",
      ),
    });
    const limit = await caught(start(), YouTubeError);
    expect(limit).toMatchObject({ status: 400, reason: "uploadLimitExceeded", kind: "fatal" });
    expect(limit.message).toBe(
      "YouTube videos.insert failed: HTTP 400 uploadLimitExceeded: The user has exceeded the number of videos they may upload.",
    );
    const title = await caught(start({ ...metadata, title: "A <b>bold</b> title" }), YouTubeError);
    expect(title).toMatchObject({ reason: "invalidTitle", kind: "fatal" });
  });

  it("reports a lost connection as transient after its retries", async () => {
    google.dropNext({ path: "/youtube/v3/channels", times: 3 });
    const error = await caught(youtube.channel(token), YouTubeError);
    expect(error).toMatchObject({ status: null, kind: "transient" });
  });
});

describe("captions", () => {
  it("inserts a caption track as multipart/related, once per language and name", async () => {
    const token = (await connect()).accessToken;
    const small = randomBytes(1000);
    const sessionUri = await youtube.startUpload(token, {
      metadata,
      bytes: small.length,
      contentType: "video/mp4",
    });
    const done = await youtube.uploadChunk(token, sessionUri, {
      start: 0,
      chunk: small,
      total: small.length,
      contentType: "video/mp4",
    });
    if (!done.done) throw new Error("a single final chunk should finish the upload");
    const vtt = "WEBVTT\n\n00:00:00.000 --> 00:00:02.000\n<v Ada>Hello – welcome\n";
    const caption = await youtube.insertCaption(token, {
      videoId: done.videoId,
      language: "en",
      name: "English",
      body: vtt,
      contentType: "text/vtt",
    });
    const stored = google.captions.get(caption.id);
    expect(stored).toMatchObject({
      videoId: done.videoId,
      language: "en",
      name: "English",
      body: vtt,
      contentType: "text/vtt",
    });
    const request = google.requests.at(-1);
    expect(request?.url).toBe("/upload/youtube/v3/captions?part=snippet&uploadType=multipart");

    const duplicate = await caught(
      youtube.insertCaption(token, {
        videoId: done.videoId,
        language: "en",
        name: "English",
        body: vtt,
        contentType: "text/vtt",
      }),
      YouTubeError,
    );
    expect(duplicate).toMatchObject({ status: 409, reason: "captionExists", kind: "fatal" });
    const missing = await caught(
      youtube.insertCaption(token, {
        videoId: "nope",
        language: "en",
        name: "English",
        body: vtt,
        contentType: "text/vtt",
      }),
      YouTubeError,
    );
    expect(missing).toMatchObject({ status: 404, reason: "videoNotFound" });
  });
});
