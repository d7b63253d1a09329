/**
 * Housekeeping jobs against a running Podflow (Ittybit stand-in, signed webhooks): old webhook
 * deliveries are pruned, but never one whose task can still change; episodes stuck UPLOADED or
 * PROCESSING fail with the reason, but never while their tasks move or a job works for them.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { QUEUES } from "../../src/jobs/queues.ts";
import { pruneWebhookDeliveries } from "../../src/services/maintenance.ts";
import {
  episodeRow,
  report,
  taskRows,
  uploadEpisode,
  waitForStatus,
  waitForTasks,
  waitUntil,
} from "../support/pipeline.ts";
import { type Scenario, startScenario, type TestProducer } from "../support/scenario.ts";

let scenario: Scenario;
let producer: TestProducer;

beforeAll(async () => {
  scenario = await startScenario({
    // Neither the reconciler nor the maintenance schedule fires on its own during the test: the
    // test runs the jobs itself, exactly as the schedule would.
    overrides: { reconcileCron: "0 0 1 1 *" },
    env: {
      PODFLOW_MAINTENANCE_CRON: "0 0 1 1 *",
      PODFLOW_WEBHOOK_RETENTION_DAYS: "30",
      PODFLOW_STUCK_EPISODE_HOURS: "24",
    },
  });
  producer = await scenario.producer();
});
afterAll(async () => {
  await scenario?.stop();
});

async function sql<T = Record<string, unknown>>(query: string, params: unknown[] = []) {
  return (await scenario.em().execute(query, params)) as T[];
}

/** Sends one job to a housekeeping queue, as its schedule does, and waits until it completed. */
async function runJob(queue: string): Promise<void> {
  const id = await scenario.podflow.deps.boss.send(queue, {});
  expect(id).toBeTruthy();
  await waitUntil(
    () => sql<{ state: string }>("select state from pgboss.job where id = ?", [id]),
    (rows) => rows[0]?.state === "completed",
    `${queue} job ${id} to complete`,
  );
}

async function metric(name: string): Promise<string[]> {
  const text = await (await fetch(`${scenario.url}/metrics`)).text();
  return text.split("\n").filter((line) => line.startsWith(name));
}

async function processing(title: string) {
  const episode = await uploadEpisode(scenario, producer, title);
  const tasks = await waitForTasks(scenario, episode.uuid);
  await waitForStatus(scenario, episode.uuid, "PROCESSING");
  return { episode, tasks };
}

it("schedules both housekeeping jobs on PODFLOW_MAINTENANCE_CRON", async () => {
  const schedules = await scenario.podflow.deps.boss.getSchedules();
  const byName = new Map(schedules.map((schedule) => [schedule.name, schedule.cron]));
  expect(byName.get(QUEUES.pruneWebhookDeliveries)).toBe("0 0 1 1 *");
  expect(byName.get(QUEUES.sweepStuckEpisodes)).toBe("0 0 1 1 *");
});

describe("prune-webhook-deliveries", () => {
  it("deletes deliveries past the retention whose task has settled, and keeps the rest", async () => {
    const { episode, tasks } = await processing("Pruned deliveries");
    const [settled, moving, recent] = tasks as [
      (typeof tasks)[0],
      (typeof tasks)[0],
      (typeof tasks)[0],
    ];
    await report(scenario, settled.engine_task_id, "processing", { progress: 50 });
    await report(scenario, settled.engine_task_id, "completed");
    await report(scenario, moving.engine_task_id, "processing", { progress: 10 });
    const kept = await sql<{ id: string }>(
      "select id from webhook_deliveries where ittybit_task_id = ?",
      [moving.engine_task_id],
    );
    expect(kept).toHaveLength(1);
    // Everything so far is 40 days old; one delivery arrives now.
    await sql(
      "update webhook_deliveries set received_at = now() - interval '40 days' where ittybit_task_id in (?, ?)",
      [settled.engine_task_id, moving.engine_task_id],
    );
    await report(scenario, recent.engine_task_id, "completed");
    const before = await sql<{ ittybit_task_id: string }>(
      "select ittybit_task_id from webhook_deliveries where ittybit_task_id in (?, ?, ?)",
      [settled.engine_task_id, moving.engine_task_id, recent.engine_task_id],
    );
    expect(before).toHaveLength(4);

    await runJob(QUEUES.pruneWebhookDeliveries);

    const after = await sql<{ ittybit_task_id: string }>(
      "select ittybit_task_id from webhook_deliveries where ittybit_task_id in (?, ?, ?) order by ittybit_task_id",
      [settled.engine_task_id, moving.engine_task_id, recent.engine_task_id],
    );
    // The settled task's two old deliveries went; the moving task's old one and the recent one stay.
    expect(after.map((row) => row.ittybit_task_id).sort()).toEqual(
      [moving.engine_task_id, recent.engine_task_id].sort(),
    );
    expect(await metric("podflow_webhook_deliveries_pruned_total ")).toEqual([
      "podflow_webhook_deliveries_pruned_total 2",
    ]);

    // The kept row still does its work: the same delivery again is recognised as a repeat.
    const repeat = await scenario.ittybit.deliverWebhook(moving.engine_task_id, {
      webhookId: kept[0]?.id,
    });
    expect(repeat.status).toBe(200);
    expect(repeat.body).toEqual({ status: "duplicate" });
    // And a repeat of a pruned one changes nothing: its task had settled.
    scenario.ittybit.setTaskStatus(settled.engine_task_id, "processing", { progress: 5 });
    expect((await scenario.ittybit.deliverWebhook(settled.engine_task_id)).status).toBe(200);
    const settledNow = (await taskRows(scenario, episode.uuid)).find(
      (task) => task.engine_task_id === settled.engine_task_id,
    );
    expect(settledNow).toMatchObject({ status: "COMPLETED", progress: 100 });
  });

  it("deletes in batches, and a run that hits its limit leaves the rest to the next", async () => {
    await sql(
      `insert into webhook_deliveries (id, ittybit_task_id, received_at, payload, outcome)
       select 'old-' || n, null, now() - interval '31 days', '{}'::jsonb, 'applied'
         from generate_series(1, 7) n`,
    );
    const deps = scenario.podflow.deps;
    const oldRows = async () =>
      (
        await sql<{ n: number }>(
          "select count(*)::int as n from webhook_deliveries where id like 'old-%'",
        )
      )[0]?.n;
    expect(
      await pruneWebhookDeliveries(deps, { retentionDays: 30, batchSize: 2, maxBatches: 2 }),
    ).toBe(4);
    expect(await oldRows()).toBe(3);
    expect(
      await pruneWebhookDeliveries(deps, { retentionDays: 30, batchSize: 2, maxBatches: 5 }),
    ).toBe(3);
    expect(await oldRows()).toBe(0);
    // Nothing younger than the retention is touched.
    expect(await pruneWebhookDeliveries(deps, { retentionDays: 30 })).toBe(0);
  });
});

describe("sweep-stuck-episodes", () => {
  /** Makes the episode and its tasks look unchanged for `hours`. */
  async function age(episodeUuid: string, hours: number) {
    await sql(
      "update processing_tasks set updated_at = now() - make_interval(hours => ?) where episode_id = ?",
      [hours, episodeUuid],
    );
    await sql("update episodes set updated_at = now() - make_interval(hours => ?) where id = ?", [
      hours,
      episodeUuid,
    ]);
  }

  it("fails stuck episodes with the reason, and leaves those whose tasks move or whose jobs wait", async () => {
    // Stuck: PROCESSING, one task done, three silent for 30 hours, no job working on it.
    const stuck = await processing("Stuck processing");
    const done = stuck.tasks[0] as (typeof stuck.tasks)[0];
    await report(scenario, done.engine_task_id, "completed");
    await age(stuck.episode.uuid, 30);
    // Its dead letter gave up too (the handler that should have failed it failed itself): a
    // failed job is no work under way.
    const deadLetter = await scenario.podflow.deps.boss.send(
      QUEUES.episodeDeadLetter,
      { episodeId: stuck.episode.uuid },
      { startAfter: 3_600 },
    );
    await sql("update pgboss.job set state = 'failed' where id = ?", [deadLetter]);

    // Old, but one of its tasks reported progress a minute ago: still moving.
    const moving = await processing("Still moving");
    await age(moving.episode.uuid, 30);
    await sql("update processing_tasks set updated_at = now() - interval '1 minute' where id = ?", [
      moving.tasks[1]?.id,
    ]);

    // Old, but a job for it waits in the queue (e.g. behind a long backlog): not stuck.
    const queued = await processing("Queued behind others");
    await age(queued.episode.uuid, 30);
    await scenario.podflow.deps.boss.send(
      QUEUES.completeEpisode,
      { episodeId: queued.episode.uuid },
      { startAfter: 3_600 },
    );

    // Old, but within the bound.
    const recent = await processing("Recent enough");
    await age(recent.episode.uuid, 20);

    // UPLOADED for 30 hours with no process-episode job left (say its dead letter's handler failed).
    const uploaded = await processing("Stuck uploaded");
    await sql("update episodes set status = 'UPLOADED' where id = ?", [uploaded.episode.uuid]);
    await age(uploaded.episode.uuid, 30);

    await runJob(QUEUES.sweepStuckEpisodes);

    const failed = await episodeRow(scenario, stuck.episode.uuid);
    expect(failed.status).toBe("FAILED");
    expect(failed.failure_reason).toMatch(
      /^Podflow gave up: the episode was PROCESSING for 30\.\d hours with no progress and no job working on it \(PODFLOW_STUCK_EPISODE_HOURS is 24\)/,
    );
    expect(failed.processing_completed_at).toBeTruthy();
    // Its unended tasks failed with the same reason; the finished one kept its output.
    const tasks = await taskRows(scenario, stuck.episode.uuid);
    for (const task of tasks) {
      if (task.id === done.id) expect(task).toMatchObject({ status: "COMPLETED" });
      else expect(task).toMatchObject({ status: "FAILED", error_message: failed.failure_reason });
    }
    const failedUpload = await episodeRow(scenario, uploaded.episode.uuid);
    expect(failedUpload.status).toBe("FAILED");
    expect(failedUpload.failure_reason).toContain("was UPLOADED for 30.");

    for (const untouched of [moving, queued, recent]) {
      expect((await episodeRow(scenario, untouched.episode.uuid)).status).toBe("PROCESSING");
    }
    expect(await metric("podflow_episodes_swept_total{")).toEqual([
      'podflow_episodes_swept_total{status="PROCESSING"} 1',
      'podflow_episodes_swept_total{status="UPLOADED"} 1',
    ]);

    // Their tasks' moves are counted like any other: three of the first, four of the second.
    const failedMoves = (await metric("podflow_task_transitions_total{"))
      .filter((line) => line.includes('to="FAILED"'))
      .reduce((sum, line) => sum + Number(line.split(" ").at(-1)), 0);
    expect(failedMoves).toBe(7);

    // A producer can retry it: the failed tasks start over, the finished one is kept.
    const retried = await producer.gql<{ retryEpisode: { __typename: string } }>(
      `mutation($id: ID!) { retryEpisode(id: $id) { __typename } }`,
      { id: stuck.episode.id },
    );
    expect(retried.body.errors).toBeUndefined();
    expect(retried.body.data?.retryEpisode.__typename).toBe("RetryEpisodePayload");
    const again = await waitUntil(
      () => taskRows(scenario, stuck.episode.uuid),
      (rows) => rows.length === 7,
      "three new attempts",
    );
    expect(
      again
        .filter((task) => task.attempt === 2)
        .map((task) => task.type)
        .sort(),
    ).toEqual(
      tasks
        .filter((task) => task.id !== done.id)
        .map((task) => task.type)
        .sort(),
    );
  });
});
