import { readFile } from "node:fs/promises";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { RunningPodflow } from "../../src/app.ts";
import { Episode } from "../../src/entities/episode.entity.ts";
import { printPodflowSchema } from "../../src/schema/index.ts";
import { createUser, issueToken } from "../../src/services/accounts.ts";
import { createTestDatabase } from "../support/database.ts";
import { graphql } from "../support/http.ts";
import { startTestPodflow } from "../support/podflow.ts";

let database: Awaited<ReturnType<typeof createTestDatabase>>;
let podflow: RunningPodflow;
let url: string;

beforeAll(async () => {
  database = await createTestDatabase();
  podflow = await startTestPodflow({ databaseUrl: database.url });
  url = podflow.url ?? "";
});
afterAll(async () => {
  await podflow.stop();
  await database.drop();
});

describe("HTTP server", () => {
  it("answers /healthz while the process is alive", async () => {
    const response = await fetch(`${url}/healthz`);
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ status: "ok" });
  });

  it("answers /readyz 200 with each dependency when the database and queue are reachable", async () => {
    const response = await fetch(`${url}/readyz`);
    expect(response.status).toBe(200);
    expect(await response.json()).toMatchObject({
      ready: true,
      dependencies: [
        { name: "database", ok: true, error: null },
        { name: "jobQueue", ok: true, error: null },
      ],
    });
  });

  it("serves Query.health over GraphQL", async () => {
    const { status, body } = await graphql<{ health: { ready: boolean; version: string } }>(
      url,
      "{ health { ready version dependencies { name ok } } }",
    );
    expect(status).toBe(200);
    expect(body.errors).toBeUndefined();
    expect(body.data?.health.ready).toBe(true);
    expect(body.data?.health.version).toMatch(/^\d+\.\d+\.\d+/);
  });

  it("serves GraphiQL to a browser on GET /graphql", async () => {
    const response = await fetch(`${url}/graphql`, { headers: { accept: "text/html" } });
    expect(response.status).toBe(200);
    expect(response.headers.get("content-type")).toContain("text/html");
    expect(await response.text()).toContain("<title>Podflow</title>");
  });

  it("answers unknown paths with 404", async () => {
    expect((await fetch(`${url}/nope`)).status).toBe(404);
  });

  it("masks internal errors and reports GraphQL syntax errors", async () => {
    const { body } = await graphql(url, "{ health { nope } }");
    expect(body.errors?.[0]?.message).toContain('Cannot query field "nope"');
  });

  it("answers /readyz 503 while the database refuses connections, and 200 again after", async () => {
    const name = new URL(database.url).pathname.slice(1);
    const admin = new pg.Client({
      connectionString: database.url.replace(`/${name}`, "/postgres"),
    });
    await admin.connect();
    try {
      await admin.query(`alter database ${name} allow_connections false`);
      await admin.query(
        "select pg_terminate_backend(pid) from pg_stat_activity where datname = $1 and pid <> pg_backend_pid()",
        [name],
      );
      const down = await fetch(`${url}/readyz`);
      expect(down.status).toBe(503);
      const body = (await down.json()) as { ready: boolean; dependencies: Array<{ ok: boolean }> };
      expect(body.ready).toBe(false);
      expect(body.dependencies.some((dependency) => !dependency.ok)).toBe(true);
      expect((await fetch(`${url}/healthz`)).status).toBe(200);
    } finally {
      await admin.query(`alter database ${name} allow_connections true`);
      await admin.end();
    }
    await expect
      .poll(async () => (await fetch(`${url}/readyz`)).status, { timeout: 10_000 })
      .toBe(200);
  });
});

describe("without ITTYBIT_API_KEY", () => {
  it("processes with the local engine: uploads go to a signed URL on Podflow itself", async () => {
    const em = podflow.deps.orm.em.fork();
    const user = await createUser(em, "nokey@example.com");
    const { secret } = await issueToken(em, user);
    const { body } = await graphql<{
      prepareUpload: { __typename: string; episode: { engine: string }; upload: { url: string } };
    }>(
      url,
      `mutation { prepareUpload(input: { filename: "a.mp3", title: "A", filesize: 10 }) {
         __typename ... on PrepareUploadPayload { episode { engine } upload { url } } } }`,
      {},
      { authorization: `Bearer ${secret}` },
    );
    expect(body.data?.prepareUpload.__typename).toBe("PrepareUploadPayload");
    expect(body.data?.prepareUpload.episode.engine).toBe("LOCAL");
    expect(body.data?.prepareUpload.upload.url.startsWith(`${url}/uploads/`)).toBe(true);
    expect(await em.fork().count(Episode, { engine: "local" })).toBe(1);
  });
});

describe("schema.graphql", () => {
  it("is the printed code schema (run `npm run schema:print` after changing the schema)", async () => {
    const committed = await readFile(new URL("../../schema.graphql", import.meta.url), "utf8");
    expect(committed).toBe(printPodflowSchema());
  });
});
