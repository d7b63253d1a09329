import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { expiring } from "../../src/security/stream-limits.ts";

/** A source whose results the test hands out one by one, recording when it is ended. */
function controlledSource() {
  const pending: Array<(result: IteratorResult<number>) => void> = [];
  const source = {
    returned: 0,
    push(value: number) {
      pending.shift()?.({ done: false, value });
    },
    end() {
      pending.shift()?.({ done: true, value: undefined });
    },
    [Symbol.asyncIterator]() {
      return {
        next: () =>
          new Promise<IteratorResult<number>>((resolve) => {
            pending.push(resolve);
          }),
        return: async () => {
          source.returned += 1;
          for (const resolve of pending.splice(0)) resolve({ done: true, value: undefined });
          return { done: true as const, value: undefined };
        },
      };
    },
  };
  return source;
}

const LAST = -1;

describe("a stream's lifetime (expiring)", () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it("passes the source's results through and, when the source ends, ends with it and drops its timer", async () => {
    const source = controlledSource();
    const stream = expiring(source, 60_000, LAST);
    const first = stream.next();
    source.push(1);
    expect(await first).toEqual({ done: false, value: 1 });
    const second = stream.next();
    source.end();
    expect(await second).toEqual({ done: true, value: undefined });
    expect(vi.getTimerCount()).toBe(0);
    expect(await stream.next()).toEqual({ done: true, value: undefined });
  });

  it("answers a next() waiting when the lifetime passes with the last result, ends the source, then is done", async () => {
    const source = controlledSource();
    const stream = expiring(source, 60_000, LAST);
    const waiting = stream.next();
    await vi.advanceTimersByTimeAsync(60_000);
    expect(await waiting).toEqual({ done: false, value: LAST });
    expect(source.returned).toBe(1);
    expect(await stream.next()).toEqual({ done: true, value: undefined });
  });

  it("gives the last result to the next call when the lifetime passed between calls", async () => {
    const source = controlledSource();
    const stream = expiring(source, 60_000, LAST);
    const first = stream.next();
    source.push(1);
    await first;
    await vi.advanceTimersByTimeAsync(60_000);
    expect(source.returned).toBe(1);
    expect(await stream.next()).toEqual({ done: false, value: LAST });
    expect(await stream.next()).toEqual({ done: true, value: undefined });
  });

  it("ends at once on return(), answering a next() still waiting, and drops its timer", async () => {
    const source = controlledSource();
    const stream = expiring(source, 60_000, LAST);
    const waiting = stream.next();
    await stream.return?.();
    expect(await waiting).toEqual({ done: true, value: undefined });
    expect(source.returned).toBe(1);
    expect(vi.getTimerCount()).toBe(0);
    await vi.advanceTimersByTimeAsync(60_000);
    expect(await stream.next()).toEqual({ done: true, value: undefined });
  });

  it("passes a failing source's error to the waiting next()", async () => {
    const failing: AsyncIterable<number> = {
      [Symbol.asyncIterator]: () => ({ next: () => Promise.reject(new Error("source broke")) }),
    };
    const stream = expiring(failing, 60_000, LAST);
    await expect(stream.next()).rejects.toThrow("source broke");
    await stream.return?.();
  });
});

describe("a long-lived stream's memory (expiring)", () => {
  it("holds nothing per result passed through while its lifetime runs", async () => {
    // V8's gc() for this test: heap in use is only comparable after a full collection.
    setFlagsFromString("--expose-gc");
    const gc = runInNewContext("gc") as () => void;
    async function* counting() {
      let value = 0;
      while (true) yield value++;
    }
    const stream = expiring(counting(), 3_600_000, LAST);
    for (let index = 0; index < 1_000; index++) await stream.next();
    gc();
    const before = process.memoryUsage().heapUsed;
    for (let index = 0; index < 200_000; index++) await stream.next();
    gc();
    const grownMiB = (process.memoryUsage().heapUsed - before) / 2 ** 20;
    await stream.return?.();
    // Each result raced against one promise of the lifetime used to stay on it: ~65 MiB here.
    expect(grownMiB).toBeLessThan(8);
  });
});
