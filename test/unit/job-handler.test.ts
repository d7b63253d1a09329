import { randomUUID } from "node:crypto";
import type { Job } from "pg-boss";
import { describe, expect, it } from "vitest";
import { ZodError } from "zod";
import { jobHandler } from "../../src/jobs/handler.ts";
import { episodeJobPayload } from "../../src/jobs/queues.ts";

function job(data: unknown): Job<unknown> {
  return {
    id: randomUUID(),
    name: "process-episode",
    data,
    expireInSeconds: 60,
    heartbeatSeconds: null,
    retryCount: 0,
    signal: new AbortController().signal,
  };
}

describe("jobHandler", () => {
  it("hands each job's parsed payload and the job itself to the work", async () => {
    const seen: Array<[string, string]> = [];
    const handle = jobHandler(episodeJobPayload, async ({ episodeId }, current) => {
      seen.push([episodeId, current.id]);
    });
    const first = job({ episodeId: randomUUID(), extra: "dropped" });
    const second = job({ episodeId: randomUUID() });
    await handle([first, second]);
    expect(seen).toEqual([
      [(first.data as { episodeId: string }).episodeId, first.id],
      [(second.data as { episodeId: string }).episodeId, second.id],
    ]);
  });

  it("does nothing for an empty batch", async () => {
    let calls = 0;
    await jobHandler(episodeJobPayload, async () => {
      calls += 1;
    })([]);
    expect(calls).toBe(0);
  });

  it("fails the job, without running the work, when the payload does not match", async () => {
    let calls = 0;
    const handle = jobHandler(episodeJobPayload, async () => {
      calls += 1;
    });
    await expect(handle([job({ episodeId: "not-a-uuid" })])).rejects.toBeInstanceOf(ZodError);
    await expect(handle([job(null)])).rejects.toBeInstanceOf(ZodError);
    expect(calls).toBe(0);
  });

  it("fails the job with the work's own error", async () => {
    const handle = jobHandler(episodeJobPayload, async () => {
      throw new Error("Ittybit is down");
    });
    await expect(handle([job({ episodeId: randomUUID() })])).rejects.toThrow("Ittybit is down");
  });
});
