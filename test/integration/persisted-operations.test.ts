import { createHash } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { RunningPodflow } from "../../src/app.ts";
import { loadConfig } from "../../src/config.ts";
import { createUser, issueToken } from "../../src/services/accounts.ts";
import { createTestDatabase } from "../support/database.ts";
import { insertProcessingEpisode } from "../support/episode-changes.ts";
import { startTestPodflow } from "../support/podflow.ts";
import { subscribeWs } from "../support/subscriptions.ts";

// With PODFLOW_PERSISTED_OPERATIONS, only the operations in the file run: by id, or sent in
// full (matched by their hash). Anything else — over HTTP, server-sent events or WebSocket — is
// refused naming the setting, before it is parsed, and changes nothing.

const VIEWER = "query Viewer { viewer { id email } }";
const CREATE_SHOW =
  "mutation CreateShow($input: CreateShowInput!) { createShow(input: $input) { __typename } }";
const EPISODE_UPDATED = "subscription Updated($id: ID!) { episodeUpdated(id: $id) { id title } }";
const sha256 = (text: string) => createHash("sha256").update(text).digest("hex");

let database: Awaited<ReturnType<typeof createTestDatabase>>;
let podflow: RunningPodflow;
let directory: string;
let url: string;
let token: string;
let userId: string;

beforeAll(async () => {
  directory = await mkdtemp(path.join(tmpdir(), "podflow-persisted-"));
  const file = path.join(directory, "operations.json");
  await writeFile(
    file,
    JSON.stringify({ viewer: VIEWER, [sha256(EPISODE_UPDATED)]: EPISODE_UPDATED }),
  );
  database = await createTestDatabase();
  podflow = await startTestPodflow({
    databaseUrl: database.url,
    env: { PODFLOW_ROLES: "api", PODFLOW_PERSISTED_OPERATIONS: file },
  });
  url = podflow.url ?? "";
  const em = podflow.deps.orm.em.fork();
  const user = await createUser(em, "persisted@example.com");
  userId = user.id;
  token = (await issueToken(em, user)).secret;
});
afterAll(async () => {
  await podflow?.stop();
  await database?.drop();
  await rm(directory, { recursive: true, force: true });
});

async function post(body: Record<string, unknown>) {
  const response = await fetch(`${url}/graphql`, {
    method: "POST",
    headers: {
      "content-type": "application/json",
      accept: "application/json",
      authorization: `Bearer ${token}`,
    },
    body: JSON.stringify(body),
  });
  return {
    status: response.status,
    body: (await response.json()) as {
      data?: Record<string, unknown> | null;
      errors?: Array<{ message: string; extensions?: { code?: string } }>;
    },
  };
}

async function shows(): Promise<number> {
  const [row] = await podflow.deps.orm.em
    .fork()
    .execute<Array<{ n: string }>>("select count(*) as n from shows");
  return Number(row?.n);
}

describe("PODFLOW_PERSISTED_OPERATIONS", () => {
  it("runs a listed operation by its id, by its hash, and sent in full", async () => {
    const expected = { viewer: { id: expect.any(String), email: "persisted@example.com" } };
    const byId = await post({
      extensions: { persistedQuery: { version: 1, sha256Hash: "viewer" } },
    });
    expect(byId.body).toEqual({ data: expected });
    const byHash = await post({
      extensions: { persistedQuery: { version: 1, sha256Hash: sha256(VIEWER) } },
    });
    expect(byHash.body).toEqual({ data: expected });
    expect((await post({ query: VIEWER })).body).toEqual({ data: expected });
  });

  it("refuses an operation not in the list, naming the setting, and changes nothing", async () => {
    const before = await shows();
    const refused = await post({
      query: CREATE_SHOW,
      variables: { input: { title: "Sneaked in" } },
    });
    expect(refused.status).toBe(400);
    expect(refused.body.data).toBeUndefined();
    expect(refused.body.errors?.[0]?.message).toBe(
      "Only persisted operations may run on this server (PODFLOW_PERSISTED_OPERATIONS)",
    );
    expect(refused.body.errors?.[0]?.extensions?.code).toBe("NOT_PERSISTED");
    // A listed query changed by one character is another query.
    const changed = await post({ query: `${VIEWER} ` });
    expect(changed.body.errors?.[0]?.extensions?.code).toBe("NOT_PERSISTED");
    const unknown = await post({
      extensions: { persistedQuery: { version: 1, sha256Hash: sha256(CREATE_SHOW) } },
      variables: { input: { title: "Sneaked in" } },
    });
    expect(unknown.body.errors?.[0]).toMatchObject({
      message: "Unknown persisted operation (PODFLOW_PERSISTED_OPERATIONS)",
      extensions: { code: "PERSISTED_QUERY_NOT_IN_LIST" },
    });
    const neither = await post({ variables: {} });
    expect(neither.body.errors?.[0]?.extensions?.code).toBe("PERSISTED_QUERY_ID_REQUIRED");
    expect(await shows()).toBe(before);
  });

  it("holds for WebSocket operations too: a listed subscription runs, another is refused", async () => {
    const episode = await insertProcessingEpisode(podflow.deps, userId);
    const options = { authorization: `Bearer ${token}`, variables: { id: episode.globalId } };
    const listed = await subscribeWs(url, EPISODE_UPDATED, options);
    const unlisted = await subscribeWs(
      url,
      'subscription { episodeUpdated(id: "x") { id } }',
      options,
    );
    const sneaky = await subscribeWs(url, CREATE_SHOW, {
      ...options,
      variables: { input: { title: "Over the socket" } },
    });
    try {
      expect((await listed.waitForCount(1)).data).toEqual({
        episodeUpdated: { id: episode.globalId, title: "Episode under test" },
      });
      for (const refused of [unlisted, sneaky]) {
        const end = await refused.waitForEnd();
        expect(end.completed).toBe(false);
        expect(JSON.stringify(end.error)).toMatch(
          /Only persisted operations may run on this server \(PODFLOW_PERSISTED_OPERATIONS\)/,
        );
      }
      expect(await shows()).toBe(0);
    } finally {
      for (const stream of [listed, unlisted, sneaky]) stream.close();
    }
  });

  it("refuses to start with a file that is not a JSON object of queries", async () => {
    const bad = path.join(directory, "bad.json");
    await writeFile(bad, JSON.stringify(["query { viewer { id } }"]));
    for (const file of [bad, path.join(directory, "missing.json")]) {
      expect(() => loadConfig({ NODE_ENV: "test", PODFLOW_PERSISTED_OPERATIONS: file })).toThrow(
        /^Invalid PODFLOW_PERSISTED_OPERATIONS: /,
      );
    }
  });
});
