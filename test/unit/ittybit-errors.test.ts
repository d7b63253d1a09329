import { describe, expect, it } from "vitest";
import {
  IttybitError,
  isRetryableStatus,
  parseErrorBody,
  parseRetryAfter,
} from "../../src/services/ittybit/errors.ts";

describe("parseErrorBody", () => {
  it.each([
    ["2025-08-20 {message}", { message: "Task not found" }, { ittybitMessage: "Task not found" }],
    [
      "later {kind, message}",
      { kind: "task_not_found", message: "Task not found" },
      { kind: "task_not_found", ittybitMessage: "Task not found" },
    ],
    [
      "the older envelope",
      { meta: { type: "error" }, data: null, error: { message: "Task not found" }, links: {} },
      { ittybitMessage: "Task not found" },
    ],
    ["JSON sent as text", '{"kind":"internal_error"}', { kind: "internal_error" }],
    ["a proxy's page", "<html>Bad Gateway</html>", {}],
    ["an empty body", "", {}],
    ["a list", ["Task not found"], {}],
    [
      "a message of the wrong type",
      { message: 42, kind: "request_invalid" },
      { kind: "request_invalid" },
    ],
  ])("reads %s", (_, body, expected) => {
    expect(parseErrorBody(body, [])).toEqual(expected);
  });

  it("removes secrets Ittybit echoes back", () => {
    const parsed = parseErrorBody({ message: "Invalid key ittybit_s3cr3t, key ittybit_s3cr3t" }, [
      "ittybit_s3cr3t",
    ]);
    expect(parsed.ittybitMessage).toBe("Invalid key [redacted], key [redacted]");
  });

  it("bounds a very long message", () => {
    expect(parseErrorBody({ message: "x".repeat(10_000) }, []).ittybitMessage).toHaveLength(500);
  });
});

describe("parseRetryAfter", () => {
  const now = Date.parse("2025-09-01T10:00:00Z");

  it("reads delta-seconds", () => {
    expect(parseRetryAfter("3", now)).toBe(3_000);
    expect(parseRetryAfter(" 0 ", now)).toBe(0);
  });

  it("reads an HTTP date, never in the past", () => {
    expect(parseRetryAfter("Mon, 01 Sep 2025 10:00:30 GMT", now)).toBe(30_000);
    expect(parseRetryAfter("Mon, 01 Sep 2025 09:00:00 GMT", now)).toBe(0);
  });

  it("ignores what it cannot read", () => {
    expect(parseRetryAfter(undefined, now)).toBeUndefined();
    expect(parseRetryAfter("soon", now)).toBeUndefined();
  });
});

describe("isRetryableStatus", () => {
  it("retries 408, 429 and 5xx only", () => {
    const retryable = [400, 401, 402, 403, 404, 405, 408, 409, 422, 429, 500, 502, 503, 504].filter(
      isRetryableStatus,
    );
    expect(retryable).toEqual([408, 429, 500, 502, 503, 504]);
  });
});

describe("IttybitError", () => {
  it("says what failed in its message", () => {
    const error = new IttybitError({
      method: "GET",
      path: "/tasks/task_1",
      failure: "http_status",
      retryable: false,
      status: 404,
      kind: "task_not_found",
      ittybitMessage: "Task not found",
    });
    expect(error).toBeInstanceOf(Error);
    expect(error.name).toBe("IttybitError");
    expect(error.message).toBe(
      "Ittybit GET /tasks/task_1 failed with HTTP 404 (task_not_found): Task not found",
    );
  });
});
