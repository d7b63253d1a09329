/**
 * A worker killed (SIGKILL, its whole process group) in the middle of a YouTube upload: another
 * Podflow process picks the job up after the missed heartbeat, asks YouTube which bytes it holds
 * and sends only the rest — never a byte twice, and one video.
 */
import { randomBytes } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import { tmpdir } from "node:os";
import path from "node:path";
import pino from "pino";
import send from "send";
import { afterAll, beforeAll, expect, it } from "vitest";
import { type Orm, openOrm } from "../../src/database/orm.ts";
import { createUser, issueToken } from "../../src/services/accounts.ts";
import { type CrashRig, signalGroup, startCrashRig } from "../support/crash.ts";
import { createTestDatabase } from "../support/database.ts";
import { graphql } from "../support/http.ts";
import { waitUntil } from "../support/wait.ts";
import { startYouTubeStandIn, type YouTubeStandIn } from "../support/youtube-stand-in.ts";

const CHUNK = 262_144;
const VIDEO_BYTES = 12 * CHUNK + 1_234;

let database: Awaited<ReturnType<typeof createTestDatabase>>;
let rig: CrashRig;
let youtube: YouTubeStandIn;
let orm: Orm;
let files: { dir: string; server: Server; url: string };
const video = randomBytes(VIDEO_BYTES);

beforeAll(async () => {
  database = await createTestDatabase();
  youtube = await startYouTubeStandIn({ clientId: "crash-client", clientSecret: "crash-secret" });
  // Where Ittybit would serve the processed MP4: byte ranges, each answered a little slowly so
  // the upload takes a few seconds and the kill lands in its middle.
  const dir = await mkdtemp(path.join(tmpdir(), "podflow-crash-video-"));
  await writeFile(path.join(dir, "video.mp4"), video);
  const server = createServer((req, res) => {
    setTimeout(() => send(req, "/video.mp4", { root: dir }).pipe(res), 250);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  const port = typeof address === "object" && address ? address.port : 0;
  files = { dir, server, url: `http://127.0.0.1:${port}` };
  rig = await startCrashRig({
    databaseUrl: database.url,
    env: {
      PODFLOW_SECRET_KEY: Buffer.alloc(32, 3).toString("base64"),
      GOOGLE_OAUTH_CLIENT_ID: "crash-client",
      GOOGLE_OAUTH_CLIENT_SECRET: "crash-secret",
      GOOGLE_OAUTH_AUTHORIZE_URL: youtube.authorizeUrl,
      GOOGLE_OAUTH_TOKEN_URL: youtube.tokenUrl,
      YOUTUBE_API_URL: youtube.apiUrl,
      YOUTUBE_UPLOAD_URL: youtube.uploadUrl,
      PODFLOW_YOUTUBE_CHUNK_BYTES: String(CHUNK),
    },
  });
  orm = await openOrm(database.url, pino({ level: "silent" }));
}, 120_000);

afterAll(async () => {
  await rig?.stop();
  await orm?.close();
  await youtube?.close();
  await new Promise((resolve) => files?.server.close(resolve));
  if (files) await rm(files.dir, { recursive: true, force: true });
  await database?.drop();
});

it("resumes a YouTube upload killed half-way at the byte YouTube holds, on another worker", async () => {
  const first = await rig.spawn({
    // The first worker's file server is listed as an output host (the rig lists Ittybit's).
    env: { PODFLOW_OUTPUT_HOSTS: `${new URL(rig.standIn.url).host},${new URL(files.url).host}` },
  });
  const em = orm.em.fork();
  const user = await createUser(em, `crash-publish-${Date.now()}@example.com`);
  const { secret } = await issueToken(em, user, "test");
  const gql = <T>(query: string, variables?: Record<string, unknown>) =>
    graphql<T>(first.url, query, variables, { authorization: `Bearer ${secret}` });

  // Connect YouTube as a producer's browser would.
  const consent = await gql<{ connectYouTube: { consentUrl: string } }>(
    `mutation { connectYouTube { ... on YouTubeConsent { consentUrl } } }`,
  );
  const back = await fetch(consent.body.data?.connectYouTube.consentUrl as string, {
    redirect: "manual",
  });
  expect((await fetch(back.headers.get("location") as string)).status).toBe(200);

  // A processed episode whose MP4 Ittybit serves.
  const episodeId = crypto.randomUUID();
  await em.execute(
    `insert into episodes (id, user_id, title, status, engine, video_url, audio_url, created_at, updated_at)
     values (?, ?, 'Killed mid-upload', 'PROCESSED', 'ittybit', ?, ?, now(), now())`,
    [episodeId, user.id, `${files.url}/video.mp4`, `${files.url}/audio.mp3`],
  );
  const globalId = Buffer.from(`Episode:${episodeId}`).toString("base64");
  const published = await gql<{ publishEpisode: { __typename: string } }>(
    `mutation($input: PublishEpisodeInput!) { publishEpisode(input: $input) { __typename ... on Error { message } } }`,
    { input: { episodeId: globalId, destinations: ["YOUTUBE"] } },
  );
  expect(published.body.data?.publishEpisode.__typename, JSON.stringify(published.body)).toBe(
    "EpisodePayload",
  );

  // Killed once YouTube holds a few chunks, with more to go.
  const sessionOf = () => [...youtube.sessions.values()][0];
  await waitUntil(
    async () => sessionOf()?.received.length ?? 0,
    (held) => held >= 3 * CHUNK,
    "three chunks at YouTube",
    60_000,
  );
  await signalGroup(first, "SIGKILL");
  const heldAtKill = sessionOf()?.received.length ?? 0;
  expect(heldAtKill).toBeLessThan(VIDEO_BYTES);

  const second = await rig.spawn({
    env: { PODFLOW_OUTPUT_HOSTS: `${new URL(rig.standIn.url).host},${new URL(files.url).host}` },
  });
  await second.waitForLog(/job resumed after a missed heartbeat/, 60_000);
  const row = await waitUntil(
    async () =>
      (
        await orm.em
          .fork()
          .execute("select status, remote_id, bytes_sent from publications where episode_id = ?", [
            episodeId,
          ])
      )[0] as { status: string; remote_id: string | null; bytes_sent: string } | undefined,
    (publication) => publication?.status === "PUBLISHED",
    "the publication to be PUBLISHED",
    90_000,
  );

  const session = sessionOf();
  if (!session) throw new Error("no upload session");
  expect([...youtube.sessions.values()]).toHaveLength(1);
  expect(youtube.videos.size).toBe(1);
  expect(row?.remote_id).toBe(session.videoId);
  expect(youtube.bytesAcceptedTwice(session.id)).toBe(0);
  expect(youtube.receivedBytes(session.id).equals(video)).toBe(true);
  // The second worker asked where to continue and started there, at or after what YouTube held.
  const resumedAt = session.chunks.find((chunk) => chunk.start >= heldAtKill)?.start;
  expect(resumedAt).toBeDefined();
  expect(
    youtube.requests.some(
      (r) => r.method === "PUT" && r.headers["content-range"] === `bytes */${VIDEO_BYTES}`,
    ),
  ).toBe(true);
}, 240_000);
