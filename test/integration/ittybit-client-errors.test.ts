import { inspect } from "node:util";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { IttybitError } from "../../src/services/ittybit/errors.ts";
import { type IttybitStandIn, startIttybitStandIn } from "../support/ittybit-stand-in.ts";
import { createTestIttybitClient } from "../support/ittybit-test-client.ts";

// Every documented error shape as it reaches callers, and the API key kept out of errors and logs.

const apiKey = "ittybit_test_key_errors_7f3a9c";
let ittybit: IttybitStandIn;

beforeAll(async () => {
  ittybit = await startIttybitStandIn({ apiKey });
});
afterAll(() => ittybit.close());
beforeEach(() => {
  ittybit.requests.length = 0;
});

async function failureOf(promise: Promise<unknown>): Promise<IttybitError> {
  const error = await promise.then(
    () => undefined,
    (caught: unknown) => caught,
  );
  if (!(error instanceof IttybitError)) throw new Error(`expected an IttybitError, got ${error}`);
  return error;
}

describe("error shapes", () => {
  it.each([
    ["2025-08-20 {message}", { message: "Task not found" }, { ittybitMessage: "Task not found" }],
    [
      "{kind, message}",
      { kind: "task_not_found", message: "Task not found" },
      { kind: "task_not_found", ittybitMessage: "Task not found" },
    ],
    [
      "the envelope's error",
      { meta: { type: "error" }, data: null, error: { message: "Task not found" } },
      { ittybitMessage: "Task not found" },
    ],
  ])("carries Ittybit's %s", async (_, body, expected) => {
    const { client } = createTestIttybitClient(ittybit);
    ittybit.failNext({ path: "/tasks/task_missing00001", status: 404, body });
    const error = await failureOf(client.getTask("task_missing00001"));
    expect(error).toMatchObject({
      ...expected,
      status: 404,
      failure: "http_status",
      retryable: false,
      method: "GET",
      path: "/tasks/task_missing00001",
    });
    expect(error.message).toContain("Task not found");
  });

  it("survives a proxy's HTML error page", async () => {
    const { client } = createTestIttybitClient(ittybit, { retry: { limit: 0 } });
    ittybit.failNext({
      path: "/tasks/task_behindProxy1",
      status: 502,
      body: "<html><body>Bad Gateway</body></html>",
      headers: { "content-type": "text/html" },
    });
    const error = await failureOf(client.getTask("task_behindProxy1"));
    expect(error).toMatchObject({ status: 502, retryable: true });
    expect(error.ittybitMessage).toBeUndefined();
  });

  it("reports the stand-in's real 401 for a wrong key, without retrying", async () => {
    const { client } = createTestIttybitClient(ittybit, { apiKey: "ittybit_wrong_key" });
    const error = await failureOf(client.getTask("task_anyTask1234"));
    expect(error).toMatchObject({
      status: 401,
      retryable: false,
      ittybitMessage: "Invalid API key",
    });
    expect(ittybit.requests).toHaveLength(1);
  });

  it("refuses a 2xx that is not the documented resource, without retrying", async () => {
    const { client } = createTestIttybitClient(ittybit);
    ittybit.failNext({ path: "/tasks/task_oddShape0001", status: 200, body: { task: "?" } });
    const error = await failureOf(client.getTask("task_oddShape0001"));
    expect(error).toMatchObject({ failure: "unexpected_shape", retryable: false });
    expect(error.message).toContain("id");
    expect(ittybit.requests).toHaveLength(1);
  });

  it("accepts fields and enum values it does not know", async () => {
    const { client } = createTestIttybitClient(ittybit);
    ittybit.failNext({
      path: "/tasks/task_newerShape01",
      status: 200,
      body: { id: "task_newerShape01", status: "teleporting", inputs: [], brand_new: { a: 1 } },
    });
    await expect(client.getTask("task_newerShape01")).resolves.toMatchObject({
      id: "task_newerShape01",
      status: "teleporting",
      brand_new: { a: 1 },
    });
  });
});

describe("the API key", () => {
  it("appears in no error or log line, even when Ittybit echoes it back", async () => {
    const { client, logs } = createTestIttybitClient(ittybit, { retry: { limit: 1 } });
    ittybit.failNext({
      path: "/tasks/task_echoesKey01",
      status: 500,
      body: { message: `key ${apiKey} is rate limited` },
      times: 2,
    });
    const httpError = await failureOf(client.getTask("task_echoesKey01"));
    expect(httpError.ittybitMessage).toBe("key [redacted] is rate limited");

    ittybit.dropNext({ path: "/tasks/task_dropsKey0001", times: 2 });
    const networkError = await failureOf(client.getTask("task_dropsKey0001"));

    // The retries above were logged, so the logs are worth searching.
    expect(logs.filter((line) => line.includes("retrying Ittybit request"))).toHaveLength(2);
    for (const error of [httpError, networkError]) {
      const everything = [
        error.message,
        error.stack,
        JSON.stringify(error),
        inspect(error, { depth: 10, showHidden: true }),
      ].join("\n");
      expect(everything).not.toContain(apiKey);
    }
    expect(logs.join("\n")).not.toContain(apiKey);
  });
});
