import {
  type ExecutionArgs,
  type ExecutionResult,
  GraphQLObjectType,
  GraphQLSchema,
  GraphQLString,
  parse,
} from "graphql";
import { describe, expect, it } from "vitest";
import { useSharedSubscriptionExecution } from "../../src/schema/shared-executions.ts";

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

function sharedSubscribe() {
  const outcomes: string[] = [];
  const plugin = useSharedSubscriptionExecution({
    viewerOf: (context) => (context as Viewer).viewer,
    onEvent: (outcome) => outcomes.push(outcome),
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
