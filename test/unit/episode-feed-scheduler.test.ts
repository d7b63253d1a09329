import pino from "pino";
import { describe, expect, it } from "vitest";
import { type Burst, BurstScheduler } from "../../src/services/episode-feed/scheduler.ts";

// The scheduler alone: `deliver` is the test's, and resolves when the test says, so what is
// heard while a burst runs is known exactly.

const logger = pino({ level: "silent" });

/** A deliver function that records each burst and holds it until released. */
function heldBursts() {
  const bursts: Burst[] = [];
  const releases: Array<(error?: Error) => void> = [];
  let arrived: (() => void) | null = null;
  return {
    bursts,
    deliver(burst: Burst): Promise<void> {
      bursts.push(structuredClone({ ...burst, primes: new Set() }));
      arrived?.();
      return new Promise<void>((resolve, reject) => {
        releases.push((error) => (error ? reject(error) : resolve()));
      });
    },
    /** Resolves once `count` bursts have started. */
    started(count: number): Promise<void> {
      return new Promise((resolve) => {
        const check = () => {
          if (bursts.length >= count) {
            arrived = null;
            resolve();
          } else arrived = check;
        };
        check();
      });
    },
    release(index: number, error?: Error): void {
      releases[index]?.(error);
    },
  };
}

const changedIds = (burst: Burst | undefined) => [...(burst?.changed.keys() ?? [])];

describe("BurstScheduler", () => {
  it("gathers what is heard while a burst runs into the next one, in the order of the latest change", async () => {
    const held = heldBursts();
    const scheduler = new BurstScheduler((burst) => held.deliver(burst), logger);
    expect(scheduler.position).toBe(1);

    scheduler.changed("e1", "u1");
    await held.started(1);
    expect(changedIds(held.bursts[0])).toEqual(["e1"]);
    expect(scheduler.position).toBe(2);

    // Heard while burst 1 runs: e2, e3, then e2 again (which moves it behind e3).
    scheduler.changed("e2", "u1");
    scheduler.changed("e3", "u2");
    scheduler.changed("e2", "u1");
    await Promise.resolve();
    expect(held.bursts).toHaveLength(1);

    held.release(0);
    await held.started(2);
    expect(held.bursts[1]?.number).toBe(2);
    expect(changedIds(held.bursts[1])).toEqual(["e3", "e2"]);
    held.release(1);
    await scheduler.stop();
  });

  it("merges a failed burst into the next one and runs it again", async () => {
    const held = heldBursts();
    const scheduler = new BurstScheduler((burst) => held.deliver(burst), logger);
    scheduler.changed("e1", "u1");
    await held.started(1);
    const away = new Date("2026-01-01T00:00:00Z");
    scheduler.changed("e2", "u1");
    scheduler.resync(new Date("2026-01-01T00:05:00Z"));

    held.release(0, new Error("the database is away"));
    await held.started(2);
    const retried = held.bursts[1];
    expect(retried?.number).toBe(2);
    // The failed burst's episodes join the pending one's, behind them.
    expect(changedIds(retried)).toEqual(["e2", "e1"]);
    expect(retried?.resyncSince).toEqual(new Date("2026-01-01T00:05:00Z"));
    held.release(1);

    // The earliest resync wins when two are merged.
    scheduler.resync(new Date("2026-01-01T00:10:00Z"));
    await held.started(3);
    scheduler.resync(away);
    held.release(2, new Error("still away"));
    await held.started(4);
    expect(held.bursts[3]?.resyncSince).toEqual(away);
    held.release(3);
    await scheduler.stop();
  });

  it("keeps the task changes announcements carried, in order, until one carries none; a retry reads", async () => {
    const held = heldBursts();
    const scheduler = new BurstScheduler((burst) => held.deliver(burst), logger);
    const change = (txid: number, progress: number) => ({
      txid,
      task: {
        id: "t1",
        type: "AUDIO_EXTRACTION" as const,
        status: "PROCESSING" as const,
        progress,
        errorMessage: null,
        outputUrl: null,
        engineTaskId: "task_1",
        attempt: 1,
        updatedAt: new Date(0),
      },
    });
    scheduler.changed("e1", "u1", change(10, 1));
    await held.started(1);
    scheduler.changed("e1", "u1", change(11, 2));
    scheduler.changed("e2", "u1", change(12, 3));
    scheduler.changed("e1", "u1", change(13, 4));
    scheduler.changed("e2", "u1");
    scheduler.changed("e2", "u1", change(14, 5));
    held.release(0);
    await held.started(2);
    const txids = (burst: Burst | undefined, id: string) =>
      burst?.changed.get(id)?.tasks?.map((task) => task.txid) ?? null;
    expect(txids(held.bursts[0], "e1")).toEqual([10]);
    expect(txids(held.bursts[1], "e1")).toEqual([11, 13]);
    // e2's episode changed (an announcement by ids): it is read, whatever came after.
    expect(txids(held.bursts[1], "e2")).toBeNull();

    // A burst that failed is run again reading its episodes.
    scheduler.changed("e3", "u1", change(15, 6));
    held.release(1, new Error("the database is away"));
    await held.started(3);
    expect(changedIds(held.bursts[2])).toEqual(["e3", "e1", "e2"]);
    expect(txids(held.bursts[2], "e1")).toBeNull();
    expect(txids(held.bursts[2], "e3")).toEqual([15]);
    held.release(2);
    await scheduler.stop();
  });

  it("keeps the owner heard later when a failed burst is put back", async () => {
    const held = heldBursts();
    const scheduler = new BurstScheduler((burst) => held.deliver(burst), logger);
    scheduler.changed("e1", "alice");
    await held.started(1);
    // The episode changed hands while the burst that heard its old owner failed.
    scheduler.changed("e1", "bob");
    held.release(0, new Error("the database is away"));
    await held.started(2);
    expect(held.bursts[1]?.changed.get("e1")).toEqual({ userId: "bob", tasks: null });
    held.release(1);
    await scheduler.stop();
  });

  it("runs nothing once stopped, and stop waits for the running burst", async () => {
    const held = heldBursts();
    const scheduler = new BurstScheduler((burst) => held.deliver(burst), logger);
    scheduler.sweepTokens();
    await held.started(1);
    expect(held.bursts[0]?.sweepTokens).toBe(true);

    let stopped = false;
    const stopping = scheduler.stop().then(() => {
      stopped = true;
    });
    scheduler.changed("e1", "u1");
    await Promise.resolve();
    expect(stopped).toBe(false);
    held.release(0);
    await stopping;
    expect(held.bursts).toHaveLength(1);
  });
});
