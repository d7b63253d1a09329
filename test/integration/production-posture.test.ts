import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { RunningPodflow } from "../../src/app.ts";
import { Episode } from "../../src/entities/episode.entity.ts";
import { createUser, issueToken } from "../../src/services/accounts.ts";
import { createTestDatabase } from "../support/database.ts";
import { graphql } from "../support/http.ts";
import { startTestPodflow } from "../support/podflow.ts";

// A Podflow started with NODE_ENV=production, probed as a browser on another site would.

const ALLOWED = "https://studio.example.com";
const EVIL = "https://evil.example.net";

let database: Awaited<ReturnType<typeof createTestDatabase>>;
let production: RunningPodflow;
let url: string;
let token: string;

beforeAll(async () => {
  database = await createTestDatabase();
  production = await startTestPodflow({
    databaseUrl: database.url,
    env: { NODE_ENV: "production", PODFLOW_ROLES: "api", PODFLOW_CORS_ORIGINS: ALLOWED },
  });
  url = production.url ?? "";
  const em = production.deps.orm.em.fork();
  token = (await issueToken(em, await createUser(em, "posture@example.com"))).secret;
});
afterAll(async () => {
  await production?.stop();
  await database?.drop();
});

const episodeCount = () => production.deps.orm.em.fork().count(Episode, {});

describe("NODE_ENV=production", () => {
  it("serves no GraphiQL page", async () => {
    const response = await fetch(`${url}/graphql`, { headers: { accept: "text/html" } });
    expect(await response.text()).not.toContain("<title>Podflow</title>");
    expect(response.headers.get("content-type") ?? "").not.toContain("text/html");
  });

  it("refuses introspection", async () => {
    const { body } = await graphql(url, "{ __schema { types { name } } }");
    expect(body.data ?? null).toBeNull();
    expect(body.errors?.[0]?.message).toMatch(/introspection/i);
    const { body: typeBody } = await graphql(
      url,
      '{ __type(name: "Episode") { fields { name } } }',
    );
    expect(typeBody.data ?? null).toBeNull();
  });

  it("does not suggest field names", async () => {
    const { body } = await graphql(
      url,
      "{ viewr { id } }",
      {},
      { authorization: `Bearer ${token}` },
    );
    expect(body.errors?.length).toBeGreaterThan(0);
    expect(JSON.stringify(body.errors)).not.toMatch(/did you mean|viewer/i);
  });

  it("answers CORS only for PODFLOW_CORS_ORIGINS, never with credentials", async () => {
    const preflight = (origin: string) =>
      fetch(`${url}/graphql`, {
        method: "OPTIONS",
        headers: {
          origin,
          "access-control-request-method": "POST",
          "access-control-request-headers": "authorization, content-type",
        },
      });
    const allowed = await preflight(ALLOWED);
    expect(allowed.headers.get("access-control-allow-origin")).toBe(ALLOWED);
    expect(allowed.headers.get("access-control-allow-credentials")).toBeNull();
    const evil = await preflight(EVIL);
    expect(evil.headers.get("access-control-allow-origin")).not.toBe(EVIL);
    expect(evil.headers.get("access-control-allow-credentials")).toBeNull();
    const { status } = await graphql(url, "{ health { ready } }", {}, { origin: EVIL });
    expect(status).toBe(200); // the server answers; the browser withholds it from the page
  });

  it("refuses a GET or a form/text POST without the CSRF header, and runs nothing", async () => {
    const query = encodeURIComponent("{ health { ready } }");
    expect((await fetch(`${url}/graphql?query=${query}`)).status).toBe(403);
    const withHeader = await fetch(`${url}/graphql?query=${query}`, {
      headers: { "x-graphql-yoga-csrf": "1", accept: "application/json" },
    });
    expect(withHeader.status).toBe(200);

    const before = await episodeCount();
    const forged = await fetch(`${url}/graphql`, {
      method: "POST",
      headers: { "content-type": "text/plain", authorization: `Bearer ${token}` },
      body: JSON.stringify({
        query: `mutation { prepareUpload(input: { filename: "a.mp3", title: "A", filesize: 10 }) { __typename } }`,
      }),
    });
    expect(forged.status).toBe(403);
    expect(await episodeCount()).toBe(before);
  });
});

describe("NODE_ENV=production with PODFLOW_GRAPHIQL=1", () => {
  let explorable: RunningPodflow;
  beforeAll(async () => {
    explorable = await startTestPodflow({
      databaseUrl: database.url,
      env: { NODE_ENV: "production", PODFLOW_ROLES: "api", PODFLOW_GRAPHIQL: "1" },
    });
  });
  afterAll(async () => {
    await explorable?.stop();
  });

  it("serves GraphiQL and introspection, and still no CORS without origins", async () => {
    const base = explorable.url ?? "";
    const page = await fetch(`${base}/graphql`, { headers: { accept: "text/html" } });
    expect(await page.text()).toContain("<title>Podflow</title>");
    const { body } = await graphql<{ __schema: { queryType: { name: string } } }>(
      base,
      "{ __schema { queryType { name } } }",
    );
    expect(body.data?.__schema.queryType.name).toBe("Query");
    const response = await fetch(`${base}/graphql`, {
      method: "OPTIONS",
      headers: { origin: EVIL, "access-control-request-method": "POST" },
    });
    expect(response.headers.get("access-control-allow-origin")).toBeNull();
  });
});
