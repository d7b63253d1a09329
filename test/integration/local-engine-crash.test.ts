/**
 * A worker killed in the middle of an ffmpeg encode — the whole process group, as an OOM kill or
 * a lost machine does — costs seconds: its job's heartbeat stops, the job is failed and retried
 * by the next Podflow, the task restarts its step cleanly, and nothing done before is redone.
 */
import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import pino from "pino";
import { afterAll, beforeAll, expect, it } from "vitest";
import { openOrm } from "../../src/database/orm.ts";
import { freePort } from "../../src/free-port.ts";
import { createUser, issueToken } from "../../src/services/accounts.ts";
import { CRASH_TEST_ENV, loggedAt } from "../support/crash.ts";
import { createTestDatabase } from "../support/database.ts";
import { graphql } from "../support/http.ts";
import { makeMediaDir, makeVideoWithAudio, testMediaTools } from "../support/media.ts";
import { waitUntil } from "../support/pipeline.ts";
import { type PodflowProcess, spawnPodflow } from "../support/process.ts";

let database: Awaited<ReturnType<typeof createTestDatabase>>;
let dataDir: string;
let media: Awaited<ReturnType<typeof makeMediaDir>>;
const running: PodflowProcess[] = [];

beforeAll(async () => {
  database = await createTestDatabase();
  dataDir = await mkdtemp(path.join(tmpdir(), "podflow-crash-"));
  media = await makeMediaDir();
});
afterAll(async () => {
  for (const podflow of running) {
    if (podflow.child.exitCode === null && podflow.child.signalCode === null) {
      podflow.child.kill("SIGTERM");
      await podflow.exited;
    }
  }
  await database?.drop();
  await rm(dataDir, { recursive: true, force: true });
  await media?.cleanup();
});

interface TaskRow {
  type: string;
  status: string;
  attempt: number;
  progress: number | null;
  output_url: string | null;
}

it("retries the task of a killed worker on the next Podflow, keeping what was done", async () => {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const env = {
    DATABASE_URL: database.url,
    PODFLOW_DATA_DIR: dataDir,
    PORT: String(port),
    PODFLOW_MEDIA_ENGINE: "local",
    // pg-boss's shortest heartbeat and a supervisor that looks every second.
    ...CRASH_TEST_ENV,
  };
  const orm = await openOrm(database.url, pino({ level: "silent" }));
  try {
    const first = spawnPodflow(env, { processGroup: true });
    running.push(first);
    await first.waitForLog(/Podflow started/);
    const em = orm.em.fork();
    const { secret } = await issueToken(em, await createUser(em, "crash@example.com"));
    const gql = <T>(query: string, variables?: Record<string, unknown>) =>
      graphql<T>(url, query, variables, { authorization: `Bearer ${secret}` });

    // Long enough that the 1080p encode is still running when the worker is killed.
    const video = await readFile(await makeVideoWithAudio(testMediaTools(), media.dir, 10));
    const prepared = await gql<{
      prepareUpload: { episode: { id: string }; upload: { url: string } };
    }>(
      `mutation { prepareUpload(input: { filename: "long.mp4", title: "Crash", filesize: ${video.length} }) {
         ... on PrepareUploadPayload { episode { id } upload { url } } } }`,
    );
    const { episode, upload } = prepared.body.data?.prepareUpload ?? { episode: { id: "" } };
    const uuid = Buffer.from(episode.id, "base64").toString().split(":")[1] as string;
    const file = (await (
      await fetch(upload?.url ?? "", { method: "PUT", body: video })
    ).json()) as {
      id: string;
    };
    await gql(
      `mutation($input: ConfirmUploadInput!) { confirmUpload(input: $input) { __typename } }`,
      {
        input: { episodeId: episode.id, fileId: file.id },
      },
    );

    const tasks = () =>
      orm.em
        .fork()
        .execute<TaskRow[]>(
          "select type, status, attempt, progress, output_url from processing_tasks where episode_id = ? order by type",
          [uuid],
        );
    const before = await waitUntil(
      tasks,
      (rows) => rows.some((row) => row.type === "VIDEO_TRANSCODE" && (row.progress ?? 0) > 0),
      "the video encode to be under way",
      120_000,
    );
    const videoBefore = before.find((row) => row.type === "VIDEO_TRANSCODE") as TaskRow;
    expect(videoBefore.status).toBe("PROCESSING");
    const audioBefore = before.find((row) => row.type === "AUDIO_EXTRACTION") as TaskRow;

    const killedAt = Date.now();
    process.kill(-(first.child.pid as number), "SIGKILL");
    await first.exited;

    const second = spawnPodflow(env, { processGroup: true });
    running.push(second);
    await second.waitForLog(/Podflow started/);
    const resumed = await second.waitForLog(/job resumed after a missed heartbeat/, 120_000);
    expect(resumed).toMatchObject({ queue: "run-local-task", episodeId: uuid, retryCount: 1 });
    console.log(
      `recovery after SIGKILL during an encode: ${JSON.stringify({
        killToResumed: (loggedAt(resumed) - killedAt) / 1000,
      })}`,
    );
    const after = await waitUntil(
      tasks,
      (rows) =>
        rows.length === 4 &&
        rows.every((row) => row.status !== "PENDING" && row.status !== "PROCESSING"),
      "every task to end after the crash",
      180_000,
    );
    // The same four tasks (no second attempt was made), the video one finished by the second
    // Podflow, and the audio finished before the crash kept as it was.
    expect(after.map((row) => [row.type, row.status, row.attempt])).toEqual([
      ["AUDIO_EXTRACTION", "COMPLETED", 1],
      ["CHAPTER_DETECTION", "COMPLETED", 1],
      ["TRANSCRIPT_GENERATION", "SKIPPED", 1],
      ["VIDEO_TRANSCODE", "COMPLETED", 1],
    ]);
    if (audioBefore.status === "COMPLETED") {
      expect(after.find((row) => row.type === "AUDIO_EXTRACTION")?.output_url).toBe(
        audioBefore.output_url,
      );
    }
    // The second Podflow ran the encode again (its log line follows the commit seen above).
    await expect
      .poll(
        () =>
          second.lines.some(
            (line) => line.msg === "local task completed" && line.type === "VIDEO_TRANSCODE",
          ),
        { timeout: 10_000 },
      )
      .toBe(true);
    const episodeRow = await waitUntil(
      () =>
        orm.em
          .fork()
          .execute<{ status: string }[]>("select status from episodes where id = ?", [uuid]),
      (rows) => rows[0]?.status === "PROCESSED",
      "the episode to be PROCESSED",
      60_000,
    );
    expect(episodeRow[0]?.status).toBe("PROCESSED");
    // The killed run's scratch files were removed when its step started over.
    expect(await readdir(path.join(dataDir, "media", "work")).catch(() => [])).toEqual([]);
  } finally {
    await orm.close();
  }
}, 300_000);
