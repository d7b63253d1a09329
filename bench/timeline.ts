/**
 * TEMPORARY (issue 15, reverted in the next commit): the timeline of one webhook → subscriber
 * delivery. Two Podflow processes (A takes the webhooks, B serves the "other instance"
 * subscriber) with PODFLOW_TIMELINE_FILE set (src/timeline.ts: hrtime stamps along the path,
 * written at exit); one subscriber on A, then one on B; N webhooks each, one at a time; then,
 * per case, the median of each segment between consecutive stamps over the rounds. After that,
 * the same database measured directly with pg (medians of 300): the bench's UPDATE+NOTIFY
 * baseline, `select 1`, the webhook's apply function, and the feed's burst load (unnamed and
 * named); GAP=<ms> pauses between those samples, as a webhook's round trips do.
 *
 *   node bench/timeline.ts [webhooks=300]
 *
 * With TIMELINE_DIR=<dir>, bench/subscription-latency.ts writes its A's and B's stamps to
 * <dir>/a.json and <dir>/b.json too (for the fan-out cases).
 */
import { randomBytes, randomUUID } from "node:crypto";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { createClient } from "graphql-ws";
import pg from "pg";
import pino from "pino";
import WebSocket from "ws";
import { startEmbeddedDatabase } from "../src/database/embedded.ts";
import { TASK_TYPES } from "../src/domain/tasks.ts";
import { hashToken } from "../src/services/accounts.ts";
import { webhookHeaders } from "../test/support/webhook-signing.ts";
import { Cleanups } from "./support/environment.ts";
import { BENCH_WEBHOOK_PATH, BENCH_WEBHOOK_SECRET, spawnPodflow } from "./support/podflow.ts";

const N = Number(process.argv[2] ?? 300);
const now = () => process.hrtime.bigint();
const cleanups = new Cleanups();
const log = (m: string) => process.stderr.write(`${m}\n`);

const dir = await mkdtemp(path.join(tmpdir(), "podflow-timeline-"));
cleanups.add("rm", () => rm(dir, { recursive: true, force: true }));
try {
  const embedded = await startEmbeddedDatabase({
    dataDir: await mkdtemp(path.join(tmpdir(), "podflow-timeline-pg-")),
    logger: pino({ level: "warn" }, pino.destination(2)),
  });
  cleanups.add("stop pg", () => embedded.stop());
  const db = new pg.Client({ connectionString: embedded.url });
  await db.connect();
  await db.query("alter system set track_functions = 'all'");
  await db.query("select pg_reload_conf()");
  const fileA = path.join(dir, "a.json");
  const fileB = path.join(dir, "b.json");
  const a = await spawnPodflow(cleanups, {
    databaseUrl: embedded.url,
    standIn: null,
    env: { PODFLOW_ROLES: "api", PODFLOW_TIMELINE_FILE: fileA },
  });
  const b = await spawnPodflow(cleanups, {
    databaseUrl: embedded.url,
    standIn: null,
    env: { PODFLOW_ROLES: "api", PODFLOW_TIMELINE_FILE: fileB },
  });
  const userId = randomUUID();
  const token = `pf_${randomBytes(32).toString("base64url")}`;
  await db.query("insert into users (id, email, created_at) values ($1, $2, now())", [
    userId,
    `t-${userId.slice(0, 8)}@x.example.com`,
  ]);
  await db.query(
    `insert into api_tokens (id, user_id, name, token_hash, token_prefix, created_at)
     values ($1, $2, 'bench', $3, $4, now())`,
    [randomUUID(), userId, hashToken(token), token.slice(0, 10)],
  );

  const windows: Record<string, Array<[bigint, bigint, bigint]>> = { same: [], cross: [] };
  for (const [name, host] of [
    ["same", a],
    ["cross", b],
  ] as const) {
    const episodeId = randomUUID();
    await db.query(
      `insert into episodes (id, user_id, title, status, engine, processing_started_at, created_at, updated_at)
       values ($1, $2, 'T', 'PROCESSING', 'ittybit', now(), now(), now())`,
      [episodeId, userId],
    );
    const tasks = TASK_TYPES.map((type) => ({
      id: randomUUID(),
      type,
      engineTaskId: `task_${randomUUID().replaceAll("-", "")}`,
    }));
    for (const task of tasks) {
      await db.query(
        `insert into processing_tasks (id, episode_id, type, attempt, engine_task_id, status, created_at, updated_at)
         values ($1, $2, $3, 1, $4, 'PENDING', now(), now())`,
        [task.id, episodeId, task.type, task.engineTaskId],
      );
    }
    const progress = new Map<string, number>();
    let onMessage: (() => void) | null = null;
    let first: () => void;
    const primed = new Promise<void>((r) => {
      first = r;
    });
    const client = createClient({
      url: `${host.url.replace(/^http/, "ws")}/graphql`,
      webSocketImpl: WebSocket,
      connectionParams: { authorization: `Bearer ${token}` },
      retryAttempts: 0,
    });
    client.subscribe<{
      episodeUpdated: { tasks: Array<{ id: string; progress: number | null }> };
    }>(
      {
        query: `subscription($id: ID!) { episodeUpdated(id: $id) { id status progress tasks { id type status progress } } }`,
        variables: { id: Buffer.from(`Episode:${episodeId}`).toString("base64") },
      },
      {
        next: (result) => {
          for (const t of result.data?.episodeUpdated.tasks ?? []) {
            progress.set(t.id, t.progress ?? 0);
          }
          first();
          onMessage?.();
        },
        error: (e) => log(String(e)),
        complete: () => {},
      },
    );
    await primed;
    for (let i = 0; i < N + 20; i += 1) {
      const task = tasks[Math.floor(i / 99) % tasks.length] as (typeof tasks)[number];
      const p = (i % 99) + 1;
      const body = JSON.stringify({
        id: task.engineTaskId,
        object: "task",
        kind: "audio",
        status: "processing",
        progress: p,
      });
      const headers = {
        "content-type": "application/json",
        ...webhookHeaders(
          BENCH_WEBHOOK_SECRET,
          `msg_${randomUUID()}`,
          Math.floor(Date.now() / 1000),
          body,
        ),
      };
      let receivedAt = 0n;
      const arrived = new Promise<void>((resolve) => {
        onMessage = () => {
          if ((progress.get(task.id) ?? 0) >= p && receivedAt === 0n) {
            receivedAt = now();
            resolve();
          }
        };
      });
      const sentAt = now();
      const response = await fetch(`${a.url}${BENCH_WEBHOOK_PATH}`, {
        method: "POST",
        headers,
        body,
      });
      const answeredAt = now();
      await response.text();
      await arrived;
      // A little quiet between rounds, so stamps of one round never mix with the next.
      await new Promise((r) => setTimeout(r, 3));
      if (i >= 20) windows[name]?.push([sentAt, answeredAt, receivedAt]);
    }
    await client.dispose();
  }
  await micro(db, embedded.url, null);
  await a.stop();
  await b.stop();
  const fstats = await db.query(
    "select funcname, calls, total_time, self_time from pg_stat_user_functions order by total_time desc",
  );
  for (const r of fstats.rows) {
    log(
      `  ${String(r.funcname).padEnd(40)} calls ${r.calls}  total ${(r.total_time / r.calls).toFixed(3)} ms/call  self ${(r.self_time / r.calls).toFixed(3)}`,
    );
  }
  await micro(db, embedded.url, JSON.parse(await readFile(`${fileB}.sql`, "utf8")));
  await db.end();
  const stampsOf = async (file: string, who: string) =>
    (JSON.parse(await readFile(file, "utf8")) as Array<[string, string]>).map(
      ([n, t]) => [`${who}:${n}`, BigInt(t)] as const,
    );
  const all = [...(await stampsOf(fileA, "A")), ...(await stampsOf(fileB, "B"))].sort((x, y) =>
    x[1] < y[1] ? -1 : x[1] > y[1] ? 1 : 0,
  );
  const median = (xs: number[]) =>
    [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)] as number;
  for (const name of ["same", "cross"]) {
    const r = name === "same" ? "A" : "B";
    const path = [
      "A:a.http.in",
      "A:a.verified.parsed",
      "A:a.db.sent",
      `${r}:r.notify`,
      `${r}:r.burst.start`,
      `${r}:r.load.sent`,
      `${r}:r.load.rows`,
      `${r}:r.burst.delivered`,
      `${r}:r.exec.start`,
      `${r}:r.onNext`,
      `${r}:r.ws.sent`,
    ];
    const segments = new Map<string, number[]>();
    const totals: number[] = [];
    const answered: number[] = [];
    for (const [sent, answeredAt, received] of windows[name] ?? []) {
      const first = new Map<string, bigint>();
      for (const [n, t] of all) {
        if (t < sent || t > received || first.has(n)) continue;
        first.set(n, t);
      }
      let previous = sent;
      let previousName = "client.sent";
      for (const step of [...path, "client.received"]) {
        const at = step === "client.received" ? received : first.get(step);
        if (at === undefined) continue;
        const key = `${previousName} → ${step}`;
        const list = segments.get(key) ?? [];
        list.push(Number(at - previous) / 1e6);
        segments.set(key, list);
        previous = at;
        previousName = step;
      }
      totals.push(Number(received - sent) / 1e6);
      answered.push(Number(answeredAt - sent) / 1e6);
    }
    log(`\n${name} instance (${totals.length} webhooks): medians per round, ms`);
    let sum = 0;
    for (const [key, list] of segments) {
      if (list.length < totals.length * 0.8) continue;
      const m = median(list);
      sum += m;
      log(`  ${key.padEnd(48)} ${m.toFixed(3).padStart(7)}  (n=${list.length})`);
    }
    log(`  ${"sum of segment medians".padEnd(48)} ${sum.toFixed(3).padStart(7)}`);
    log(
      `  ${"client.sent → client.received (median)".padEnd(48)} ${median(totals).toFixed(3).padStart(7)}`,
    );
    log(
      `  ${"client.sent → HTTP answer (median)".padEnd(48)} ${median(answered).toFixed(3).padStart(7)}`,
    );
  }
} finally {
  await cleanups.runAll(log);
}

async function micro(
  db: pg.Client,
  url: string,
  load: [string, string, string] | null,
): Promise<void> {
  const listener = new pg.Client({ connectionString: url });
  await listener.connect();
  await listener.query("listen podflow_episode_changes");
  await listener.query("listen bench_x");
  let heard: (() => void) | null = null;
  listener.on("notification", () => heard?.());
  const userId = randomUUID();
  await db.query("insert into users (id, email, created_at) values ($1, $2, now())", [
    userId,
    `m-${userId.slice(0, 8)}@x.example.com`,
  ]);
  const episodeId = randomUUID();
  await db.query(
    `insert into episodes (id, user_id, title, status, engine, processing_started_at, created_at, updated_at)
     values ($1, $2, 'T', 'PROCESSING', 'ittybit', now(), now(), now())`,
    [episodeId, userId],
  );
  const engineTaskIds: string[] = [];
  for (const type of TASK_TYPES) {
    const engineTaskId = `task_${randomUUID().replaceAll("-", "")}`;
    engineTaskIds.push(engineTaskId);
    await db.query(
      `insert into processing_tasks (id, episode_id, type, attempt, engine_task_id, status, created_at, updated_at)
       values ($1, $2, $3, 1, $4, 'PENDING', now(), now())`,
      [randomUUID(), episodeId, type, engineTaskId],
    );
  }
  await db.query("create table if not exists bx (id int primary key, p int)");
  await db.query("insert into bx values (1, 0) on conflict do nothing");
  const median = (xs: number[]) =>
    [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)] as number;
  const time = async (name: string, run: (i: number) => Promise<unknown>, notify: boolean) => {
    const toNotify: number[] = [];
    const toResult: number[] = [];
    for (let i = 0; i < 320; i += 1) {
      const got = notify
        ? new Promise<bigint>((r) => {
            heard = () => r(now());
          })
        : Promise.resolve(0n);
      const t0 = now();
      await run(i);
      const t1 = now();
      const t2 = await got;
      if (process.env.GAP) await new Promise((r) => setTimeout(r, Number(process.env.GAP)));
      if (i >= 20) {
        toResult.push(Number(t1 - t0) / 1e6);
        if (notify) toNotify.push(Number(t2 - t0) / 1e6);
      }
    }
    log(
      `  ${name.padEnd(50)} result ${median(toResult).toFixed(3)} ms${notify ? `, notify ${median(toNotify).toFixed(3)} ms` : ""}`,
    );
  };
  log("\nmicro (direct pg, medians of 300):");
  await time(
    "UPDATE+NOTIFY (baseline)",
    (i) =>
      db.query(
        "with c as (update bx set p = $1 where id = 1 returning id) select pg_notify('bench_x', $2) from c",
        [i, String(i)],
      ),
    true,
  );
  await time("select 1", () => db.query("select 1"), false);
  await time(
    "podflow_apply_progress_events (1 event)",
    (i) =>
      db.query("select * from podflow_apply_progress_events($1::jsonb)", [
        JSON.stringify([
          {
            taskId: engineTaskIds[Math.floor(i / 99)],
            status: "PROCESSING",
            progress: (i % 99) + 1,
            output: null,
            error: null,
            rawStatus: "processing",
            deliveryId: `d_${randomUUID()}`,
            payload: { id: "x", object: "task", kind: "audio", status: "processing", progress: i },
          },
        ]),
      ]),
    true,
  );
  if (load) {
    const [text, hashes, ids] = load;
    let n = 0;
    const sql = text.replace(/\?/g, () => `$${++n}`);
    await time("feed load (unnamed statement)", () => db.query(sql, [hashes, ids ?? "{}"]), false);
    await time(
      "feed load (named prepared)",
      () => db.query({ name: "feedload", text: sql, values: [hashes, ids ?? "{}"] }),
      false,
    );
    const explained = await db.query(`explain (analyze, summary) ${sql}`, [hashes, ids ?? "{}"]);
    for (const row of explained.rows.slice(-3)) log(`    ${row["QUERY PLAN"]}`);
  }
  await listener.end();
}
