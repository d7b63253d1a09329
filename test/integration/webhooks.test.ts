import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  episodeRow,
  report,
  type TaskRow,
  taskRows,
  type UploadedEpisode,
  uploadEpisode,
  waitForStatus,
  waitForTasks,
  waitUntil,
} from "../support/pipeline.ts";
import { type Scenario, startScenario, WEBHOOK_TEST_SECRET } from "../support/scenario.ts";
import { webhookHeaders } from "../support/webhook-signing.ts";

let scenario: Scenario;
let episode: UploadedEpisode;
let task: TaskRow;
let webhookUrl: string;

beforeAll(async () => {
  scenario = await startScenario({
    overrides: { reconcileCron: "0 0 1 1 *", reconcileAfterSeconds: 1 },
  });
  const producer = await scenario.producer();
  episode = await uploadEpisode(scenario, producer, "Guarded");
  [task] = (await waitForTasks(scenario, episode.uuid)) as [TaskRow];
  await waitForStatus(scenario, episode.uuid, "PROCESSING");
  webhookUrl = `${scenario.url}/webhooks/ittybit`;
});
afterAll(() => scenario.stop());

async function snapshot() {
  const deliveries = await scenario
    .em()
    .execute("select count(*)::int as n from webhook_deliveries");
  return { tasks: await taskRows(scenario, episode.uuid), deliveries: deliveries[0]?.n as number };
}

/** Posts a body with headers of our choosing, as a forger or a broken proxy would. */
async function post(body: string, headers: Record<string, string>) {
  const response = await fetch(webhookUrl, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body,
  });
  return {
    status: response.status,
    body: (await response.json()) as { error?: string; status?: string },
  };
}

function signed(body: string, options: { secret?: string; timestamp?: number; id?: string } = {}) {
  return webhookHeaders(
    options.secret ?? WEBHOOK_TEST_SECRET,
    options.id ?? `msg_${Math.random().toString(36).slice(2)}`,
    options.timestamp ?? Math.floor(Date.now() / 1000),
    body,
  );
}

describe("POST /webhooks/ittybit refuses bad deliveries and changes nothing", () => {
  const completed = () =>
    JSON.stringify({
      ...scenario.ittybit.tasks.get(task.engine_task_id)?.task,
      status: "completed",
      progress: 100,
    });

  it.each([
    ["unsigned", async () => post(completed(), {}), 401, /missing_headers/],
    [
      "signed with another secret",
      async () => {
        const body = completed();
        return post(
          body,
          signed(body, { secret: `whsec_${Buffer.from("not ours").toString("base64")}` }),
        );
      },
      401,
      /no_matching_signature/,
    ],
    [
      "tampered after signing",
      async () => {
        const body = completed();
        return post(body.replace('"completed"', '"failed"'), signed(body));
      },
      401,
      /no_matching_signature/,
    ],
    [
      "stale (signed 10 minutes ago)",
      async () => {
        const body = completed();
        return post(body, signed(body, { timestamp: Math.floor(Date.now() / 1000) - 600 }));
      },
      401,
      /timestamp_out_of_tolerance/,
    ],
    [
      "malformed JSON",
      async () => {
        const body = `${completed().slice(0, 40)}`;
        return post(body, signed(body));
      },
      400,
      /not valid JSON/,
    ],
    [
      "not a task event",
      async () => {
        const body = JSON.stringify({ hello: "world" });
        return post(body, signed(body));
      },
      400,
      /./,
    ],
    [
      "larger than 1 MiB",
      async () => {
        const body = JSON.stringify({
          ...JSON.parse(completed()),
          padding: "x".repeat(1024 * 1024),
        });
        return post(body, signed(body));
      },
      413,
      /larger than/,
    ],
  ])("%s", async (_case, send, status, reason) => {
    const before = await snapshot();
    const answer = await send();
    expect(answer.status).toBe(status);
    expect(answer.body.error).toMatch(reason);
    expect(await snapshot()).toEqual(before);
  });

  it("answers an unknown task with 200 ignored, storing nothing", async () => {
    const before = await snapshot();
    const body = JSON.stringify({
      id: "task_unknown000000",
      object: "task",
      kind: "audio",
      status: "completed",
    });
    const answer = await post(body, signed(body));
    expect(answer).toEqual({ status: 200, body: { status: "ignored" } });
    expect(await snapshot()).toEqual(before);
  });

  it("accepts the event envelope of later API versions, keyed by its event id", async () => {
    const data = scenario.ittybit.setTaskStatus(task.engine_task_id, "processing", {
      progress: 55,
    });
    const body = JSON.stringify({
      id: "evt_envelope000001",
      object: "event",
      kind: "task.updated",
      data,
    });
    // No webhook-id header of its own is needed once verified: the signature's id is the key.
    const first = await post(body, signed(body, { id: "evt_envelope000001" }));
    const again = await post(body, signed(body, { id: "evt_envelope000001" }));
    expect([first.body.status, again.body.status]).toEqual(["received", "duplicate"]);
    const [row] = (await taskRows(scenario, episode.uuid)).filter((r) => r.id === task.id);
    expect(row?.progress).toBe(55);
  });
});

describe("the reconciler", () => {
  it("finishes an episode whose webhooks never came", async () => {
    const producer = await scenario.producer();
    const quiet = await uploadEpisode(scenario, producer, "Silent Ittybit");
    const tasks = await waitForTasks(scenario, quiet.uuid);
    await waitForStatus(scenario, quiet.uuid, "PROCESSING");
    await report(scenario, (tasks[0] as TaskRow).engine_task_id, "processing", { progress: 5 });
    for (const row of tasks) scenario.ittybit.setTaskStatus(row.engine_task_id, "completed");
    // Quiet for longer than reconcileAfterSeconds, then the scheduled job's run, queued by hand.
    await expect
      .poll(
        async () => {
          const rows = await scenario
            .em()
            .execute(
              "select count(*)::int as n from processing_tasks where episode_id = ? and updated_at < now() - interval '1 second'",
              [quiet.uuid],
            );
          return rows[0]?.n;
        },
        { timeout: 10_000 },
      )
      .toBe(4);
    await scenario.podflow.deps.boss.send("reconcile-tasks", {});
    const done = await waitForStatus(scenario, quiet.uuid, "PROCESSED");
    expect(done.transcript).toBeTruthy();
    const asked = scenario.ittybit.requests.filter(
      (request) =>
        request.method === "GET" &&
        tasks.some((row) => request.path === `/tasks/${row.engine_task_id}`),
    );
    expect(asked.length).toBeGreaterThanOrEqual(4);
    expect((await episodeRow(scenario, quiet.uuid)).processing_completed_at).not.toBeNull();
  });

  it("fails a task Ittybit no longer knows, with that reason", async () => {
    const producer = await scenario.producer();
    const lost = await uploadEpisode(scenario, producer, "Vanished task");
    const tasks = await waitForTasks(scenario, lost.uuid);
    await waitForStatus(scenario, lost.uuid, "PROCESSING");
    const [gone, ...rest] = tasks as [TaskRow, ...TaskRow[]];
    for (const row of rest) await report(scenario, row.engine_task_id, "completed");
    scenario.ittybit.tasks.delete(gone.engine_task_id);
    await waitUntilQuiet(gone.id);
    await scenario.podflow.deps.boss.send("reconcile-tasks", {});
    const failed = await waitForStatus(scenario, lost.uuid, "FAILED");
    expect(failed.failure_reason).toContain("Ittybit no longer knows this task (404)");
  });
});

/** Waits until the task has not changed for longer than the reconciler's quiet period (1 s). */
async function waitUntilQuiet(taskId: string): Promise<void> {
  await waitUntil(
    async () =>
      (
        await scenario
          .em()
          .execute(
            "select count(*)::int as n from processing_tasks where id = ? and updated_at < now() - interval '1 second'",
            [taskId],
          )
      )[0]?.n,
    (n) => n === 1,
    "the task to go quiet",
  );
}
