import { describe, expect, it } from "vitest";
import { coalesceByKey } from "../../src/services/ittybit-refetch.ts";

/** A load whose calls are recorded and whose answers the test gives, one call at a time. */
function controlledLoad() {
  const calls: Array<{
    key: string;
    resolve: (value: string) => void;
    reject: (e: Error) => void;
  }> = [];
  const load = (key: string) =>
    new Promise<string>((resolve, reject) => calls.push({ key, resolve, reject }));
  return { calls, load };
}

const tick = () => new Promise((resolve) => setImmediate(resolve));

describe("coalesceByKey", () => {
  it("lets callers that arrive before a load starts share it", async () => {
    const { calls, load } = controlledLoad();
    const get = coalesceByKey(load);
    const answers = Promise.all([get("a"), get("a"), get("a")]);
    await tick();
    expect(calls).toHaveLength(1);
    calls[0]?.resolve("one");
    expect(await answers).toEqual(["one", "one", "one"]);
  });

  it("gives callers that arrive during a load one follow-up load that starts after it", async () => {
    const { calls, load } = controlledLoad();
    const get = coalesceByKey(load);
    const first = get("a");
    await tick();
    expect(calls).toHaveLength(1);
    // These arrived after the first load began: its answer may predate what they were told.
    const later = Promise.all([get("a"), get("a"), get("a")]);
    await tick();
    expect(calls).toHaveLength(1);
    calls[0]?.resolve("before");
    expect(await first).toBe("before");
    await tick();
    expect(calls).toHaveLength(2);
    calls[1]?.resolve("after");
    expect(await later).toEqual(["after", "after", "after"]);
  });

  it("hands a failure to the callers of that load only, and starts afresh afterwards", async () => {
    const { calls, load } = controlledLoad();
    const get = coalesceByKey(load);
    const failing = Promise.allSettled([get("a"), get("a")]);
    await tick();
    calls[0]?.reject(new Error("Ittybit is down"));
    expect((await failing).map((result) => result.status)).toEqual(["rejected", "rejected"]);
    const retried = get("a");
    await tick();
    expect(calls).toHaveLength(2);
    calls[1]?.resolve("up again");
    expect(await retried).toBe("up again");
  });

  it("keeps keys apart", async () => {
    const { calls, load } = controlledLoad();
    const get = coalesceByKey(load);
    const answers = Promise.all([get("a"), get("b")]);
    await tick();
    expect(calls.map((call) => call.key)).toEqual(["a", "b"]);
    for (const call of calls) call.resolve(call.key.toUpperCase());
    expect(await answers).toEqual(["A", "B"]);
  });
});
