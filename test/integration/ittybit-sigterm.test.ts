/**
 * SIGTERM to a Podflow whose process-episode job waits for Ittybit's answer to a task creation:
 * the stop aborts the request, hands the job back at once — due now, its retries kept — and the
 * other Podflow, already running, continues it; nothing is made twice at Ittybit.
 */
import { afterEach, beforeEach, expect, it } from "vitest";
import {
  type CrashRig,
  counter,
  loggedAt,
  type PodflowInstance,
  startCrashRig,
} from "../support/crash.ts";
import { createTestDatabase } from "../support/database.ts";

let database: Awaited<ReturnType<typeof createTestDatabase>>;
let rig: CrashRig;

beforeEach(async () => {
  database = await createTestDatabase();
  rig = await startCrashRig({ databaseUrl: database.url });
});
afterEach(async () => {
  await rig?.stop();
  await database?.drop();
});

it("hands process-episode back on SIGTERM, and the other Podflow continues it at once", async () => {
  const instances = [await rig.spawn(), await rig.spawn()];
  // The third creation takes effect at Ittybit; its answer is held back past the stop.
  rig.standIn.delayNext({ method: "POST", path: "/tasks", after: 2, delayMs: 120_000 });
  const uuid = await rig.uploadEpisode((instances[0] as PodflowInstance).url);
  await rig.standIn.waitForRequests({ method: "POST", path: "/tasks" }, 3);
  const holder = instances.find((instance) =>
    instance.lines.some((line) => line.msg === "task created" && line.episodeId === uuid),
  ) as PodflowInstance;
  const other = instances.find((instance) => instance !== holder) as PodflowInstance;
  expect(holder).toBeTruthy();

  const stoppedAt = Date.now();
  process.kill(-(holder.child.pid as number), "SIGTERM");
  // A clean exit that did not wait for the held-back answer.
  expect(await holder.exited).toBe(0);
  const exitedAt = Date.now();
  expect(
    holder.lines.find((line) => line.msg === "job handed back: Podflow is stopping"),
  ).toMatchObject({
    queue: "process-episode",
    episodeId: uuid,
  });

  const resumed = await other.waitForLog(/job resumed after its Podflow stopped/, 30_000);
  expect(resumed).toMatchObject({ queue: "process-episode", episodeId: uuid, retryCount: 1 });
  const tasks = await rig.waitForTasks(uuid, 4);
  await rig.waitForStatus(uuid, "PROCESSING");
  await rig.completeTasks(uuid, other.url);
  await rig.waitForStatus(uuid, "PROCESSED");

  expect(tasks.map((task) => [task.type, task.attempt])).toEqual([
    ["AUDIO_EXTRACTION", 1],
    ["CHAPTER_DETECTION", 1],
    ["TRANSCRIPT_GENERATION", 1],
    ["VIDEO_TRANSCODE", 1],
  ]);
  const creations = rig.taskCreations();
  expect(creations.tasks).toBe(4);
  expect([...creations.requestsPerKey.values()].sort()).toEqual([1, 1, 1, 2]);
  // The stop did not use one of the job's retries (process-episode allows 8).
  expect(await rig.jobs("process-episode", uuid)).toEqual([
    expect.objectContaining({ state: "completed", retry_count: 1, retry_limit: 9 }),
  ]);
  const resumedAfter = (after: string) =>
    counter(other.url, "podflow_jobs_resumed_total", { queue: "process-episode", after });
  expect(await resumedAfter("stop")).toBe(1);
  expect(await resumedAfter("missed_heartbeat")).toBe(0);
  console.log(
    `SIGTERM with process-episode in hand: ${JSON.stringify({
      termToExit: (exitedAt - stoppedAt) / 1000,
      termToResumed: (loggedAt(resumed) - stoppedAt) / 1000,
    })}`,
  );
}, 120_000);
