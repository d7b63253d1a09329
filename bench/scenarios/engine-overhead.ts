import { readFile } from "node:fs/promises";
import { setTimeout as sleep } from "node:timers/promises";
import { makeMediaDir, makeVideoWithAudio, testMediaTools } from "../../test/support/media.ts";
import { withClient } from "../support/environment.ts";
import { timedGraphql } from "../support/http.ts";
import { type BareTaskSeconds, codecsAt, runBareTasks } from "../support/local-media.ts";
import { startInProcessPodflow } from "../support/podflow.ts";
import { processAndReapedChildrenCpuMs } from "../support/proc.ts";
import { type Check, check, figure } from "../support/results.ts";
import {
  type BenchScenario,
  inAlternateOrder,
  type ScenarioContext,
  type ScenarioOutcome,
} from "../support/scenario.ts";
import { seedProducer } from "../support/seed.ts";
import { median } from "../support/stats.ts";

// Scenario 5 (issue 11): what the local media engine adds to the ffmpeg work itself. One
// generated video goes through Podflow end to end (prepareUpload, PUT, confirmUpload, jobs,
// PROCESSED) and, in the same round, through the engine's own run*Task functions called
// directly: the same ffmpeg commands without jobs, database, storage and progress reports.

interface Sizes {
  rounds: number;
  mediaSeconds: number;
}

const FULL: Sizes = { rounds: 3, mediaSeconds: 600 };
const QUICK: Sizes = { rounds: 2, mediaSeconds: 60 };

const TITLE = "Engine overhead";
const TASKS = [
  ["audio", "AUDIO_EXTRACTION"],
  ["video", "VIDEO_TRANSCODE"],
  ["chapters", "CHAPTER_DETECTION"],
] as const;

const PREPARE = `mutation($input: PrepareUploadInput!) { prepareUpload(input: $input) {
  ... on PrepareUploadPayload { episode { id } upload { url method } } ... on Error { message } } }`;
const CONFIRM = `mutation($input: ConfirmUploadInput!) { confirmUpload(input: $input) {
  __typename ... on Error { message } } }`;

interface PodflowRound {
  /** From the PUT's first byte to the episode being PROCESSED (or failed). */
  wallSeconds: number;
  /** Per task: its job's start (pg-boss started_on) → the task's end (updated_at). */
  tasks: BareTaskSeconds;
  /** Per task: the row's creation → its end, queue wait behind the other tasks included. */
  sinceCreated: BareTaskSeconds;
  status: string;
  taskStatuses: Record<string, string>;
  transcriptStatus: string;
  audioUrl: string | null;
  videoUrl: string | null;
}

async function throughPodflow(
  url: string,
  token: string,
  databaseUrl: string,
  video: Buffer,
  timeoutMs: number,
): Promise<PodflowRound> {
  const prepared = await timedGraphql<{
    prepareUpload: { episode?: { id: string }; upload?: { url: string }; message?: string };
  }>(url, token, PREPARE, {
    input: { filename: "episode.mp4", title: TITLE, filesize: video.length },
  });
  const episodeId = prepared.data?.prepareUpload.episode?.id;
  const uploadUrl = prepared.data?.prepareUpload.upload?.url;
  if (!episodeId || !uploadUrl)
    throw new Error(`prepareUpload failed: ${JSON.stringify(prepared)}`);
  const uuid = Buffer.from(episodeId, "base64").toString().split(":")[1] as string;

  const started = performance.now();
  const uploaded = await fetch(uploadUrl, { method: "PUT", body: new Uint8Array(video) });
  if (uploaded.status !== 201) throw new Error(`PUT answered ${uploaded.status}`);
  const { id: fileId } = (await uploaded.json()) as { id: string };
  const confirmed = await timedGraphql<{ confirmUpload: { __typename: string } }>(
    url,
    token,
    CONFIRM,
    { input: { episodeId, fileId } },
  );
  if (confirmed.data?.confirmUpload.__typename !== "ConfirmUploadPayload") {
    throw new Error(`confirmUpload failed: ${JSON.stringify(confirmed)}`);
  }

  return withClient(databaseUrl, async (db) => {
    const deadline = Date.now() + timeoutMs;
    let status = "missing";
    for (;;) {
      const row = await db.query<{ status: string }>("select status from episodes where id = $1", [
        uuid,
      ]);
      status = row.rows[0]?.status ?? "missing";
      if (status === "PROCESSED" || status === "FAILED") break;
      if (Date.now() > deadline) throw new Error(`episode still ${status} after ${timeoutMs} ms`);
      await sleep(100);
    }
    const wallSeconds = (performance.now() - started) / 1000;
    // The latest attempt of each task, with when its run-local-task job started.
    const tasks = await db.query<{
      type: string;
      status: string;
      run_seconds: number | null;
      since_created_seconds: number;
    }>(
      `select distinct on (t.type) t.type, t.status,
         extract(epoch from t.updated_at - j.started_on)::float8 as run_seconds,
         extract(epoch from t.updated_at - t.created_at)::float8 as since_created_seconds
       from processing_tasks t
       left join lateral (select started_on from pgboss.job
         where name = 'run-local-task' and data->>'taskId' = t.id::text
         order by started_on desc nulls last limit 1) j on true
       where t.episode_id = $1
       order by t.type, t.attempt desc`,
      [uuid],
    );
    const byType = new Map(tasks.rows.map((row) => [row.type, row]));
    const seconds = (pick: (row: (typeof tasks.rows)[number]) => number | null) =>
      Object.fromEntries(
        TASKS.map(([name, type]) => {
          const row = byType.get(type);
          return [name, row ? (pick(row) ?? Number.NaN) : Number.NaN];
        }),
      ) as unknown as BareTaskSeconds;
    const outputs = await db.query<{ audio_url: string | null; video_url: string | null }>(
      "select audio_url, video_url from episodes where id = $1",
      [uuid],
    );
    return {
      wallSeconds,
      tasks: seconds((row) => row.run_seconds),
      sinceCreated: seconds((row) => row.since_created_seconds),
      status,
      taskStatuses: Object.fromEntries(tasks.rows.map((row) => [row.type, row.status])),
      transcriptStatus: byType.get("TRANSCRIPT_GENERATION")?.status ?? "missing",
      audioUrl: outputs.rows[0]?.audio_url ?? null,
      videoUrl: outputs.rows[0]?.video_url ?? null,
    };
  });
}

async function run(context: ScenarioContext): Promise<ScenarioOutcome> {
  const sizes = context.quick ? QUICK : FULL;
  const tools = testMediaTools();
  const media = await makeMediaDir();
  context.cleanups.add("remove the generated media", media.cleanup);
  context.log(`generating a ${sizes.mediaSeconds} s video with audio`);
  const input = await makeVideoWithAudio(tools, media.dir, sizes.mediaSeconds);
  const video = await readFile(input);

  const database = await context.server.createDatabase("engine");
  const podflow = await startInProcessPodflow(context.cleanups, {
    databaseUrl: database.url,
    standIn: null,
    // No Ittybit at all and no whisper model: the transcript task is SKIPPED.
    env: { PODFLOW_ROLES: "api,worker", PODFLOW_MEDIA_ENGINE: "local", ITTYBIT_API_KEY: "" },
  });
  const url = podflow.url as string;
  const { token } = await withClient(database.url, (db) =>
    seedProducer(db, `engine-${context.runTag}`),
  );
  // A 1080p encode on two shared cores runs at a fraction of real time: allow 10× the media.
  const timeoutMs = Math.max(300_000, sizes.mediaSeconds * 10_000);

  // CPU seconds of this process, the ffmpeg runs it waited for, and the PostgreSQL server: far
  // less sensitive than wall time to other work on a shared machine.
  const cpuSplit = async () => {
    const own = process.cpuUsage();
    const node = (own.user + own.system) / 1e6;
    const withChildren = (await processAndReapedChildrenCpuMs(process.pid)) / 1000;
    return { node, children: withChildren - node, postgres: (await context.server.cpuMs()) / 1000 };
  };
  const podflowCpu: number[] = [];
  const bareCpu: number[] = [];
  const splits: Record<"podflow" | "bare", Array<Record<string, number>>> = {
    podflow: [],
    bare: [],
  };
  const withCpu = async <T>(into: number[], work: () => Promise<T>): Promise<T> => {
    const before = await cpuSplit();
    const result = await work();
    const after = await cpuSplit();
    const split = {
      node: after.node - before.node,
      children: after.children - before.children,
      postgres: after.postgres - before.postgres,
    };
    into.push(split.node + split.children + split.postgres);
    splits[into === podflowCpu ? "podflow" : "bare"].push(split);
    return result;
  };
  const splitNote = (which: "podflow" | "bare") =>
    (["children", "node", "postgres"] as const)
      .map(
        (part) => `${part} ${median(splits[which].map((split) => split[part] ?? 0)).toFixed(1)} s`,
      )
      .join(", ");
  const podflowRounds: PodflowRound[] = [];
  const bareRounds: BareTaskSeconds[] = [];
  for (let round = 1; round <= sizes.rounds; round += 1) {
    context.log(`round ${round}/${sizes.rounds}`);
    const podflowRun = () =>
      withCpu(podflowCpu, () => throughPodflow(url, token, database.url, video, timeoutMs));
    const bareRun = () => withCpu(bareCpu, () => runBareTasks(tools, input, TITLE));
    await inAlternateOrder(
      round,
      async () => podflowRounds.push(await podflowRun()),
      async () => bareRounds.push(await bareRun()),
    );
  }

  const checks = await correctness(tools, podflowRounds);
  const bareTotal = bareRounds.map((bare) => bare.audio + bare.video + bare.chapters);
  const bareName = "run*Task direct";
  return {
    notes: [
      `Input: a ${sizes.mediaSeconds} s 640×480 25 fps H.264 test pattern with an AAC tone (${(video.length / 1e6).toFixed(1)} MB), generated once with ffmpeg's lavfi sources; ${sizes.rounds} rounds.`,
      "Podflow: in this process with roles api,worker, PODFLOW_MEDIA_ENGINE=local, no Ittybit, no whisper model, PODFLOW_MEDIA_CONCURRENCY 1 (tasks run one after another). Per task: from its run-local-task job's start (pg-boss started_on) to the task row's end (updated_at); this covers the probe, the ffmpeg passes, progress writes and moving the output to storage, not the wait behind the other tasks.",
      `Queue wait included instead (task row created → ended), median: ${TASKS.map(([name]) => `${name} ${median(podflowRounds.map((r) => r.sinceCreated[name])).toFixed(1)} s`).join(", ")}.`,
      `CPU split, median per round (children = the ffmpeg/ffprobe runs; node = this process): Podflow ${splitNote("podflow")}; baseline ${splitNote("bare")}.`,
      "Baseline: runAudioTask, runVideoTask and runChapterTask (src/engine/local/tasks) called directly on the same file, one after another, with a probe done before the clock starts — the engine's exact ffmpeg passes (loudness measure then encode for audio and video; silencedetect for chapters) without jobs, database, upload or progress reporting.",
      "End to end: Podflow from the PUT's first byte to the episode read as PROCESSED (polled every 100 ms); baseline: the three bare tasks' sum. Media s per wall s: input duration ÷ that time. CPU s: user + system time of this process, of the ffmpeg/ffprobe runs it waited for and of the whole PostgreSQL server over the same span (embedded server on Linux only).",
    ],
    figures: [
      ...TASKS.map(([name]) =>
        figure(
          `${name} task`,
          "s",
          "lower",
          podflowRounds.map((r) => r.tasks[name]),
          { name: bareName, rounds: bareRounds.map((bare) => bare[name]) },
        ),
      ),
      figure(
        "upload → PROCESSED",
        "s",
        "lower",
        podflowRounds.map((r) => r.wallSeconds),
        { name: "sum of bare tasks", rounds: bareTotal },
      ),
      figure("CPU s, upload → PROCESSED", "s", "lower", podflowCpu, {
        name: "sum of bare tasks",
        rounds: bareCpu,
      }),
      figure(
        "media s per wall s",
        "",
        "higher",
        podflowRounds.map((r) => sizes.mediaSeconds / r.wallSeconds),
        {
          name: "sum of bare tasks",
          rounds: bareTotal.map((total) => sizes.mediaSeconds / total),
        },
      ),
    ],
    checks,
  };
}

async function correctness(
  tools: ReturnType<typeof testMediaTools>,
  rounds: readonly PodflowRound[],
): Promise<Check[]> {
  const codecs: string[] = [];
  for (const round of rounds) {
    const audio = round.audioUrl ? await codecsAt(tools, round.audioUrl) : "no URL";
    const video = round.videoUrl ? await codecsAt(tools, round.videoUrl) : "no URL";
    codecs.push(`${audio} / ${video}`);
  }
  const processed = rounds.filter(
    (round) =>
      round.status === "PROCESSED" &&
      TASKS.every(([, type]) => round.taskStatuses[type] === "COMPLETED"),
  );
  const skipped = rounds.filter((round) => round.transcriptStatus === "SKIPPED");
  const rightCodecs = codecs.filter((entry) => entry === "mp3 / h264+aac");
  return [
    check(
      "every episode PROCESSED with audio, video and chapters COMPLETED",
      processed.length === rounds.length,
      rounds.map((round) => `${round.status} ${JSON.stringify(round.taskStatuses)}`).join("; "),
    ),
    check(
      "served outputs: MP3 audio, H.264 + AAC video (ffprobe)",
      rightCodecs.length === rounds.length,
      codecs.join("; "),
    ),
    check(
      "transcript SKIPPED (no whisper model)",
      skipped.length === rounds.length,
      rounds.map((round) => round.transcriptStatus).join(", "),
    ),
  ];
}

export const engineOverhead: BenchScenario = {
  id: "engine-overhead",
  title: "5. Local engine overhead",
  run,
};
