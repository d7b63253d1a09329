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
  SharedNextMessages,
  sharedPayloadJson,
  useSharedSubscriptionExecution,
} from "../../src/schema/shared-executions.ts";

// A subscription whose resolver shows who it runs for: a result handed to the wrong viewer
// would say so. Every subscriber's stream yields the payload objects the test gives it, as the
// episode feed hands one update object to every follower of a change.

interface Viewer {
  viewer: string | null;
  payloads: object[];
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
  },
});
const schema = new GraphQLSchema({
  query: new GraphQLObjectType({ name: "Query", fields: { ok: { type: GraphQLString } } }),
  subscription: Subscription,
});
const DOCUMENT = parse("subscription($prefix: String) { changed(prefix: $prefix) }");

function sharedSubscribe(onResult?: (context: unknown, result: ExecutionResult) => void) {
  const outcomes: string[] = [];
  const plugin = useSharedSubscriptionExecution({
    viewerOf: (context) => (context as Viewer).viewer,
    onEvent: (outcome) => outcomes.push(outcome),
    onResult,
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
    contextValue: Viewer = { viewer, payloads },
    /** Called with each result as the subscriber's loop takes it (graphql-ws's onNext). */
    onNext: (result: ExecutionResult) => void = () => {},
  ) => {
    const stream = (await run({
      schema,
      document: DOCUMENT,
      variableValues,
      contextValue,
    })) as AsyncIterable<ExecutionResult>;
    const results: ExecutionResult[] = [];
    for await (const result of stream) {
      onNext(result);
      results.push(result);
    }
    return results;
  };
  return { follow, outcomes };
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
});

/** A WebSocket as SharedNextMessages uses it: what was written to it, and whether it is open. */
function fakeSocket() {
  const written: string[] = [];
  const socket = {
    OPEN: 1,
    readyState: 1,
    send: (data: string, callback?: () => void) => {
      written.push(data);
      callback?.();
    },
  };
  return { socket: socket as unknown as WebSocket, written, raw: socket };
}

describe("graphql-ws messages of shared results", () => {
  it("writes each shared result as soon as it exists, once, in order, and tells graphql-ws it went", async () => {
    const messages = new SharedNextMessages();
    const { socket, written } = fakeSocket();
    messages.install(socket);
    const { follow } = sharedSubscribe((context, result) => messages.sendEarly(context, result));
    const context: Viewer = { viewer: "alice", payloads: [{ text: "one" }, { text: "two" }] };
    messages.bind(context, socket, "sub-1");
    const found: Array<unknown> = [];
    const results = await follow("alice", context.payloads, {}, context, (result) => {
      // On the socket before the subscriber's pipeline hands it on.
      expect(written.at(-1)).toContain(JSON.stringify(result.data));
      found.push(messages.sentEarly(context, result));
    });
    expect(written).toEqual(
      results.map(
        (result) => `{"id":"sub-1","type":"next","payload":${sharedPayloadJson(result)}}`,
      ),
    );
    expect(written.map((message) => JSON.parse(message).payload.data.changed)).toEqual([
      "one for alice",
      "two for alice",
    ]);
    // graphql-ws finds each sent, so it sends the marker (which the installed socket drops).
    expect(found).toEqual([{ podflowSharedSent: true }, { podflowSharedSent: true }]);
    expect(messages.sentEarly(context, results[1] as ExecutionResult)).toBeUndefined();
  });

  it("leaves results with errors, unbound operations and closed sockets to graphql-ws's own send", () => {
    const messages = new SharedNextMessages();
    const { socket, written, raw } = fakeSocket();
    messages.install(socket);
    const bound = {};
    messages.bind(bound, socket, "sub-1");
    const failed: ExecutionResult = { data: null, errors: [] };
    (failed.errors as unknown[]).push(new Error("boom"));
    messages.sendEarly(bound, failed);
    messages.sendEarly({}, { data: { changed: "not bound" } });
    expect(written).toEqual([]);
    expect(messages.sentEarly(bound, failed)).toBeUndefined();
    raw.readyState = 3;
    const result: ExecutionResult = { data: { changed: "closed" } };
    messages.sendEarly(bound, result);
    expect(written).toEqual([]);
    expect(messages.sentEarly(bound, result)).toBeUndefined();
  });

  it("checks the socket's send limits before an early write, and writes nothing to a socket they dropped", () => {
    const { socket, written, raw } = fakeSocket();
    const checked: WebSocket[] = [];
    const messages = new SharedNextMessages((checkedSocket) => {
      checked.push(checkedSocket);
      raw.readyState = 3;
    });
    messages.install(socket);
    const bound = {};
    messages.bind(bound, socket, "sub-1");
    const result: ExecutionResult = { data: { changed: "too much buffered" } };
    messages.sendEarly(bound, result);
    expect(checked).toEqual([socket]);
    expect(written).toEqual([]);
    expect(messages.sentEarly(bound, result)).toBeUndefined();
  });
});
