import { randomBytes } from "node:crypto";
import { Readable } from "node:stream";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import {
  createTransistorClient,
  type TransistorClient,
  TransistorError,
  transistorPublishedAt,
} from "../../src/services/distribution/transistor-client.ts";
import { startTransistorStandIn, type TransistorStandIn } from "../support/transistor-stand-in.ts";

// The Transistor client through real HTTP against the stand-in: the upload-and-publish flow, the
// JSON:API shapes, the rate limit (paced, and 429 waited out), errors and where the key goes.

const API_KEY = "transistor_test_key_7c1e0b";
let transistor: TransistorStandIn;
let client: TransistorClient;

function newClient(overrides: Parameters<typeof createTransistorClient>[0] = {}) {
  return createTransistorClient({
    apiUrl: transistor.url,
    transientDelayMs: 10,
    // No pacing unless a test asks for it: the stand-in's window is what these tests probe.
    rateLimit: { limit: 1000, intervalMs: 1000, blockedWaitMs: 50 },
    ...overrides,
  });
}

async function caught(promise: Promise<unknown>): Promise<TransistorError> {
  const error = await promise.then(
    () => null,
    (failure: unknown) => failure,
  );
  expect(error).toBeInstanceOf(TransistorError);
  return error as TransistorError;
}

beforeAll(async () => {
  transistor = await startTransistorStandIn({
    apiKey: API_KEY,
    userName: "Ada Producer",
    processingPolls: 2,
    maxPageSize: 10,
    rateLimit: { limit: 1000, windowMs: 1000, blockMs: 1000 },
  });
  client = newClient();
});
afterAll(() => transistor.close());
beforeEach(() => {
  transistor.requests.length = 0;
  transistor.clearFaults();
  transistor.resetRateLimit();
});
afterEach(() => {
  // The key goes in x-api-key and nowhere else: not in a URL, not in a body.
  const elsewhere = transistor.requests.filter(
    (r) => r.url.includes(API_KEY) || r.rawBody.toString("latin1").includes(API_KEY),
  );
  expect(elsewhere).toEqual([]);
});

describe("authentication", () => {
  it("sends the key in x-api-key and reads the user from GET /v1", async () => {
    await expect(client.whoAmI(API_KEY)).resolves.toEqual({ name: "Ada Producer" });
    const request = transistor.requests.at(-1);
    expect(request).toMatchObject({ method: "GET", path: "/v1" });
    expect(request?.headers["x-api-key"]).toBe(API_KEY);
    expect(request?.headers.authorization).toBeUndefined();
  });

  it("turns a refused key into a non-retryable 401 that names neither key", async () => {
    const wrongKey = "transistor_wrong_key_99";
    const error = await caught(client.whoAmI(wrongKey));
    expect(error).toMatchObject({ status: 401, retryable: false });
    expect(error.message).toMatch(/^Transistor answered HTTP 401 \(the API key was refused\)/);
    expect(error.message).toContain("Invalid API key");
    expect(error.message).not.toContain(wrongKey);
  });

  it("removes a key echoed back in an error body from the message", async () => {
    transistor.failNext({
      path: "/v1",
      status: 403,
      body: { errors: [{ title: "Forbidden", detail: `key ${API_KEY} may not read this` }] },
    });
    const error = await caught(client.whoAmI(API_KEY));
    expect(error).toMatchObject({ status: 403, retryable: false });
    expect(error.message).toContain("Forbidden: key [redacted] may not read this");
    expect(error.message).not.toContain(API_KEY);
  });
});

describe("shows", () => {
  it("lists every show across pages, with string ids and time zones", async () => {
    const added = Array.from({ length: 23 }, (_, index) =>
      transistor.addShow({
        title: `Show ${index + 1}`,
        timeZone: index === 0 ? null : "Europe/Berlin",
      }),
    );
    const shows = await client.listShows(API_KEY);
    expect(shows.map((show) => show.id).sort()).toEqual(added.map((show) => show.id).sort());
    expect(shows.find((show) => show.id === added[0]?.id)).toEqual({
      id: added[0]?.id,
      title: "Show 1",
      timeZone: null,
      slug: added[0]?.attributes.slug,
    });
    // Three pages of at most ten.
    const pages = transistor.requests.filter((r) => r.path === "/v1/shows");
    expect(pages.map((r) => r.query.get("pagination[page]"))).toEqual(["1", "2", "3"]);
  });

  it("gets a show by slug; an unknown one is a non-retryable 404", async () => {
    const show = transistor.addShow({ title: "By Slug", slug: "by-slug", timeZone: "Asia/Tokyo" });
    await expect(client.getShow(API_KEY, "by-slug")).resolves.toMatchObject({
      id: show.id,
      timeZone: "Asia/Tokyo",
    });
    const error = await caught(client.getShow(API_KEY, "no-such-show"));
    expect(error).toMatchObject({ status: 404, retryable: false });
    expect(error.message).toContain("Show not found");
  });

  it("never puts an id that could change the path into the URL", async () => {
    await expect(client.getShow(API_KEY, "../episodes")).rejects.toThrow(TypeError);
    expect(transistor.requests).toHaveLength(0);
  });
});

describe("upload and publish", () => {
  const audio = randomBytes(300 * 1024);

  it("uploads the audio with the exact content type, creates a draft, waits for processing and schedules it", async () => {
    const show = transistor.addShow({ title: "Flow", timeZone: "America/Los_Angeles" });
    const target = await client.authorizeUpload(API_KEY, "episode-1.mp3");
    expect(target).toMatchObject({ contentType: "audio/mpeg", expiresIn: 600 });
    expect(transistor.requests.at(-1)?.query.get("filename")).toBe("episode-1.mp3");

    const progress: number[] = [];
    await client.uploadAudio(
      target,
      () => Readable.from([audio]),
      audio.length,
      (sent) => progress.push(sent),
    );
    const put = transistor.requests.at(-1);
    expect(put?.method).toBe("PUT");
    expect(put?.headers["content-type"]).toBe("audio/mpeg");
    expect(put?.headers["x-api-key"]).toBeUndefined();
    const stored = [...transistor.uploads.values()].find((u) => u.audioUrl === target.audioUrl);
    expect(stored?.body?.equals(audio)).toBe(true);
    expect(progress.at(-1)).toBe(audio.length);

    const created = await client.createEpisode(API_KEY, {
      showId: show.id,
      title: "Episode 1: Beginnings",
      summary: "Short",
      description: "<p>Long notes</p>",
      audioUrl: target.audioUrl,
      transcriptText: "Hello and welcome.",
      season: 2,
      number: 7,
      type: "full",
    });
    expect(created).toMatchObject({
      status: "draft",
      audioProcessing: true,
      title: "Episode 1: Beginnings",
    });
    expect(typeof created.id).toBe("string");
    const post = transistor.requests.at(-1);
    expect(post?.headers["content-type"]).toMatch(/^application\/json/);
    expect(JSON.parse(post?.rawBody.toString() ?? "")).toEqual({
      episode: {
        show_id: show.id,
        title: "Episode 1: Beginnings",
        summary: "Short",
        description: "<p>Long notes</p>",
        audio_url: target.audioUrl,
        transcript_text: "Hello and welcome.",
        season: 2,
        number: 7,
        type: "full",
      },
    });

    const polls: boolean[] = [];
    for (let i = 0; i < 5; i += 1) {
      const episode = await client.getEpisode(API_KEY, created.id);
      polls.push(episode.audioProcessing);
      if (!episode.audioProcessing) break;
    }
    expect(polls).toEqual([true, true, false]);

    const at = new Date("2027-03-14T17:30:00Z");
    const publishedAt = transistorPublishedAt(at, "America/Los_Angeles");
    expect(publishedAt).toBe("2027-03-14 10:30:00");
    const scheduled = await client.publishEpisode(API_KEY, created.id, {
      status: "scheduled",
      publishedAt,
    });
    expect(scheduled.status).toBe("scheduled");
    expect(JSON.parse(transistor.requests.at(-1)?.rawBody.toString() ?? "")).toEqual({
      episode: { status: "scheduled", published_at: "2027-03-14 10:30:00" },
    });
    const published = await client.publishEpisode(API_KEY, created.id, { status: "published" });
    expect(published).toMatchObject({ status: "published", shareUrl: expect.any(String) });
  });

  it("finds a draft by title to adopt it", async () => {
    const show = transistor.addShow({ title: "Adopt" });
    const other = transistor.addShow({ title: "Other" });
    const target = await client.authorizeUpload(API_KEY, "a.mp3");
    await client.uploadAudio(target, () => Readable.from([audio]), audio.length);
    const mine = await client.createEpisode(API_KEY, {
      showId: show.id,
      title: "The Lost Episode",
      audioUrl: target.audioUrl,
    });
    await client.createEpisode(API_KEY, {
      showId: other.id,
      title: "The Lost Episode",
      audioUrl: target.audioUrl,
    });
    const found = await client.findEpisodes(API_KEY, {
      showId: show.id,
      query: "Lost Episode",
      status: "draft",
    });
    expect(found.map((episode) => episode.id)).toEqual([mine.id]);
    expect(transistor.requests.at(-1)?.query.get("status")).toBe("draft");
    await client.publishEpisode(API_KEY, mine.id, { status: "published" });
    await expect(
      client.findEpisodes(API_KEY, { showId: show.id, query: "Lost Episode", status: "draft" }),
    ).resolves.toEqual([]);
  });

  it("reports an expired signed URL as a 403 to authorize again", async () => {
    transistor.setUploadExpiresIn(-1);
    try {
      const target = await client.authorizeUpload(API_KEY, "late.mp3");
      const error = await caught(
        client.uploadAudio(target, () => Readable.from([audio]), audio.length),
      );
      expect(error.status).toBe(403);
      expect(error.message).toContain("authorize the upload again");
      expect(error.message).toContain("Request has expired");
    } finally {
      transistor.setUploadExpiresIn(600);
    }
  });

  it("is refused by the storage when the content type is not the one authorized", async () => {
    const target = await client.authorizeUpload(API_KEY, "wrong.mp3");
    const error = await caught(
      client.uploadAudio(
        { ...target, contentType: "audio/mp3" },
        () => Readable.from([audio]),
        audio.length,
      ),
    );
    expect(error.status).toBe(403);
    expect(error.message).toContain("SignatureDoesNotMatch");
  });

  it("retries a failed upload with a fresh stream", async () => {
    const target = await client.authorizeUpload(API_KEY, "retry.mp3");
    transistor.failNext({ method: "PUT", path: /^\/_upload\//, status: 503 });
    let streams = 0;
    await client.uploadAudio(
      target,
      () => {
        streams += 1;
        return Readable.from([audio]);
      },
      audio.length,
    );
    expect(streams).toBe(2);
    const stored = [...transistor.uploads.values()].find((u) => u.audioUrl === target.audioUrl);
    expect(stored?.body?.equals(audio)).toBe(true);
  });

  it("stops when its signal aborts, rejecting with the signal's reason", async () => {
    const target = await client.authorizeUpload(API_KEY, "stop.mp3");
    const stopping = new Error("worker stopping");
    const controller = new AbortController();
    controller.abort(stopping);
    let streams = 0;
    const upload = client.uploadAudio(
      target,
      () => {
        streams += 1;
        return Readable.from([audio]);
      },
      audio.length,
      undefined,
      controller.signal,
    );
    await expect(upload).rejects.toBe(stopping);
    expect(streams).toBe(1);
  });

  it("rejects an invalid publish status with a readable 422", async () => {
    const show = transistor.addShow({ title: "Status" });
    const episode = await client.createEpisode(API_KEY, {
      showId: show.id,
      title: "x",
      audioUrl: "https://cdn.example.com/x.mp3",
    });
    const error = await caught(
      client.publishEpisode(API_KEY, episode.id, { status: "live" as "published" }),
    );
    expect(error).toMatchObject({ status: 422, retryable: false });
    expect(error.message).toBe(
      `Transistor answered HTTP 422 (Transistor rejected the data) to PATCH /v1/episodes/${episode.id}/publish: Unprocessable Entity: Status must be published, scheduled or draft`,
    );
  });
});

describe("rate limit", () => {
  it("is modelled by the stand-in: past the limit, 429 for the whole block, without Retry-After", async () => {
    const strict = await startTransistorStandIn({
      apiKey: API_KEY,
      rateLimit: { limit: 3, windowMs: 60_000, blockMs: 400 },
    });
    try {
      const get = () => fetch(`${strict.url}/v1`, { headers: { "x-api-key": API_KEY } });
      const statuses: number[] = [];
      for (let i = 0; i < 5; i += 1) statuses.push((await get()).status);
      expect(statuses).toEqual([200, 200, 200, 429, 429]);
      const refused = await get();
      expect(refused.headers.get("retry-after")).toBeNull();
      expect(await refused.json()).toEqual({ errors: [{ title: "Too Many Requests" }] });
      await new Promise((resolve) => setTimeout(resolve, 450));
      expect((await get()).status).toBe(200);
    } finally {
      await strict.close();
    }
  });

  it("paces requests per key so the 10-per-window limit is never hit", async () => {
    const paced = await startTransistorStandIn({
      apiKey: API_KEY,
      rateLimit: { limit: 4, windowMs: 500, blockMs: 5000 },
    });
    try {
      const pacedClient = createTransistorClient({
        apiUrl: paced.url,
        // The stand-in's window plus a margin for requests that take longer on their way.
        rateLimit: { limit: 4, intervalMs: 800 },
      });
      const answers = await Promise.all(
        Array.from({ length: 10 }, () => pacedClient.whoAmI(API_KEY)),
      );
      expect(answers).toHaveLength(10);
      expect(paced.rateLimitedCount).toBe(0);
      expect(paced.requests).toHaveLength(10);
    } finally {
      await paced.close();
    }
  });

  it("waits out a 429 for its Retry-After, then goes on", async () => {
    const limited = await startTransistorStandIn({
      apiKey: API_KEY,
      rateLimit: { limit: 3, windowMs: 10_000, blockMs: 1000 },
      retryAfterSeconds: 1,
    });
    try {
      const unpaced = createTransistorClient({
        apiUrl: limited.url,
        rateLimit: { limit: 1000, intervalMs: 1000, blockedWaitMs: 60_000 },
      });
      for (let i = 0; i < 4; i += 1) await unpaced.whoAmI(API_KEY);
      expect(limited.rateLimitedCount).toBe(1);
      const [, , , refused, retried] = limited.requests;
      expect(limited.requests).toHaveLength(5);
      // Honoured Retry-After (1 s), not the 60 s default for a 429 without one.
      expect((retried?.receivedAt ?? 0) - (refused?.receivedAt ?? 0)).toBeGreaterThanOrEqual(950);
    } finally {
      await limited.close();
    }
  });

  it("gives up after three 429s with a retryable error that says how long to wait", async () => {
    transistor.failNext({ path: "/v1", status: 429, times: 4 });
    const error = await caught(client.whoAmI(API_KEY));
    expect(error).toMatchObject({ status: 429, retryable: true, retryAfterMs: 50 });
    expect(error.message).toContain("rate limit");
    expect(transistor.requests).toHaveLength(4);
  });
});

describe("transient failures", () => {
  it("retries a 5xx on a GET a couple of times", async () => {
    transistor.failNext({ path: "/v1", status: 503, times: 2 });
    await expect(client.whoAmI(API_KEY)).resolves.toEqual({ name: "Ada Producer" });
    expect(transistor.requests).toHaveLength(3);
  });

  it("throws a retryable error when the 5xx persists", async () => {
    transistor.failNext({ path: "/v1", status: 502, times: 3 });
    const error = await caught(client.whoAmI(API_KEY));
    expect(error).toMatchObject({ status: 502, retryable: true });
    expect(transistor.requests).toHaveLength(3);
  });

  it("does not repeat a create whose answer was lost: the episode may exist", async () => {
    const show = transistor.addShow({ title: "Lost answers" });
    transistor.dropNext({ method: "POST", path: "/v1/episodes" });
    const error = await caught(
      client.createEpisode(API_KEY, {
        showId: show.id,
        title: "Once",
        audioUrl: "https://cdn.example.com/1.mp3",
      }),
    );
    expect(error).toMatchObject({ status: null, retryable: true });
    transistor.failNext({ method: "POST", path: "/v1/episodes", status: 500 });
    await expect(
      client.createEpisode(API_KEY, {
        showId: show.id,
        title: "Once",
        audioUrl: "https://cdn.example.com/1.mp3",
      }),
    ).rejects.toMatchObject({ status: 500, retryable: true });
    expect(transistor.requests.filter((r) => r.method === "POST")).toHaveLength(2);
  });
});
