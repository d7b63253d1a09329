/**
 * Operations against a running Podflow over real HTTP and WebSocket: a request id on every log
 * line of a request (and on its response), the metrics moving as work is done, and the health
 * checks of a worker-only process (its listener and `podflow health`).
 */
import { spawn } from "node:child_process";
import { readFile } from "node:fs/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { RunningPodflow } from "../../src/app.ts";
import { freePort } from "../../src/free-port.ts";
import { createLogger } from "../../src/logger.ts";
import { createTestDatabase } from "../support/database.ts";
import { makeMediaDir, makeVideoWithAudio, testMediaTools } from "../support/media.ts";
import { waitForStatus, waitUntil } from "../support/pipeline.ts";
import { startTestPodflow } from "../support/podflow.ts";
import { type Scenario, startScenario, type TestProducer } from "../support/scenario.ts";
import { follow, subscribeSse, subscribeWs } from "../support/subscriptions.ts";

type LogLine = Record<string, unknown> & { msg?: string; requestId?: string };

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const logLines: LogLine[] = [];
let scenario: Scenario;
let producer: TestProducer;

beforeAll(async () => {
  // Every line, down to the ORM's SQL at trace, collected here.
  const logger = createLogger(
    { logLevel: "trace" },
    { write: (line: string) => void logLines.push(JSON.parse(line) as LogLine) },
  );
  scenario = await startScenario({
    env: { PODFLOW_MEDIA_ENGINE: "local" },
    overrides: { reconcileCron: "0 0 1 1 *" },
    start: { logger, subscriptions: { reconnectDelayMs: { initial: 50, max: 200 } } },
  });
  producer = await scenario.producer();
});
afterAll(async () => {
  await scenario?.stop();
});

/** A webhook with the right URL token but no signature: read, then refused (401) and logged. */
function unsignedWebhook(requestId?: string) {
  return fetch(`${scenario.url}/webhooks/ittybit/${scenario.podflow.deps.webhook.token}`, {
    method: "POST",
    headers: {
      "content-type": "application/json",
      ...(requestId === undefined ? {} : { "x-request-id": requestId }),
    },
    body: JSON.stringify({ id: "task_nope", status: "completed" }),
  });
}

const refusals = () => logLines.filter((line) => line.msg === "webhook delivery");

describe("request ids", () => {
  it("keeps a sane incoming x-request-id, echoes it, and puts it on the request's log lines", async () => {
    const before = refusals().length;
    const response = await unsignedWebhook("trace-abc.123");
    expect(response.status).toBe(401);
    expect(response.headers.get("x-request-id")).toBe("trace-abc.123");
    const logged = refusals().slice(before);
    expect(logged).toHaveLength(1);
    expect(logged[0]).toMatchObject({ requestId: "trace-abc.123", result: "refused_signature" });
  });

  it("replaces a missing or unsafe one with a fresh UUID", async () => {
    const unsafe = ["", "has spaces", 'quote"d', "x".repeat(200), "-leading-dash"];
    const seen = new Set<string>();
    for (const incoming of [undefined, ...unsafe]) {
      const before = refusals().length;
      const response = await unsignedWebhook(incoming);
      const id = response.headers.get("x-request-id") ?? "";
      expect(id, String(incoming)).toMatch(UUID);
      expect(refusals().slice(before)[0]?.requestId).toBe(id);
      seen.add(id);
    }
    expect(seen.size).toBe(unsafe.length + 1);
  });

  it("keeps concurrent requests' lines apart, down to the ORM's SQL of a GraphQL request", async () => {
    const ids = Array.from({ length: 8 }, (_, index) => `concurrent-${index}`);
    const before = refusals().length;
    await Promise.all(ids.map((id) => unsignedWebhook(id)));
    expect(
      refusals()
        .slice(before)
        .map((line) => line.requestId)
        .sort(),
    ).toEqual([...ids].sort());

    const response = await fetch(`${scenario.url}/graphql`, {
      method: "POST",
      headers: {
        "content-type": "application/json",
        authorization: `Bearer ${producer.token}`,
        "x-request-id": "gql-request-1",
      },
      body: JSON.stringify({ query: "{ episodes(first: 1) { edges { node { id } } } }" }),
    });
    expect(response.status).toBe(200);
    expect(response.headers.get("x-request-id")).toBe("gql-request-1");
    const sql = logLines.filter(
      (line) => line.msg === "mikro-orm" && line.requestId === "gql-request-1",
    );
    // The token lookup and the episodes query, at least.
    expect(sql.length).toBeGreaterThanOrEqual(2);
    // Lines outside any request carry none.
    expect(logLines.find((line) => line.msg === "Podflow started")?.requestId).toBeUndefined();
  });
});

/** The samples of a Prometheus text page, keyed `name{a="1",b="2"}` with labels sorted. */
async function scrape(url: string): Promise<Map<string, number>> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const samples = new Map<string, number>();
  for (const line of text.split("\n")) {
    const match = /^([a-z_:][\w:]*)(?:\{(.*)\})? (\S+)$/i.exec(line);
    if (!match) continue;
    const labels = (match[2] ?? "")
      .split(/,(?=\w+=")/)
      .filter(Boolean)
      .sort()
      .join(",");
    samples.set(labels ? `${match[1]}{${labels}}` : (match[1] as string), Number(match[3]));
  }
  return samples;
}

describe("metrics", () => {
  it("count requests, operations, jobs, task transitions, engine tasks, subscriptions, sockets and listener reconnects", {
    timeout: 240_000,
  }, async () => {
    const media = await makeMediaDir();
    try {
      const video = await readFile(await makeVideoWithAudio(testMediaTools(), media.dir, 2));
      const prepared = await producer.gql<{
        prepareUpload: { episode: { id: string }; upload: { url: string } };
      }>(
        `mutation($input: PrepareUploadInput!) { prepareUpload(input: $input) {
           ... on PrepareUploadPayload { episode { id } upload { url } } } }`,
        { input: { filename: "episode.mp4", title: "Measured", filesize: video.length } },
      );
      const { episode, upload } = prepared.body.data?.prepareUpload ?? {};
      const uuid = Buffer.from(episode?.id ?? "", "base64")
        .toString()
        .split(":")[1] as string;
      const put = await fetch(upload?.url ?? "", { method: "PUT", body: video });
      expect(put.status).toBe(201);
      const { id: fileId } = (await put.json()) as { id: string };
      const confirmed = await producer.gql<{ confirmUpload: { __typename: string } }>(
        `mutation($input: ConfirmUploadInput!) { confirmUpload(input: $input) { __typename } }`,
        { input: { episodeId: episode?.id, fileId } },
      );
      expect(confirmed.body.data?.confirmUpload.__typename).toBe("ConfirmUploadPayload");
      await waitForStatus(scenario, uuid, "PROCESSED", 180_000);
    } finally {
      await media.cleanup();
    }

    const after = await waitUntil(
      () => scrape(scenario.url),
      // complete-episode's job is counted once its handler returned, a moment after PROCESSED.
      (samples) =>
        samples.get(
          'podflow_job_duration_seconds_count{outcome="completed",queue="complete-episode"}',
        ) === 1,
      "complete-episode to be counted",
    );
    const count = (key: string) => after.get(key) ?? 0;
    expect(
      count(
        'podflow_http_request_duration_seconds_count{method="PUT",route="upload",status="201"}',
      ),
    ).toBe(1);
    expect(
      count(
        'podflow_http_request_duration_seconds_count{method="POST",route="webhook",status="401"}',
      ),
    ).toBeGreaterThanOrEqual(14);
    expect(
      count(
        'podflow_http_request_duration_seconds_count{method="POST",route="graphql",status="200"}',
      ),
    ).toBeGreaterThanOrEqual(3);
    expect(
      count('podflow_graphql_operation_duration_seconds_count{operation="mutation",result="ok"}'),
    ).toBeGreaterThanOrEqual(2);
    expect(
      count('podflow_graphql_operation_duration_seconds_count{operation="query",result="ok"}'),
    ).toBeGreaterThanOrEqual(1);
    expect(
      count('podflow_job_duration_seconds_count{outcome="completed",queue="process-episode"}'),
    ).toBe(1);
    expect(
      count('podflow_job_duration_seconds_count{outcome="completed",queue="run-local-task"}'),
    ).toBe(4);
    for (const type of ["AUDIO_EXTRACTION", "VIDEO_TRANSCODE", "CHAPTER_DETECTION"]) {
      expect(count(`podflow_task_transitions_total{to="PROCESSING",type="${type}"}`), type).toBe(1);
      expect(count(`podflow_task_transitions_total{to="COMPLETED",type="${type}"}`), type).toBe(1);
      expect(
        count(
          `podflow_engine_task_duration_seconds_count{engine="local",outcome="completed",type="${type}"}`,
        ),
        type,
      ).toBe(1);
    }
    // No whisper model here: the transcript task is skipped.
    expect(count('podflow_task_transitions_total{to="SKIPPED",type="TRANSCRIPT_GENERATION"}')).toBe(
      1,
    );
    expect(
      count(
        'podflow_engine_task_duration_seconds_count{engine="local",outcome="skipped",type="TRANSCRIPT_GENERATION"}',
      ),
    ).toBe(1);
    expect(count("podflow_graphql_subscriptions_open")).toBe(0);
    expect(count("podflow_websockets_open")).toBe(0);

    // Subscriptions and sockets: up while open, down once closed, whichever transport.
    const query = "subscription { myEpisodesUpdated { id status } }";
    const ws = await follow(subscribeWs, scenario.podflow, producer.token, query);
    const sse = await follow(subscribeSse, scenario.podflow, producer.token, query);
    const open = await scrape(scenario.url);
    expect(open.get("podflow_graphql_subscriptions_open")).toBe(2);
    expect(open.get("podflow_websockets_open")).toBe(1);
    expect(
      open.get(
        'podflow_graphql_operation_duration_seconds_count{operation="subscription",result="ok"}',
      ),
    ).toBe(2);
    ws.close();
    sse.close();
    await waitUntil(
      () => scrape(scenario.url),
      (samples) =>
        samples.get("podflow_graphql_subscriptions_open") === 0 &&
        samples.get("podflow_websockets_open") === 0,
      "subscriptions and sockets to be closed",
    );

    // The change listener loses its connection and comes back.
    expect(count("podflow_listener_reconnects_total")).toBe(0);
    await scenario
      .em()
      .execute(
        "select pg_terminate_backend(pid) from pg_stat_activity where application_name = 'podflow-listener' and datname = current_database()",
      );
    await waitUntil(
      () => scrape(scenario.url),
      (samples) => samples.get("podflow_listener_reconnects_total") === 1,
      "the listener to reconnect",
    );
  });
});

describe("a worker-only process", () => {
  let database: Awaited<ReturnType<typeof createTestDatabase>>;
  let worker: RunningPodflow | null = null;

  beforeAll(async () => {
    database = await createTestDatabase();
    worker = await startTestPodflow({
      databaseUrl: database.url,
      env: { PODFLOW_ROLES: "worker" },
    });
  });
  afterAll(async () => {
    await worker?.stop();
    await database?.drop();
  });

  /** `podflow health`, as the container's HEALTHCHECK runs it, with PORT. */
  function healthCommand(
    port: number,
  ): Promise<{ code: number | null; stdout: string; stderr: string }> {
    return new Promise((resolve, reject) => {
      const child = spawn(process.execPath, ["bin/podflow.js", "health"], {
        env: { PATH: process.env.PATH ?? "", PORT: String(port) },
      });
      let stdout = "";
      let stderr = "";
      child.stdout.on("data", (chunk) => {
        stdout += chunk;
      });
      child.stderr.on("data", (chunk) => {
        stderr += chunk;
      });
      child.on("error", reject);
      child.on("close", (code) => resolve({ code, stdout, stderr }));
    });
  }

  it("serves /healthz, /readyz and /metrics on PORT, and nothing else", async () => {
    expect(worker?.url).toBeNull();
    const opsUrl = worker?.opsUrl ?? "";
    expect(opsUrl).toBe(`http://127.0.0.1:${worker?.deps.config.port}`);
    expect((await fetch(`${opsUrl}/healthz`)).status).toBe(200);
    const ready = await fetch(`${opsUrl}/readyz`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toMatchObject({
      ready: true,
      dependencies: [
        { name: "database", ok: true },
        { name: "jobQueue", ok: true },
      ],
    });
    const metrics = await (await fetch(`${opsUrl}/metrics`)).text();
    expect(metrics).toContain("# TYPE podflow_job_duration_seconds histogram");
    expect((await fetch(`${opsUrl}/graphql`, { method: "POST" })).status).toBe(404);
  });

  it("passes `podflow health`, which fails once nothing answers on PORT", {
    timeout: 30_000,
  }, async () => {
    const port = worker?.deps.config.port as number;
    const healthy = await healthCommand(port);
    expect(healthy.stderr).toBe("");
    expect(healthy.code).toBe(0);
    expect(JSON.parse(healthy.stdout)).toMatchObject({ ready: true });

    const nobody = await healthCommand(await freePort());
    expect(nobody.code).toBe(1);
    expect(nobody.stderr).toMatch(/did not answer/);
  });
});
