import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { IttybitError } from "../../src/services/ittybit/errors.ts";
import { type IttybitStandIn, startIttybitStandIn } from "../support/ittybit-stand-in.ts";
import { createTestIttybitClient, taskRequest } from "../support/ittybit-test-client.ts";

// Retries through real HTTP: which failures are retried, how long the client waits, when it stops,
// and that a retried POST creates one thing.

let ittybit: IttybitStandIn;

beforeAll(async () => {
  ittybit = await startIttybitStandIn({ apiKey: "ittybit_test_key_retries" });
});
afterAll(() => ittybit.close());
beforeEach(() => {
  ittybit.requests.length = 0;
});

function requestsTo(path: string) {
  return ittybit.requests.filter((request) => request.path === path);
}

async function failureOf(promise: Promise<unknown>): Promise<IttybitError> {
  const error = await promise.then(
    () => undefined,
    (caught: unknown) => caught,
  );
  if (!(error instanceof IttybitError)) throw new Error(`expected an IttybitError, got ${error}`);
  return error;
}

describe("GET retries", () => {
  it.each([500, 502, 503, 504, 408])("retries after %i and returns the answer", async (status) => {
    const { client } = createTestIttybitClient(ittybit);
    const file = ittybit.addFile();
    ittybit.failNext({ method: "GET", path: `/files/${file.id}`, status });
    await expect(client.getFile(file.id)).resolves.toMatchObject({ id: file.id });
    expect(requestsTo(`/files/${file.id}`)).toHaveLength(2);
  });

  it("waits as long as a 429's Retry-After says", async () => {
    // Retry-After has whole-second resolution, so this test waits one second.
    const { client, logs } = createTestIttybitClient(ittybit);
    const file = ittybit.addFile();
    ittybit.failNext({ path: `/files/${file.id}`, status: 429, headers: { "retry-after": "1" } });
    await client.getFile(file.id);
    const [limited, retried] = requestsTo(`/files/${file.id}`);
    expect((retried?.receivedAt ?? 0) - (limited?.receivedAt ?? 0)).toBeGreaterThanOrEqual(990);
    expect(logs.join("")).toContain('"delayMs":1000');
  });

  it("gives up at once when Retry-After is beyond the time budget, and says how long to wait", async () => {
    const { client } = createTestIttybitClient(ittybit);
    const file = ittybit.addFile();
    ittybit.failNext({ path: `/files/${file.id}`, status: 429, headers: { "retry-after": "120" } });
    const error = await failureOf(client.getFile(file.id));
    expect(error).toMatchObject({ status: 429, retryable: true, retryAfterMs: 120_000 });
    expect(requestsTo(`/files/${file.id}`)).toHaveLength(1);
  });

  it("retries a dropped connection", async () => {
    const { client } = createTestIttybitClient(ittybit);
    const file = ittybit.addFile();
    ittybit.dropNext({ path: `/files/${file.id}` });
    await expect(client.getFile(file.id)).resolves.toMatchObject({ id: file.id });
    expect(requestsTo(`/files/${file.id}`)).toHaveLength(2);
  });

  it("retries a response that does not come in time", async () => {
    const { client } = createTestIttybitClient(ittybit, { timeoutMs: 300 });
    const file = ittybit.addFile();
    ittybit.delayNext({ path: `/files/${file.id}`, delayMs: 2_000 });
    await expect(client.getFile(file.id)).resolves.toMatchObject({ id: file.id });
    expect(requestsTo(`/files/${file.id}`)).toHaveLength(2);
  });

  it("retries a body that is not JSON", async () => {
    const { client } = createTestIttybitClient(ittybit);
    const file = ittybit.addFile();
    ittybit.malformedNext({ path: `/files/${file.id}` });
    await expect(client.getFile(file.id)).resolves.toMatchObject({ id: file.id });
    expect(requestsTo(`/files/${file.id}`)).toHaveLength(2);
  });

  it.each([400, 401, 403, 404, 409, 422])("does not retry %i", async (status) => {
    const { client } = createTestIttybitClient(ittybit);
    ittybit.failNext({ path: "/tasks/task_anyTask00001", status });
    const error = await failureOf(client.getTask("task_anyTask00001"));
    expect(error).toMatchObject({ status, retryable: false });
    expect(requestsTo("/tasks/task_anyTask00001")).toHaveLength(1);
  });
});

describe("retry bounds", () => {
  it("stops after the retry limit with a retryable error", async () => {
    const { client } = createTestIttybitClient(ittybit, { retry: { limit: 2 } });
    ittybit.failNext({ path: "/tasks/task_alwaysFails1", status: 503, times: 10 });
    const error = await failureOf(client.getTask("task_alwaysFails1"));
    expect(error).toMatchObject({ status: 503, retryable: true, failure: "http_status" });
    expect(requestsTo("/tasks/task_alwaysFails1")).toHaveLength(3);
  });

  it("stops when the time budget is spent, whatever retries are left", async () => {
    const { client } = createTestIttybitClient(ittybit, {
      retry: { limit: 100, baseDelayMs: 40, maxDelayMs: 40, totalTimeoutMs: 150 },
    });
    ittybit.failNext({ path: "/tasks/task_alwaysFails2", status: 500, times: 100 });
    const startedAt = Date.now();
    await failureOf(client.getTask("task_alwaysFails2"));
    // Delays of 20–40 ms within 150 ms allow at most 7 retries; the limit alone would allow 100.
    expect(requestsTo("/tasks/task_alwaysFails2").length).toBeLessThanOrEqual(8);
    expect(requestsTo("/tasks/task_alwaysFails2").length).toBeGreaterThanOrEqual(2);
    expect(Date.now() - startedAt).toBeLessThan(1_000);
  });

  it("reports a timeout when no attempt answers in time", async () => {
    const { client } = createTestIttybitClient(ittybit, { timeoutMs: 50, retry: { limit: 1 } });
    ittybit.delayNext({ path: "/tasks/task_slowAlways1", delayMs: 500, times: 2 });
    const error = await failureOf(client.getTask("task_slowAlways1"));
    expect(error).toMatchObject({ failure: "timeout", code: "ETIMEDOUT", retryable: true });
    expect(error.status).toBeUndefined();
    expect(requestsTo("/tasks/task_slowAlways1")).toHaveLength(2);
  });

  it("reports a dropped connection as a retryable network failure", async () => {
    const { client } = createTestIttybitClient(ittybit, { retry: { limit: 1 } });
    ittybit.dropNext({ path: "/tasks/task_dropAlways1", times: 2 });
    const error = await failureOf(client.getTask("task_dropAlways1"));
    expect(error).toMatchObject({ failure: "network", code: "ECONNRESET", retryable: true });
  });

  it("reports a body that stays broken as a retryable malformed body", async () => {
    const { client } = createTestIttybitClient(ittybit, { retry: { limit: 1 } });
    const file = ittybit.addFile();
    ittybit.malformedNext({ path: `/files/${file.id}`, times: 2 });
    const error = await failureOf(client.getFile(file.id));
    expect(error).toMatchObject({ failure: "malformed_body", status: 200, retryable: true });
  });
});

describe("POST retries under the idempotency key", () => {
  it("retries a failed create under the same key and creates one task", async () => {
    const { client } = createTestIttybitClient(ittybit);
    const file = ittybit.addFile();
    ittybit.failNext({ method: "POST", path: "/tasks", status: 503 });
    const task = await client.createTask(taskRequest("AUDIO_EXTRACTION", file.id), {
      idempotencyKey: "key-503",
    });

    const attempts = requestsTo("/tasks");
    expect(attempts).toHaveLength(2);
    expect(attempts.map((request) => request.headers["idempotency-key"])).toEqual([
      "key-503",
      "key-503",
    ]);
    expect(tasksFor(file.id).map((entry) => entry.task.id)).toEqual([task.id]);
  });

  it("returns what the first attempt created when its answer was lost", async () => {
    const { client } = createTestIttybitClient(ittybit);
    const file = ittybit.addFile();
    ittybit.dropNext({ method: "POST", path: "/tasks" });
    const task = await client.createTask(taskRequest("VIDEO_TRANSCODE", file.id), {
      idempotencyKey: "key-drop",
    });

    expect(requestsTo("/tasks")).toHaveLength(2);
    expect(tasksFor(file.id).map((entry) => entry.task.id)).toEqual([task.id]);
  });

  it("returns what the first attempt created when its answer came too late", async () => {
    const { client } = createTestIttybitClient(ittybit, { timeoutMs: 300 });
    ittybit.delayNext({ method: "POST", path: "/media", delayMs: 2_000 });
    const media = await client.createMedia({ title: "slow" }, { idempotencyKey: "key-slow" });

    expect(requestsTo("/media")).toHaveLength(2);
    const created = [...ittybit.media.values()].filter((item) => item.title === "slow");
    expect(created.map((item) => item.id)).toEqual([media.id]);
  });

  it("ends a request and its retries when the caller's signal aborts, with the signal's reason", async () => {
    const { client } = createTestIttybitClient(ittybit);
    const file = ittybit.addFile();
    ittybit.delayNext({ method: "POST", path: "/tasks", delayMs: 5_000 });
    const stop = new AbortController();
    const reason = new Error("Podflow is stopping");
    const creating = client.createTask(taskRequest("AUDIO_EXTRACTION", file.id), {
      idempotencyKey: "key-stopped",
      signal: stop.signal,
    });
    await ittybit.waitForRequests({ method: "POST", path: "/tasks" });
    stop.abort(reason);
    // Not an IttybitError: a stop must never be read as Ittybit refusing the task.
    await expect(creating).rejects.toBe(reason);
    expect(requestsTo("/tasks")).toHaveLength(1);
  });

  it("creates one task when the caller itself repeats the request with the same key", async () => {
    const { client } = createTestIttybitClient(ittybit);
    const file = ittybit.addFile();
    const first = await client.createTask(taskRequest("CHAPTER_DETECTION", file.id), {
      idempotencyKey: "job-1",
    });
    const again = await client.createTask(taskRequest("CHAPTER_DETECTION", file.id), {
      idempotencyKey: "job-1",
    });
    expect(again.id).toBe(first.id);
    expect(tasksFor(file.id)).toHaveLength(1);
  });

  it("uses one key for all attempts of one signature, a new one for the next", async () => {
    const { client } = createTestIttybitClient(ittybit);
    ittybit.failNext({ method: "POST", path: "/signatures", status: 500 });
    await client.createSignature({ filename: "a.mp4" });
    await client.createSignature({ filename: "a.mp4" });
    const keys = requestsTo("/signatures").map((request) => request.headers["idempotency-key"]);
    expect(keys).toHaveLength(3);
    expect(keys[0]).toBeTruthy();
    expect(keys[1]).toBe(keys[0]);
    expect(keys[2]).not.toBe(keys[0]);
  });

  it("does not retry a create Ittybit refused", async () => {
    const { client } = createTestIttybitClient(ittybit);
    const error = await failureOf(
      client.createTask(taskRequest("AUDIO_EXTRACTION", "file_doesNotExist"), {
        idempotencyKey: "key-404",
      }),
    );
    expect(error).toMatchObject({ status: 404, retryable: false });
    expect(requestsTo("/tasks")).toHaveLength(1);
  });
});

function tasksFor(fileId: string) {
  return [...ittybit.tasks.values()].filter((entry) => entry.request.file_id === fileId);
}
