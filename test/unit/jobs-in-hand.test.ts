import { describe, expect, it } from "vitest";
import { failureMessage } from "../../src/jobs/in-hand.ts";
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
      "reconcile-tasks": null,
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
      "reconcile-tasks": null,
    });
  });
});
