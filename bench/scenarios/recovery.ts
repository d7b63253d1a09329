import { readFile } from "node:fs/promises";
import { freePort } from "../../src/free-port.ts";
import {
  type CrashRig,
  loggedAt,
  type PodflowInstance,
  signalGroup,
  startCrashRig,
  waitUntil,
} from "../../test/support/crash.ts";
import { makeMediaDir, makeVideoWithAudio, testMediaTools } from "../../test/support/media.ts";
import { type Check, check, figure } from "../support/results.ts";
import type { BenchScenario, ScenarioContext, ScenarioOutcome } from "../support/scenario.ts";

// Scenario 6: how long a crash costs. A Podflow process group is killed with SIGKILL in the
// middle of a job and started again on the same database, with Podflow's default job settings
// (heartbeat 10 s for episode jobs and 20 s for media tasks, supervisor every 10 s): the time
// from the kill until the new Podflow runs the job again, and until the episode moves on.
// Two kills: in process-episode while a task creation's answer from Ittybit is in flight, and in
// the local engine's 1080p encode. There is no baseline: before heartbeats the same kill cost
// the job's expiry (900 s and 6 h), and there is nothing cheaper that does the same work.

interface Sizes {
  kills: number;
  /** Seconds of generated video for the encode kill. */
  mediaSeconds: number;
}

const FULL: Sizes = { kills: 5, mediaSeconds: 30 };
const QUICK: Sizes = { kills: 3, mediaSeconds: 10 };

interface Round {
  killToStarted: number;
  killToResumed: number;
  killToMoved: number;
  problems: string[];
}

const resumedLine = (episodeId: string) => (line: Record<string, unknown>) =>
  line.msg === "job resumed after a missed heartbeat" && line.episodeId === episodeId;

/** Kills `current` while its third POST /tasks waits for its answer; returns the new Podflow. */
async function ittybitKill(
  rig: CrashRig,
  current: PodflowInstance,
  port: number,
  index: number,
): Promise<{ round: Round; next: PodflowInstance }> {
  rig.standIn.delayNext({ method: "POST", path: "/tasks", after: 2, delayMs: 600_000 });
  const creationsBefore = rig.standIn.requests.filter(
    (request) => request.method === "POST" && request.path === "/tasks",
  ).length;
  const uuid = await rig.uploadEpisode(current.url, `Recovery ${index}`);
  await rig.standIn.waitForRequests({ method: "POST", path: "/tasks" }, creationsBefore + 3);
  const kill = await signalGroup(current, "SIGKILL");
  const next = await rig.spawn({ port });
  const started = await rig.waitForLine(next, (line) => line.msg === "Podflow started", "start");
  const resumed = await rig.waitForLine(next, resumedLine(uuid), "the job to resume");
  await rig.waitForTasks(uuid, 4, 120_000);
  const movedAt = Date.now();
  await rig.waitForStatus(uuid, "PROCESSING");
  await rig.completeTasks(uuid, next.url);
  await rig.waitForStatus(uuid, "PROCESSED");
  const rows = await rig.taskRows(uuid);
  const problems: string[] = [];
  if (rows.length !== 4 || rows.some((row) => row.attempt !== 1)) {
    problems.push(`episode ${uuid}: tasks ${JSON.stringify(rows.map((row) => row.type))}`);
  }
  return {
    round: {
      killToStarted: (loggedAt(started) - kill.at) / 1000,
      killToResumed: (loggedAt(resumed) - kill.at) / 1000,
      killToMoved: (movedAt - kill.at) / 1000,
      problems,
    },
    next,
  };
}

/** Kills `current` during the episode's 1080p encode; returns the new Podflow. */
async function encodeKill(
  rig: CrashRig,
  current: PodflowInstance,
  port: number,
  video: Buffer,
  index: number,
): Promise<{ round: Round; next: PodflowInstance }> {
  const producer = await rig.producer();
  const prepared = await producer.gql<{
    prepareUpload: { episode: { id: string }; upload: { url: string } };
  }>(
    current.url,
    `mutation($input: PrepareUploadInput!) { prepareUpload(input: $input) {
       ... on PrepareUploadPayload { episode { id } upload { url } } } }`,
    { input: { filename: "long.mp4", title: `Encode ${index}`, filesize: video.length } },
  );
  const { episode, upload } = prepared.body.data?.prepareUpload ?? {};
  if (!episode || !upload) throw new Error(`prepareUpload failed: ${JSON.stringify(prepared)}`);
  const uuid = Buffer.from(episode.id, "base64").toString().split(":")[1] as string;
  const file = (await (
    await fetch(upload.url, { method: "PUT", body: new Uint8Array(video) })
  ).json()) as {
    id: string;
  };
  await producer.gql(
    current.url,
    `mutation($input: ConfirmUploadInput!) { confirmUpload(input: $input) { __typename } }`,
    { input: { episodeId: episode.id, fileId: file.id } },
  );
  await waitUntil(
    () => rig.taskRows(uuid),
    (rows) => rows.some((row) => row.type === "VIDEO_TRANSCODE" && row.status === "PROCESSING"),
    "the encode to start",
    120_000,
  );
  const kill = await signalGroup(current, "SIGKILL");
  const next = await rig.spawn({ port });
  const started = await rig.waitForLine(next, (line) => line.msg === "Podflow started", "start");
  const resumed = await rig.waitForLine(next, resumedLine(uuid), "the encode to resume");
  await rig.waitForStatus(uuid, "PROCESSED", 600_000);
  const processedAt = Date.now();
  const rows = await rig.taskRows(uuid);
  const problems: string[] = [];
  const ended = rows.map((row) => `${row.type}:${row.status}:${row.attempt}`).sort();
  const expected = [
    "AUDIO_EXTRACTION:COMPLETED:1",
    "CHAPTER_DETECTION:COMPLETED:1",
    "TRANSCRIPT_GENERATION:SKIPPED:1",
    "VIDEO_TRANSCODE:COMPLETED:1",
  ];
  if (JSON.stringify(ended) !== JSON.stringify(expected)) {
    problems.push(`episode ${uuid}: ${ended.join(", ")}`);
  }
  return {
    round: {
      killToStarted: (loggedAt(started) - kill.at) / 1000,
      killToResumed: (loggedAt(resumed) - kill.at) / 1000,
      killToMoved: (processedAt - kill.at) / 1000,
      problems,
    },
    next,
  };
}

async function killRounds(
  context: ScenarioContext,
  label: string,
  engineEnv: Record<string, string>,
  kills: number,
  kill: (
    rig: CrashRig,
    current: PodflowInstance,
    port: number,
    index: number,
  ) => Promise<{ round: Round; next: PodflowInstance }>,
): Promise<{ rounds: Round[]; rig: CrashRig }> {
  const database = await context.server.createDatabase(`recovery_${label}`);
  const rig = await startCrashRig({
    databaseUrl: database.url,
    env: engineEnv,
    defaultJobSettings: true,
  });
  context.cleanups.add(`stop the ${label} crash rig`, () => rig.stop());
  const port = await freePort();
  let current = await rig.spawn({ port });
  const rounds: Round[] = [];
  for (let index = 1; index <= kills; index += 1) {
    const { round, next } = await kill(rig, current, port, index);
    context.log(
      `${label} kill ${index}/${kills}: resumed after ${round.killToResumed.toFixed(1)} s, moved on after ${round.killToMoved.toFixed(1)} s`,
    );
    rounds.push(round);
    current = next;
  }
  return { rounds, rig };
}

export const recovery: BenchScenario = {
  id: "recovery",
  title: "6. Recovery after SIGKILL",
  async run(context): Promise<ScenarioOutcome> {
    const sizes = context.quick ? QUICK : FULL;
    const checks: Check[] = [];

    const ittybit = await killRounds(context, "ittybit", {}, sizes.kills, ittybitKill);
    const creations = ittybit.rig.taskCreations();
    checks.push(
      check(
        "Ittybit kills: one task per idempotency key, every episode PROCESSED with its four first attempts",
        creations.tasks === 4 * sizes.kills &&
          creations.requestsPerKey.size === 4 * sizes.kills &&
          ittybit.rounds.every((round) => round.problems.length === 0),
        `${creations.tasks} tasks for ${creations.requestsPerKey.size} keys; ${ittybit.rounds.flatMap((round) => round.problems).join("; ") || "no problems"}`,
      ),
    );

    const media = await makeMediaDir();
    context.cleanups.add("remove the generated video", () => media.cleanup());
    const video = await readFile(
      await makeVideoWithAudio(testMediaTools(), media.dir, sizes.mediaSeconds),
    );
    const local = await killRounds(
      context,
      "local",
      { PODFLOW_MEDIA_ENGINE: "local" },
      sizes.kills,
      (rig, current, port, index) => encodeKill(rig, current, port, video, index),
    );
    checks.push(
      check(
        "encode kills: every episode PROCESSED, each task's first attempt finished by the next Podflow",
        local.rounds.every((round) => round.problems.length === 0),
        local.rounds.flatMap((round) => round.problems).join("; ") || "no problems",
      ),
    );

    const series = (rounds: Round[], key: keyof Omit<Round, "problems">) =>
      rounds.map((round) => round[key]);
    return {
      notes: [
        `${sizes.kills} kills of each kind, each of the whole process group of a Podflow (node src/main.ts, api and worker) on one database, started again at once on the same port; default job settings`,
        "Ittybit: killed while the third POST /tasks of an episode waits for its answer (the stand-in holds it back); moved on = the fourth task row is saved",
        `local engine: killed while the 1080p encode of a ${sizes.mediaSeconds}-second video runs; moved on = the episode is PROCESSED`,
        "resumed = the new Podflow logs 'job resumed after a missed heartbeat' for the episode's job: heartbeat + supervisor interval + retry delay + poll, after the process restart",
      ],
      figures: [
        figure(
          "Ittybit kill → new Podflow started",
          "s",
          "lower",
          series(ittybit.rounds, "killToStarted"),
        ),
        figure("Ittybit kill → job resumed", "s", "lower", series(ittybit.rounds, "killToResumed")),
        figure(
          "Ittybit kill → next task saved",
          "s",
          "lower",
          series(ittybit.rounds, "killToMoved"),
        ),
        figure("encode kill → job resumed", "s", "lower", series(local.rounds, "killToResumed")),
        figure("encode kill → PROCESSED", "s", "lower", series(local.rounds, "killToMoved")),
      ],
      checks,
    };
  },
};
