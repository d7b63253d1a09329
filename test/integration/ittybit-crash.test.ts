/**
 * A Podflow killed with SIGKILL (its whole process group) in the middle of process-episode with
 * the Ittybit engine, then started again on the same database: its job's heartbeat stops, the
 * supervisor fails it, the new Podflow's worker runs it again, and the episode ends as it would
 * have without the crash — no second task at Ittybit, no task created twice in Podflow.
 */
import { afterEach, beforeEach, expect, it } from "vitest";
import { freePort } from "../../src/free-port.ts";
import { type CrashRig, counter, loggedAt, signalGroup, startCrashRig } from "../support/crash.ts";
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

/**
 * Kills the first Podflow once the third POST /tasks has reached the stand-in, starts a second
 * on the same port, and follows the episode to PROCESSED. Returns the seconds from the kill to
 * the job's resumption and the episode's first new task.
 */
async function killDuringThirdCreation(uuidOf: (url: string) => Promise<string>) {
  const port = await freePort();
  const first = await rig.spawn({ port });
  const uuid = await uuidOf(first.url);
  await rig.standIn.waitForRequests({ method: "POST", path: "/tasks" }, 3);
  const saved = await rig.taskRows(uuid);
  expect(saved).toHaveLength(2);

  const kill = await signalGroup(first, "SIGKILL");
  rig.standIn.clearFaults();
  const second = await rig.spawn({ port });
  const resumed = await second.waitForLog(/job resumed after a missed heartbeat/, 60_000);
  expect(resumed).toMatchObject({ queue: "process-episode", episodeId: uuid, retryCount: 1 });
  const tasks = await rig.waitForTasks(uuid, 4);
  const movedAt = Date.now();
  await rig.waitForStatus(uuid, "PROCESSING");
  await rig.completeTasks(uuid, second.url);
  const episode = await rig.waitForStatus(uuid, "PROCESSED");

  // The same four tasks, one attempt each, the first two kept from before the crash.
  expect(tasks.map((task) => [task.type, task.attempt, task.status])).toEqual([
    ["AUDIO_EXTRACTION", 1, "PENDING"],
    ["CHAPTER_DETECTION", 1, "PENDING"],
    ["TRANSCRIPT_GENERATION", 1, "PENDING"],
    ["VIDEO_TRANSCODE", 1, "PENDING"],
  ]);
  for (const before of saved) {
    expect(tasks.find((task) => task.id === before.id)?.engine_task_id).toBe(before.engine_task_id);
  }
  // One task per kind at Ittybit, each row pointing at one of them.
  const creations = rig.taskCreations();
  expect(creations.tasks).toBe(4);
  expect(creations.kinds).toEqual(["audio", "chapters", "speech", "video"]);
  expect(creations.requestsPerKey.size).toBe(4);
  expect(new Set(tasks.map((task) => task.engine_task_id))).toEqual(
    new Set(rig.standIn.tasks.keys()),
  );
  expect(rig.standIn.media.size).toBeGreaterThan(0);
  expect(episode.audio_url).toBeTruthy();
  expect(episode.transcript).toContain("Welcome to the show.");
  // One process-episode job, retried once (the crash), completed.
  expect(await rig.jobs("process-episode", uuid)).toEqual([
    expect.objectContaining({ state: "completed", retry_count: 1 }),
  ]);
  expect(
    await counter(second.url, "podflow_jobs_resumed_total", {
      queue: "process-episode",
      after: "missed_heartbeat",
    }),
  ).toBe(1);

  const seconds = {
    killToResumed: (loggedAt(resumed) - kill.at) / 1000,
    killToNextTask: (movedAt - kill.at) / 1000,
  };
  console.log(`recovery after SIGKILL: ${JSON.stringify(seconds)}`);
  return { creations, seconds };
}

it("a kill between two task creations: the next start creates the rest, once each", async () => {
  // The third creation is refused, so nothing of it exists at Ittybit when Podflow dies.
  rig.standIn.failNext({ method: "POST", path: "/tasks", status: 503, after: 2, times: 1_000 });
  const { creations } = await killDuringThirdCreation((url) => rig.uploadEpisode(url));
  // Every key was asked for, the refused one more than once: none made a second task.
  const perKey = [...creations.requestsPerKey.values()].sort((a, b) => a - b);
  expect(perKey.slice(0, 3)).toEqual([1, 1, 1]);
  expect(perKey[3]).toBeGreaterThanOrEqual(2);
}, 120_000);

it("a kill while a task creation's answer is in flight: the resend gets the same task", async () => {
  // The third creation takes effect at Ittybit, but its answer never reaches Podflow.
  rig.standIn.delayNext({ method: "POST", path: "/tasks", after: 2, delayMs: 120_000 });
  const { creations } = await killDuringThirdCreation((url) => rig.uploadEpisode(url));
  expect(creations.requestsPerKey.size).toBe(4);
  expect(Math.max(...creations.requestsPerKey.values())).toBe(2);
}, 120_000);
