/**
 * The `podflow` command as a producer runs it: a child process against a running Podflow,
 * through the public API only, with plain progress lines (its output is not a terminal).
 */
import { spawn } from "node:child_process";
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  makeCorruptFile,
  makeMediaDir,
  makeVideoWithAudio,
  testMediaTools,
} from "../support/media.ts";
import {
  episodeRow,
  report,
  type TaskRow,
  uploadEpisode,
  waitForStatus,
  waitForTasks,
} from "../support/pipeline.ts";
import { type Scenario, startScenario, type TestProducer } from "../support/scenario.ts";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const tools = testMediaTools();

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

let stateHome: string;

/** `node src/cli/main.ts …args` with PODFLOW_URL/PODFLOW_TOKEN set, as `npx podflow` runs it. */
function podflow(
  args: string[],
  env: Record<string, string> = {},
  onStderr?: (text: string) => void,
): Promise<Run> {
  const child = spawn(process.execPath, ["src/cli/main.ts", ...args], {
    cwd: ROOT,
    env: { ...process.env, XDG_STATE_HOME: stateHome, ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  child.stdout.setEncoding("utf8").on("data", (chunk: string) => {
    stdout += chunk;
  });
  child.stderr.setEncoding("utf8").on("data", (chunk: string) => {
    stderr += chunk;
    onStderr?.(stderr);
  });
  return new Promise((resolve) => child.on("close", (code) => resolve({ code, stdout, stderr })));
}

beforeAll(async () => {
  stateHome = await mkdtemp(path.join(tmpdir(), "podflow-cli-state-"));
});
afterAll(() => rm(stateHome, { recursive: true, force: true }));

describe("podflow upload / watch / episodes with the local engine", () => {
  let scenario: Scenario;
  let producer: TestProducer;
  let media: Awaited<ReturnType<typeof makeMediaDir>>;
  let video: string;
  let env: Record<string, string>;

  beforeAll(async () => {
    media = await makeMediaDir();
    video = await makeVideoWithAudio(tools, media.dir, 3);
    scenario = await startScenario({ env: { PODFLOW_MEDIA_ENGINE: "local" } });
    producer = await scenario.producer();
    env = { PODFLOW_URL: scenario.url, PODFLOW_TOKEN: producer.token };
  });
  afterAll(async () => {
    await scenario?.stop();
    await media?.cleanup();
  });

  it("uploads with progress lines, follows every task live and exits 0 with the output URLs", async () => {
    const run = await podflow(
      ["upload", video, "--title", "From the terminal", "--description", "Notes", "--watch"],
      env,
    );
    expect(run.stderr).toMatch(/Episode \S+ created\./);
    expect(run.stderr).toMatch(/^uploaded 0% /m);
    expect(run.stderr).toMatch(/^uploaded 100% \(\d+\.\d MiB of \d+\.\d MiB, [\d.]+ MiB\/s\)$/m);
    for (const type of ["AUDIO_EXTRACTION", "VIDEO_TRANSCODE", "CHAPTER_DETECTION"]) {
      expect(run.stderr).toMatch(new RegExp(`^${type} COMPLETED`, "m"));
    }
    expect(run.stderr).toMatch(/^episode PROCESSED$/m);
    expect(run.code).toBe(0);
    const [episodeId] = run.stdout.split("\n");
    expect(run.stdout).toContain(`Episode ${episodeId} PROCESSED: From the terminal`);
    const audio = run.stdout.match(/^audio: (\S+)$/m)?.[1] as string;
    const response = await fetch(audio);
    expect(response.status).toBe(200);
    expect(response.headers.get("content-type")).toBe("audio/mpeg");
    expect(run.stdout).toMatch(/^video: http\S+$/m);

    const listed = await podflow(["episodes"], env);
    expect(listed.code).toBe(0);
    const [header, row] = listed.stdout.trim().split("\n");
    expect(header).toMatch(/^ID\s+STATUS\s+PROGRESS\s+CREATED\s+TITLE$/);
    expect(row).toContain(episodeId);
    expect(row).toMatch(/PROCESSED\s+100%.*From the terminal$/);
  });

  it("resumes an interrupted upload into the same episode", async () => {
    // The first half of the file reached the server before the connection was lost.
    const bytes = await readFile(video);
    const prepared = await producer.gql<{
      prepareUpload: { episode: { id: string }; upload: { tusUrl: string } };
    }>(
      `mutation($input: PrepareUploadInput!) { prepareUpload(input: $input) {
        ... on PrepareUploadPayload { episode { id } upload { tusUrl } } } }`,
      { input: { title: "Resumed", filename: path.basename(video), filesize: bytes.length } },
    );
    const { episode, upload } = prepared.body.data?.prepareUpload ?? {
      episode: { id: "" },
      upload: { tusUrl: "" },
    };
    // tus 1.0 by hand: create the upload, send half of it, and stop.
    const tus = { "tus-resumable": "1.0.0" };
    const created = await fetch(upload.tusUrl, {
      method: "POST",
      headers: { ...tus, "upload-length": String(bytes.length) },
    });
    expect(created.status).toBe(201);
    const uploadUrl = new URL(created.headers.get("location") as string, upload.tusUrl).href;
    const half = bytes.subarray(0, Math.floor(bytes.length / 2));
    const patched = await fetch(uploadUrl, {
      method: "PATCH",
      headers: {
        ...tus,
        "upload-offset": "0",
        "content-type": "application/offset+octet-stream",
      },
      body: half,
    });
    expect(patched.status).toBe(204);
    // Where the command keeps unfinished uploads: by server, file path, size and mtime.
    const { mtimeMs } = await stat(video);
    await mkdir(path.join(stateHome, "podflow"), { recursive: true });
    await writeFile(
      path.join(stateHome, "podflow", "uploads.json"),
      JSON.stringify({
        [`${scenario.url}|${video}|${bytes.length}|${mtimeMs}`]: {
          episodeId: episode.id,
          uploadUrl,
        },
      }),
    );

    const run = await podflow(["upload", video, "--title", "Resumed"], env);
    expect(run.stderr).toContain(`Resuming the upload of episode ${episode.id}.`);
    expect(run.code).toBe(0);
    expect(run.stdout.trim()).toBe(episode.id);
    // Confirmed: the whole file is there (ffprobe read it) and processing is under way.
    const state = await episodeRow(
      scenario,
      Buffer.from(episode.id, "base64").toString().split(":")[1] as string,
    );
    expect(state.status).not.toBe("AWAITING_UPLOAD");
    expect(state.file_size).toBe(String(bytes.length));
    expect(
      JSON.parse(await readFile(path.join(stateHome, "podflow", "uploads.json"), "utf8")),
    ).toEqual({});
  });

  it("exits 1 with the reason when the server refuses the file, and 2 on bad usage", {
    timeout: 60_000,
  }, async () => {
    const corrupt = await makeCorruptFile(media.dir);
    const refused = await podflow(["upload", corrupt, "--title", "Broken"], env);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/podflow: the upload was not accepted: InvalidMediaError: /);

    const [noTitle, noToken, missing, wrongToken] = await Promise.all([
      podflow(["upload", video], env),
      podflow(["episodes"], { PODFLOW_URL: scenario.url, PODFLOW_TOKEN: "" }),
      podflow(["upload", "/nonexistent.mp4", "--title", "x"], env),
      podflow(["episodes"], { ...env, PODFLOW_TOKEN: "pf_wrong" }),
    ]);
    expect(noTitle.code).toBe(2);
    expect(noTitle.stderr).toContain("required option '--title <title>' not specified");
    expect(noToken.code).toBe(2);
    expect(noToken.stderr).toContain("an API token is needed");
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain("/nonexistent.mp4 is not a readable file");
    expect(wrongToken.code).toBe(1);
    expect(wrongToken.stderr).toContain("the API token was refused");
    const help = await podflow(["watch", "--help"]);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain("Usage: podflow watch [options] <episode-id>");
  });
});

describe("podflow watch / retry of a failed episode", () => {
  let scenario: Scenario;
  let producer: TestProducer;

  beforeAll(async () => {
    scenario = await startScenario({ overrides: { reconcileCron: "0 0 1 1 *" } });
    producer = await scenario.producer();
  });
  afterAll(() => scenario?.stop());

  it("exits 1 printing the reason when the episode fails, and retry starts it again", async () => {
    const episode = await uploadEpisode(scenario, producer, "Doomed");
    const tasks = await waitForTasks(scenario, episode.uuid);
    await waitForStatus(scenario, episode.uuid, "PROCESSING");
    const env = { PODFLOW_URL: scenario.url, PODFLOW_TOKEN: producer.token };

    let reported = false;
    const watching = podflow(["watch", episode.id], env, (stderr) => {
      // Once the command is following the episode, the tasks end, one of them badly.
      if (reported || !stderr.includes("episode PROCESSING")) return;
      reported = true;
      void (async () => {
        const [audio, ...rest] = tasks as [TaskRow, ...TaskRow[]];
        await report(scenario, audio.engine_task_id, "failed", { error: "corrupt audio track" });
        for (const task of rest) await report(scenario, task.engine_task_id, "completed");
      })();
    });
    const run = await watching;
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(/^AUDIO_EXTRACTION FAILED .*corrupt audio track$/m);
    expect(run.stderr).toContain(`Episode ${episode.id} FAILED: `);
    expect(run.stderr).toContain("corrupt audio track");

    const retried = await podflow(["retry", episode.id], env);
    expect(retried.code).toBe(0);
    expect(retried.stderr).toContain(`Episode ${episode.id} is PROCESSING again.`);
    const again = await podflow(["retry", episode.id], env);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/cannot retry: ConflictError: /);
  });
});
