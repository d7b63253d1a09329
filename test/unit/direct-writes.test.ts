import type { AddressInfo } from "node:net";
import {
  type ExecutionArgs,
  GraphQLObjectType,
  GraphQLSchema,
  GraphQLString,
  parse,
  validate,
} from "graphql";
import { createClient } from "graphql-ws";
import { useServer } from "graphql-ws/use/ws";
import { createYoga, type YogaInitialContext } from "graphql-yoga";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import WebSocket, { WebSocketServer } from "ws";
import {
  SharedNextMessages,
  useSharedSubscriptionExecution,
} from "../../src/schema/shared-executions.ts";
import { FeedSubscription } from "../../src/services/feed-subscription.ts";

// Shared results written straight to a graphql-ws socket (takeDirectly) and results that go
// through the subscription's chain of async iterators — graphql-ws's loop, yoga's envelop
// wrappers with error masking, the shared-execution plugin — must reach the client in the order
// they were pushed. This runs that real chain, wired as src/server.ts wires it, with events
// whose results have errors (masked, through the chain), are still executing (a promise,
// through the chain) or are ready (written directly).

interface Event {
  text: string;
}

const streams: Array<FeedSubscription<Event>> = [];

const schema = new GraphQLSchema({
  query: new GraphQLObjectType({ name: "Query", fields: { ok: { type: GraphQLString } } }),
  subscription: new GraphQLObjectType<Event>({
    name: "Subscription",
    fields: {
      changed: {
        type: GraphQLString,
        subscribe: () => {
          const stream = new FeedSubscription<Event>(() => {});
          streams.push(stream);
          return stream;
        },
        resolve: (event) => {
          if (event.text.startsWith("boom")) throw new Error(`secret ${event.text}`);
          if (event.text.startsWith("later")) return Promise.resolve(event.text);
          return event.text;
        },
      },
    },
  }),
});

const writes = { direct: 0 };
const sharedSends = new SharedNextMessages();
const yoga = createYoga({
  schema,
  maskedErrors: true,
  // The resolver's errors are the test's own: not logged.
  logging: false,
  plugins: [
    useSharedSubscriptionExecution({
      viewerOf: () => "alice",
      directWriter: (context) => {
        const { socket, subscriptionId } = context as {
          socket?: WebSocket;
          subscriptionId?: string;
        };
        if (!socket || subscriptionId === undefined) return null;
        const write = sharedSends.writer(socket, subscriptionId);
        return (result) => {
          const written = write(result);
          if (written) writes.direct += 1;
          return written;
        };
      },
    }),
  ],
});

interface EnvelopedRoot {
  execute: (args: ExecutionArgs) => unknown;
  subscribe: (args: ExecutionArgs) => unknown;
}

let wss: WebSocketServer;
let url: string;

beforeAll(async () => {
  wss = new WebSocketServer({ port: 0, host: "127.0.0.1" });
  await new Promise<void>((resolve) => wss.once("listening", resolve));
  url = `ws://127.0.0.1:${(wss.address() as AddressInfo).port}`;
  useServer<Record<string, unknown>, { socket: WebSocket }>(
    {
      onConnect: (ctx) => {
        sharedSends.install(ctx.extra.socket);
        return true;
      },
      execute: (args) => (args.rootValue as EnvelopedRoot).execute(args) as never,
      subscribe: (args) => (args.rootValue as EnvelopedRoot).subscribe(args) as never,
      onNext: (ctx, id, _payload, _args, result) => sharedSends.send(ctx.extra.socket, id, result),
      onSubscribe: async (ctx, id, params) => {
        const enveloped = yoga.getEnveloped({
          ...ctx,
          socket: ctx.extra.socket,
          subscriptionId: id,
          params,
        } as unknown as YogaInitialContext);
        const document = parse(params.query);
        expect(validate(enveloped.schema, document)).toEqual([]);
        return {
          schema: enveloped.schema,
          document,
          contextValue: await enveloped.contextFactory(),
          rootValue: { execute: enveloped.execute, subscribe: enveloped.subscribe },
        };
      },
    },
    wss,
  );
});

afterAll(async () => {
  for (const client of wss.clients) client.terminate();
  await new Promise((resolve) => wss.close(resolve));
});

/** Subscribes and resolves with what arrives, once its stream exists on the server. */
async function subscribe() {
  const client = createClient({ url, webSocketImpl: WebSocket, retryAttempts: 0 });
  const received: Array<{ data?: unknown; errors?: Array<{ message: string }> }> = [];
  let wake: (() => void) | null = null;
  const before = streams.length;
  const unsubscribe = client.subscribe(
    { query: "subscription { changed }" },
    {
      next: (result) => {
        received.push(result as (typeof received)[number]);
        wake?.();
      },
      error: () => {},
      complete: () => {},
    },
  );
  while (streams.length === before) await new Promise((resolve) => setTimeout(resolve, 5));
  const stream = streams[streams.length - 1] as FeedSubscription<Event>;
  const waitFor = async (count: number) => {
    const deadline = Date.now() + 5_000;
    while (received.length < count && Date.now() < deadline) {
      await new Promise<void>((resolve) => {
        wake = resolve;
        setTimeout(resolve, 50);
      });
    }
    return received.map((result) =>
      result.errors
        ? `error: ${result.errors[0]?.message}`
        : (result.data as Event & { changed: string }).changed,
    );
  };
  return { client, stream, waitFor, unsubscribe };
}

/** Lets the server's graphql-ws loop reach its next `next()`. */
const settle = () => new Promise((resolve) => setTimeout(resolve, 20));

describe("shared results written directly to graphql-ws sockets", () => {
  it("reach the client in push order, interleaved with masked errors and pending executions", async () => {
    const { client, stream, waitFor } = await subscribe();
    await settle();
    const directBefore = writes.direct;
    // One turn: the error takes the chain, and everything after it queues behind it.
    for (const text of ["boom 1", "plain 1", "later 1", "plain 2"]) {
      stream.push(text, { text });
    }
    await settle();
    // Turn by turn: ready results are written directly once the chain has caught up.
    for (const text of ["plain 3", "later 2", "plain 4", "boom 2", "plain 5"]) {
      stream.push(text, { text });
      await settle();
    }
    expect(await waitFor(9)).toEqual([
      "error: Unexpected error.",
      "plain 1",
      "later 1",
      "plain 2",
      "plain 3",
      "later 2",
      "plain 4",
      "error: Unexpected error.",
      "plain 5",
    ]);
    // plain 3, 4 and 5 went straight to the socket; the ones queued behind "boom 1" did not.
    expect(writes.direct - directBefore).toBe(3);
    await client.dispose();
  });

  it("writes nothing more once the client completed its subscription", async () => {
    const { client, stream, waitFor, unsubscribe } = await subscribe();
    await settle();
    stream.push("a", { text: "plain before" });
    expect(await waitFor(1)).toEqual(["plain before"]);
    unsubscribe();
    await settle();
    expect(stream.ended).toBe(true);
    const directBefore = writes.direct;
    stream.push("a", { text: "plain after" });
    await settle();
    expect(writes.direct).toBe(directBefore);
    expect(await waitFor(1)).toEqual(["plain before"]);
    await client.dispose();
  });
});
