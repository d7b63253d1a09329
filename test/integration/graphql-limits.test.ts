import { request as httpRequest } from "node:http";
import { encodeGlobalID } from "@pothos/plugin-relay";
import { createClient } from "graphql-ws";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import WebSocket from "ws";
import type { RunningPodflow } from "../../src/app.ts";
import { Episode } from "../../src/entities/episode.entity.ts";
import { createUser, issueToken } from "../../src/services/accounts.ts";
import { createTestDatabase } from "../support/database.ts";
import { graphql } from "../support/http.ts";
import { startTestPodflow } from "../support/podflow.ts";

// Attacks on the GraphQL endpoint of a running Podflow, over HTTP and graphql-ws: each is refused
// with an error naming the limit, before any resolver runs (no SQL, nothing created).

let database: Awaited<ReturnType<typeof createTestDatabase>>;
let podflow: RunningPodflow;
let url: string;
let token: string;
const sql: string[] = [];

beforeAll(async () => {
  database = await createTestDatabase();
  podflow = await startTestPodflow({
    databaseUrl: database.url,
    env: { PODFLOW_ROLES: "api" },
    start: { onSqlQuery: (statement) => sql.push(statement) },
  });
  url = podflow.url ?? "";
  const em = podflow.deps.orm.em.fork();
  const user = await createUser(em, "limits@example.com");
  token = (await issueToken(em, user)).secret;
});
afterAll(async () => {
  await podflow?.stop();
  await database?.drop();
});
beforeEach(() => {
  sql.length = 0;
});

const auth = () => ({ authorization: `Bearer ${token}` });
const aliases = (count: number, field: string) =>
  Array.from({ length: count }, (_, index) => `a${index}: ${field}`).join(" ");
const episodeCount = () => podflow.deps.orm.em.fork().count(Episode, {});

/** The refusal of `query`: its first error's message, after checking nothing was executed. */
async function refused(
  query: string,
  variables?: Record<string, unknown>,
  headers: Record<string, string> = auth(),
): Promise<string> {
  const before = sql.length;
  const { body } = await graphql(url, query, variables, headers);
  expect(body.data ?? null).toBeNull();
  expect(body.errors?.length).toBeGreaterThan(0);
  // The token's own lookup is the one statement allowed: no resolver ran.
  const statements = sql.slice(before).filter((statement) => !/api_tokens/.test(statement));
  expect(statements).toEqual([]);
  return body.errors?.[0]?.message ?? "";
}

describe("GraphQL limits", () => {
  it("refuses 5,000 aliased `health` fields without a token, and touches no database", async () => {
    // 5,000 aliases are a body over 64 KiB; 700 fit, but are more tokens than a document may
    // have: the parser stops at the 2,001st.
    const flood = `{ ${aliases(5_000, "health { ready }")} }`;
    expect(await refused(flood, undefined, {})).toBe("Request body too large");
    expect(await refused(`{ ${aliases(700, "health { ready }")} }`, undefined, {})).toMatch(
      /Token limit of 2000 exceeded \(PODFLOW_GRAPHQL_MAX_TOKENS\)/,
    );
  });

  it("refuses more aliases than PODFLOW_GRAPHQL_MAX_ALIASES, and accepts the limit", async () => {
    expect(await refused(`{ ${aliases(16, "viewer { id }")} }`)).toMatch(
      /Aliases limit of 15 exceeded \(PODFLOW_GRAPHQL_MAX_ALIASES\)/,
    );
    const { body } = await graphql(url, `{ ${aliases(15, "viewer { id }")} }`, {}, auth());
    expect(body.errors).toBeUndefined();
  });

  it("refuses an aliased mutation flood before creating anything", async () => {
    const prepare = `prepareUpload(input: { filename: "a.mp3", title: "A", filesize: 10 }) { __typename }`;
    const before = await episodeCount();
    expect(await refused(`mutation { ${aliases(40, prepare)} }`)).toMatch(/Aliases limit/);
    expect(await episodeCount()).toBe(before);
  });

  it("refuses documents deeper than PODFLOW_GRAPHQL_MAX_DEPTH, fragments included", async () => {
    // Podflow's deepest real selection is 6 levels; nesting `viewer` through fragments that
    // select themselves is what an attacker would try (a cycle is refused by graphql-js too).
    const nest = (levels: number) => `${"{ viewer ".repeat(levels)}{ id }${" }".repeat(levels)}`;
    const before = sql.length;
    const { body } = await graphql(url, `query ${nest(11)}`, {}, auth());
    const messages = (body.errors ?? []).map((error) => error.message);
    expect(
      messages.some((message) =>
        /Query depth limit of 10 exceeded \(PODFLOW_GRAPHQL_MAX_DEPTH\)/.test(message),
      ),
    ).toBe(true);
    expect(body.data ?? null).toBeNull();
    expect(sql.slice(before).filter((s) => !/api_tokens/.test(s))).toEqual([]);
    const deepest = `{ episodes(first: 1) { edges { node { outputs { transcriptSegments { text } } } } } }`;
    expect((await graphql(url, deepest, {}, auth())).body.errors).toBeUndefined();
  });

  it("refuses a NUL character in the document's own strings, each time it is sent", async () => {
    const withNul = `{ episodes(first: 1, after: "a\\u0000b") { edges { cursor } } }`;
    for (let attempt = 0; attempt < 2; attempt += 1) {
      expect(await refused(withNul)).toBe("Text may not contain NUL characters (\\u0000)");
    }
    // The same place without one reaches the resolver, which judges the cursor itself.
    const { body } = await graphql(
      url,
      `{ episodes(first: 1, after: "ab") { edges { cursor } } }`,
      {},
      auth(),
    );
    expect(body.errors?.[0]?.message).toMatch(/not a cursor/);
  });

  it("refuses more directives than PODFLOW_GRAPHQL_MAX_DIRECTIVES", async () => {
    expect(await refused(`{ viewer ${"@include(if: true) ".repeat(21)} { id } }`)).toMatch(
      /Directives limit of 20 exceeded \(PODFLOW_GRAPHQL_MAX_DIRECTIVES\)/,
    );
  });

  it("weighs lists by `first`, with the request's variables, and names PODFLOW_GRAPHQL_MAX_COST", async () => {
    const page = `query($first: Int) { episodes(first: $first) { edges { node {
      id title status tasks { id type status progress } outputs { transcript transcriptSegments { start end text } }
    } } } }`;
    const small = await graphql(url, page, { first: 2 }, auth());
    expect(small.body.errors).toBeUndefined();
    // The same document, so the cached validation cannot wave it through: now 100 per page.
    const message = await refused(page, { first: 100 });
    expect(message).toMatch(
      /Query cost \d+ exceeds the limit of 10000 \(PODFLOW_GRAPHQL_MAX_COST\)/,
    );
    // Costs are kept per document and variables: each answer stays the one its variables get.
    expect((await graphql(url, page, { first: 2 }, auth())).body.errors).toBeUndefined();
    expect(await refused(page, { first: 100 })).toBe(message);
  });

  it("refuses 2,000 aliases of `episodes(first: 100)` (aliases first, then cost)", async () => {
    const page = "episodes(first: 100) { edges { node { id title status tasks { id status } } } }";
    expect(await refused(`{ ${aliases(2_000, page)} }`)).toBe("Request body too large");
    expect(await refused(`{ ${aliases(100, page)} }`)).toMatch(/Token limit/);
    expect(await refused(`{ ${aliases(15, page)} }`)).toMatch(/PODFLOW_GRAPHQL_MAX_COST/);
  });

  it("takes at most 100 ids in `nodes(ids:)`", async () => {
    const ids = (count: number) =>
      Array.from({ length: count }, (_, index) =>
        encodeGlobalID("Episode", `00000000-0000-4000-8000-${String(index).padStart(12, "0")}`),
      );
    const query = "query($ids: [ID!]!) { nodes(ids: $ids) { id } }";
    expect(await refused(query, { ids: ids(101) })).toMatch(
      /`nodes` takes at most 100 ids \(got 101; PODFLOW_GRAPHQL_MAX_NODE_IDS\)/,
    );
    const { body } = await graphql<{ nodes: unknown[] }>(url, query, { ids: ids(100) }, auth());
    expect(body.errors).toBeUndefined();
    expect(body.data?.nodes).toHaveLength(100);
  });

  it("refuses a body over 64 KiB with 413 before parsing it", async () => {
    const before = sql.length;
    const response = await fetch(`${url}/graphql`, {
      method: "POST",
      headers: { "content-type": "application/json", ...auth() },
      body: JSON.stringify({ query: `{ viewer { id } } # ${"x".repeat(70 * 1024)}` }),
    });
    expect(response.status).toBe(413);
    await response.arrayBuffer();
    expect(sql.slice(before)).toEqual([]);
  });

  // Without Content-Length (chunked), the body is counted as it arrives instead.
  it("refuses a chunked body over 64 KiB with 413 before parsing it, and takes one within", async () => {
    const post = (text: string) =>
      new Promise<{ status: number; body: string }>((resolve, reject) => {
        const request = httpRequest(`${url}/graphql`, {
          method: "POST",
          headers: { "content-type": "application/json", ...auth() },
        });
        request.on("error", reject);
        request.on("response", (response) => {
          let body = "";
          response.on("data", (chunk: Buffer) => (body += chunk.toString("utf8")));
          response.on("end", () => resolve({ status: response.statusCode ?? 0, body }));
        });
        // Several writes, no Content-Length: Node sends them chunked.
        for (let start = 0; start < text.length; start += 8 * 1024) {
          request.write(text.slice(start, start + 8 * 1024));
        }
        request.end();
      });
    const before = sql.length;
    const big = await post(
      JSON.stringify({ query: `{ viewer { id } } # ${"x".repeat(70 * 1024)}` }),
    );
    expect(big.status).toBe(413);
    expect(sql.slice(before)).toEqual([]);
    const small = await post(
      JSON.stringify({ query: `{ viewer { id } } # ${"x".repeat(20 * 1024)}` }),
    );
    expect(small.status).toBe(200);
    expect(JSON.parse(small.body).data.viewer.id).toEqual(expect.any(String));
  });

  it("answers `health` from a recent check: fifteen aliases, repeated, cost one database check", async () => {
    const query = `{ ${aliases(15, "health { ready }")} }`;
    const selects = () => sql.filter((statement) => /select 1\b/.test(statement)).length;
    const first = await graphql<Record<string, { ready: boolean }>>(url, query);
    const second = await graphql<Record<string, { ready: boolean }>>(url, query);
    expect(first.body.data?.a0?.ready).toBe(true);
    expect(second.body.data?.a14?.ready).toBe(true);
    // The cache lives a second; a slow machine may straddle it once, never fifteen times.
    expect(selects()).toBeGreaterThanOrEqual(1);
    expect(selects()).toBeLessThanOrEqual(2);
  });

  it("errors one subscription over graphql-ws for a limit, and the same socket serves the next", async () => {
    const client = createClient({
      url: `${url.replace(/^http/, "ws")}/graphql`,
      webSocketImpl: WebSocket,
      connectionParams: auth(),
      retryAttempts: 0,
      lazy: false,
    });
    let closed: number | undefined;
    let connections = 0;
    client.on("closed", (event) => {
      closed = (event as { code?: number }).code;
    });
    client.on("connected", () => {
      connections += 1;
    });
    const run = (query: string) =>
      new Promise<{ data?: unknown; errors?: unknown }>((resolve) => {
        const results: unknown[] = [];
        client.subscribe(
          { query },
          {
            next: (result) => results.push(result),
            error: (errors) => resolve({ errors }),
            complete: () => resolve({ data: results }),
          },
        );
      });
    try {
      const tooMany = await run(`subscription { ${aliases(16, "myEpisodesUpdated { id }")} }`);
      expect(JSON.stringify(tooMany.errors)).toMatch(
        /Aliases limit of 15 exceeded \(PODFLOW_GRAPHQL_MAX_ALIASES\)/,
      );
      const tooLong = await run(`subscription { myEpisodesUpdated { ${"id ".repeat(2_001)} } }`);
      expect(JSON.stringify(tooLong.errors)).toMatch(
        /Token limit of 2000 exceeded \(PODFLOW_GRAPHQL_MAX_TOKENS\)/,
      );
      const costly = await run(
        "{ episodes(first: 100) { edges { node { outputs { transcriptSegments { text } } } } } }",
      );
      expect(JSON.stringify(costly.errors ?? costly.data)).toMatch(/PODFLOW_GRAPHQL_MAX_COST/);
      const fine = await run("{ viewer { email } }");
      expect(JSON.stringify(fine.data)).toContain("limits@example.com");
      expect(closed).toBeUndefined();
      expect(connections).toBe(1);
    } finally {
      await client.dispose();
    }
  });
});
