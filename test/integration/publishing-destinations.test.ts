/**
 * Publishing to Transistor and YouTube through the API, against stand-ins that follow the
 * services' documented protocols: connecting both (an API key checked with Transistor; Google's
 * consent with PKCE), one episode published everywhere with its chapters and captions while a
 * subscriber watches, an interrupted upload resumed at the byte YouTube holds, a job run twice,
 * rate limits and the daily quota, a revoked grant, another producer's reach, and secrets that
 * appear nowhere but sealed in the database.
 */
import { randomBytes } from "node:crypto";
import { readFile } from "node:fs/promises";
import { Writable } from "node:stream";
import pino from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { publishToTransistor } from "../../src/services/distribution/transistor-publisher.ts";
import { publishToYouTube } from "../../src/services/distribution/youtube-publisher.ts";
import { createSecretBox } from "../../src/services/secret-box.ts";
import { makeMediaDir, makeVideoWithAudio, testMediaTools } from "../support/media.ts";
import { waitUntil } from "../support/pipeline.ts";
import { processLocalEpisode } from "../support/podcast.ts";
import { type Scenario, startScenario, type TestProducer } from "../support/scenario.ts";
import { follow, subscribeWs } from "../support/subscriptions.ts";
import { startTransistorStandIn, type TransistorStandIn } from "../support/transistor-stand-in.ts";
import {
  googleErrorBody,
  startYouTubeStandIn,
  type YouTubeStandIn,
} from "../support/youtube-stand-in.ts";

const TRANSISTOR_KEY = "tr_live_0123456789abcdef";
const CLIENT_ID = "podflow-test.apps.googleusercontent.com";
const CLIENT_SECRET = "GOCSPX-test-client-secret";
const SECRET_KEY = Buffer.alloc(32, 7).toString("base64");
const CHUNK = 262_144;

const tools = testMediaTools();
let media: Awaited<ReturnType<typeof makeMediaDir>>;
let transistor: TransistorStandIn;
let youtube: YouTubeStandIn;
let scenario: Scenario;
let pat: TestProducer;
let sam: TestProducer;
const logLines: string[] = [];
let episodes: Array<{ id: string; uuid: string }> = [];

const CHAPTERS = [
  { start: 0, end: 20, title: "Welcome" },
  { start: 20, end: 45, title: "The news" },
  { start: 45, end: 70, title: "Questions & answers" },
];
const SEGMENTS = [
  { start: 0, end: 2.5, text: "Hello and welcome to the show." },
  { start: 2.5, end: 5, text: "Today: publishing everywhere at once." },
];

beforeAll(async () => {
  media = await makeMediaDir();
  const video = await readFile(await makeVideoWithAudio(tools, media.dir, 6));
  transistor = await startTransistorStandIn({ apiKey: TRANSISTOR_KEY, processingPolls: 2 });
  transistor.addShow({ title: "Tech Talk", timeZone: "Europe/Berlin" });
  youtube = await startYouTubeStandIn({ clientId: CLIENT_ID, clientSecret: CLIENT_SECRET });
  const logs = new Writable({
    write(chunk, _encoding, done) {
      logLines.push(String(chunk));
      done();
    },
  });
  scenario = await startScenario({
    env: {
      PODFLOW_MEDIA_ENGINE: "local",
      PODFLOW_SECRET_KEY: SECRET_KEY,
      TRANSISTOR_API_URL: transistor.url,
      GOOGLE_OAUTH_CLIENT_ID: CLIENT_ID,
      GOOGLE_OAUTH_CLIENT_SECRET: CLIENT_SECRET,
      GOOGLE_OAUTH_AUTHORIZE_URL: youtube.authorizeUrl,
      GOOGLE_OAUTH_TOKEN_URL: youtube.tokenUrl,
      YOUTUBE_API_URL: youtube.apiUrl,
      YOUTUBE_UPLOAD_URL: youtube.uploadUrl,
      PODFLOW_YOUTUBE_CHUNK_BYTES: String(CHUNK),
    },
    start: {
      logger: pino({ level: "debug" }, logs),
      distribution: { transistorPollMs: 50 },
    },
  });
  pat = await scenario.producer();
  sam = await scenario.producer();
  episodes = await Promise.all(
    ["Everywhere", "Interrupted", "Quota", "Revoked", "Sam's"].map((title, i) =>
      processLocalEpisode(scenario, i === 4 ? sam : pat, { title, file: video, showId: null }),
    ),
  );
  // A transcript and chapters as speech recognition and chapter detection would have made them
  // (this machine has no speech model); the show notes too.
  for (const { uuid } of episodes) {
    await scenario
      .em()
      .execute(
        "update episodes set description = ?, chapters = ?, transcript_segments = ?, transcript = ?, audio_duration_seconds = 90 where id = ?",
        [
          "Show notes <b>with</b> a link: https://example.com",
          JSON.stringify(CHAPTERS),
          JSON.stringify(SEGMENTS),
          SEGMENTS.map((s) => s.text).join(" "),
          uuid,
        ],
      );
  }
}, 400_000);

afterAll(async () => {
  await scenario?.stop();
  await transistor?.close();
  await youtube?.close();
  await media?.cleanup();
});

const PUBLICATIONS = `publications { id destination status bytesSent bytesTotal remoteId remoteUrl failureReason waitingReason waitingUntil captionsNote }`;

interface PublicationView {
  id: string;
  destination: string;
  status: string;
  bytesSent: number;
  bytesTotal: number | null;
  remoteId: string | null;
  remoteUrl: string | null;
  failureReason: string | null;
  waitingReason: string | null;
  waitingUntil: string | null;
  captionsNote: string | null;
}

async function publish(producer: TestProducer, input: Record<string, unknown>) {
  const answer = await producer.gql<{
    publishEpisode: {
      __typename: string;
      message?: string;
      episode?: { publications: PublicationView[] };
    };
  }>(
    `mutation($input: PublishEpisodeInput!) { publishEpisode(input: $input) { __typename
       ... on EpisodePayload { episode { ${PUBLICATIONS} } } ... on Error { message } } }`,
    { input },
  );
  return answer.body.data?.publishEpisode;
}

async function publications(producer: TestProducer, episodeId: string) {
  const answer = await producer.gql<{ episode: { publications: PublicationView[] } | null }>(
    `query($id: ID!) { episode(id: $id) { ${PUBLICATIONS} } }`,
    { id: episodeId },
  );
  return answer.body.data?.episode?.publications ?? [];
}

function waitForPublication(
  producer: TestProducer,
  episodeId: string,
  destination: string,
  done: (p: PublicationView) => boolean,
  timeoutMs = 60_000,
) {
  return waitUntil(
    async () =>
      (await publications(producer, episodeId)).find((p) => p.destination === destination),
    (p) => Boolean(p && done(p)),
    `the ${destination} publication of ${episodeId}`,
    timeoutMs,
  ) as Promise<PublicationView>;
}

async function connectYouTube(producer: TestProducer) {
  const started = await producer.gql<{
    connectYouTube: { __typename: string; consentUrl: string; message?: string };
  }>(
    `mutation { connectYouTube { __typename ... on YouTubeConsent { consentUrl } ... on Error { message } } }`,
  );
  const consentUrl = started.body.data?.connectYouTube.consentUrl as string;
  expect(consentUrl, JSON.stringify(started.body)).toMatch(/^http/);
  // The producer's browser: Google's consent page redirects back to Podflow's callback.
  const consent = await fetch(consentUrl, { redirect: "manual" });
  expect(consent.status).toBe(302);
  const callback = consent.headers.get("location") as string;
  expect(callback.startsWith(`${scenario.url}/oauth/youtube/callback?`)).toBe(true);
  const page = await fetch(callback);
  return { consentUrl, callback, status: page.status, text: await page.text() };
}

async function connectionRow(userId: string, service: string) {
  const rows = await scenario
    .em()
    .execute("select * from publishing_connections where user_id = ? and service = ?", [
      userId,
      service,
    ]);
  return rows[0] as Record<string, string | null> | undefined;
}

const everything = (value: unknown) => JSON.stringify(value);

describe("connecting Transistor and YouTube", () => {
  it("checks a Transistor key with Transistor, and keeps it only sealed", async () => {
    const refused = await pat.gql<{ connectTransistor: { __typename: string; message: string } }>(
      `mutation($input: ConnectTransistorInput!) { connectTransistor(input: $input) { __typename ... on Error { message } } }`,
      { input: { apiKey: "tr_wrong_key_000000" } },
    );
    expect(refused.body.data?.connectTransistor).toMatchObject({
      __typename: "ValidationError",
      message: expect.stringMatching(/Transistor refused this API key/),
    });
    expect(await connectionRow(pat.userId, "transistor")).toBeUndefined();

    const connected = await pat.gql<{
      connectTransistor: {
        connection: { status: string; accountName: string; transistorShow: { title: string } };
        transistorShows: { title: string }[];
      };
    }>(
      `mutation($input: ConnectTransistorInput!) { connectTransistor(input: $input) {
         ... on ConnectionPayload { connection { status accountName transistorShow { title } } transistorShows { title } } } }`,
      { input: { apiKey: TRANSISTOR_KEY } },
    );
    expect(connected.body.data?.connectTransistor.connection).toMatchObject({
      status: "CONNECTED",
      transistorShow: { title: "Tech Talk" },
    });
    expect(everything(connected.body)).not.toContain(TRANSISTOR_KEY);
    const row = await connectionRow(pat.userId, "transistor");
    expect(row?.secret).toMatch(/^v1\./);
    expect(everything(row)).not.toContain(TRANSISTOR_KEY);
  });

  it("connects YouTube through Google's consent with PKCE, once per consent", async () => {
    const connected = await connectYouTube(pat);
    expect(connected.status).toBe(200);
    expect(connected.text).toContain("YouTube is connected: Stand-in Channel");
    const authorize = new URL(connected.consentUrl);
    expect(authorize.searchParams.get("code_challenge_method")).toBe("S256");
    expect(authorize.searchParams.get("access_type")).toBe("offline");
    const tokenRequest = youtube.requests.find((r) => r.path === "/token");
    expect(new URLSearchParams(tokenRequest?.rawBody.toString()).get("code_verifier")).toMatch(
      /^[A-Za-z0-9._~-]{43,128}$/,
    );
    // The same callback again: its state was single-use.
    const replay = await fetch(connected.callback);
    expect(replay.status).toBe(400);
    expect(await replay.text()).toMatch(/expired or was already used/);

    const row = await connectionRow(pat.userId, "youtube");
    expect(row).toMatchObject({ status: "CONNECTED", account_name: "Stand-in Channel" });
    const refreshToken = scenario.podflow.deps.distribution.secrets?.open(
      row?.secret as string,
      row?.id as string,
    );
    expect(refreshToken).toBeTruthy();
    expect(everything(row)).not.toContain(refreshToken);

    const listed = await pat.gql(
      `{ publishingConnections { service status accountName brokenReason } }`,
    );
    expect(listed.body.data).toEqual({
      publishingConnections: [
        {
          service: "TRANSISTOR",
          status: "CONNECTED",
          accountName: expect.any(String),
          brokenReason: null,
        },
        {
          service: "YOUTUBE",
          status: "CONNECTED",
          accountName: "Stand-in Channel",
          brokenReason: null,
        },
      ],
    });
  });

  it("says so when the producer declines, and changes nothing", async () => {
    youtube.setConsent("deny");
    try {
      const declined = await connectYouTube(sam);
      expect(declined.status).toBe(400);
      expect(declined.text).toContain("the consent was declined");
      expect((await connectionRow(sam.userId, "youtube"))?.status).toBe("PENDING");
    } finally {
      youtube.setConsent("approve");
    }
  });
});

describe("publishing to Transistor and YouTube", () => {
  it("publishes one episode to both with chapters and captions, seen live by a subscriber", async () => {
    const [episode] = episodes;
    if (!episode) throw new Error("no episode");
    const updates = await follow<{
      episodeUpdated: {
        publications: Array<{ destination: string; status: string; bytesSent: number }>;
      };
    }>(
      subscribeWs,
      scenario.podflow,
      pat.token,
      `subscription($id: ID!) { episodeUpdated(id: $id) { publications { destination status bytesSent } } }`,
      { id: episode.id },
    );
    // Each chunk answered a little late, as over a real link, so the upload's steps are commits
    // of their own that the subscriber sees.
    youtube.delayNext({
      method: "PUT",
      path: "/upload/youtube/v3/videos",
      delayMs: 300,
      times: 20,
    });
    const answer = await publish(pat, {
      episodeId: episode.id,
      destinations: ["TRANSISTOR", "YOUTUBE"],
    });
    expect(answer?.__typename, everything(answer)).toBe("EpisodePayload");
    expect(answer?.episode?.publications.map((p) => [p.destination, p.status])).toEqual([
      ["TRANSISTOR", "QUEUED"],
      ["YOUTUBE", "QUEUED"],
    ]);

    const onYouTube = await waitForPublication(
      pat,
      episode.id,
      "YOUTUBE",
      (p) => p.status === "PUBLISHED",
    );
    const onTransistor = await waitForPublication(
      pat,
      episode.id,
      "TRANSISTOR",
      (p) => p.status === "PUBLISHED",
    );

    // Transistor: one episode, its MP3 uploaded with the exact content type, then published.
    expect(transistor.episodes.size).toBe(1);
    const remote = [...transistor.episodes.values()][0];
    expect(remote?.created).toMatchObject({
      title: "Everywhere",
      transcript_text: SEGMENTS.map((s) => s.text).join(" "),
    });
    expect(remote?.attributes.status).toBe("published");
    expect(onTransistor.remoteId).toBe(remote?.id);
    const upload = [...transistor.uploads.values()][0];
    const [stored] = await scenario
      .em()
      .execute("select audio_file_id, audio_url from episodes where id = ?", [episode.uuid]);
    const mp3 = await scenario.podflow.deps.engines.local?.openOutput(
      { fileId: stored?.audio_file_id, url: stored?.audio_url },
      "podcast MP3",
    );
    expect(upload?.contentType).toBe("audio/mpeg");
    expect(upload?.body?.length).toBe(mp3?.bytes);
    expect(upload?.body?.equals((await mp3?.read(0, mp3.bytes)) ?? Buffer.alloc(0))).toBe(true);

    // YouTube: one video with the chapters in its description, and the transcript as captions.
    expect(youtube.videos.size).toBe(1);
    const video = [...youtube.videos.values()][0];
    expect(onYouTube.remoteId).toBe(video?.id);
    expect(onYouTube.remoteUrl).toBe(`https://www.youtube.com/watch?v=${video?.id}`);
    expect(video?.snippet.title).toBe("Everywhere");
    const description = String(video?.snippet.description);
    expect(description).toContain("0:00 Welcome\n0:20 The news\n0:45 Questions & answers");
    expect(description).not.toMatch(/[<>]/);
    expect(video?.status.privacyStatus).toBe("public");
    expect(onYouTube.bytesSent).toBe(onYouTube.bytesTotal);
    expect(onYouTube.bytesTotal).toBeGreaterThan(CHUNK);
    const captions = [...youtube.captions.values()].filter((c) => c.videoId === video?.id);
    expect(captions).toHaveLength(1);
    expect(captions[0]?.body).toContain("00:00:00,000 --> ");
    expect(captions[0]?.body).toContain("Hello and welcome to the show.");

    // The subscriber saw the YouTube publication move QUEUED → UPLOADING (part way) → PUBLISHED.
    const youtubeStates = updates.data.flatMap((d) =>
      d.episodeUpdated.publications.filter((p) => p.destination === "YOUTUBE"),
    );
    // (A subscriber gets the latest state of each burst of changes: QUEUED may be folded into the
    // first upload step on a busy machine; the mutation's answer above showed it.)
    const statuses = youtubeStates.map((p) => p.status).filter((s, i, all) => s !== all[i - 1]);
    expect(["QUEUED", "UPLOADING"]).toContain(statuses[0]);
    expect(statuses).toContain("UPLOADING");
    expect(statuses.at(-1)).toBe("PUBLISHED");
    expect(
      youtubeStates.some(
        (p) =>
          p.status === "UPLOADING" && p.bytesSent > 0 && p.bytesSent < (onYouTube.bytesTotal ?? 0),
      ),
    ).toBe(true);
    updates.close();
    youtube.clearFaults();
  });

  it("runs a job twice and still has one Transistor episode and one video", async () => {
    const [episode] = episodes;
    if (!episode) throw new Error("no episode");
    const deps = scenario.podflow.deps;
    const rows = (await scenario
      .em()
      .execute("select id, destination, run, progress from publications where episode_id = ?", [
        episode.uuid,
      ])) as Array<{ id: string; destination: string; run: number }>;
    // As if each run died just after the service answered, before Podflow saved the remote id:
    // the session (YouTube) and the creation marker (Transistor) are all a rerun has.
    await scenario
      .em()
      .execute(
        "update publications set status = 'UPLOADING', remote_id = null, remote_url = null where episode_id = ?",
        [episode.uuid],
      );
    for (const row of rows) {
      const payload = { publicationId: row.id, run: row.run };
      if (row.destination === "TRANSISTOR") await publishToTransistor(deps, payload);
      else await publishToYouTube(deps, payload);
    }
    expect(transistor.episodes.size).toBe(1);
    expect(youtube.videos.size).toBe(1);
    const after = await publications(pat, episode.id);
    expect(after.map((p) => [p.destination, p.status, p.remoteId])).toEqual([
      ["TRANSISTOR", "PUBLISHED", [...transistor.episodes.keys()][0]],
      ["YOUTUBE", "PUBLISHED", [...youtube.videos.keys()][0]],
    ]);
  });

  it("resumes an interrupted upload at the byte YouTube holds, never re-sending what it has", async () => {
    const episode = episodes[1];
    if (!episode) throw new Error("no episode");
    // The first chunk's connection is cut after 100,000 of its bytes landed: the worker's
    // request fails as if the worker had been killed, and the job runs again.
    youtube.interruptNextChunk(100_000);
    const answer = await publish(pat, { episodeId: episode.id, destinations: ["YOUTUBE"] });
    expect(answer?.__typename).toBe("EpisodePayload");
    const done = await waitForPublication(
      pat,
      episode.id,
      "YOUTUBE",
      (p) => p.status === "PUBLISHED",
      120_000,
    );
    const session = [...youtube.sessions.values()].find((s) => s.videoId === done.remoteId);
    expect(session).toBeDefined();
    if (!session) return;
    expect(youtube.bytesAcceptedTwice(session.id)).toBe(0);
    expect(youtube.receivedBytes(session.id).length).toBe(done.bytesTotal);
    // The run after the cut asked where to continue, and continued there.
    const query = youtube.requests.find(
      (r) => r.method === "PUT" && r.headers["content-range"]?.startsWith("bytes */"),
    );
    expect(query).toBeDefined();
    expect(session.chunks.some((c) => c.start === 100_000)).toBe(true);
  });

  it("waits for YouTube's daily quota instead of failing, and fails with the reason on other refusals", async () => {
    const episode = episodes[2];
    if (!episode) throw new Error("no episode");
    youtube.exhaustQuota("uploads");
    try {
      await publish(pat, { episodeId: episode.id, destinations: ["YOUTUBE"] });
      const waiting = await waitForPublication(pat, episode.id, "YOUTUBE", (p) =>
        Boolean(p.waitingUntil),
      );
      expect(waiting.status).not.toBe("FAILED");
      expect(waiting.waitingReason).toMatch(/daily quota.*midnight Pacific/);
      const until = new Date(waiting.waitingUntil as string);
      const pacific = new Intl.DateTimeFormat("en-US", {
        timeZone: "America/Los_Angeles",
        hour: "2-digit",
        minute: "2-digit",
        hourCycle: "h23",
      }).format(until);
      expect(pacific).toBe("00:00");
      expect(until.getTime() - Date.now()).toBeLessThanOrEqual(25 * 3600_000);
      const queued = await scenario
        .em()
        .execute(
          "select start_after from pgboss.job where name = 'publish-to-youtube' and data->>'publicationId' = ? and state = 'created'",
          [waiting.id],
        );
      // The job that comes back is there before the publication says it waits.
      expect(new Date(queued[0]?.start_after as string).getTime()).toBe(until.getTime());
    } finally {
      youtube.resetQuota();
    }

    // The channel's own upload limit is a refusal: FAILED with YouTube's reason.
    const other = episodes[3];
    if (!other) throw new Error("no episode");
    youtube.failNext({
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
    await publish(pat, { episodeId: other.id, destinations: ["YOUTUBE"] });
    const failed = await waitForPublication(pat, other.id, "YOUTUBE", (p) => p.status === "FAILED");
    expect(failed.failureReason).toMatch(/uploadLimitExceeded|number of videos/);
    // retryPublication starts it again, and it goes through.
    const retried = await pat.gql<{ retryPublication: { __typename: string } }>(
      `mutation($id: ID!) { retryPublication(id: $id) { __typename } }`,
      { id: failed.id },
    );
    expect(retried.body.data?.retryPublication.__typename).toBe("PublicationPayload");
    await waitForPublication(pat, other.id, "YOUTUBE", (p) => p.status === "PUBLISHED");
  });

  it("waits out Transistor's 429 and still makes one episode", async () => {
    const episode = episodes[2];
    if (!episode) throw new Error("no episode");
    const before = transistor.episodes.size;
    transistor.failNext({
      method: "POST",
      path: "/v1/episodes",
      status: 429,
      headers: { "retry-after": "1" },
    });
    await publish(pat, { episodeId: episode.id, destinations: ["TRANSISTOR"] });
    await waitForPublication(pat, episode.id, "TRANSISTOR", (p) => p.status === "PUBLISHED");
    expect(transistor.episodes.size).toBe(before + 1);
    expect(
      transistor.requests.filter((r) => r.method === "POST" && r.path === "/v1/episodes").length,
    ).toBeGreaterThanOrEqual(2);
  });

  it("marks the connection broken when the producer revoked the grant", async () => {
    const episode = episodes[3];
    if (!episode) throw new Error("no episode");
    const row = await connectionRow(pat.userId, "youtube");
    const secrets = scenario.podflow.deps.distribution.secrets;
    youtube.revoke(secrets?.open(row?.secret as string, row?.id as string) as string);
    youtube.expireAccessTokens();
    await scenario
      .em()
      .execute("update publishing_connections set access_token_expires_at = now() where id = ?", [
        row?.id,
      ]);
    await publish(pat, { episodeId: episode.id, destinations: ["YOUTUBE"] });
    const failed = await waitForPublication(
      pat,
      episode.id,
      "YOUTUBE",
      (p) => p.status === "FAILED",
    );
    expect(failed.failureReason).toMatch(/connect YouTube again/);
    const listed = await pat.gql<{
      publishingConnections: Array<{ service: string; status: string; brokenReason: string }>;
    }>(`{ publishingConnections { service status brokenReason } }`);
    expect(
      listed.body.data?.publishingConnections.find((c) => c.service === "YOUTUBE"),
    ).toMatchObject({
      status: "BROKEN",
      brokenReason: expect.stringMatching(/connect YouTube again/),
    });
    // Publishing again is refused up front, and says why.
    const refused = await publish(pat, { episodeId: episode.id, destinations: ["YOUTUBE"] });
    expect(refused).toMatchObject({
      __typename: "ConflictError",
      message: expect.stringMatching(/broken/),
    });
  });

  it("never lets another producer use a connection or touch a publication", async () => {
    const samsEpisode = episodes[4];
    const patsEpisode = episodes[0];
    if (!samsEpisode || !patsEpisode) throw new Error("no episode");
    const before = await scenario.em().execute("select count(*)::int as n from publications");
    const refused = await publish(sam, { episodeId: samsEpisode.id, destinations: ["TRANSISTOR"] });
    expect(refused).toMatchObject({
      __typename: "ConflictError",
      message: expect.stringMatching(/Transistor is not connected/),
    });
    const notHis = await publish(sam, { episodeId: patsEpisode.id, destinations: ["YOUTUBE"] });
    expect(notHis?.__typename).toBe("NotFoundError");
    const patsPublication = (await publications(pat, patsEpisode.id))[0];
    const retry = await sam.gql<{ retryPublication: { __typename: string } }>(
      `mutation($id: ID!) { retryPublication(id: $id) { __typename } }`,
      { id: patsPublication?.id },
    );
    expect(retry.body.data?.retryPublication.__typename).toBe("NotFoundError");
    const shows = await sam.gql<{ transistorShows: unknown }>(`{ transistorShows { title } }`);
    expect(everything(shows.body)).toMatch(/not connected/);
    expect(await scenario.em().execute("select count(*)::int as n from publications")).toEqual(
      before,
    );
  });

  it("re-seals a connection's secret with a new key once the key is rotated", async () => {
    const episode = episodes[1];
    if (!episode) throw new Error("no episode");
    const distribution = scenario.podflow.deps.distribution;
    const old = (await connectionRow(pat.userId, "transistor"))?.secret as string;
    // PODFLOW_SECRET_KEY=new,old: the new key seals, both open.
    distribution.secrets = createSecretBox([randomBytes(32), Buffer.from(SECRET_KEY, "base64")]);
    expect(distribution.secrets.isStale(old)).toBe(true);
    await publish(pat, { episodeId: episode.id, destinations: ["TRANSISTOR"] });
    await waitForPublication(pat, episode.id, "TRANSISTOR", (p) => p.status === "PUBLISHED");
    const row = await connectionRow(pat.userId, "transistor");
    expect(row?.secret).not.toBe(old);
    expect(distribution.secrets.isStale(row?.secret as string)).toBe(false);
    expect(distribution.secrets.open(row?.secret as string, row?.id as string)).toBe(
      TRANSISTOR_KEY,
    );
  });

  it("keeps every secret out of the logs and the API's answers", async () => {
    const secrets = scenario.podflow.deps.distribution.secrets;
    const rows = (await scenario
      .em()
      .execute("select id, secret, access_token from publishing_connections")) as Array<{
      id: string;
      secret: string | null;
      access_token: string | null;
    }>;
    const plain = rows.flatMap((row) =>
      [row.secret, row.access_token]
        .filter((v): v is string => Boolean(v))
        .map((v) => secrets?.open(v, row.id) as string),
    );
    plain.push(TRANSISTOR_KEY, CLIENT_SECRET);
    expect(plain.length).toBeGreaterThanOrEqual(3);
    const logs = logLines.join("");
    expect(logs).toContain("episode published to YouTube");
    for (const secret of plain) expect(logs).not.toContain(secret);
    const answer = await pat.gql(
      `{ publishingConnections { service status accountName updatedAt } }`,
    );
    for (const secret of plain) expect(everything(answer.body)).not.toContain(secret);
  });
});
