/**
 * The apply path in the database (`podflow_apply_task_events`) and the group commit in front of
 * it: the SQL follows the rules src/domain/tasks.ts states, and nobody is answered before the
 * transaction holding their event has committed.
 */
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { movesForward, TASK_STATUSES, type TaskStatus } from "../../src/domain/tasks.ts";
import type { Episode } from "../../src/entities/episode.entity.ts";
import type { ProcessingTask } from "../../src/entities/processing-task.entity.ts";
import type { TaskEvent } from "../../src/services/ittybit/index.ts";
import {
  applyTaskEvent,
  createTaskEventCommitter,
  readyToComplete,
  type TaskEventOutcome,
} from "../../src/services/task-events.ts";
import {
  type TaskRow,
  taskRows,
  type UploadedEpisode,
  uploadEpisode,
  waitForStatus,
  waitForTasks,
} from "../support/pipeline.ts";
import { type Scenario, startScenario, type TestProducer } from "../support/scenario.ts";

let scenario: Scenario;
let producer: TestProducer;
let db: pg.Client;

beforeAll(async () => {
  scenario = await startScenario({ overrides: { reconcileCron: "0 0 1 1 *" } });
  producer = await scenario.producer();
  db = new pg.Client({ connectionString: scenario.databaseUrl });
  await db.connect();
});
afterAll(async () => {
  await db?.end();
  await scenario?.stop();
});

function event(taskId: string, status: TaskStatus, extra: Partial<TaskEvent> = {}): TaskEvent {
  return {
    taskId,
    status,
    progress: null,
    output: null,
    error: null,
    deliveryId: null,
    rawStatus: status.toLowerCase(),
    ...extra,
  };
}

async function processing(title: string): Promise<{ episode: UploadedEpisode; tasks: TaskRow[] }> {
  const episode = await uploadEpisode(scenario, producer, title);
  const tasks = await waitForTasks(scenario, episode.uuid);
  await waitForStatus(scenario, episode.uuid, "PROCESSING");
  return { episode, tasks };
}

describe("podflow_apply_task_events follows the domain's rules", () => {
  it("moves a task only to a higher rank, for every pair of statuses", async () => {
    const { episode, tasks } = await processing("Every pair");
    const task = tasks[0] as TaskRow;
    for (const from of TASK_STATUSES) {
      for (const to of TASK_STATUSES) {
        await db.query(
          "update processing_tasks set status = $2, progress = 10, error_message = null, output_url = null where id = $1",
          [task.id, from],
        );
        const outcome = await applyTaskEvent(
          scenario.podflow.deps,
          event(task.engine_task_id, to, { error: to === "FAILED" ? "broke" : null }),
          null,
        );
        const [row] = (await taskRows(scenario, episode.uuid)).filter((r) => r.id === task.id);
        const forward = movesForward(from, to);
        expect({ from, to, status: row?.status, outcome }).toEqual({
          from,
          to,
          status: forward ? to : from,
          outcome: forward ? "applied" : "stale",
        });
        if (forward && to === "COMPLETED") expect(row?.progress).toBe(100);
        if (forward && to === "FAILED") expect(row?.error_message).toBe("broke");
        if (forward && to === "SKIPPED")
          expect(row?.error_message).toBe("the engine reported the task skipped");
      }
    }
  });

  it("raises progress only, only while the task runs, and takes the output with a completion", async () => {
    const { episode, tasks } = await processing("Progress");
    const task = tasks[1] as TaskRow;
    const apply = (e: TaskEvent) => applyTaskEvent(scenario.podflow.deps, e, null);
    const row = async () =>
      (await taskRows(scenario, episode.uuid)).find((r) => r.id === task.id) as TaskRow;
    expect(await apply(event(task.engine_task_id, "PROCESSING", { progress: 40.6 }))).toBe(
      "applied",
    );
    expect((await row()).progress).toBe(41);
    expect(await apply(event(task.engine_task_id, "PROCESSING", { progress: 20 }))).toBe("stale");
    expect((await row()).progress).toBe(41);
    expect(await apply(event(task.engine_task_id, "COMPLETED"))).toBe("applied");
    expect(await row()).toMatchObject({ status: "COMPLETED", progress: 100, output_url: null });
    const output = {
      fileId: "file_out",
      url: "https://example.com/out.mp4",
      kind: "video",
      type: "video/mp4",
    };
    expect(await apply(event(task.engine_task_id, "COMPLETED", { output }))).toBe("applied");
    expect(await row()).toMatchObject({ output_url: output.url });
    const [{ metadata, output_file_id }] = (
      await db.query("select metadata, output_file_id from processing_tasks where id = $1", [
        task.id,
      ])
    ).rows;
    expect({ metadata, output_file_id }).toMatchObject({
      metadata: { outputKind: "video", outputType: "video/mp4" },
      output_file_id: "file_out",
    });
    // An output arriving again, or another, changes nothing.
    expect(
      await apply(
        event(task.engine_task_id, "COMPLETED", { output: { ...output, url: "https://x" } }),
      ),
    ).toBe("stale");
    expect(await apply(event("task_not_ours", "COMPLETED"))).toBe("ignored");
  });
});

describe("the completion rule is the same in SQL and in JS", () => {
  // The webhook path decides in SQL (podflow_apply_task_events) whether an ended task was the
  // last one the episode waited for; processing start and complete-episode decide in JS
  // (readyToComplete). Every state the three other tasks can be in, times every way the last one
  // ends: both must say the same. Each case runs in a transaction that is rolled back, so no job
  // is queued and the episode is as it was for the next.
  const OTHER_STATES = {
    "completed with its output": { status: "COMPLETED", output: true, round: 2 },
    "completed, output still to come": { status: "COMPLETED", output: false, round: 2 },
    skipped: { status: "SKIPPED", output: false, round: 2 },
    "failed this round": { status: "FAILED", output: false, round: 2 },
    "failed in an earlier round (a retry will re-create it)": {
      status: "FAILED",
      output: false,
      round: 1,
    },
    running: { status: "PROCESSING", output: false, round: 2 },
  } as const;
  type OtherState = (typeof OTHER_STATES)[keyof typeof OTHER_STATES];
  const ENDINGS = ["COMPLETED", "SKIPPED", "FAILED"] as const;

  it("marks a completion exactly when readyToComplete says the episode is ready", async () => {
    const { episode, tasks } = await processing("One rule");
    const [last, ...others] = tasks as [TaskRow, ...TaskRow[]];
    expect(others).toHaveLength(3);
    const states = Object.entries(OTHER_STATES);
    let ready = 0;
    let cases = 0;
    for (const [nameA, a] of states) {
      for (const [nameB, b] of states) {
        for (const [nameC, c] of states) {
          for (const ending of ENDINGS) {
            const combination: Array<[TaskRow, OtherState]> = [
              [others[0] as TaskRow, a],
              [others[1] as TaskRow, b],
              [others[2] as TaskRow, c],
            ];
            await db.query("begin");
            try {
              await db.query(
                "update episodes set status = 'PROCESSING', processing_round = 2, completion_queued_round = 1 where id = $1",
                [episode.uuid],
              );
              await db.query(
                "update processing_tasks set status = 'PROCESSING', round = 2, output_url = null, output_file_id = null where id = $1",
                [last.id],
              );
              for (const [task, state] of combination) {
                await db.query(
                  "update processing_tasks set status = $2, round = $3, output_url = $4 where id = $1",
                  [task.id, state.status, state.round, state.output ? "https://x.test/out" : null],
                );
              }
              const output =
                ending === "COMPLETED"
                  ? { fileId: "f", url: "https://x.test/o", kind: null, type: null }
                  : null;
              const [sql] = (
                await db.query<{ queue_completion: boolean }>(
                  "select queue_completion from podflow_apply_task_events($1::jsonb)",
                  [JSON.stringify([event(last.engine_task_id, ending, { output, error: null })])],
                )
              ).rows;
              const after = (
                await db.query<{ status: string; output_url: string | null; round: number }>(
                  "select status, output_url, round from processing_tasks where episode_id = $1",
                  [episode.uuid],
                )
              ).rows;
              const js = readyToComplete(
                { processingRound: 2 } as Episode,
                after.map((row) => ({
                  status: row.status,
                  outputUrl: row.output_url,
                  round: row.round,
                })) as unknown as ProcessingTask[],
              );
              expect({ others: [nameA, nameB, nameC], ending, sql: sql?.queue_completion }).toEqual(
                { others: [nameA, nameB, nameC], ending, sql: js },
              );
              if (js) ready += 1;
              cases += 1;
            } finally {
              await db.query("rollback");
            }
          }
        }
      }
    }
    // Both answers occur: 3 ready states of 6 for each other task, every ending ready.
    expect({ cases, ready }).toEqual({ cases: 6 ** 3 * 3, ready: 3 ** 3 * 3 });
  });
});

describe("group commit", () => {
  it("answers nobody before their transaction committed, and puts the events that waited into one", async () => {
    const { episode, tasks } = await processing("Group commit");
    const committer = createTaskEventCommitter(scenario.podflow.deps, { concurrency: 1 });
    // Another connection holds the episode's row: the first transaction waits behind it.
    await db.query("begin");
    await db.query("select 1 from episodes where id = $1 for update", [episode.uuid]);

    const resolved: string[] = [];
    const seenOnAnswer = async (id: string, pending: Promise<TaskEventOutcome>) => {
      const outcome = await pending;
      resolved.push(id);
      const other = new pg.Client({ connectionString: scenario.databaseUrl });
      await other.connect();
      try {
        const found = await other.query("select 1 from webhook_deliveries where id = $1", [id]);
        return { outcome, visible: found.rowCount === 1 };
      } finally {
        await other.end();
      }
    };
    const ids = Array.from({ length: 11 }, (_, index) => `group-commit-${index}`);
    const answers = ids.map((id, index) => {
      const task = tasks[index % tasks.length] as TaskRow;
      return seenOnAnswer(
        id,
        committer.apply(event(task.engine_task_id, "PROCESSING", { progress: index + 1 }), {
          id,
          payload: { index },
        }),
      );
    });
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(resolved).toEqual([]);
    await db.query("commit");

    const results = await Promise.all(answers);
    expect(results.every((result) => result.visible && result.outcome === "applied")).toBe(true);
    // now() is the transaction's start: one for the first event, one for the ten that waited.
    const transactions = await db.query(
      "select count(distinct received_at)::int as n from webhook_deliveries where id = any($1)",
      [ids],
    );
    expect(transactions.rows[0]?.n).toBe(2);
  });

  it("answers events that end tasks (one transaction with the completion's job) only after commit", async () => {
    const { episode, tasks } = await processing("Group commit, completions");
    const committer = createTaskEventCommitter(scenario.podflow.deps, { concurrency: 1 });
    await db.query("begin");
    await db.query("select 1 from episodes where id = $1 for update", [episode.uuid]);

    const answered: Array<{
      id: string;
      outcome: TaskEventOutcome;
      visible: boolean;
      jobs: number;
    }> = [];
    const pending = tasks.map((task) => {
      const id = `group-complete-${task.id}`;
      const output = {
        fileId: `file_${task.id}`,
        url: `https://example.com/${task.id}.mp3`,
        kind: "audio",
        type: "audio/mpeg",
      };
      return committer
        .apply(event(task.engine_task_id, "COMPLETED", { output }), { id, payload: {} })
        .then(async (outcome) => {
          const other = new pg.Client({ connectionString: scenario.databaseUrl });
          await other.connect();
          try {
            const found = await other.query("select 1 from webhook_deliveries where id = $1", [id]);
            const jobs = await other.query(
              "select count(*)::int as n from pgboss.job where name = 'complete-episode' and data->>'episodeId' = $1",
              [episode.uuid],
            );
            answered.push({ id, outcome, visible: found.rowCount === 1, jobs: jobs.rows[0]?.n });
          } finally {
            await other.end();
          }
        });
    });
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(answered).toEqual([]);
    await db.query("commit");
    await Promise.all(pending);

    expect(answered.map(({ outcome, visible }) => ({ outcome, visible }))).toEqual(
      tasks.map(() => ({ outcome: "applied", visible: true })),
    );
    // The event that completed the episode was answered with its job already committed.
    expect(Math.max(...answered.map((answer) => answer.jobs))).toBe(1);
  });

  it("fails only the bad event of a batch", async () => {
    const { tasks } = await processing("One bad event");
    const committer = createTaskEventCommitter(scenario.podflow.deps, { concurrency: 1 });
    const [first, second, third] = tasks as [TaskRow, TaskRow, TaskRow];
    const blocker = committer.apply(
      event(first.engine_task_id, "PROCESSING", { progress: 5 }),
      null,
    );
    const good = committer.apply(event(second.engine_task_id, "PROCESSING", { progress: 5 }), null);
    // Not a status at all: the table's check refuses it, and with it the whole batch at first.
    const bad = committer.apply(event(third.engine_task_id, "BOGUS" as TaskStatus), null).then(
      () => null,
      (error: unknown) => error,
    );
    const alsoGood = committer.apply(
      event(third.engine_task_id, "PROCESSING", { progress: 7 }),
      null,
    );
    expect(await blocker).toBe("applied");
    expect(await good).toBe("applied");
    expect(String(await bad)).toMatch(/processing_tasks_status_check/);
    expect(await alsoGood).toBe("applied");
  });
});

describe("the one-statement path for events that end no task", () => {
  const output = (taskId: string) => ({
    fileId: `file_${taskId}`,
    url: `https://example.com/${taskId}.mp3`,
    kind: "audio",
    type: "audio/mpeg",
  });
  const completionJobs = async (episodeId: string) =>
    (
      await db.query(
        "select count(*)::int as n from pgboss.job where name = 'complete-episode' and data->>'episodeId' = $1",
        [episodeId],
      )
    ).rows[0]?.n as number;

  it("refuses, committing nothing, an event that would mark a completion without its job", async () => {
    const { episode, tasks } = await processing("Progress path guard");
    const events = tasks.map((task) => ({
      taskId: task.engine_task_id,
      status: "COMPLETED",
      progress: 100,
      output: output(task.engine_task_id),
      error: null,
      rawStatus: "completed",
      deliveryId: `guard-${task.id}`,
      payload: {},
    }));
    await expect(
      db.query("select * from podflow_apply_progress_events($1::jsonb)", [JSON.stringify(events)]),
    ).rejects.toThrow(/marked its episode's completion/);
    const rows = await taskRows(scenario, episode.uuid);
    expect(rows.filter((row) => row.status === "COMPLETED")).toEqual([]);
    const inbox = await db.query(
      "select count(*)::int as n from webhook_deliveries where id = any($1)",
      [events.map((e) => e.deliveryId)],
    );
    expect(inbox.rows[0]?.n).toBe(0);
    expect(await completionJobs(episode.uuid)).toBe(0);

    // The same events through the committer: one transaction marks and queues, once.
    const committer = createTaskEventCommitter(scenario.podflow.deps, { concurrency: 1 });
    const outcomes = await Promise.all(
      tasks.map((task) =>
        committer.apply(
          event(task.engine_task_id, "COMPLETED", { output: output(task.engine_task_id) }),
          { id: `guard-${task.id}`, payload: { note: 'it\'s \\ "quoted" \n é' } },
        ),
      ),
    );
    expect(outcomes).toEqual(tasks.map(() => "applied"));
    // The events travel as an SQL literal on this path: quotes and backslashes arrive intact.
    const stored = await db.query("select payload from webhook_deliveries where id = $1", [
      `guard-${tasks[0]?.id}`,
    ]);
    expect(stored.rows[0]?.payload).toEqual({ note: 'it\'s \\ "quoted" \n é' });
    expect(await completionJobs(episode.uuid)).toBe(1);
    // Progress reports after that go the one-statement way and are answered as before.
    const late = tasks[0] as TaskRow;
    expect(
      await committer.apply(event(late.engine_task_id, "PROCESSING", { progress: 60 }), {
        id: `guard-late-${late.id}`,
        payload: {},
      }),
    ).toBe("stale");
    expect(
      await committer.apply(event(late.engine_task_id, "PROCESSING", { progress: 60 }), {
        id: `guard-late-${late.id}`,
        payload: {},
      }),
    ).toBe("duplicate");
  });
});
