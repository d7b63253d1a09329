import { createServer, type IncomingHttpHeaders } from "node:http";
import type { AddressInfo } from "node:net";
import { Webhook } from "standardwebhooks";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { normalizeTaskPayload } from "../../src/services/ittybit/task-event.ts";
import { verifyWebhook } from "../../src/services/ittybit/webhook-verification.ts";
import { type IttybitStandIn, startIttybitStandIn } from "../support/ittybit-stand-in.ts";

// The stand-in is what every later pipeline test trusts to behave like Ittybit, so its protocol
// and its scripting are tested here directly, with plain fetch.

const apiKey = "ittybit_test_key_stand_in";
const webhookSecret = `whsec_${Buffer.from("stand-in webhook secret 32 bytes").toString("base64")}`;
const auth = { authorization: `Bearer ${apiKey}`, "content-type": "application/json" };

interface Delivery {
  headers: IncomingHttpHeaders;
  rawBody: string;
}

/** A Podflow-like webhook endpoint on 127.0.0.1 that keeps what it receives. */
async function startReceiver(status = 200) {
  const deliveries: Delivery[] = [];
  const server = createServer(async (request, response) => {
    const rawBody = Buffer.concat(await request.toArray()).toString("utf8");
    deliveries.push({ headers: request.headers, rawBody });
    response.writeHead(status, { "content-type": "application/json" });
    response.end(JSON.stringify({ received: deliveries.length }));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/webhooks/ittybit`;
  return {
    url,
    deliveries,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

let ittybit: IttybitStandIn;
let receiver: Awaited<ReturnType<typeof startReceiver>>;

beforeAll(async () => {
  ittybit = await startIttybitStandIn({ apiKey, webhookSecret });
  receiver = await startReceiver();
});
afterAll(async () => {
  await ittybit.close();
  await receiver.close();
});
beforeEach(() => {
  receiver.deliveries.length = 0;
  ittybit.requests.length = 0;
});

async function api(method: string, path: string, body?: unknown, headers: object = auth) {
  const response = await fetch(`${ittybit.url}${path}`, {
    method,
    headers: { ...headers },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  return {
    status: response.status,
    headers: response.headers,
    body: text ? JSON.parse(text) : null,
  };
}

async function createTask(fields: Record<string, unknown> = {}) {
  const file = ittybit.addFile();
  const created = await api("POST", "/tasks", {
    kind: "speech",
    file_id: file.id,
    ref: "transcript",
    webhook_url: receiver.url,
    ...fields,
  });
  return created.body as { id: string; status: string };
}

describe("protocol", () => {
  it("answers 401 {message} without the key or with a wrong one", async () => {
    expect(await api("GET", "/tasks", undefined, {})).toMatchObject({
      status: 401,
      body: { message: "Missing API key" },
    });
    expect(await api("GET", "/tasks", undefined, { authorization: "Bearer nope" })).toMatchObject({
      status: 401,
      body: { message: "Invalid API key" },
    });
  });

  it("answers 404 {message} for unknown ids and paths, 405 for unknown methods", async () => {
    for (const path of ["/files/file_unknown", "/media/med_unknown", "/tasks/task_unknown", "/x"]) {
      const answer = await api("GET", path);
      expect(answer.status).toBe(404);
      expect(answer.body).toEqual({ message: expect.any(String) });
    }
    expect((await api("DELETE", "/tasks")).status).toBe(405);
  });

  it("creates a task with 201 in the 2025-08-20 shape, keeping the request", async () => {
    const file = ittybit.addFile();
    const request = { kind: "audio", file_id: file.id, format: "mp3", ref: "podcast_audio" };
    const created = await api("POST", "/tasks", { ...request, webhook_url: receiver.url });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({
      object: "task",
      kind: "audio",
      status: "pending",
      progress: 0,
      input: { id: file.id },
      options: { format: "mp3", ref: "podcast_audio" },
      output: null,
      error: null,
    });
    expect(created.body.id).toMatch(/^task_[A-Za-z0-9]{12}$/);
    expect(created.body.created_by).toMatch(/^key_[A-Za-z0-9]{12}$/);
    expect(ittybit.tasks.get(created.body.id)?.request).toEqual({
      ...request,
      webhook_url: receiver.url,
    });
  });

  it.each([
    ["no kind", { file_id: "file_x" }, 400],
    ["an unknown kind", { kind: "teleport", url: "https://x.example/a.mp4" }, 400],
    ["both file_id and url", { kind: "audio", file_id: "file_x", url: "https://x.example" }, 400],
    ["neither file_id nor url", { kind: "audio" }, 400],
    ["a bad webhook_url", { kind: "audio", url: "https://x.example", webhook_url: "nope" }, 400],
    ["an unknown file", { kind: "audio", file_id: "file_unknown" }, 404],
  ])("refuses a task with %s", async (_, body, status) => {
    const answer = await api("POST", "/tasks", body);
    expect(answer.status).toBe(status);
    expect(answer.body).toEqual({ message: expect.any(String) });
  });

  it("refuses a body that is not JSON", async () => {
    const response = await fetch(`${ittybit.url}/tasks`, {
      method: "POST",
      headers: auth,
      body: "{",
    });
    expect(response.status).toBe(400);
  });

  it("answers a repeated Idempotency-Key with the original, creating nothing new", async () => {
    const file = ittybit.addFile();
    const body = { kind: "video", file_id: file.id };
    const headers = { ...auth, "idempotency-key": "same-key" };
    const first = await api("POST", "/tasks", body, headers);
    const second = await api("POST", "/tasks", body, headers);
    const other = await api("POST", "/tasks", body, { ...auth, "idempotency-key": "other-key" });
    expect([first.status, second.status, other.status]).toEqual([201, 200, 201]);
    expect(second.body.id).toBe(first.body.id);
    expect(other.body.id).not.toBe(first.body.id);
  });

  it("lists tasks newest first, filtered and paged", async () => {
    const file = ittybit.addFile();
    const ids: string[] = [];
    for (const ref of ["one", "two", "three"]) {
      ids.push((await api("POST", "/tasks", { kind: "nsfw", file_id: file.id, ref })).body.id);
    }
    const page = await api("GET", "/tasks?kind=nsfw&limit=2&page=1");
    expect(page.body.map((task: { id: string }) => task.id)).toEqual([ids[2], ids[1]]);
    const next = await api("GET", "/tasks?kind=nsfw&limit=2&page=2");
    expect(next.body.map((task: { id: string }) => task.id)).toEqual([ids[0]]);
    expect((await api("GET", "/tasks?limit=101")).status).toBe(400);
  });

  it("files task outputs under their ref in the media item", async () => {
    const task = await createTask({ ref: "transcript" });
    const completed = ittybit.setTaskStatus(task.id, "completed");
    const media = await api("GET", `/media/${completed.input?.media_id}`);
    expect(media.body.urls).toEqual({ transcript: completed.output?.url });
    expect(media.body.files.map((file: { id: string }) => file.id)).toContain(completed.output?.id);
  });

  it("takes an upload only at an unaltered, unexpired PUT signature", async () => {
    const inAMinute = Math.floor(Date.now() / 1000) + 60;
    const sign = async (method: string, expiry: number) =>
      (await api("POST", "/signatures", { filename: "ep.mp4", folder: "in", method, expiry })).body
        .url as string;
    const upload = async (url: string) => (await fetch(url, { method: "PUT", body: "x" })).status;

    const signed = await sign("put", inAMinute);
    expect(await upload(signed.replace("ep.mp4", "other.mp4"))).toBe(403);
    expect(await upload(signed.replace(/expiry=\d+/, `expiry=${inAMinute + 1}`))).toBe(403);
    expect(await upload(await sign("put", 1))).toBe(403);
    expect(await upload(await sign("get", inAMinute))).toBe(403);
    expect(await upload(signed)).toBe(201);
  });

  it("serves file contents without the key, 404 for files it has none for", async () => {
    const file = ittybit.addFile();
    expect((await fetch(`${ittybit.url}/_files/${file.id}`)).status).toBe(404);
    ittybit.setOutputContent(file.id, "bytes", "video/mp4");
    const served = await fetch(`${ittybit.url}/_files/${file.id}`);
    expect(served.headers.get("content-type")).toBe("video/mp4");
    expect(await served.text()).toBe("bytes");
  });
});

describe("scripting", () => {
  it("fails the next matching requests with the given status, body and headers", async () => {
    ittybit.failNext({
      method: "GET",
      path: /^\/tasks\//,
      status: 429,
      headers: { "retry-after": "3" },
      times: 2,
    });
    const first = await api("GET", "/tasks/task_anything");
    const second = await api("GET", "/tasks/task_anything");
    const third = await api("GET", "/tasks/task_anything");
    expect(first).toMatchObject({ status: 429, body: { message: "Too Many Requests" } });
    expect(first.headers.get("retry-after")).toBe("3");
    expect(second.status).toBe(429);
    expect(third.status).toBe(404);
  });

  it("sends a truncated body after doing the work", async () => {
    ittybit.malformedNext({ method: "POST", path: "/media" });
    const before = ittybit.media.size;
    const response = await fetch(`${ittybit.url}/media`, {
      method: "POST",
      headers: auth,
      body: "{}",
    });
    expect(response.status).toBe(201);
    await expect(response.json()).rejects.toThrow(SyntaxError);
    expect(ittybit.media.size).toBe(before + 1);
  });

  it("drops the connection after doing the work", async () => {
    ittybit.dropNext({ method: "POST", path: "/media" });
    const before = ittybit.media.size;
    await expect(
      fetch(`${ittybit.url}/media`, { method: "POST", headers: auth, body: "{}" }),
    ).rejects.toThrow();
    expect(ittybit.media.size).toBe(before + 1);
  });

  it("records every request, and lets a test wait for requests to arrive", async () => {
    const arrived = ittybit.waitForRequests({ method: "POST", path: "/media" }, 2);
    await api("POST", "/media", { title: "first" });
    await api("POST", "/media", { title: "second" });
    const [first, second] = await arrived;
    expect(first?.body).toEqual({ title: "first" });
    expect(second?.body).toEqual({ title: "second" });
    expect(first?.headers.authorization).toBe(`Bearer ${apiKey}`);
  });

  it("advances a task and completes it with a default output it serves", async () => {
    const task = await createTask({ kind: "chapters", ref: "chapters" });
    ittybit.setTaskStatus(task.id, "processing", { progress: 40 });
    expect((await api("GET", `/tasks/${task.id}`)).body).toMatchObject({
      status: "processing",
      progress: 40,
      output: null,
    });
    const completed = ittybit.setTaskStatus(task.id, "completed");
    expect(completed).toMatchObject({
      status: "completed",
      progress: 100,
      output: { object: "track", kind: "chapters", type: "application/json", ref: "chapters" },
    });
    const chapters = await fetch(completed.output?.url ?? "").then((response) => response.json());
    expect(chapters.chapters[0]).toMatchObject({ start: 0, title: "Introduction" });
  });

  it("completes a task with the output and content a test gives", async () => {
    const task = await createTask();
    ittybit.setOutputContent("file_givenOutput1", { text: ["Hi."], timeline: [] });
    const completed = ittybit.setTaskStatus(task.id, "completed", {
      output: { id: "file_givenOutput1", filesize: 99 },
    });
    expect(completed.output).toMatchObject({
      id: "file_givenOutput1",
      filesize: 99,
      kind: "speech",
    });
    const served = await fetch(`${ittybit.url}/_files/file_givenOutput1`);
    expect(served.headers.get("content-type")).toBe("application/json");
    expect(await served.json()).toEqual({ text: ["Hi."], timeline: [] });
  });

  it("fails a task with a default or a given error", async () => {
    const task = await createTask();
    expect(ittybit.setTaskStatus(task.id, "failed").error).toBe("Processing failed");
    expect(ittybit.setTaskStatus(task.id, "error", { error: "Codec gone" }).error).toBe(
      "Codec gone",
    );
  });
});

describe("webhook deliveries", () => {
  it("posts the task as it is now, signed so both verifiers accept it", async () => {
    const task = await createTask();
    ittybit.setTaskStatus(task.id, "completed");
    const result = await ittybit.deliverWebhook(task.id);
    expect(result).toMatchObject({ status: 200, body: { received: 1 } });

    const [delivery] = receiver.deliveries;
    if (!delivery) throw new Error("nothing was delivered");
    expect(delivery.headers["content-type"]).toBe("application/json");
    expect(delivery.headers["webhook-id"]).toBe(result.webhookId);
    expect(
      verifyWebhook({ secret: webhookSecret, headers: delivery.headers, rawBody: delivery.rawBody })
        .ok,
    ).toBe(true);
    expect(() =>
      new Webhook(webhookSecret).verify(
        delivery.rawBody,
        delivery.headers as Record<string, string>,
      ),
    ).not.toThrow();
    expect(normalizeTaskPayload(JSON.parse(delivery.rawBody))).toMatchObject({
      taskId: task.id,
      status: "COMPLETED",
    });
  });

  it("sends without signature headers when asked", async () => {
    const task = await createTask();
    await ittybit.deliverWebhook(task.id, { signed: false });
    expect(Object.keys(receiver.deliveries[0]?.headers ?? {})).not.toContain("webhook-signature");
    expect(receiver.deliveries[0]?.headers["webhook-id"]).toBeUndefined();
  });

  it("signs with another secret when asked, which the verifier rejects", async () => {
    const task = await createTask();
    const otherSecret = `whsec_${Buffer.from("a forger's secret").toString("base64")}`;
    await ittybit.deliverWebhook(task.id, { secret: otherSecret });
    const [delivery] = receiver.deliveries;
    expect(delivery?.headers["webhook-signature"]).toBeDefined();
    expect(
      verifyWebhook({
        secret: webhookSecret,
        headers: delivery?.headers ?? {},
        rawBody: delivery?.rawBody ?? "",
      }),
    ).toEqual({ ok: false, reason: "no_matching_signature" });
  });

  it("sends the identical delivery twice when duplicating", async () => {
    const task = await createTask();
    const result = await ittybit.deliverWebhook(task.id, { duplicate: true });
    expect(result.responses.map((response) => response.body)).toEqual([
      { received: 1 },
      { received: 2 },
    ]);
    const [first, second] = receiver.deliveries;
    expect(second?.rawBody).toBe(first?.rawBody);
    for (const header of ["webhook-id", "webhook-timestamp", "webhook-signature"]) {
      expect(second?.headers[header]).toBe(first?.headers[header]);
    }
  });

  it("delivers out of order: a delayed delivery carries the task as it was when scheduled", async () => {
    const task = await createTask();
    ittybit.setTaskStatus(task.id, "processing", { progress: 10 });
    const late = ittybit.deliverWebhook(task.id, { delayMs: 50 });
    ittybit.setTaskStatus(task.id, "completed");
    await ittybit.deliverWebhook(task.id);
    await late;
    expect(receiver.deliveries.map((delivery) => JSON.parse(delivery.rawBody).status)).toEqual([
      "completed",
      "processing",
    ]);
  });

  it("sends a given payload, id and timestamp", async () => {
    const task = await createTask();
    const payload = { id: "evt_1", object: "event", kind: "task.succeeded", data: { id: task.id } };
    await ittybit.deliverWebhook(task.id, { payload, webhookId: "msg_fixed", timestamp: 1_000 });
    const [delivery] = receiver.deliveries;
    expect(JSON.parse(delivery?.rawBody ?? "")).toEqual(payload);
    expect(delivery?.headers).toMatchObject({
      "webhook-id": "msg_fixed",
      "webhook-timestamp": "1000",
    });
  });

  it("reports the receiver's answer", async () => {
    const refusing = await startReceiver(401);
    try {
      const task = await createTask({ webhook_url: refusing.url });
      await expect(ittybit.deliverWebhook(task.id)).resolves.toMatchObject({ status: 401 });
    } finally {
      await refusing.close();
    }
  });

  it("never delivers beyond this machine", async () => {
    const task = await createTask({ webhook_url: "https://podflow.example/webhooks/ittybit" });
    await expect(ittybit.deliverWebhook(task.id)).rejects.toThrow(/beyond 127\.0\.0\.1/);
  });
});
