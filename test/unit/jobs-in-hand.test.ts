import { randomUUID } from "node:crypto";
import type { JobWithMetadata } from "pg-boss";
import { describe, expect, it } from "vitest";
import { failureMessage, trackJobsInHand } from "../../src/jobs/in-hand.ts";
import { queuePolicies } from "../../src/jobs/queues.ts";

describe("failureMessage", () => {
  it("reads each shape pg-boss stores a failure in", () => {
    // The supervisor's missed heartbeat and expiry.
    expect(failureMessage({ value: { message: "job heartbeat timeout" } })).toBe(
      "job heartbeat timeout",
    );
    // pg-boss's stop after its grace (a string is stored as `{value}`).
    expect(failureMessage({ value: "pg-boss shut down while active" })).toBe(
      "pg-boss shut down while active",
    );
    // A handler's error, and Podflow's hand-back.
    expect(failureMessage({ message: "Ittybit answered 503", stack: "…" })).toBe(
      "Ittybit answered 503",
    );
    expect(failureMessage(null)).toBeNull();
    expect(failureMessage({ value: 42 })).toBeNull();
  });
});

describe("queuePolicies", () => {
  const heartbeats = (policies: ReturnType<typeof queuePolicies>) =>
    Object.fromEntries(policies.map((queue) => [queue.name, queue.heartbeatSeconds ?? null]));

  it("gives every long-running queue a heartbeat of its own by default", () => {
    expect(heartbeats(queuePolicies())).toEqual({
      "episode-dead-letter": null,
      "process-episode": 10,
      "complete-episode": 10,
      "local-task-dead-letter": null,
      "run-local-task": 20,
      "refetch-ittybit-task": null,
      "publish-episode": null,
      "publication-dead-letter": null,
      "publish-to-transistor": 20,
      "publish-to-youtube": 20,
      "reconcile-tasks": null,
      "prune-webhook-deliveries": null,
      "sweep-stuck-episodes": null,
    });
  });

  it("uses one heartbeat for all of them when PODFLOW_JOB_HEARTBEAT_SECONDS is set", () => {
    expect(heartbeats(queuePolicies(30))).toEqual({
      "episode-dead-letter": null,
      "process-episode": 30,
      "complete-episode": 30,
      "local-task-dead-letter": null,
      "run-local-task": 30,
      "refetch-ittybit-task": null,
      "publish-episode": null,
      "publication-dead-letter": null,
      "publish-to-transistor": 30,
      "publish-to-youtube": 30,
      "reconcile-tasks": null,
      "prune-webhook-deliveries": null,
      "sweep-stuck-episodes": null,
    });
  });
});

describe("trackJobsInHand", () => {
  function fakes() {
    const calls: Array<[string, ...unknown[]]> = [];
    const boss = {
      offWork: async (...args: unknown[]) => void calls.push(["offWork", ...args]),
      fail: async (...args: unknown[]) => {
        calls.push(["fail", ...args]);
        return { affected: 1 };
      },
      update: async (...args: unknown[]) => {
        calls.push(["update", ...args]);
        return { jobs: [], updated: 1 };
      },
    };
    const counted: Array<[string, Record<string, string>]> = [];
    const metrics = {
      jobsResumed: { inc: (labels: Record<string, string>) => counted.push(["resumed", labels]) },
      jobsHandedBack: {
        inc: (labels: Record<string, string>) => counted.push(["handedBack", labels]),
      },
    };
    const logged: string[] = [];
    const logger = {
      warn: (_: unknown, msg: string) => logged.push(msg),
      info: (_: unknown, msg: string) => logged.push(msg),
      error: (_: unknown, msg: string) => logged.push(msg),
    };
    const jobs = trackJobsInHand({
      boss: boss as never,
      logger: logger as never,
      metrics: metrics as never,
    });
    return { jobs, calls, counted, logged };
  }

  function job(fields: Partial<JobWithMetadata<unknown>> = {}): JobWithMetadata<unknown> {
    return {
      id: randomUUID(),
      name: "run-local-task",
      data: { taskId: randomUUID(), episodeId: randomUUID() },
      retryCount: 0,
      retryLimit: 2,
      output: {},
      signal: new AbortController().signal,
      ...fields,
    } as JobWithMetadata<unknown>;
  }

  it("counts and logs a job resumed after a missed heartbeat", async () => {
    const { jobs, counted, logged } = fakes();
    const work = jobs.track("run-local-task", async () => undefined);
    await work([job({ retryCount: 1, output: { value: { message: "job heartbeat timeout" } } })]);
    await work([job()]);
    expect(counted).toEqual([["resumed", { queue: "run-local-task", after: "missed_heartbeat" }]]);
    expect(logged).toEqual(["job resumed after a missed heartbeat"]);
  });

  it("hands a stopped job back once its handler has ended: failed, due now, its retry kept", async () => {
    const { jobs, calls, counted } = fakes();
    const running = job({ retryCount: 1 });
    let cleanedUp = false;
    const work = jobs.track(
      "run-local-task",
      async ([current]) => {
        await new Promise((_, reject) =>
          current?.signal.addEventListener("abort", () => reject(new Error("ffmpeg killed"))),
        );
      },
      { handBackOnStop: true },
    );
    const handled = work([running]).finally(() => {
      cleanedUp = true;
    });
    await jobs.handBack(60_000);
    // The wrapper resolves: pg-boss has nothing left to settle.
    await handled;
    expect(cleanedUp).toBe(true);
    expect(calls).toEqual([
      ["offWork", "run-local-task", { wait: false }],
      [
        "fail",
        "run-local-task",
        { id: running.id, retryCount: 1 },
        { message: "handed back: the Podflow running it was stopped" },
      ],
      [
        "update",
        "run-local-task",
        undefined,
        { id: running.id, startAfter: expect.any(Date), retryLimit: 3 },
      ],
    ]);
    expect(counted).toEqual([["handedBack", { queue: "run-local-task" }]]);
    // A job fetched after the stop began is handed back without running.
    let ran = false;
    const late = job();
    await jobs.track(
      "run-local-task",
      async () => {
        ran = true;
      },
      { handBackOnStop: true },
    )([late]);
    expect(ran).toBe(false);
    expect(calls.at(-2)).toEqual([
      "fail",
      "run-local-task",
      { id: late.id, retryCount: 0 },
      { message: "handed back: the Podflow running it was stopped" },
    ]);
  });

  it("does not wait past its grace for a handler that ignores its signal", async () => {
    const { jobs, calls } = fakes();
    const work = jobs.track("process-episode", () => new Promise<void>(() => undefined), {
      handBackOnStop: true,
    });
    void work([job()]);
    await jobs.handBack(20);
    // Still running: nothing was failed (pg-boss's stop fails it after its own grace).
    expect(calls.map(([name]) => name)).toEqual(["offWork"]);
  });
});
