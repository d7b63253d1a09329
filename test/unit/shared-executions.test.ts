import {
  type ExecutionArgs,
  type ExecutionResult,
  GraphQLObjectType,
  GraphQLSchema,
  GraphQLString,
  parse,
} from "graphql";
import { describe, expect, it } from "vitest";
import type { WebSocket } from "ws";
import {
  type SharedExecutionOptions,
  SharedNextMessages,
  useSharedSubscriptionExecution,
} from "../../src/schema/shared-executions.ts";
import { FeedSubscription } from "../../src/services/feed-subscription.ts";

// A subscription whose resolver shows who it runs for: a result handed to the wrong viewer
// would say so. Every subscriber's stream yields the payload objects the test gives it, as the
// episode feed hands one update object to every follower of a change.

interface Viewer {
  viewer: string | null;
  payloads: object[];
  /** For `fed`: the stream the feed pushes this subscriber's events into. */
  stream?: FeedSubscription<{ text: string }>;
  /** Who a direct write goes to (a socket, in Podflow). */
  name?: string;
}

const Subscription = new GraphQLObjectType<{ text: string }, Viewer>({
  name: "Subscription",
  fields: {
    changed: {
      type: GraphQLString,
      args: { prefix: { type: GraphQLString } },
      subscribe: (_root, _args, context: Viewer) =>
        (async function* () {
          yield* context.payloads;
        })(),
      resolve: (payload, args: { prefix?: string }, context) =>
        `${args.prefix ?? ""}${payload.text} for ${context.viewer}`,
    },
    // As the episode feed's subscriptions: the stream is a FeedSubscription, which a transport
    // that can write results itself takes events from at once.
    fed: {
      type: GraphQLString,
      subscribe: (_root, _args, context: Viewer) => context.stream,
      resolve: (payload, _args, context) => {
        if (payload.text === "boom") throw new Error("the resolver failed");
        if (payload.text === "later") return Promise.resolve(`later for ${context.viewer}`);
        return `${payload.text} for ${context.viewer}`;
      },
    },
  },
});
const schema = new GraphQLSchema({
  query: new GraphQLObjectType({ name: "Query", fields: { ok: { type: GraphQLString } } }),
  subscription: Subscription,
});
const DOCUMENT = parse("subscription($prefix: String) { changed(prefix: $prefix) }");

function sharedSubscribe(directWriter?: SharedExecutionOptions["directWriter"]) {
  const outcomes: string[] = [];
  const plugin = useSharedSubscriptionExecution({
    viewerOf: (context) => (context as Viewer).viewer,
    onEvent: (outcome) => outcomes.push(outcome),
    directWriter,
  });
  let subscribe: ((args: ExecutionArgs) => Promise<unknown>) | null = null;
  plugin.onSubscribe?.({
    setSubscribeFn: (fn: (args: ExecutionArgs) => Promise<unknown>) => {
      subscribe = fn;
    },
  } as never);
  if (!subscribe) throw new Error("the plugin did not set a subscribe function");
  const run = subscribe as (args: ExecutionArgs) => Promise<unknown>;
  /** The results one subscriber gets for these payloads. */
  const follow = async (
    viewer: string | null,
    payloads: object[],
    variableValues: Record<string, unknown> = {},
  ) => {
    const stream = (await run({
      schema,
      document: DOCUMENT,
      variableValues,
      contextValue: { viewer, payloads },
    })) as AsyncIterable<ExecutionResult>;
    const results: ExecutionResult[] = [];
    for await (const result of stream) results.push(result);
    return results;
  };
  /**
   * A subscriber of `fed`: its feed stream, and what reached it through the subscription's
   * stream (graphql-ws's way), read as graphql-ws reads it.
   */
  const feed = async (viewer: string | null, name: string) => {
    const stream = new FeedSubscription<{ text: string }>(() => {});
    const events = (await run({
      schema,
      document: FED,
      contextValue: { viewer, payloads: [], stream, name },
    })) as AsyncIterable<ExecutionResult>;
    const streamed: ExecutionResult[] = [];
    const done = (async () => {
      for await (const result of events) streamed.push(result);
    })();
    /** Ends the subscriber's feed stream and waits for its reader to finish. */
    const end = async () => {
      stream.end();
      await done;
    };
    return { stream, streamed, end };
  };
  return { follow, feed, outcomes };
}

const FED = parse("subscription { fed }");

/** Lets every pending promise reaction run. */
const settle = () => new Promise<void>((resolve) => setImmediate(resolve));

/** A transport that writes results itself, recording who got what. */
function recordingWriter() {
  const written: Array<{ to: string; result: ExecutionResult }> = [];
  const writer: SharedExecutionOptions["directWriter"] = (context) => {
    const { name } = context as Viewer;
    return (result) => {
      written.push({ to: name ?? "?", result });
      return true;
    };
  };
  return { written, writer };
}

describe("shared subscription executions", () => {
  it("executes an event once for subscribers with the same viewer, operation and variables", async () => {
    const { follow, outcomes } = sharedSubscribe();
    const change = { text: "changed" };
    const [first, second] = await Promise.all([
      follow("alice", [change]),
      follow("alice", [change]),
    ]);
    expect(first?.[0]?.data).toEqual({ changed: "changed for alice" });
    expect(second?.[0]).toBe(first?.[0]);
    expect(outcomes.sort()).toEqual(["executed", "shared"]);
  });

  it("never hands one viewer's result to another", async () => {
    const { follow, outcomes } = sharedSubscribe();
    const change = { text: "changed" };
    const [alice, bob] = await Promise.all([follow("alice", [change]), follow("bob", [change])]);
    expect(alice?.[0]?.data).toEqual({ changed: "changed for alice" });
    expect(bob?.[0]?.data).toEqual({ changed: "changed for bob" });
    expect(outcomes).toEqual(["executed", "executed"]);
  });

  it("executes again for other variables, a later state, or no viewer", async () => {
    const { follow, outcomes } = sharedSubscribe();
    const change = { text: "changed" };
    const later = { text: "changed again" };
    const results = await Promise.all([
      follow("alice", [change, later]),
      follow("alice", [change], { prefix: "> " }),
      follow(null, [change]),
      follow(null, [change]),
    ]);
    expect(results.map((stream) => stream.map((result) => result.data?.changed))).toEqual([
      ["changed for alice", "changed again for alice"],
      ["> changed for alice"],
      ["changed for null"],
      ["changed for null"],
    ]);
    expect(outcomes).toEqual(["executed", "executed", "executed", "executed", "executed"]);
  });

  it("serialises a shared result once, for server-sent events too", async () => {
    const { follow } = sharedSubscribe();
    const change = { text: "changed" };
    const [[result]] = await Promise.all([follow("alice", [change])]);
    const stringify = (result as ExecutionResult & { stringify?: (value: unknown) => string })
      .stringify;
    expect(stringify?.(result)).toBe(JSON.stringify({ data: { changed: "changed for alice" } }));
    // Not part of the result itself.
    expect(Object.keys(result ?? {})).toEqual(["data"]);
  });

  it("writes a ready, error-free shared result straight to each subscriber's transport", async () => {
    const { written, writer } = recordingWriter();
    const { feed, outcomes } = sharedSubscribe(writer);
    const subscribers = [
      await feed("alice", "alice 1"),
      await feed("alice", "alice 2"),
      await feed("bob", "bob"),
    ];
    await settle();
    const change = { text: "changed" };
    for (const { stream } of subscribers) stream.push("episode", change);
    // In the same turn as the push: no promise between the feed and the write.
    expect(written.map(({ to, result }) => [to, result.data])).toEqual([
      ["alice 1", { fed: "changed for alice" }],
      ["alice 2", { fed: "changed for alice" }],
      ["bob", { fed: "changed for bob" }],
    ]);
    expect(written[1]?.result).toBe(written[0]?.result);
    expect(outcomes).toEqual(["executed", "shared", "executed"]);
    await settle();
    for (const { streamed } of subscribers) expect(streamed).toEqual([]);
    for (const subscriber of subscribers) await subscriber.end();
  });

  it("leaves a result with errors, one still executing, and one without a viewer to the stream", async () => {
    const { written, writer } = recordingWriter();
    const { feed, outcomes } = sharedSubscribe(writer);
    const alice = await feed("alice", "alice");
    const nobody = await feed(null, "nobody");
    await settle();
    const failing = { text: "boom" };
    const pending = { text: "later" };
    const plain = { text: "plain" };
    for (const event of [failing, pending, plain]) {
      alice.stream.push(event.text, event);
      nobody.stream.push(event.text, event);
      await settle();
    }
    // Alice's plain result was written; everything else came through the stream, in order, and
    // each event was executed once for her (the stream found the execution the write began).
    expect(written.map(({ to, result }) => [to, result.data])).toEqual([
      ["alice", { fed: "plain for alice" }],
    ]);
    expect(alice.streamed.map((result) => [result.data, result.errors?.length ?? 0])).toEqual([
      [{ fed: null }, 1],
      [{ fed: "later for alice" }, 0],
    ]);
    expect(nobody.streamed.map((result) => result.data)).toEqual([
      { fed: null },
      { fed: "later for null" },
      { fed: "plain for null" },
    ]);
    expect(outcomes.filter((outcome) => outcome === "shared")).toEqual([]);
    expect(outcomes).toHaveLength(6);
    for (const subscriber of [alice, nobody]) await subscriber.end();
  });

  it("writes a result that finished executing to the subscribers that come after", async () => {
    const { written, writer } = recordingWriter();
    const { feed, outcomes } = sharedSubscribe(writer);
    const first = await feed("alice", "first");
    const second = await feed("alice", "second");
    await settle();
    const pending = { text: "later" };
    first.stream.push("episode", pending);
    await settle();
    second.stream.push("episode", pending);
    expect(first.streamed.map((result) => result.data)).toEqual([{ fed: "later for alice" }]);
    expect(written.map(({ to, result }) => [to, result])).toEqual([["second", first.streamed[0]]]);
    expect(outcomes).toEqual(["executed", "shared"]);
    for (const subscriber of [first, second]) await subscriber.end();
  });

  it("goes through the stream when the transport could not write", async () => {
    const { feed } = sharedSubscribe(() => () => false);
    const alice = await feed("alice", "alice");
    await settle();
    alice.stream.push("episode", { text: "changed" });
    await settle();
    expect(alice.streamed.map((result) => result.data)).toEqual([{ fed: "changed for alice" }]);
    await alice.end();
  });
});

describe("SharedNextMessages", () => {
  /** Enough of a ws socket: its state and what was sent on it. */
  function fakeSocket() {
    const sent: Array<{ data: unknown; options: unknown }> = [];
    const socket = {
      OPEN: 1,
      readyState: 1,
      send: (data: unknown, options?: unknown) => {
        sent.push({ data, options });
      },
    };
    return { socket: socket as unknown as WebSocket, state: socket, sent };
  }

  it("writes graphql-ws's next message, as a text frame, for any subscription id", () => {
    const messages = new SharedNextMessages();
    const { socket, sent } = fakeSocket();
    messages.install(socket);
    const id = 'an "odd" id \\ ü';
    const result = { data: { changed: "changed for alice" } };
    expect(messages.writer(socket, id)(result)).toBe(true);
    expect(sent).toHaveLength(1);
    const [{ data, options }] = sent as [{ data: Buffer; options: unknown }];
    expect(options).toEqual({ binary: false });
    // The same message graphql-ws itself would have sent.
    expect(JSON.parse(data.toString("utf8"))).toEqual({ id, type: "next", payload: result });
  });

  it("writes nothing for a result with errors, a closed socket, or one never installed", () => {
    const messages = new SharedNextMessages();
    const installed = fakeSocket();
    const stranger = fakeSocket();
    messages.install(installed.socket);
    const failed = { errors: [new Error("failed")] } as never;
    expect(messages.writer(installed.socket, "1")(failed)).toBe(false);
    expect(messages.writer(stranger.socket, "1")({ data: { changed: "x" } })).toBe(false);
    installed.state.readyState = 3;
    expect(messages.writer(installed.socket, "1")({ data: { changed: "x" } })).toBe(false);
    expect([...installed.sent, ...stranger.sent]).toEqual([]);
  });
});
