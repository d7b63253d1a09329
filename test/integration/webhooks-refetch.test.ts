import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  report,
  type TaskRow,
  taskRows,
  type UploadedEpisode,
  uploadEpisode,
  waitForStatus,
  waitForTasks,
  waitUntil,
} from "../support/pipeline.ts";
import {
  type Scenario,
  startScenario,
  type TestProducer,
  WEBHOOK_TEST_SECRET,
} from "../support/scenario.ts";
import { webhookHeaders } from "../support/webhook-signing.ts";

// Deliveries verified by asking Ittybit (PODFLOW_WEBHOOK_VERIFICATION=refetch, the default without
// a secret): the body only names a task; what is applied is what the Ittybit stand-in answers.

/** A loopback listener that must never be asked for anything: where forged output URLs point. */
let trap: Server;
let trapUrl: string;
const trapped: string[] = [];

beforeAll(async () => {
  trap = createServer((req, res) => {
    trapped.push(`${req.method} ${req.url}`);
    res.end("forged output");
  });
  await new Promise<void>((resolve) => trap.listen(0, "127.0.0.1", resolve));
  trapUrl = `http://127.0.0.1:${(trap.address() as AddressInfo).port}`;
});
afterAll(() => new Promise<void>((resolve) => trap.close(() => resolve())));

/** GET /tasks/{id} requests the stand-in has received for this task. */
function taskReads(scenario: Scenario, taskId: string): number {
  return scenario.ittybit.requests.filter(
    (request) => request.method === "GET" && request.path === `/tasks/${taskId}`,
  ).length;
}

async function post(url: string, body: unknown, headers: Record<string, string> = {}) {
  const response = await fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: typeof body === "string" ? body : JSON.stringify(body),
  });
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

async function taskRow(
  scenario: Scenario,
  episode: UploadedEpisode,
  task: TaskRow,
): Promise<TaskRow | undefined> {
  return (await taskRows(scenario, episode.uuid)).find(
    (candidate) => candidate.engine_task_id === task.engine_task_id,
  );
}

async function deliveryCount(scenario: Scenario): Promise<number> {
  const rows = await scenario.em().execute("select count(*)::int as n from webhook_deliveries");
  return rows[0]?.n as number;
}

async function metric(scenario: Scenario, line: RegExp): Promise<number> {
  const text = await (await fetch(`${scenario.url}/metrics`)).text();
  const match = text.split("\n").find((candidate) => line.test(candidate));
  return match ? Number(match.split(" ").pop()) : 0;
}

describe("refetch verification (no webhook secret)", () => {
  let scenario: Scenario;
  let producer: TestProducer;
  let webhookUrl: string;

  beforeAll(async () => {
    scenario = await startScenario({
      // No secret: refetch is the default. The reconciler only runs when a test asks.
      env: { ITTYBIT_WEBHOOK_SECRET: "" },
      overrides: { reconcileCron: "0 0 1 1 *" },
    });
    expect(scenario.podflow.deps.config.ittybit.webhookVerification).toBe("refetch");
    producer = await scenario.producer();
    webhookUrl = `${scenario.url}/webhooks/ittybit/${scenario.podflow.deps.webhook.token}`;
  });
  afterAll(() => scenario.stop());

  async function processingEpisode(title: string): Promise<{
    episode: UploadedEpisode;
    tasks: TaskRow[];
  }> {
    const episode = await uploadEpisode(scenario, producer, title);
    const tasks = await waitForTasks(scenario, episode.uuid);
    await waitForStatus(scenario, episode.uuid, "PROCESSING");
    return { episode, tasks };
  }

  it("changes nothing on a forged 'completed' for a task Ittybit reports as processing, and never fetches its output URL", async () => {
    const { episode, tasks } = await processingEpisode("Forged");
    const task = tasks[0] as TaskRow;
    await report(scenario, task.engine_task_id, "processing", { progress: 30 });
    await waitUntil(
      () => taskRow(scenario, episode, task),
      (row) => row?.progress === 30,
      "the genuine progress report",
    );
    const before = await taskRows(scenario, episode.uuid);
    const readsBefore = taskReads(scenario, task.engine_task_id);

    const forged = {
      ...scenario.ittybit.tasks.get(task.engine_task_id)?.task,
      status: "completed",
      progress: 100,
      output: { id: "file_forged", url: `${trapUrl}/forged.mp3`, kind: "audio" },
    };
    const answer = await post(webhookUrl, forged);
    expect(answer).toEqual({ status: 200, body: { status: "duplicate" } });
    // It was checked with Ittybit, which still says processing at 30 %.
    expect(taskReads(scenario, task.engine_task_id)).toBe(readsBefore + 1);
    expect(await taskRows(scenario, episode.uuid)).toEqual(before);
    expect((await waitForStatus(scenario, episode.uuid, "PROCESSING")).status).toBe("PROCESSING");
    expect(trapped).toEqual([]);
  });

  it("applies a genuine delivery with Ittybit's own output, whatever URL the body names", async () => {
    const { episode, tasks } = await processingEpisode("Genuine");
    const task = tasks[0] as TaskRow;
    const truth = scenario.ittybit.setTaskStatus(task.engine_task_id, "completed");
    const delivered = await scenario.ittybit.deliverWebhook(task.engine_task_id, {
      payload: { ...truth, output: { ...truth.output, url: `${trapUrl}/swapped.mp3` } },
    });
    expect(delivered.body).toEqual({ status: "received" });
    const row = await taskRow(scenario, episode, task);
    expect(row).toMatchObject({ status: "COMPLETED", progress: 100 });
    expect(row?.output_url).toBe(truth.output?.url);
    expect(row?.output_url).not.toContain(trapUrl);
    // The inbox keeps what was delivered beside what Ittybit answered.
    const [stored] = await scenario
      .em()
      .execute("select payload from webhook_deliveries where ittybit_task_id = ?", [
        task.engine_task_id,
      ]);
    expect(stored?.payload).toMatchObject({
      delivered: { output: { url: `${trapUrl}/swapped.mp3` } },
      ittybit: { id: task.engine_task_id, status: "completed" },
    });

    // Once the task has ended with its output nothing can change it: no more questions.
    const reads = taskReads(scenario, task.engine_task_id);
    expect(await post(webhookUrl, truth)).toEqual({ status: 200, body: { status: "received" } });
    expect(taskReads(scenario, task.engine_task_id)).toBe(reads);
    expect(trapped).toEqual([]);
  });

  it("reads the task an event envelope names, and applies Ittybit's task rather than the event's", async () => {
    const { episode, tasks } = await processingEpisode("Envelope");
    const task = tasks[1] as TaskRow;
    scenario.ittybit.setTaskStatus(task.engine_task_id, "processing", { progress: 45 });
    const reads = taskReads(scenario, task.engine_task_id);
    const envelope = {
      id: "evt_abcdefgh12345678",
      object: "event",
      kind: "task.succeeded",
      data: { id: task.engine_task_id, object: "task", status: "succeeded", outputs: [] },
      created_at: now(),
    };
    expect(await post(webhookUrl, envelope)).toEqual({
      status: 200,
      body: { status: "received" },
    });
    expect(taskReads(scenario, task.engine_task_id)).toBe(reads + 1);
    expect(await taskRow(scenario, episode, task)).toMatchObject({
      status: "PROCESSING",
      progress: 45,
      output_url: null,
    });
  });

  it("asks Ittybit nothing about a task id that is not ours", async () => {
    const before = scenario.ittybit.requests.length;
    const deliveries = await deliveryCount(scenario);
    const ignored = await metric(
      scenario,
      /^podflow_webhook_deliveries_total\{verification="refetch",result="ignored"\}/,
    );
    for (const id of ["task_madeup000001", "task_madeup000002", "../files", ""]) {
      const answer = await post(webhookUrl, { id: id || "x", object: "task", status: "completed" });
      expect(answer).toEqual({ status: 200, body: { status: "ignored" } });
    }
    expect(scenario.ittybit.requests.length).toBe(before);
    expect(await deliveryCount(scenario)).toBe(deliveries);
    expect(
      await metric(
        scenario,
        /^podflow_webhook_deliveries_total\{verification="refetch",result="ignored"\}/,
      ),
    ).toBe(ignored + 4);
  });

  it("asks Ittybit a few times, not fifty, about a burst of fifty deliveries for one task", async () => {
    const { episode, tasks } = await processingEpisode("Burst");
    const task = tasks[0] as TaskRow;
    const truth = scenario.ittybit.setTaskStatus(task.engine_task_id, "processing", {
      progress: 55,
    });
    // Ittybit answers in a quarter of a second, as a distant API does: the burst meets a
    // question in flight and waits for the next one.
    scenario.ittybit.delayNext({
      method: "GET",
      path: `/tasks/${task.engine_task_id}`,
      delayMs: 250,
      times: 50,
    });
    const reads = taskReads(scenario, task.engine_task_id);
    const answers = await Promise.all(Array.from({ length: 50 }, () => post(webhookUrl, truth)));
    expect(answers.every((answer) => answer.status === 200)).toBe(true);
    const statuses = answers.map((answer) => answer.body.status);
    expect(statuses.filter((status) => status === "received")).toHaveLength(1);
    expect(statuses.filter((status) => status === "duplicate")).toHaveLength(49);
    const asked = taskReads(scenario, task.engine_task_id) - reads;
    expect(asked).toBeGreaterThanOrEqual(1);
    expect(asked).toBeLessThanOrEqual(4);
    expect(await taskRow(scenario, episode, task)).toMatchObject({
      status: "PROCESSING",
      progress: 55,
    });
  });

  it("keeps a delivery Ittybit cannot be asked about (503) and applies it once Ittybit answers", async () => {
    const { episode, tasks } = await processingEpisode("Outage");
    const task = tasks[0] as TaskRow;
    const truth = scenario.ittybit.setTaskStatus(task.engine_task_id, "completed");
    // The webhook's quick question (two attempts) and the job's first run (three) all fail.
    scenario.ittybit.failNext({
      method: "GET",
      path: `/tasks/${task.engine_task_id}`,
      status: 503,
      times: 6,
    });
    const answer = await post(webhookUrl, truth);
    expect(answer).toEqual({ status: 200, body: { status: "queued" } });
    const row = await waitUntil(
      () => taskRow(scenario, episode, task),
      (candidate) => candidate?.status === "COMPLETED",
      "the re-checked completion",
      30_000,
    );
    expect(row?.output_url).toBe(truth.output?.url);
    expect(taskReads(scenario, task.engine_task_id)).toBeGreaterThanOrEqual(7);
  });

  it("answers 404 to the bare path, a wrong token or a longer path, and changes nothing", async () => {
    const { episode, tasks } = await processingEpisode("Wrong URL");
    const task = tasks[0] as TaskRow;
    const truth = scenario.ittybit.setTaskStatus(task.engine_task_id, "completed");
    const before = await taskRows(scenario, episode.uuid);
    const requests = scenario.ittybit.requests.length;
    const { token } = scenario.podflow.deps.webhook;
    for (const url of [
      `${scenario.url}/webhooks/ittybit`,
      `${scenario.url}/webhooks/ittybit/${token.slice(0, -1)}x`,
      `${scenario.url}/webhooks/ittybit/${token}/more`,
      `${scenario.url}/webhooks/ittybit/`,
    ]) {
      expect(await post(url, truth)).toEqual({ status: 404, body: { error: "not found" } });
    }
    expect(await taskRows(scenario, episode.uuid)).toEqual(before);
    expect(scenario.ittybit.requests.length).toBe(requests);
    expect(
      await metric(
        scenario,
        /^podflow_webhook_deliveries_total\{verification="url",result="refused_url"\}/,
      ),
    ).toBeGreaterThanOrEqual(4);
  });
});

describe("both: a valid signature and Ittybit's answer", () => {
  let scenario: Scenario;
  let producer: TestProducer;

  beforeAll(async () => {
    scenario = await startScenario({
      env: { PODFLOW_WEBHOOK_VERIFICATION: "both" },
      overrides: { reconcileCron: "0 0 1 1 *" },
    });
    producer = await scenario.producer();
  });
  afterAll(() => scenario.stop());

  it("refuses a bad signature, and takes the state from Ittybit even when the signature is good", async () => {
    const episode = await uploadEpisode(scenario, producer, "Both");
    const [task] = (await waitForTasks(scenario, episode.uuid)) as [TaskRow];
    await waitForStatus(scenario, episode.uuid, "PROCESSING");
    const url = `${scenario.url}/webhooks/ittybit/${scenario.podflow.deps.webhook.token}`;
    const body = JSON.stringify({
      ...scenario.ittybit.tasks.get(task.engine_task_id)?.task,
      status: "completed",
      output: { url: `${trapUrl}/signed-but-false.mp3` },
    });
    const reads = taskReads(scenario, task.engine_task_id);

    const unsigned = await post(url, body);
    expect(unsigned.status).toBe(401);
    const wrongKey = `whsec_${Buffer.from("another key entirely").toString("base64")}`;
    const badlySigned = await post(url, body, webhookHeaders(wrongKey, "msg_1", now(), body));
    expect(badlySigned).toMatchObject({ status: 401, body: { error: /no_matching_signature/ } });
    expect(taskReads(scenario, task.engine_task_id)).toBe(reads);

    // Signed with our own secret (a leaked one, say): still only Ittybit's word counts.
    const signed = await post(url, body, webhookHeaders(WEBHOOK_TEST_SECRET, "msg_2", now(), body));
    expect(signed.status).toBe(200);
    expect(taskReads(scenario, task.engine_task_id)).toBe(reads + 1);
    const [after] = (await taskRows(scenario, episode.uuid)).filter(
      (row) => row.engine_task_id === task.engine_task_id,
    );
    expect(after).toMatchObject({ status: "PENDING", output_url: null });

    // A genuine, signed delivery of a completion is applied.
    await report(scenario, task.engine_task_id, "completed");
    const [done] = (await taskRows(scenario, episode.uuid)).filter(
      (row) => row.engine_task_id === task.engine_task_id,
    );
    expect(done).toMatchObject({ status: "COMPLETED" });
    expect(trapped).toEqual([]);
  });
});

describe("signature: the tokened URL, and the bare path kept for one release", () => {
  let scenario: Scenario;
  let producer: TestProducer;

  beforeAll(async () => {
    scenario = await startScenario({ overrides: { reconcileCron: "0 0 1 1 *" } });
    producer = await scenario.producer();
  });
  afterAll(() => scenario.stop());

  it("applies signed deliveries at both URLs and refuses a wrong token with 404", async () => {
    expect(scenario.podflow.deps.config.ittybit.webhookVerification).toBe("signature");
    const episode = await uploadEpisode(scenario, producer, "Signed");
    const [first, second] = (await waitForTasks(scenario, episode.uuid)) as [TaskRow, TaskRow];
    await waitForStatus(scenario, episode.uuid, "PROCESSING");
    const { token } = scenario.podflow.deps.webhook;

    const reportAt = async (url: string, taskId: string, progress: number) => {
      const body = JSON.stringify({
        ...scenario.ittybit.setTaskStatus(taskId, "processing", { progress }),
      });
      return post(url, body, webhookHeaders(WEBHOOK_TEST_SECRET, `msg_${progress}`, now(), body));
    };
    expect(await reportAt(`${scenario.url}/webhooks/ittybit`, first.engine_task_id, 40)).toEqual({
      status: 200,
      body: { status: "received" },
    });
    expect(
      await reportAt(`${scenario.url}/webhooks/ittybit/${token}`, second.engine_task_id, 60),
    ).toEqual({ status: 200, body: { status: "received" } });
    expect(
      await reportAt(`${scenario.url}/webhooks/ittybit/not-the-token`, second.engine_task_id, 90),
    ).toEqual({ status: 404, body: { error: "not found" } });
    const rows = await taskRows(scenario, episode.uuid);
    expect(rows.find((row) => row.engine_task_id === first.engine_task_id)?.progress).toBe(40);
    expect(rows.find((row) => row.engine_task_id === second.engine_task_id)?.progress).toBe(60);
  });
});

function now(): number {
  return Math.floor(Date.now() / 1000);
}
