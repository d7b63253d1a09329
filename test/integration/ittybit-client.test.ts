import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import packageJson from "../../package.json" with { type: "json" };
import { IttybitError } from "../../src/services/ittybit/errors.ts";
import { normalizeTaskPayload } from "../../src/services/ittybit/task-event.ts";
import { webhookUrlFor } from "../../src/services/ittybit/task-options.ts";
import { type IttybitStandIn, startIttybitStandIn } from "../support/ittybit-stand-in.ts";
import { createTestIttybitClient, taskRequest } from "../support/ittybit-test-client.ts";

// Every operation of the client, through real HTTP, against the stand-in.

let ittybit: IttybitStandIn;
let client: ReturnType<typeof createTestIttybitClient>["client"];

beforeAll(async () => {
  ittybit = await startIttybitStandIn({ apiKey: "ittybit_test_key_client" });
  ({ client } = createTestIttybitClient(ittybit));
});
afterAll(() => ittybit.close());
beforeEach(() => {
  ittybit.requests.length = 0;
});

function lastRequest() {
  const request = ittybit.requests.at(-1);
  if (!request) throw new Error("no request reached the stand-in");
  return request;
}

describe("every request", () => {
  it("carries the key, the pinned API version, JSON and a Podflow user agent", async () => {
    await client.createMedia({ title: "Episode 1" }, { idempotencyKey: "media-headers" });
    const { headers } = lastRequest();
    expect(headers.authorization).toBe("Bearer ittybit_test_key_client");
    expect(headers["accept-version"]).toBe("2025-08-20");
    expect(headers["content-type"]).toMatch(/^application\/json/);
    expect(headers.accept).toBe("application/json");
    expect(headers["user-agent"]).toContain(`Podflow/${packageJson.version}`);
  });
});

describe("createSignature", () => {
  it("asks for a signed PUT URL for the folder and filename, with the expiry in Unix seconds", async () => {
    const expiry = new Date(Date.now() + 15 * 60 * 1000);
    const signature = await client.createSignature({
      folder: "episodes/ep-1",
      filename: "master.mp4",
      expiry,
    });
    expect(lastRequest()).toMatchObject({
      method: "POST",
      path: "/signatures",
      body: {
        folder: "episodes/ep-1",
        filename: "master.mp4",
        method: "put",
        expiry: Math.floor(expiry.getTime() / 1000),
      },
    });
    expect(signature).toMatchObject({
      method: "put",
      filename: "master.mp4",
      folder: "episodes/ep-1",
      expiresAt: new Date(Math.floor(expiry.getTime() / 1000) * 1000),
    });
    expect(signature.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/.*master\.mp4\?.*signature=/);
  });

  it("gives a URL that takes the upload without our key", async () => {
    const signature = await client.createSignature({ folder: "uploads", filename: "ep.mp4" });
    expect(signature.expiresAt.getTime()).toBeGreaterThan(Date.now());
    const upload = await fetch(signature.url, {
      method: "PUT",
      headers: { "content-type": "video/mp4" },
      body: Buffer.from("fake video bytes"),
    });
    expect(upload.status).toBe(201);
    const uploaded = (await upload.json()) as { id: string };
    expect(lastRequest().headers.authorization).toBeUndefined();

    const file = await client.getFile(uploaded.id);
    expect(file).toMatchObject({
      id: uploaded.id,
      filename: "ep.mp4",
      folder: "uploads",
      filesize: 16,
      type: "video/mp4",
    });
  });
});

describe("getFile", () => {
  it("returns a registered file", async () => {
    const registered = ittybit.addFile({ filename: "talk.mp4", filesize: 1234 });
    const file = await client.getFile(registered.id);
    expect(file).toMatchObject({
      id: registered.id,
      media_id: registered.media_id,
      filesize: 1234,
    });
    expect(lastRequest()).toMatchObject({ method: "GET", path: `/files/${registered.id}` });
  });

  it("reports an unknown file as a 404 IttybitError, without retrying", async () => {
    const failure = await client.getFile("file_doesNotExist").catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(IttybitError);
    expect(failure).toMatchObject({
      status: 404,
      retryable: false,
      failure: "http_status",
      ittybitMessage: "File not found",
    });
    expect(ittybit.requests).toHaveLength(1);
  });
});

describe("createMedia and getMedia", () => {
  it("creates a media item under the caller's idempotency key and reads it back", async () => {
    const media = await client.createMedia(
      { title: "Episode 2", metadata: { episodeId: "ep-2" } },
      { idempotencyKey: "episode:ep-2:media" },
    );
    expect(lastRequest()).toMatchObject({
      method: "POST",
      path: "/media",
      body: { title: "Episode 2", metadata: { episodeId: "ep-2" } },
    });
    expect(lastRequest().headers["idempotency-key"]).toBe("episode:ep-2:media");
    expect(media.id).toMatch(/^med_[A-Za-z0-9]{12}$/);
    expect(ittybit.media.get(media.id)).toMatchObject({ title: "Episode 2" });
  });

  it("refuses to send a create without an idempotency key", async () => {
    await expect(client.createMedia({}, { idempotencyKey: " " })).rejects.toThrow(TypeError);
    expect(ittybit.requests).toHaveLength(0);
  });
});

describe("createTask and getTask", () => {
  it("creates a task from a builder's body, with our webhook URL", async () => {
    const file = ittybit.addFile();
    const webhookUrl = webhookUrlFor("https://podflow.example/", "t0ken");
    expect(webhookUrl).toBe("https://podflow.example/webhooks/ittybit/t0ken");
    const task = await client.createTask(taskRequest("AUDIO_EXTRACTION", file.id, webhookUrl), {
      idempotencyKey: "episode:ep-3:AUDIO_EXTRACTION:1",
    });
    expect(task).toMatchObject({ object: "task", kind: "audio", status: "pending" });
    expect(task.id).toMatch(/^task_[A-Za-z0-9]{12}$/);
    expect(ittybit.tasks.get(task.id)?.request).toEqual({
      kind: "audio",
      format: "mp3",
      bitrate: 192_000,
      channels: 2,
      ref: "podcast_audio",
      file_id: file.id,
      webhook_url: "https://podflow.example/webhooks/ittybit/t0ken",
    });
  });

  it("reads a task back, as a TaskEvent once normalized", async () => {
    const file = ittybit.addFile();
    const created = await client.createTask(taskRequest("TRANSCRIPT_GENERATION", file.id), {
      idempotencyKey: "episode:ep-4:TRANSCRIPT_GENERATION:1",
    });
    ittybit.setTaskStatus(created.id, "completed");

    const task = await client.getTask(created.id);
    expect(lastRequest()).toMatchObject({ method: "GET", path: `/tasks/${created.id}` });
    const event = normalizeTaskPayload(task);
    expect(event).toMatchObject({ taskId: created.id, status: "COMPLETED", progress: 100 });
    expect(event.output?.url).toMatch(/\/_files\/file_/);
    const transcript = await fetch(event.output?.url ?? "").then((response) => response.json());
    expect(transcript).toMatchObject({ kind: "speech", language: "en" });
  });

  it("reports an unknown task as a 404", async () => {
    await expect(client.getTask("task_doesNotExist")).rejects.toMatchObject({ status: 404 });
  });
});
