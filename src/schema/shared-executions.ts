/**
 * Shared executions for subscribers. The episode feed hands every follower of one change the
 * same update object (src/services/episode-feed/delivery.ts); without this, each subscriber ran
 * its own GraphQL execution of it and serialised its own copy of the same answer, which made a
 * crowd of dashboards cost one execution each per change.
 *
 * Here a subscription event is executed once per (update object, viewer, document, operation
 * name, variables) and every subscriber with that key is handed the same result, serialised
 * once (sharedPayloadJson). The viewer's user id is part of the key: it is what decides what a
 * resolver may show, so no one is ever handed a result executed for someone else. The update
 * object stands for the state: the feed loads a new one for each change, so a later state never
 * finds an older result. Results live as long as the update object does (a WeakMap).
 *
 * Installed as an envelop plugin, so it applies to graphql-ws and server-sent events alike; the
 * rest of the pipeline (error masking, limits) still runs per subscriber on the shared result.
 */
import {
  createSourceEventStream,
  type DocumentNode,
  type ExecutionArgs,
  type ExecutionResult,
  execute,
  type FormattedExecutionResult,
  print,
} from "graphql";
import type { Plugin } from "graphql-yoga";
import type { WebSocket } from "ws";

export interface SharedExecutionOptions {
  /** Who the operation runs for (what decides visibility); null: never shared. */
  viewerOf: (context: unknown) => string | null;
  /** Called once per event for each subscriber: `executed` ran it, `shared` reused a result. */
  onEvent?: (outcome: "executed" | "shared") => void;
}

type MaybePromise<T> = T | Promise<T>;

export function useSharedSubscriptionExecution(options: SharedExecutionOptions): Plugin {
  const results = new WeakMap<object, Map<string, MaybePromise<ExecutionResult>>>();
  const documentKeys = new WeakMap<DocumentNode, string>();

  const documentKey = (document: DocumentNode) => {
    let key = documentKeys.get(document);
    if (key === undefined) {
      key = print(document);
      documentKeys.set(document, key);
    }
    return key;
  };

  /** The operation executed for this event: once per key, shared by every subscriber with it. */
  function executeEvent(args: ExecutionArgs, key: string | null, payload: unknown) {
    if (key === null || typeof payload !== "object" || payload === null) {
      options.onEvent?.("executed");
      return execute({ ...args, rootValue: payload });
    }
    let byKey = results.get(payload);
    if (!byKey) {
      byKey = new Map();
      results.set(payload, byKey);
    }
    const known = byKey.get(key);
    if (known) {
      options.onEvent?.("shared");
      return known;
    }
    options.onEvent?.("executed");
    const executed = execute({ ...args, rootValue: payload });
    const result =
      executed instanceof Promise ? executed.then(serialisedOnce) : serialisedOnce(executed);
    byKey.set(key, result);
    return result;
  }

  async function subscribe(args: ExecutionArgs) {
    const source = await createSourceEventStream(args);
    if (!isAsyncIterable(source)) return source;
    const viewer = options.viewerOf(args.contextValue);
    const key =
      viewer === null
        ? null
        : JSON.stringify([
            viewer,
            documentKey(args.document),
            args.operationName ?? null,
            args.variableValues ?? null,
          ]);
    return mapEvents(source[Symbol.asyncIterator](), (payload) => executeEvent(args, key, payload));
  }

  return {
    onSubscribe({ setSubscribeFn }) {
      setSubscribeFn(subscribe as never);
    },
  };
}

function isAsyncIterable(value: unknown): value is AsyncIterable<unknown> {
  return typeof value === "object" && value !== null && Symbol.asyncIterator in value;
}

/**
 * Each event of `source` mapped through `map`. A hand-written iterator rather than an async
 * generator: `return()` must reach the source at once (ending the feed's follower) even while a
 * `next()` waits for an event, which a suspended generator would hold back. Promise chains
 * rather than awaits: this runs once per event for every subscriber, and each await was one
 * more turn of the microtask queue for all of them.
 */
function mapEvents<T>(
  source: AsyncIterator<unknown>,
  map: (payload: unknown) => MaybePromise<T>,
): AsyncIterableIterator<T> {
  const done = { value: undefined, done: true } as const;
  const mapped = (event: IteratorResult<unknown>): MaybePromise<IteratorResult<T>> => {
    if (event.done) return done;
    const value = map(event.value);
    return value instanceof Promise
      ? value.then((resolved) => ({ value: resolved, done: false }))
      : { value, done: false };
  };
  return {
    next() {
      return source.next().then(mapped);
    },
    async return() {
      await source.return?.();
      return done;
    },
    async throw(error?: unknown) {
      if (source.throw) await source.throw(error);
      throw error;
    },
    [Symbol.asyncIterator]() {
      return this;
    },
  };
}

/**
 * Gives a shared result the `stringify` graphql-yoga's server-sent events use when a result has
 * one (not enumerable: it is never part of the result itself), so its JSON is made once.
 */
function serialisedOnce(result: ExecutionResult): ExecutionResult {
  Object.defineProperty(result, "stringify", {
    value: (value: unknown) =>
      (value === result ? sharedPayloadJson(result) : null) ?? JSON.stringify(value),
    enumerable: false,
  });
  return result;
}

const payloadJson = new WeakMap<object, string>();

/**
 * The JSON of an event's result, computed once however many subscribers it goes to; null for a
 * result with errors (each transport writes those its own way).
 */
export function sharedPayloadJson(result: ExecutionResult): string | null {
  if (result.errors?.length) return null;
  let json = payloadJson.get(result);
  if (json === undefined) {
    json = JSON.stringify(result);
    payloadJson.set(result, json);
  }
  return json;
}

/** What graphql-ws is told to send instead of a message already sent from the shared JSON. */
const SENT = Object.freeze({ podflowSharedSent: true });
const SENT_SUFFIX = `,"payload":${JSON.stringify(SENT)}}`;

/**
 * graphql-ws "next" messages written from sharedPayloadJson: graphql-ws serialises each
 * message whole (its subscription id is in it), so `send` writes the message itself (the
 * subscription id spliced around the shared JSON) and has graphql-ws send a marker instead,
 * which the socket installed here drops. Results with errors go graphql-ws's own way.
 */
export class SharedNextMessages {
  readonly #installed = new WeakSet<WebSocket>();

  /** Before the socket's first subscription (on connect). */
  install(socket: WebSocket): void {
    if (this.#installed.has(socket)) return;
    this.#installed.add(socket);
    const send = socket.send.bind(socket) as (...args: unknown[]) => void;
    socket.send = ((data: unknown, ...rest: unknown[]) => {
      if (typeof data === "string" && data.endsWith(SENT_SUFFIX)) {
        // Already sent: tell graphql-ws it went (its adapter's promise waits for the callback;
        // called at once, it resolves without another turn of the microtask queue).
        const callback = rest.find((arg) => typeof arg === "function") as
          | ((error?: Error) => void)
          | undefined;
        callback?.();
        return;
      }
      send(data, ...rest);
    }) as WebSocket["send"];
  }

  /** For graphql-ws's onNext: sends `result` for subscription `id`, or returns undefined. */
  send(
    socket: WebSocket,
    id: string,
    result: ExecutionResult,
  ): FormattedExecutionResult | undefined {
    if (!this.#installed.has(socket) || socket.readyState !== socket.OPEN) return undefined;
    const json = sharedPayloadJson(result);
    if (json === null) return undefined;
    socket.send(`{"id":${JSON.stringify(id)},"type":"next","payload":${json}}`);
    return SENT as FormattedExecutionResult;
  }
}
