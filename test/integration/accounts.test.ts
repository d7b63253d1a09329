import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { createClient } from "graphql-ws";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import WebSocket from "ws";
import { graphql } from "../support/http.ts";
import { type Scenario, startScenario } from "../support/scenario.ts";

const run = promisify(execFile);
const PODFLOW_BIN = fileURLToPath(new URL("../../bin/podflow.js", import.meta.url));

let scenario: Scenario;
beforeAll(async () => {
  scenario = await startScenario({ env: { PODFLOW_ROLES: "api" } });
});
afterAll(() => scenario.stop());

/** Runs `podflow …` against the scenario's database while its server runs. */
async function podflowCommand(...args: string[]) {
  return run(process.execPath, [PODFLOW_BIN, ...args], {
    env: { ...process.env, DATABASE_URL: scenario.databaseUrl, LOG_LEVEL: "warn" },
  });
}

const viewerQuery = "{ viewer { id email } }";

describe("the podflow command", () => {
  it("creates a user and prints a working token alone on the last line", async () => {
    const { stdout } = await podflowCommand("users", "create", "--email", "Host@Example.com");
    const lines = stdout.trimEnd().split("\n");
    const token = lines.at(-1) ?? "";
    expect(token).toMatch(/^pf_[A-Za-z0-9_-]{43}$/);
    const { body } = await graphql<{ viewer: { email: string } }>(
      scenario.url,
      viewerQuery,
      {},
      {
        authorization: `Bearer ${token}`,
      },
    );
    expect(body.errors).toBeUndefined();
    expect(body.data?.viewer.email).toBe("host@example.com");
  });

  it("refuses a second user with the same email, whatever its case", async () => {
    await podflowCommand("users", "create", "--email", "twice@example.com");
    await expect(
      podflowCommand("users", "create", "--email", "TWICE@example.com"),
    ).rejects.toMatchObject({
      code: 1,
      stderr: expect.stringContaining("exists"),
    });
  });

  it("creates, lists and revokes tokens; a revoked token is refused", async () => {
    await podflowCommand("users", "create", "--email", "tokens@example.com");
    const created = await podflowCommand(
      "tokens",
      "create",
      "--email",
      "tokens@example.com",
      "--name",
      "ci",
    );
    const token = created.stdout.trimEnd().split("\n").at(-1) ?? "";
    const auth = { authorization: `Bearer ${token}` };
    expect((await graphql(scenario.url, viewerQuery, {}, auth)).body.errors).toBeUndefined();

    const listed = await podflowCommand("tokens", "list", "--email", "tokens@example.com");
    const ciLine = listed.stdout.split("\n").find((line) => line.includes("\tci\t")) ?? "";
    const [tokenId, , prefix, , lastUsed, revoked] = ciLine.split("\t");
    expect(prefix).toBe(`${token.slice(0, 10)}…`);
    expect(lastUsed).not.toBe("never");
    expect(revoked).toBe("no");
    expect(listed.stdout).not.toContain(token);

    await podflowCommand("tokens", "revoke", tokenId ?? "");
    const refused = await graphql(scenario.url, viewerQuery, {}, auth);
    expect(refused.body.errors?.[0]?.extensions?.code).toBe("UNAUTHENTICATED");
    const after = await podflowCommand("tokens", "list", "--email", "tokens@example.com");
    expect(after.stdout.split("\n").find((line) => line.startsWith(tokenId ?? "-"))).not.toMatch(
      /\tno$/,
    );
  });

  it("answers a bad command with usage and exit code 2", async () => {
    await expect(podflowCommand("users", "delete")).rejects.toMatchObject({
      code: 2,
      stderr: expect.stringContaining("Usage:"),
    });
  });
});

describe("authentication over HTTP", () => {
  it.each([
    ["no Authorization header", {}],
    ["a malformed header", { authorization: "Token abc" }],
    ["an unknown token", { authorization: "Bearer pf_unknown" }],
  ])("answers %s with UNAUTHENTICATED", async (_case, headers: Record<string, string>) => {
    const { body } = await graphql(scenario.url, viewerQuery, {}, headers);
    expect(body.data).toBeNull();
    expect(body.errors?.[0]?.extensions?.code).toBe("UNAUTHENTICATED");
  });

  it("records when a token was last used", async () => {
    const producer = await scenario.producer();
    const before = await scenario
      .em()
      .execute("select last_used_at from api_tokens where user_id = ?", [producer.userId]);
    expect(before[0]?.last_used_at).toBeNull();
    await producer.gql(viewerQuery);
    const rows = await scenario
      .em()
      .execute("select last_used_at from api_tokens where user_id = ?", [producer.userId]);
    const lastUsed = new Date(String(rows[0]?.last_used_at)).getTime();
    expect(Date.now() - lastUsed).toBeLessThan(60_000);
  });
});

describe("authentication over WebSocket", () => {
  function connect(authorization: string | undefined) {
    const closed = new Promise<number>((resolve) => {
      const client = createClient({
        url: `${scenario.url.replace("http", "ws")}/graphql`,
        webSocketImpl: WebSocket,
        retryAttempts: 0,
        lazy: false,
        // The refusal is what these tests expect; the client would print it as an error.
        onNonLazyError: () => {},
        connectionParams: authorization ? { authorization } : {},
        on: { closed: (event) => resolve((event as { code: number }).code) },
      });
      connections.push(client);
    });
    return { closed, client: connections.at(-1) as ReturnType<typeof createClient> };
  }
  const connections: Array<ReturnType<typeof createClient>> = [];
  afterAll(async () => {
    for (const client of connections) await client.dispose();
  });

  it("refuses a connection without a valid token with close code 4401", async () => {
    expect(await connect(undefined).closed).toBe(4401);
    expect(await connect("Bearer pf_wrong").closed).toBe(4401);
  });

  it("runs operations for a valid token", async () => {
    const producer = await scenario.producer();
    const { client } = connect(`Bearer ${producer.token}`);
    const result = await new Promise<unknown>((resolve, reject) => {
      client.subscribe(
        { query: viewerQuery },
        { next: resolve, error: reject, complete: () => {} },
      );
    });
    expect(result).toEqual({ data: { viewer: { id: producer.userId, email: producer.email } } });
  });
});
