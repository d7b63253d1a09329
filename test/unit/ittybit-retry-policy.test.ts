import { describe, expect, it } from "vitest";
import { backoffDelay, retryDelay } from "../../src/services/ittybit/retry-policy.ts";

const settings = { limit: 5, baseDelayMs: 100, maxDelayMs: 1_000, totalTimeoutMs: 10_000 };
const lowest = () => 0;
const highest = () => 0.999_999;

describe("backoffDelay", () => {
  it("doubles from the base delay, between half and all of each step", () => {
    expect([1, 2, 3, 4].map((attempt) => backoffDelay(attempt, settings, lowest))).toEqual([
      50, 100, 200, 400,
    ]);
    expect([1, 2, 3, 4].map((attempt) => backoffDelay(attempt, settings, highest))).toEqual([
      100, 200, 400, 800,
    ]);
  });

  it("never exceeds the cap", () => {
    expect(backoffDelay(5, settings, highest)).toBe(1_000);
    expect(backoffDelay(30, settings, highest)).toBe(1_000);
  });

  it("spreads concurrent retries out", () => {
    const delays = new Set(Array.from({ length: 50 }, () => backoffDelay(3, settings)));
    expect(delays.size).toBeGreaterThan(10);
    for (const delay of delays) {
      expect(delay).toBeGreaterThanOrEqual(200);
      expect(delay).toBeLessThanOrEqual(400);
    }
  });

  it("never returns 0, which would cancel the retry", () => {
    expect(backoffDelay(1, { ...settings, baseDelayMs: 1 }, lowest)).toBe(1);
  });
});

describe("retryDelay", () => {
  it("backs off while retries are left", () => {
    expect(retryDelay({ attempt: 2, elapsedMs: 0 }, settings, lowest)).toBe(100);
    expect(retryDelay({ attempt: 5, elapsedMs: 0 }, settings, lowest)).toBe(500);
  });

  it("stops after the limit", () => {
    expect(retryDelay({ attempt: 6, elapsedMs: 0 }, settings, lowest)).toBe(0);
  });

  it("waits as long as Retry-After says, beyond the backoff cap", () => {
    expect(retryDelay({ attempt: 1, elapsedMs: 0, retryAfterMs: 3_000 }, settings)).toBe(3_000);
    expect(retryDelay({ attempt: 1, elapsedMs: 0, retryAfterMs: 0 }, settings)).toBe(1);
  });

  it("gives up rather than wait past the time budget", () => {
    expect(retryDelay({ attempt: 1, elapsedMs: 9_000, retryAfterMs: 1_500 }, settings)).toBe(0);
    expect(retryDelay({ attempt: 1, elapsedMs: 9_000, retryAfterMs: 1_000 }, settings)).toBe(1_000);
    expect(retryDelay({ attempt: 4, elapsedMs: 9_700 }, settings, lowest)).toBe(0);
  });
});
