/**
 * SIGTERM (an orchestrator's stop, a deploy) to a Podflow in the middle of an ffmpeg encode: the
 * encode cannot finish within the stop's grace, so the job is handed back at once — due now,
 * without using one of its retries — and another Podflow, already running, continues it.
 */
import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import pino from "pino";
import { afterAll, beforeAll, expect, it } from "vitest";
import { openOrm } from "../../src/database/orm.ts";
import { freePort } from "../../src/free-port.ts";
import { createUser, issueToken } from "../../src/services/accounts.ts";
import { CRASH_TEST_ENV, counter, loggedAt, waitUntil } from "../support/crash.ts";
import { createTestDatabase } from "../support/database.ts";
import { graphql } from "../support/http.ts";
import { makeMediaDir, makeVideoWithAudio, testMediaTools } from "../support/media.ts";
import { type PodflowProcess, spawnPodflow } from "../support/process.ts";

let database: Awaited<ReturnType<typeof createTestDatabase>>;
let dataDir: string;
let media: Awaited<ReturnType<typeof makeMediaDir>>;
const running: PodflowProcess[] = [];

beforeAll(async () => {
  database = await createTestDatabase();
  dataDir = await mkdtemp(path.join(tmpdir(), "podflow-sigterm-"));
  media = await makeMediaDir();
});
afterAll(async () => {
  for (const podflow of running) {
    if (podflow.child.exitCode === null && podflow.child.signalCode === null) {
      process.kill(-(podflow.child.pid as number), "SIGKILL");
      await podflow.exited;
    }
  }
  await database?.drop();
  await rm(dataDir, { recursive: true, force: true });
  await media?.cleanup();
});

interface TaskRow {
  id: string;
  type: string;
  status: string;
  attempt: number;
  progress: number | null;
}

async function start(port: number) {
  const podflow = spawnPodflow(
    {
      DATABASE_URL: database.url,
      PODFLOW_DATA_DIR: dataDir,
      PORT: String(port),
      PODFLOW_MEDIA_ENGINE: "local",
      // Neither worker is kept from the handed-back job by a task of its own.
      PODFLOW_MEDIA_CONCURRENCY: "2",
      ...CRASH_TEST_ENV,
    },
    { processGroup: true },
  );
  running.push(podflow);
  await podflow.waitForLog(/Podflow started/);
  return { podflow, url: `http://127.0.0.1:${port}` };
}

it("hands an encode back on SIGTERM, and the other Podflow continues it at once", async () => {
  const orm = await openOrm(database.url, pino({ level: "silent" }));
  try {
    const [a, b] = [await start(await freePort()), await start(await freePort())];
    const em = orm.em.fork();
    const { secret } = await issueToken(em, await createUser(em, "sigterm@example.com"));
    const gql = <T>(query: string, variables?: Record<string, unknown>) =>
      graphql<T>(a.url, query, variables, { authorization: `Bearer ${secret}` });

    // Long enough that the 1080p encode is still running when its Podflow is stopped.
    const video = await readFile(await makeVideoWithAudio(testMediaTools(), media.dir, 10));
    const prepared = await gql<{
      prepareUpload: { episode: { id: string }; upload: { url: string } };
    }>(
      `mutation { prepareUpload(input: { filename: "long.mp4", title: "Stop", filesize: ${video.length} }) {
         ... on PrepareUploadPayload { episode { id } upload { url } } } }`,
    );
    const { episode, upload } = prepared.body.data?.prepareUpload ?? { episode: { id: "" } };
    const uuid = Buffer.from(episode.id, "base64").toString().split(":")[1] as string;
    const file = (await (
      await fetch(upload?.url ?? "", { method: "PUT", body: video })
    ).json()) as { id: string };
    await gql(
      `mutation($input: ConfirmUploadInput!) { confirmUpload(input: $input) { __typename } }`,
      { input: { episodeId: episode.id, fileId: file.id } },
    );

    const tasks = () =>
      orm.em
        .fork()
        .execute<TaskRow[]>(
          "select id, type, status, attempt, progress from processing_tasks where episode_id = ? order by type",
          [uuid],
        );
    const before = await waitUntil(
      tasks,
      (rows) => rows.some((row) => row.type === "VIDEO_TRANSCODE" && (row.progress ?? 0) > 0),
      "the video encode to be under way",
      120_000,
    );
    const videoTask = before.find((row) => row.type === "VIDEO_TRANSCODE") as TaskRow;
    expect(videoTask.status).toBe("PROCESSING");
    const encodes = (podflow: PodflowProcess) =>
      podflow.lines.some(
        (line) => line.msg === "local task started" && line.taskId === videoTask.id,
      );
    const holder = encodes(a.podflow) ? a : b;
    const other = holder === a ? b : a;
    expect(encodes(holder.podflow)).toBe(true);

    const stoppedAt = Date.now();
    process.kill(-(holder.podflow.child.pid as number), "SIGTERM");
    // A clean stop (exit 0), which handed the encode back rather than waiting for it.
    expect(await holder.podflow.exited).toBe(0);
    const exitedAt = Date.now();
    // The encode's lines (another task of the episode may have been in hand at the stop too).
    const aboutTheEncode = (msg: string) => (line: Record<string, unknown>) =>
      line.msg === msg && line.taskId === videoTask.id;
    expect(
      holder.podflow.lines.find(aboutTheEncode("job handed back: Podflow is stopping")),
    ).toMatchObject({ queue: "run-local-task", taskId: videoTask.id, episodeId: uuid });

    const resumed = (await waitUntil(
      async () => other.podflow.lines.find(aboutTheEncode("job resumed after its Podflow stopped")),
      (line) => line !== undefined,
      "the other Podflow to resume the encode",
      30_000,
    )) as Record<string, unknown>;
    expect(resumed).toMatchObject({ queue: "run-local-task", taskId: videoTask.id, retryCount: 1 });
    const after = await waitUntil(
      tasks,
      (rows) =>
        rows.length === 4 &&
        rows.every((row) => row.status !== "PENDING" && row.status !== "PROCESSING"),
      "every task to end after the stop",
      180_000,
    );
    expect(after.map((row) => [row.type, row.status, row.attempt])).toEqual([
      ["AUDIO_EXTRACTION", "COMPLETED", 1],
      ["CHAPTER_DETECTION", "COMPLETED", 1],
      ["TRANSCRIPT_GENERATION", "SKIPPED", 1],
      ["VIDEO_TRANSCODE", "COMPLETED", 1],
    ]);
    await waitUntil(
      () =>
        orm.em
          .fork()
          .execute<{ status: string }[]>("select status from episodes where id = ?", [uuid]),
      (rows) => rows[0]?.status === "PROCESSED",
      "the episode to be PROCESSED",
      60_000,
    );
    // The stop did not use one of the job's retries: its limit grew with its count.
    const [job] = await orm.em
      .fork()
      .execute<Array<{ state: string; retry_count: number; retry_limit: number }>>(
        "select state, retry_count, retry_limit from pgboss.job where name = 'run-local-task' and data->>'taskId' = ?",
        [videoTask.id],
      );
    expect(job).toMatchObject({ state: "completed", retry_count: 1, retry_limit: 3 });
    // The encode at least (on a slow machine another task may have been in hand at the stop too).
    expect(
      await counter(other.url, "podflow_jobs_resumed_total", {
        queue: "run-local-task",
        after: "stop",
      }),
    ).toBeGreaterThanOrEqual(1);
    expect(await readdir(path.join(dataDir, "media", "work")).catch(() => [])).toEqual([]);
    console.log(
      `SIGTERM with an encode in hand: ${JSON.stringify({
        termToExit: (exitedAt - stoppedAt) / 1000,
        termToResumed: (loggedAt(resumed) - stoppedAt) / 1000,
      })}`,
    );
  } finally {
    await orm.close();
  }
}, 300_000);
