import { createClient } from "graphql-ws";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import WebSocket from "ws";
import type { RunningPodflow } from "../../src/app.ts";
import { createUser, issueToken } from "../../src/services/accounts.ts";
import { createTestDatabase } from "../support/database.ts";
import { changeEpisode, insertProcessingEpisode } from "../support/episode-changes.ts";
import { startTestPodflow } from "../support/podflow.ts";
import { type SubscriptionStream, subscribeSse } from "../support/subscriptions.ts";

// Attacks on Podflow's per-address caps, and on its stream lifetime and idle limits:
// - behind one trusted proxy (PODFLOW_TRUST_PROXY=1), a client address (the proxy's
//   X-Forwarded-For entry) holds at most N sockets and N event streams, authenticated or not;
// - without a trusted proxy, X-Forwarded-For is not believed, so a client cannot spread itself
//   over made-up addresses;
// - a socket with nothing running is closed as idle; sockets and event streams end at their
//   lifetime with a close code / last message that clients reconnect on.

let database: Awaited<ReturnType<typeof createTestDatabase>>;
/** Behind one trusted proxy; 2 sockets and 2 streams per address. */
let proxied: RunningPodflow;
/** Reached directly; 3 sockets per address; sockets live 3.6–4 s, idle ones 1 s. */
let direct: RunningPodflow;
const sql: string[] = [];

beforeAll(async () => {
  database = await createTestDatabase();
  // One after the other: the first makes the installation's secrets.
  proxied = await startTestPodflow({
    databaseUrl: database.url,
    env: {
      PODFLOW_ROLES: "api",
      PODFLOW_TRUST_PROXY: "1",
      PODFLOW_WS_MAX_SOCKETS_PER_ADDRESS: "2",
      PODFLOW_SSE_MAX_STREAMS_PER_ADDRESS: "2",
    },
    start: { onSqlQuery: (statement) => sql.push(statement) },
  });
  direct = await startTestPodflow({
    databaseUrl: database.url,
    env: {
      PODFLOW_ROLES: "api",
      PODFLOW_WS_MAX_SOCKETS_PER_ADDRESS: "3",
      PODFLOW_STREAM_MAX_SECONDS: "4",
      PODFLOW_STREAM_IDLE_SECONDS: "1",
    },
  });
});
afterAll(async () => {
  await Promise.all([proxied?.stop(), direct?.stop()]);
  await database?.drop();
});

let producers = 0;
async function producer(): Promise<{ userId: string; token: string }> {
  const em = proxied.deps.orm.em.fork();
  producers += 1;
  const user = await createUser(em, `streams${producers}@example.com`);
  return { userId: user.id, token: (await issueToken(em, user)).secret };
}

const wsUrl = (podflow: RunningPodflow) => `${podflow.url?.replace(/^http/, "ws")}/graphql`;

/** A graphql-transport-ws socket driven by hand, sent from `forwardedFor` when given. */
function rawSocket(podflow: RunningPodflow, forwardedFor?: string) {
  const socket = new WebSocket(wsUrl(podflow), "graphql-transport-ws", {
    headers: forwardedFor ? { "x-forwarded-for": forwardedFor } : {},
  });
  const messages: Array<{ type: string; id?: string; payload?: unknown }> = [];
  socket.on("message", (data) => messages.push(JSON.parse(String(data))));
  const closed = new Promise<{ code: number; reason: string; at: number }>((resolve) =>
    socket.on("close", (code, reason) => resolve({ code, reason: String(reason), at: Date.now() })),
  );
  const opened = new Promise<void>((resolve, reject) => {
    socket.once("open", () => resolve());
    socket.once("error", reject);
  });
  const send = (message: unknown) => socket.send(JSON.stringify(message));
  const init = async (token: string) => {
    await opened;
    send({ type: "connection_init", payload: { authorization: `Bearer ${token}` } });
    await expect
      .poll(() => messages.some((message) => message.type === "connection_ack"), {
        timeout: 5_000,
        interval: 20,
      })
      .toBe(true);
  };
  return { socket, messages, closed, opened, send, init };
}

const EPISODE_UPDATED = "subscription($id: ID!) { episodeUpdated(id: $id) { id title } }";

describe("per-address caps behind a trusted proxy", () => {
  it("closes an address's socket past PODFLOW_WS_MAX_SOCKETS_PER_ADDRESS with 4429 before reading it; other addresses go on", async () => {
    const { token } = await producer();
    // Two sockets that never authenticate hold the address's places.
    const first = rawSocket(proxied, "198.51.100.1, 203.0.113.7");
    const second = rawSocket(proxied, "203.0.113.7");
    await Promise.all([first.opened, second.opened]);
    sql.length = 0;
    // Whatever the client itself puts in front, the proxy's entry is the address.
    const third = rawSocket(proxied, "192.0.2.99, 203.0.113.7");
    await third.opened.catch(() => {});
    third.send({ type: "connection_init", payload: { authorization: `Bearer ${token}` } });
    const end = await third.closed;
    expect(end.code).toBe(4429);
    expect(end.reason).toMatch(/PODFLOW_WS_MAX_SOCKETS_PER_ADDRESS=2/);
    expect(third.messages).toEqual([]);
    expect(sql.filter((statement) => /api_tokens/.test(statement))).toEqual([]);
    // The first two are untouched, and another address is let in.
    expect([first.socket.readyState, second.socket.readyState]).toEqual([
      WebSocket.OPEN,
      WebSocket.OPEN,
    ]);
    const other = rawSocket(proxied, "203.0.113.8");
    await other.init(token);
    // A closed socket gives its place back.
    first.socket.close();
    await first.closed;
    const again = rawSocket(proxied, "203.0.113.7");
    await again.init(token);
    for (const client of [second, other, again]) client.socket.close();
  });

  it("refuses an address's event stream past PODFLOW_SSE_MAX_STREAMS_PER_ADDRESS, whatever its tokens", async () => {
    const opened: Array<SubscriptionStream<unknown>> = [];
    const open = async (address: string) => {
      // A new producer each time: the per-token cap is not what refuses.
      const { token, userId } = await producer();
      const episode = await insertProcessingEpisode(proxied.deps, userId);
      const stream = await subscribeSse(proxied.url ?? "", EPISODE_UPDATED, {
        authorization: `Bearer ${token}`,
        variables: { id: episode.globalId },
        headers: { "x-forwarded-for": address },
      });
      opened.push(stream);
      const first = await stream.waitForCount(1);
      return { stream, error: first.errors?.[0] ?? null };
    };
    try {
      expect((await open("203.0.113.20")).error).toBeNull();
      expect((await open("203.0.113.20")).error).toBeNull();
      const refused = await open("10.9.9.9, 203.0.113.20");
      expect(refused.error?.message).toMatch(
        /At most 2 event streams per client address \(PODFLOW_SSE_MAX_STREAMS_PER_ADDRESS\)/,
      );
      expect(refused.error?.extensions?.code).toBe("LIMIT_EXCEEDED");
      expect((await refused.stream.waitForEnd()).completed).toBe(true);
      expect((await open("203.0.113.21")).error).toBeNull();
      // One of the address's streams ends: the next is accepted.
      opened[0]?.close();
      await expect
        .poll(async () => (await open("203.0.113.20")).error, { timeout: 10_000, interval: 100 })
        .toBeNull();
    } finally {
      for (const stream of opened) stream.close();
    }
  });
});

describe("without a trusted proxy", () => {
  it("ignores X-Forwarded-For: made-up addresses do not get past PODFLOW_WS_MAX_SOCKETS_PER_ADDRESS", async () => {
    const sockets = ["198.51.100.1", "198.51.100.2", "198.51.100.3", "198.51.100.4"].map(
      (address) => rawSocket(direct, address),
    );
    const ends = await Promise.all(
      sockets.map((client) =>
        Promise.race([client.closed, client.opened.then(() => null)]).catch(() => null),
      ),
    );
    // All four come from 127.0.0.1: three are open, the fourth was closed with 4429.
    const refused = await sockets[3]?.closed;
    expect(ends.slice(0, 3)).toEqual([null, null, null]);
    expect(refused?.code).toBe(4429);
    for (const client of sockets) client.socket.close();
    await Promise.all(sockets.map((client) => client.closed));
  });
});

describe("stream lifetime and idle limits", () => {
  it("closes an acknowledged socket with nothing running after PODFLOW_STREAM_IDLE_SECONDS with 1000", async () => {
    const { token } = await producer();
    const client = rawSocket(direct);
    await client.init(token);
    // A query runs and ends: the socket is idle from then on.
    client.send({ id: "q", type: "subscribe", payload: { query: "{ viewer { id } }" } });
    const acknowledgedAt = Date.now();
    const end = await client.closed;
    expect(end.code).toBe(1000);
    expect(end.reason).toMatch(/PODFLOW_STREAM_IDLE_SECONDS/);
    expect(end.at - acknowledgedAt).toBeGreaterThanOrEqual(500);
    expect(client.messages.some((message) => message.id === "q" && message.type === "next")).toBe(
      true,
    );
  });

  it("keeps a socket with a subscription past the idle limit, closes it at PODFLOW_STREAM_MAX_SECONDS with 4410, and graphql-ws reconnects", {
    timeout: 20_000,
  }, async () => {
    const { token, userId } = await producer();
    const episode = await insertProcessingEpisode(direct.deps, userId);
    const closes: Array<{ code: number; reason: string }> = [];
    let connections = 0;
    const titles: string[] = [];
    const client = createClient({
      url: wsUrl(direct),
      webSocketImpl: WebSocket,
      connectionParams: { authorization: `Bearer ${token}` },
      retryAttempts: 5,
      retryWait: () => new Promise((resolve) => setTimeout(resolve, 50)),
      shouldRetry: () => true,
      on: {
        connected: () => {
          connections += 1;
        },
        closed: (event) => {
          const { code, reason } = event as { code: number; reason: string };
          closes.push({ code, reason: String(reason) });
        },
      },
    });
    try {
      const unsubscribe = client.subscribe<{ episodeUpdated: { title: string } }>(
        { query: EPISODE_UPDATED, variables: { id: episode.globalId } },
        {
          next: (result) => {
            if (result.data) titles.push(result.data.episodeUpdated.title);
          },
          error: () => {},
          complete: () => {},
        },
      );
      await expect.poll(() => titles.length, { timeout: 5_000 }).toBe(1);
      // Past the 1 s idle limit, the socket with a subscription is kept...
      await new Promise((resolve) => setTimeout(resolve, 1_800));
      expect(closes).toEqual([]);
      // ...until its 4 s lifetime; the client reconnects and subscribes again by itself.
      await expect.poll(() => closes.length, { timeout: 5_000 }).toBe(1);
      expect(closes[0]?.code).toBe(4410);
      expect(closes[0]?.reason).toMatch(/PODFLOW_STREAM_MAX_SECONDS/);
      await expect.poll(() => connections, { timeout: 5_000 }).toBe(2);
      await expect.poll(() => titles.length, { timeout: 5_000 }).toBe(2);
      await changeEpisode(direct.deps, episode, { title: "After the reconnect" });
      await expect.poll(() => titles.at(-1), { timeout: 5_000 }).toBe("After the reconnect");
      unsubscribe();
    } finally {
      await client.dispose();
    }
  });

  it("ends an event stream at PODFLOW_STREAM_MAX_SECONDS with a last STREAM_EXPIRED error", {
    timeout: 20_000,
  }, async () => {
    const { token, userId } = await producer();
    const episode = await insertProcessingEpisode(direct.deps, userId);
    const started = Date.now();
    const stream = await subscribeSse(direct.url ?? "", EPISODE_UPDATED, {
      authorization: `Bearer ${token}`,
      variables: { id: episode.globalId },
    });
    await stream.waitForCount(1);
    const end = await stream.waitForEnd(10_000);
    expect(end.completed).toBe(true);
    // 4 s less up to 10 %.
    expect(Date.now() - started).toBeGreaterThanOrEqual(3_500);
    const last = stream.messages.at(-1);
    expect(last?.errors?.[0]?.message).toMatch(/PODFLOW_STREAM_MAX_SECONDS.*subscribe again/);
    expect(last?.errors?.[0]?.extensions?.code).toBe("STREAM_EXPIRED");
    // The episode's data came first, untouched by the end.
    expect(stream.messages[0]?.data).toEqual({
      episodeUpdated: { id: episode.globalId, title: "Episode under test" },
    });
  });
});
