import { describe, expect, it } from "vitest";
import { FeedSubscription } from "../../src/services/feed-subscription.ts";

// A subscriber's stream of keyed updates, and the way a consumer may take them at once
// (takeDirectly) instead of through next(): never out of order with what went through next().

/** Lets every pending promise reaction run. */
const settle = () => new Promise<void>((resolve) => setImmediate(resolve));

/** Reads the stream as graphql-ws does: `for await`, dealing with each value before the next. */
function consume<T>(stream: FeedSubscription<T>, into: T[]): Promise<void> {
  return (async () => {
    for await (const value of stream) into.push(value);
  })();
}

describe("FeedSubscription", () => {
  it("keeps the latest update of each key for a subscriber that falls behind, in order", async () => {
    const stream = new FeedSubscription<string>(() => {});
    stream.push("a", "a1");
    stream.push("b", "b1");
    stream.push("a", "a2");
    expect(await stream.next()).toEqual({ value: "b1", done: false });
    expect(await stream.next()).toEqual({ value: "a2", done: false });
    stream.end();
    expect(await stream.next()).toEqual({ value: undefined, done: true });
  });

  it("offers an update to takeDirectly only while the consumer waits, and keeps it waiting", async () => {
    const stream = new FeedSubscription<string>(() => {});
    const taken: string[] = [];
    stream.takeDirectly((value) => {
      taken.push(value);
      return true;
    });
    // Nobody waits yet: queued for next(), not offered.
    stream.push("a", "queued");
    expect(taken).toEqual([]);
    expect(await stream.next()).toEqual({ value: "queued", done: false });

    const waiting = stream.next();
    stream.push("a", "at once");
    stream.push("b", "at once too");
    expect(taken).toEqual(["at once", "at once too"]);
    // The consumer still waits for what comes through next(): the end.
    let answered = false;
    void waiting.then(() => {
      answered = true;
    });
    await settle();
    expect(answered).toBe(false);
    stream.end();
    expect(await waiting).toEqual({ value: undefined, done: true });
  });

  it("hands an update declined (or failed) by takeDirectly to next()", async () => {
    const stream = new FeedSubscription<string>(() => {});
    stream.takeDirectly((value) => {
      if (value === "throws") throw new Error("the socket broke");
      return value !== "declined";
    });
    const declined = stream.next();
    stream.push("a", "declined");
    expect(await declined).toEqual({ value: "declined", done: false });
    const failed = stream.next();
    stream.push("a", "throws");
    expect(await failed).toEqual({ value: "throws", done: false });
  });

  it("never lets an update taken at once overtake one handed to next() before it", async () => {
    const stream = new FeedSubscription<number>(() => {});
    const delivered: number[] = [];
    // Odd numbers go through next(), even ones are taken at once: as a shared result with
    // errors (or still executing) goes graphql-ws's way and an error-free one is written.
    stream.takeDirectly((value) => {
      if (value % 2 === 1) return false;
      delivered.push(value);
      return true;
    });
    const consumed = consume(stream, delivered);
    await settle();
    // Some pushed in one turn (the later ones queue behind the one handed to next()), some
    // after the consumer caught up.
    for (let value = 1; value <= 20; value += 1) {
      stream.push(String(value), value);
      if (value % 5 === 0) await settle();
    }
    await settle();
    stream.end();
    await consumed;
    expect(delivered).toEqual(Array.from({ length: 20 }, (_, index) => index + 1));
  });

  it("offers nothing once ended", async () => {
    let ended = 0;
    const stream = new FeedSubscription<string>(() => {
      ended += 1;
    });
    const taken: string[] = [];
    stream.takeDirectly((value) => {
      taken.push(value);
      return true;
    });
    const waiting = stream.next();
    await stream.return();
    stream.push("a", "too late");
    expect(taken).toEqual([]);
    expect(ended).toBe(1);
    expect(await waiting).toEqual({ value: undefined, done: true });
  });
});
