import { connect } from "node:net";
import { Writable } from "node:stream";
import pino from "pino";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import WebSocket from "ws";
import type { RunningPodflow } from "../../src/app.ts";
import { createUser, issueToken } from "../../src/services/accounts.ts";
import { createTestDatabase } from "../support/database.ts";
import { changeEpisode, insertProcessingEpisode } from "../support/episode-changes.ts";
import { startTestPodflow } from "../support/podflow.ts";
import { type SubscriptionStream, subscribeSse, subscribeWs } from "../support/subscriptions.ts";

// Attacks on Podflow's connections: oversized WebSocket messages before and after
// authentication, too many operations on a socket, too many sockets for a token, a client that
// stops reading, and a request whose headers never end.

let database: Awaited<ReturnType<typeof createTestDatabase>>;
let podflow: RunningPodflow;
let url: string;
const sql: string[] = [];
const warnings: string[] = [];

beforeAll(async () => {
  database = await createTestDatabase();
  podflow = await startTestPodflow({
    databaseUrl: database.url,
    env: {
      PODFLOW_ROLES: "api",
      PODFLOW_WS_MAX_SUBSCRIPTIONS: "5",
      PODFLOW_WS_MAX_SOCKETS_PER_TOKEN: "2",
      PODFLOW_WS_MAX_BUFFERED_BYTES: String(1024 * 1024),
      PODFLOW_SSE_MAX_STREAMS_PER_TOKEN: "2",
      PODFLOW_HTTP_HEADERS_TIMEOUT_SECONDS: "1",
    },
    start: {
      onSqlQuery: (statement) => sql.push(statement),
      logger: pino(
        { level: "warn" },
        new Writable({
          write(chunk, _encoding, done) {
            warnings.push(String(chunk));
            done();
          },
        }),
      ),
    },
  });
  url = podflow.url ?? "";
});
afterAll(async () => {
  await podflow?.stop();
  await database?.drop();
});
beforeEach(() => {
  sql.length = 0;
});

let producers = 0;
async function producer(): Promise<{ userId: string; token: string }> {
  const em = podflow.deps.orm.em.fork();
  producers += 1;
  const user = await createUser(em, `sockets${producers}@example.com`);
  return { userId: user.id, token: (await issueToken(em, user)).secret };
}

/** A graphql-transport-ws socket driven by hand, keeping every message and how it closed. */
function rawSocket() {
  const socket = new WebSocket(`${url.replace(/^http/, "ws")}/graphql`, "graphql-transport-ws");
  const messages: Array<{ type: string; id?: string; payload?: unknown }> = [];
  const wakers = new Set<() => void>();
  socket.on("message", (data) => {
    messages.push(JSON.parse(String(data)));
    for (const wake of [...wakers]) wake();
  });
  const closed = new Promise<{ code: number; reason: string }>((resolve) =>
    socket.on("close", (code, reason) => resolve({ code, reason: String(reason) })),
  );
  const opened = new Promise<void>((resolve, reject) => {
    socket.once("open", () => resolve());
    socket.once("error", reject);
  });
  const waitFor = (predicate: (message: (typeof messages)[number]) => boolean) =>
    new Promise<(typeof messages)[number]>((resolve, reject) => {
      const check = () => {
        const found = messages.find(predicate);
        if (found) {
          wakers.delete(check);
          resolve(found);
        }
      };
      wakers.add(check);
      void closed.then((end) => {
        wakers.delete(check);
        reject(new Error(`closed ${end.code} ${end.reason}; got ${JSON.stringify(messages)}`));
      });
      check();
    });
  const send = (message: unknown) => socket.send(JSON.stringify(message));
  const init = async (token: string) => {
    await opened;
    send({ type: "connection_init", payload: { authorization: `Bearer ${token}` } });
    await waitFor((message) => message.type === "connection_ack");
  };
  return { socket, messages, closed, opened, send, init, waitFor };
}

describe("WebSocket limits", () => {
  it("closes a socket whose first message passes 4 KiB, without looking its token up", async () => {
    const { token } = await producer();
    sql.length = 0;
    const client = rawSocket();
    await client.opened;
    client.send({
      type: "connection_init",
      payload: { authorization: `Bearer ${token}`, padding: "x".repeat(8 * 1024) },
    });
    const end = await client.closed;
    expect(end.code).toBe(1009);
    expect(client.messages).toEqual([]);
    expect(sql.filter((statement) => /api_tokens/.test(statement))).toEqual([]);
  });

  it("closes an authenticated socket whose message passes 64 KiB, and accepts 60 KiB", async () => {
    const { token } = await producer();
    const client = rawSocket();
    await client.init(token);
    const padded = (bytes: number) => `query { viewer { id } } # ${"x".repeat(bytes)}`;
    client.send({ id: "fits", type: "subscribe", payload: { query: padded(60 * 1024) } });
    await client.waitFor((message) => message.id === "fits" && message.type === "complete");
    client.send({ id: "big", type: "subscribe", payload: { query: padded(70 * 1024) } });
    expect((await client.closed).code).toBe(1009);
    expect(client.messages.some((message) => message.id === "big")).toBe(false);
  });

  it("errors the operation past PODFLOW_WS_MAX_SUBSCRIPTIONS, and keeps the socket and the others", async () => {
    const { token, userId } = await producer();
    const episode = await insertProcessingEpisode(podflow.deps, userId);
    const client = rawSocket();
    await client.init(token);
    const subscribe = (id: string) =>
      client.send({
        id,
        type: "subscribe",
        payload: {
          query: "subscription($id: ID!) { episodeUpdated(id: $id) { id title } }",
          variables: { id: episode.globalId },
        },
      });
    for (const id of ["1", "2", "3", "4", "5"]) subscribe(id);
    for (const id of ["1", "2", "3", "4", "5"]) {
      await client.waitFor((message) => message.id === id && message.type === "next");
    }
    subscribe("6");
    const refused = await client.waitFor((message) => message.id === "6");
    expect(refused.type).toBe("error");
    expect(JSON.stringify(refused.payload)).toMatch(
      /At most 5 operations per connection \(PODFLOW_WS_MAX_SUBSCRIPTIONS\)/,
    );
    // Ending one makes room again, on the same socket.
    client.send({ id: "1", type: "complete" });
    subscribe("7");
    expect((await client.waitFor((message) => message.id === "7")).type).toBe("next");
    expect(client.socket.readyState).toBe(WebSocket.OPEN);
    client.socket.close();
  });

  it("closes a token's socket past PODFLOW_WS_MAX_SOCKETS_PER_TOKEN with 4429; others are unaffected", async () => {
    const { token } = await producer();
    const first = rawSocket();
    const second = rawSocket();
    await first.init(token);
    await second.init(token);
    const third = rawSocket();
    await third.opened;
    third.send({ type: "connection_init", payload: { authorization: `Bearer ${token}` } });
    const end = await third.closed;
    expect(end.code).toBe(4429);
    expect(end.reason).toMatch(/PODFLOW_WS_MAX_SOCKETS_PER_TOKEN/);
    const other = rawSocket();
    await other.init((await producer()).token);
    // A closed socket gives its place back.
    first.socket.close();
    await first.closed;
    const again = rawSocket();
    await again.init(token);
    for (const client of [second, other, again]) client.socket.close();
  });

  it("drops a socket whose client stopped reading once PODFLOW_WS_MAX_BUFFERED_BYTES are waiting", {
    timeout: 60_000,
  }, async () => {
    const { token, userId } = await producer();
    const episode = await insertProcessingEpisode(podflow.deps, userId);
    // A long transcript makes every message 4 MiB: five of them outgrow the kernel's buffers.
    await podflow.deps.orm.em
      .fork()
      .execute("update episodes set transcript = ? where id = ?", [
        "word ".repeat(800 * 1024),
        episode.id,
      ]);
    const client = rawSocket();
    await client.init(token);
    client.socket.pause();
    for (const id of ["1", "2", "3", "4", "5"]) {
      client.send({
        id,
        type: "subscribe",
        payload: {
          query: "subscription($id: ID!) { episodeUpdated(id: $id) { id outputs { transcript } } }",
          variables: { id: episode.globalId },
        },
      });
    }
    // The kernel's socket buffers take tens of MiB on loopback; once they are full, unsent
    // messages wait in Podflow. Each change sends the transcript again, until the server gives
    // up on the socket.
    let changes = 0;
    await expect
      .poll(
        async () => {
          const dropped = warnings.some((line) => line.includes("client stopped reading"));
          if (!dropped && changes < 30) {
            changes += 1;
            await changeEpisode(podflow.deps, episode, { title: `Change ${changes}` });
          }
          return dropped;
        },
        { timeout: 30_000, interval: 200 },
      )
      .toBe(true);
    client.socket.resume();
    const end = await client.closed;
    expect(end.code).toBe(1006); // dropped, no closing handshake
    // It never got all it was sent.
    expect(client.messages.filter((message) => message.type === "next").length).toBeLessThan(
      5 * (changes + 1),
    );
  });
});

describe("server-sent event streams", () => {
  it("refuses a token's stream past PODFLOW_SSE_MAX_STREAMS_PER_TOKEN, and gives the place back when one ends", async () => {
    const { token, userId } = await producer();
    const episode = await insertProcessingEpisode(podflow.deps, userId);
    const query = "subscription($id: ID!) { episodeUpdated(id: $id) { id title } }";
    const options = { authorization: `Bearer ${token}`, variables: { id: episode.globalId } };
    const opened: Array<SubscriptionStream<unknown>> = [];
    const open = async () => {
      const stream = await subscribeSse(url, query, options);
      opened.push(stream);
      return (await stream.waitForCount(1)).errors?.[0]?.message ?? null;
    };
    try {
      // A WebSocket subscription of the same token is bounded elsewhere, not counted here.
      const ws = await subscribeWs(url, query, options);
      opened.push(ws);
      await ws.waitForCount(1);
      expect(await open()).toBeNull();
      expect(await open()).toBeNull();
      expect(await open()).toMatch(
        /At most 2 event streams per token \(PODFLOW_SSE_MAX_STREAMS_PER_TOKEN\)/,
      );
      // Another producer is not affected.
      const other = await producer();
      const theirs = await insertProcessingEpisode(podflow.deps, other.userId);
      const stream = await subscribeSse(url, query, {
        authorization: `Bearer ${other.token}`,
        variables: { id: theirs.globalId },
      });
      opened.push(stream);
      expect((await stream.waitForCount(1)).errors).toBeUndefined();
      // The client leaves one stream: the server sees it end, and a new one is accepted.
      opened[1]?.close();
      await expect.poll(open, { timeout: 10_000, interval: 100 }).toBeNull();
    } finally {
      for (const stream of opened) stream.close();
    }
  });
});

describe("HTTP timeouts", () => {
  it("closes a connection whose headers do not arrive within PODFLOW_HTTP_HEADERS_TIMEOUT_SECONDS", async () => {
    const { port } = new URL(url);
    const socket = connect(Number(port), "127.0.0.1");
    let answer = "";
    socket.on("data", (chunk) => {
      answer += chunk;
    });
    await new Promise<void>((resolve) => socket.once("connect", () => resolve()));
    socket.write("GET /healthz HTTP/1.1\r\nHost: podflow\r\n");
    await new Promise<void>((resolve) => socket.once("close", () => resolve()));
    expect(answer).toMatch(/^HTTP\/1\.1 408/);
  });
});
