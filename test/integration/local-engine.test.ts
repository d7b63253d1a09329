/**
 * The local media engine end to end, through the public API only: prepareUpload hands out a
 * signed URL on Podflow itself, the bytes are PUT there, confirmUpload checks them with ffprobe,
 * ffmpeg runs the four tasks as jobs, a subscriber sees them move, and the outputs are served
 * with byte ranges.
 */
import { readdir, readFile, writeFile } from "node:fs/promises";
import { get } from "node:http";
import path from "node:path";
import { Upload } from "tus-js-client";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { signUploadUrl } from "../../src/services/engines/local-uploads.ts";
import {
  ffprobeStreams,
  makeCorruptFile,
  makeMediaDir,
  makeVideoWithAudio,
  testMediaTools,
} from "../support/media.ts";
import { EPISODE_QUERY, waitForStatus } from "../support/pipeline.ts";
import { type Scenario, startScenario, type TestProducer } from "../support/scenario.ts";
import { follow, subscribeWs } from "../support/subscriptions.ts";

const tools = testMediaTools();
const MAX_UPLOAD_BYTES = 3_000_000;
let scenario: Scenario;
let producer: TestProducer;
let media: Awaited<ReturnType<typeof makeMediaDir>>;
let video: Buffer;
let corrupt: Buffer;

beforeAll(async () => {
  media = await makeMediaDir();
  video = await readFile(await makeVideoWithAudio(tools, media.dir, 4));
  corrupt = await readFile(await makeCorruptFile(media.dir));
  scenario = await startScenario({
    env: { PODFLOW_MEDIA_ENGINE: "local" },
    overrides: { maxUploadBytes: MAX_UPLOAD_BYTES },
  });
  producer = await scenario.producer();
});
afterAll(async () => {
  await scenario?.stop();
  await media?.cleanup();
});

interface Prepared {
  id: string;
  uuid: string;
  upload: { url: string; method: string; expiresAt: string; tusUrl: string | null };
}

type TaskState = { type: string; status: string; error: string | null; progress: number | null };
interface ProcessedEpisode {
  status: string;
  progress: number;
  tasks: TaskState[];
  outputs: { audioUrl: string; videoUrl: string; transcript: string | null; chapters: unknown };
}

async function prepare(title: string): Promise<Prepared> {
  const answer = await producer.gql<{
    prepareUpload: { episode: { id: string; engine: string }; upload: Prepared["upload"] };
  }>(
    `mutation($input: PrepareUploadInput!) { prepareUpload(input: $input) {
       ... on PrepareUploadPayload { episode { id engine } upload { url method expiresAt tusUrl } }
       ... on Error { message } } }`,
    { input: { filename: "episode.mp4", title, filesize: video.length } },
  );
  const payload = answer.body.data?.prepareUpload;
  expect(payload?.episode.engine).toBe("LOCAL");
  const id = payload?.episode.id as string;
  const uuid = Buffer.from(id, "base64").toString().split(":")[1] as string;
  return { id, uuid, upload: payload?.upload as Prepared["upload"] };
}

function put(url: string, body: Buffer | ReadableStream<Uint8Array>) {
  return fetch(url, { method: "PUT", body, duplex: "half" } as RequestInit);
}

async function confirm(episodeId: string, fileId: string) {
  const answer = await producer.gql<{ confirmUpload: { __typename: string; message?: string } }>(
    `mutation($input: ConfirmUploadInput!) { confirmUpload(input: $input) {
       __typename ... on Error { message } } }`,
    { input: { episodeId, fileId } },
  );
  return answer.body.data?.confirmUpload;
}

const uploadsOf = (uuid: string) =>
  readdir(path.join(scenario.podflow.deps.config.local.mediaDir, "uploads", uuid)).catch(() => []);

describe("the local media engine", () => {
  it("takes the upload on Podflow itself, runs the four tasks with ffmpeg and serves the outputs", {
    timeout: 240_000,
  }, async () => {
    const episode = await prepare("Local Episode");
    expect(episode.upload.method).toBe("PUT");
    expect(episode.upload.url.startsWith(`${scenario.url}/uploads/${episode.uuid}?`)).toBe(true);

    const uploaded = await put(episode.upload.url, video);
    expect(uploaded.status).toBe(201);
    const file = (await uploaded.json()) as { id: string; filesize: number };
    expect(file.filesize).toBe(video.length);

    const updates = await follow<{
      episodeUpdated: {
        status: string;
        tasks: { type: string; status: string; progress: number | null }[];
      };
    }>(
      subscribeWs,
      scenario.podflow,
      producer.token,
      `subscription($id: ID!) { episodeUpdated(id: $id) { status tasks { type status progress } } }`,
      { id: episode.id },
    );
    expect(await confirm(episode.id, file.id)).toEqual({ __typename: "ConfirmUploadPayload" });
    // ffmpeg encodes 1080p on two shared cores: generous, since tests run side by side.
    await waitForStatus(scenario, episode.uuid, "PROCESSED", 180_000);

    const answer = await producer.gql<{ episode: ProcessedEpisode }>(EPISODE_QUERY, {
      id: episode.id,
    });
    const processed = answer.body.data?.episode as ProcessedEpisode;
    expect(processed.status).toBe("PROCESSED");
    const byType: Record<string, TaskState> = Object.fromEntries(
      processed.tasks.map((task) => [task.type, task]),
    );
    expect(byType.AUDIO_EXTRACTION).toMatchObject({ status: "COMPLETED", progress: 100 });
    expect(byType.VIDEO_TRANSCODE).toMatchObject({ status: "COMPLETED", progress: 100 });
    expect(byType.CHAPTER_DETECTION).toMatchObject({ status: "COMPLETED", progress: 100 });
    // No PODFLOW_WHISPER_MODEL here: the transcript is skipped with a reason, not failed.
    expect(byType.TRANSCRIPT_GENERATION?.status).toBe("SKIPPED");
    expect(byType.TRANSCRIPT_GENERATION?.error).toMatch(/PODFLOW_WHISPER_MODEL/);
    expect(processed.progress).toBe(100);
    expect(processed.outputs.transcript).toBeNull();
    expect(processed.outputs.chapters).toEqual([{ start: 0, end: 4, title: "Chapter 1" }]);

    // The subscriber saw the tasks run, with progress that only went up, to the end.
    await updates.waitFor((message) => message.data?.episodeUpdated.status === "PROCESSED", {
      timeoutMs: 30_000,
    });
    updates.close();
    const states = updates.data.map((data) => data.episodeUpdated);
    expect(states.map((state) => state.status)).toContain("PROCESSING");
    for (const type of ["AUDIO_EXTRACTION", "VIDEO_TRANSCODE", "CHAPTER_DETECTION"]) {
      const progress = states
        .flatMap((state) => state.tasks.filter((task) => task.type === type))
        .map((task) => task.progress ?? 0);
      expect(progress).toEqual([...progress].sort((a, b) => a - b));
      expect(progress.at(-1)).toBe(100);
    }
    expect(states.some((state) => state.tasks.some((task) => task.status === "PROCESSING"))).toBe(
      true,
    );

    // The outputs: public, stable URLs on Podflow, with types, lengths, ETags and ranges.
    const { audioUrl, videoUrl } = processed.outputs;
    expect(audioUrl.startsWith(`${scenario.url}/media/`)).toBe(true);
    const audio = await fetch(audioUrl);
    expect(audio.status).toBe(200);
    expect(audio.headers.get("content-type")).toBe("audio/mpeg");
    const audioBytes = Buffer.from(await audio.arrayBuffer());
    expect(Number(audio.headers.get("content-length"))).toBe(audioBytes.length);
    const etag = audio.headers.get("etag");
    expect(etag).toBeTruthy();
    const ranged = await fetch(audioUrl, { headers: { range: "bytes=100-199" } });
    expect(ranged.status).toBe(206);
    expect(ranged.headers.get("content-range")).toBe(`bytes 100-199/${audioBytes.length}`);
    expect(Buffer.from(await ranged.arrayBuffer())).toEqual(audioBytes.subarray(100, 200));
    // fetch() adds `cache-control: no-cache` to a conditional request, so ask as a player would.
    const again = await new Promise<number>((resolve, reject) =>
      get(audioUrl, { headers: { "if-none-match": etag as string } }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      }).on("error", reject),
    );
    expect(again).toBe(304);
    const head = await fetch(videoUrl, { method: "HEAD" });
    expect(head.status).toBe(200);
    expect(head.headers.get("content-type")).toBe("video/mp4");

    const mp3 = path.join(media.dir, "served.mp3");
    await writeFile(mp3, audioBytes);
    const probed = await ffprobeStreams(tools, mp3);
    expect(probed.streams[0]).toMatchObject({
      codec_name: "mp3",
      channels: 2,
      sample_rate: "44100",
    });
    expect(probed.format.tags?.title).toBe("Local Episode");

    expect((await fetch(`${scenario.url}/media/AAAAAAAAAAAAAAAAAAAAAA.mp3`)).status).toBe(404);
    expect((await fetch(`${scenario.url}/media/..%2F..%2Fetc%2Fpasswd`)).status).toBe(404);
  });

  it("refuses an upload URL that is forged, expired or for an episode past its upload", async () => {
    const episode = await prepare("Refusals");
    const forged = new URL(episode.upload.url);
    forged.searchParams.set("signature", "A".repeat(43));
    expect((await put(forged.toString(), video)).status).toBe(403);
    const otherEpisode = episode.upload.url.replace(episode.uuid, crypto.randomUUID());
    expect((await put(otherEpisode, video)).status).toBe(403);

    const secret = scenario.podflow.deps.local?.uploadSecret as Buffer;
    const expired = signUploadUrl(
      secret,
      `${scenario.url}/uploads/`,
      episode.uuid,
      new Date(Date.now() - 1000),
    );
    const expiredAnswer = await put(expired, video);
    expect(expiredAnswer.status).toBe(410);
    expect(((await expiredAnswer.json()) as { error: string }).error).toMatch(/prepareUpload/);
    expect(await uploadsOf(episode.uuid)).toEqual([]);

    const file = (await (await put(episode.upload.url, video)).json()) as { id: string };
    expect(await confirm(episode.id, file.id)).toEqual({ __typename: "ConfirmUploadPayload" });
    const late = await put(episode.upload.url, video);
    expect(late.status).toBe(409);
    expect(await uploadsOf(episode.uuid)).toEqual([file.id]);
  });

  it("refuses a file beyond the size limit while it streams, and keeps nothing of it", async () => {
    const episode = await prepare("Too Large");
    const declared = await fetch(episode.upload.url, {
      method: "PUT",
      body: Buffer.alloc(MAX_UPLOAD_BYTES + 1),
    });
    expect(declared.status).toBe(413);
    // Without a Content-Length the limit is enforced on the bytes as they arrive.
    let sent = 0;
    const chunk = new Uint8Array(256 * 1024);
    const stream = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (sent > MAX_UPLOAD_BYTES * 2) return controller.close();
        sent += chunk.length;
        controller.enqueue(chunk);
      },
    });
    const streamed = await put(episode.upload.url, stream).catch((error: Error) => error);
    if (streamed instanceof Response) expect(streamed.status).toBe(413);
    expect(await uploadsOf(episode.uuid)).toEqual([]);
  });

  it("confirms only a media file uploaded for this episode; anything else changes nothing", async () => {
    const episode = await prepare("Bad Files");
    const bad = (await (await put(episode.upload.url, corrupt)).json()) as { id: string };
    const refused = await confirm(episode.id, bad.id);
    expect(refused?.__typename).toBe("InvalidMediaError");
    expect(refused?.message).toMatch(/not a media file ffprobe can read/);

    expect((await confirm(episode.id, "file_AAAAAAAAAAAAAAAAAAAAAA"))?.__typename).toBe(
      "UnknownFileError",
    );
    const other = await prepare("Someone Else's");
    const theirs = (await (await put(other.upload.url, video)).json()) as { id: string };
    expect((await confirm(episode.id, theirs.id))?.__typename).toBe("UnknownFileError");

    const [row] = await scenario
      .em()
      .execute("select status, file_id from episodes where id = ?", [episode.uuid]);
    expect(row).toEqual({ status: "AWAITING_UPLOAD", file_id: null });
  });

  it("takes a resumable tus upload that survives a dropped connection", async () => {
    const episode = await prepare("Resumable");
    const tusUrl = episode.upload.tusUrl as string;
    expect(tusUrl.startsWith(`${scenario.url}/uploads/tus/${episode.uuid}?`)).toBe(true);
    const chunkSize = 16 * 1024;

    // The first attempt stops after a few chunks, as a dropped connection would.
    let uploadUrl = "";
    await new Promise<void>((resolve, reject) => {
      const first = new Upload(video, {
        endpoint: tusUrl,
        chunkSize,
        retryDelays: [],
        onError: reject,
        onProgress: (sent) => {
          uploadUrl = first.url ?? "";
          if (sent >= chunkSize * 3) void first.abort().then(resolve, reject);
        },
        onSuccess: () => reject(new Error("the first attempt should have been stopped")),
      });
      first.start();
    });
    expect(uploadUrl.startsWith(`${scenario.url}/uploads/tus/${episode.uuid}/file_`)).toBe(true);
    const offset = await fetch(uploadUrl, {
      method: "HEAD",
      headers: { "tus-resumable": "1.0.0" },
    });
    const resumedAt = Number(offset.headers.get("upload-offset"));
    expect(resumedAt).toBeGreaterThanOrEqual(chunkSize * 3);
    expect(resumedAt).toBeLessThan(video.length);

    // The second attempt asks where the upload stands and sends only the rest.
    const sentFrom: number[] = [];
    await new Promise<void>((resolve, reject) => {
      const second = new Upload(video, {
        uploadUrl,
        chunkSize,
        retryDelays: [],
        onError: reject,
        onChunkComplete: (_size, accepted) => sentFrom.push(accepted),
        onSuccess: () => resolve(),
      });
      second.start();
    });
    expect(Math.min(...sentFrom)).toBeGreaterThan(resumedAt);

    const fileId = uploadUrl.split("?")[0]?.split("/").at(-1) as string;
    expect(await uploadsOf(episode.uuid)).toEqual([fileId]);
    const stored = await readFile(
      path.join(scenario.podflow.deps.config.local.mediaDir, "uploads", episode.uuid, fileId),
    );
    expect(stored.equals(video)).toBe(true);
    expect(await confirm(episode.id, fileId)).toEqual({ __typename: "ConfirmUploadPayload" });

    // The creation URL is the authorisation: a forged one creates nothing.
    const forged = new URL(tusUrl);
    forged.searchParams.set("signature", "A".repeat(43));
    const refused = await fetch(forged, {
      method: "POST",
      headers: { "tus-resumable": "1.0.0", "upload-length": "10" },
    });
    expect(refused.status).toBe(403);
  });
});
