/**
 * SIGKILL (the whole process group) during complete-episode's output downloads, restarted on the
 * same database; and two Podflows on one database, one killed in the middle of process-episode
 * while the other, left running, takes its job over. Each time the episode ends PROCESSED as it
 * would have without the crash, with nothing made twice.
 */
import { afterEach, beforeEach, expect, it } from "vitest";
import { freePort } from "../../src/free-port.ts";
import {
  type CrashRig,
  loggedAt,
  type PodflowInstance,
  signalGroup,
  startCrashRig,
} from "../support/crash.ts";
import { createTestDatabase } from "../support/database.ts";
import { waitUntil } from "../support/wait.ts";

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

/** The episode's outputs are the stand-in's, each task's output used once. */
async function expectOutputsOnce(uuid: string) {
  const episode = await rig.episode(uuid);
  const rows = await rig.taskRows(uuid);
  const outputOf = (type: string) => {
    const row = rows.find((task) => task.type === type);
    return rig.standIn.tasks.get(row?.engine_task_id ?? "")?.task.output?.url;
  };
  expect(episode.audio_url).toBe(outputOf("AUDIO_EXTRACTION"));
  expect(episode.video_url).toBe(outputOf("VIDEO_TRANSCODE"));
  expect(episode.transcript).toBe("Welcome to the show.\nThanks for having me.");
  expect(episode.chapters).toEqual([
    { start: 0, end: 60, title: "Introduction" },
    { start: 60, end: 300, title: "Interview" },
  ]);
  expect(rows.map((row) => row.attempt)).toEqual([1, 1, 1, 1]);
  expect(rig.taskCreations().tasks).toBe(4);
  // Each output file at the stand-in belongs to one task.
  const outputs = [...rig.standIn.files.values()].filter((file) => file.ref !== null);
  expect(outputs).toHaveLength(4);
}

it("a kill during complete-episode's downloads: the next start downloads again and finishes once", async () => {
  const port = await freePort();
  const first = await rig.spawn({ port });
  const uuid = await rig.uploadEpisode(first.url);
  await rig.waitForTasks(uuid, 4);
  await rig.waitForStatus(uuid, "PROCESSING");
  // The first output download is answered only after the worker is dead.
  rig.standIn.delayNext({ method: "GET", path: /^\/_files\//, delayMs: 120_000 });
  await rig.completeTasks(uuid, first.url);
  await rig.standIn.waitForRequests({ method: "GET", path: /^\/_files\// });
  expect((await rig.episode(uuid)).status).toBe("PROCESSING");

  const kill = await signalGroup(first, "SIGKILL");
  const second = await rig.spawn({ port });
  const resumed = await second.waitForLog(/job resumed after a missed heartbeat/, 60_000);
  expect(resumed).toMatchObject({ queue: "complete-episode", episodeId: uuid });
  await rig.waitForStatus(uuid, "PROCESSED");
  const processedAt = Date.now();

  await expectOutputsOnce(uuid);
  expect(await rig.jobs("complete-episode", uuid)).toEqual([
    expect.objectContaining({ state: "completed", retry_count: 1 }),
  ]);
  // Downloaded again by the second Podflow: each output file fetched at least twice in all.
  const downloads = rig.standIn.requests.filter((request) => request.path.startsWith("/_files/"));
  expect(downloads.length).toBeGreaterThanOrEqual(3);
  console.log(
    `recovery after SIGKILL during downloads: ${JSON.stringify({
      killToResumed: (loggedAt(resumed) - kill.at) / 1000,
      killToProcessed: (processedAt - kill.at) / 1000,
    })}`,
  );
}, 120_000);

it("two Podflows on one database: the living one takes over the killed one's job", async () => {
  const instances = [await rig.spawn(), await rig.spawn()];
  rig.standIn.delayNext({ method: "POST", path: "/tasks", after: 2, delayMs: 120_000 });
  const uuid = await rig.uploadEpisode((instances[0] as PodflowInstance).url);
  await rig.standIn.waitForRequests({ method: "POST", path: "/tasks" }, 3);
  // Whichever worker took the job logged its tasks. Its log comes through its stdout, which
  // can trail the stand-in's third request when the machine is busy: wait for the line.
  const loggedTasks = (instance: PodflowInstance) =>
    instance.lines.some((line) => line.msg === "task created" && line.episodeId === uuid);
  const holder = (await waitUntil(
    async () => instances.find(loggedTasks),
    (found) => found !== undefined,
    "the worker that took the job to log its tasks",
    10_000,
  )) as PodflowInstance;
  const survivor = instances.find((instance) => instance !== holder) as PodflowInstance;
  expect(holder).toBeTruthy();

  const kill = await signalGroup(holder, "SIGKILL");
  const resumed = await survivor.waitForLog(/job resumed after a missed heartbeat/, 60_000);
  expect(resumed).toMatchObject({ queue: "process-episode", episodeId: uuid });
  await rig.waitForTasks(uuid, 4);
  const movedAt = Date.now();
  await rig.waitForStatus(uuid, "PROCESSING");
  await rig.completeTasks(uuid, survivor.url);
  await rig.waitForStatus(uuid, "PROCESSED");

  expect(survivor.alive()).toBe(true);
  await expectOutputsOnce(uuid);
  // The third task's key was sent twice (by each Podflow), answered with one task.
  expect([...rig.taskCreations().requestsPerKey.values()].sort()).toEqual([1, 1, 1, 2]);
  console.log(
    `takeover after SIGKILL: ${JSON.stringify({
      killToResumed: (loggedAt(resumed) - kill.at) / 1000,
      killToNextTask: (movedAt - kill.at) / 1000,
    })}`,
  );
}, 120_000);
