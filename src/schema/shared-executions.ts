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
 * object stands for the state: the feed makes a new one for each state (read, or with carried
 * task changes applied), and hands the same one again only for the same state, so a later state
 * never finds an older result. Results live as long as the update object does (a WeakMap): the
 * feed's known states keep theirs until the episode is read again, forgotten or evicted.
 *
 * Installed as an envelop plugin, so it applies to graphql-ws and server-sent events alike.
 * Where the transport can write a result itself (`directWriter`: a graphql-ws socket), a shared
 * result that is ready and has no errors is written in the feed's own delivery loop, in the
 * turn the change is delivered: the per-subscriber chain of async iterators (graphql-ws's loop,
 * envelop's wrappers, this plugin's) costs more than the write itself when one change goes to
 * thousands of sockets. Anything else (a result with errors, which error masking must see; one
 * still executing; no viewer) goes through that chain as before.
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
  /**
   * For a subscriber whose transport can be written to directly: writes one shared result
   * (without errors) and says whether it did. Null (or absent): every result goes through the
   * subscription's stream.
   */
  directWriter?: (context: unknown) => ((result: ExecutionResult) => boolean) | null;
}

/** A source that can hand an event over in the turn it happens (FeedSubscription does). */
interface DirectSource {
  takeDirectly(take: (payload: unknown) => boolean): void;
}

/** One event's execution for one key, and whether a subscriber has been counted for it yet. */
interface SharedEntry {
  result: MaybePromise<ExecutionResult>;
  counted: boolean;
}

type MaybePromise<T> = T | Promise<T>;

export function useSharedSubscriptionExecution(options: SharedExecutionOptions): Plugin {
  const results = new WeakMap<object, Map<string, SharedEntry>>();
  const documentKeys = new WeakMap<DocumentNode, string>();

  const documentKey = (document: DocumentNode) => {
    let key = documentKeys.get(document);
    if (key === undefined) {
      key = print(document);
      documentKeys.set(document, key);
    }
    return key;
  };

  /** The event's execution for this key: run by the first subscriber to ask, shared after. */
  function sharedEntry(args: ExecutionArgs, key: string, payload: object): SharedEntry {
    let byKey = results.get(payload);
    if (!byKey) {
      byKey = new Map();
      results.set(payload, byKey);
    }
    const known = byKey.get(key);
    if (known) return known;
    const executed = execute({ ...args, rootValue: payload });
    const entry: SharedEntry = { result: executed, counted: false };
    if (executed instanceof Promise) {
      // Once settled, later subscribers (and direct writes) take the result as it is.
      entry.result = executed.then((result) => {
        entry.result = serialisedOnce(result);
        return entry.result;
      });
    } else {
      entry.result = serialisedOnce(executed);
    }
    byKey.set(key, entry);
    return entry;
  }

  /** Each subscriber handed the event counts once: the first as its execution. */
  function handOver(entry: SharedEntry): MaybePromise<ExecutionResult> {
    options.onEvent?.(entry.counted ? "shared" : "executed");
    entry.counted = true;
    return entry.result;
  }

  /** The operation executed for this event: once per key, shared by every subscriber with it. */
  function executeEvent(args: ExecutionArgs, key: string | null, payload: unknown) {
    if (key === null || typeof payload !== "object" || payload === null) {
      options.onEvent?.("executed");
      return execute({ ...args, rootValue: payload });
    }
    return handOver(sharedEntry(args, key, payload));
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
    const events = source[Symbol.asyncIterator]();
    // Direct writes keep their order only because every iterator between this source and the
    // socket asks for the next event once the previous one went out (graphql-ws's `for await`;
    // envelop's and yoga's wrappers read nothing ahead): a plugin that buffers ahead would break
    // that (test/unit/direct-writes.test.ts runs the real chain).
    const write = key === null ? null : (options.directWriter?.(args.contextValue) ?? null);
    if (key !== null && write && isDirectSource(events)) {
      events.takeDirectly((payload) => {
        if (typeof payload !== "object" || payload === null) return false;
        const entry = sharedEntry(args, key, payload);
        const { result } = entry;
        if (result instanceof Promise || result.errors?.length || !write(result)) return false;
        // Written: from here on nothing may throw (the update would go through next() too).
        handOver(entry);
        return true;
      });
    }
    return mapEvents(events, (payload) => executeEvent(args, key, payload));
  }

  return {
    onSubscribe({ setSubscribeFn }) {
      setSubscribeFn(subscribe as never);
    },
  };
}

function isDirectSource(value: object): value is DirectSource {
  return typeof (value as Partial<DirectSource>).takeDirectly === "function";
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
const payloadBytes = new WeakMap<object, Buffer>();

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

/** sharedPayloadJson as UTF-8, encoded once however many sockets it is written to. */
function sharedPayloadBytes(result: ExecutionResult): Buffer | null {
  let bytes = payloadBytes.get(result);
  if (bytes === undefined) {
    const json = sharedPayloadJson(result);
    if (json === null) return null;
    bytes = Buffer.from(json);
    payloadBytes.set(result, bytes);
  }
  return bytes;
}

/** What graphql-ws is told to send instead of a message already sent from the shared JSON. */
const SENT = Object.freeze({ podflowSharedSent: true });
const SENT_SUFFIX = `,"payload":${JSON.stringify(SENT)}}`;
const MESSAGE_END = Buffer.from("}");

/**
 * graphql-ws "next" messages written from the shared JSON: graphql-ws serialises each message
 * whole (its subscription id is in it), so this writes the message itself, the subscription's
 * own start (`{"id":…,"type":"next","payload":`, encoded once per subscription) and the shared
 * bytes copied into one buffer, sent as a text frame. Through graphql-ws (onNext) it then has
 * graphql-ws send a marker instead, which the socket installed here drops. Results with errors
 * go graphql-ws's own way.
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

  /**
   * Writes a result as subscription `id`'s next message; the writer says false (nothing
   * written) for a socket not installed or not open, or a result with errors.
   */
  writer(socket: WebSocket, id: string): (result: ExecutionResult) => boolean {
    const start = Buffer.from(`{"id":${JSON.stringify(id)},"type":"next","payload":`);
    return (result) => {
      if (!this.#installed.has(socket) || socket.readyState !== socket.OPEN) return false;
      const payload = sharedPayloadBytes(result);
      if (payload === null) return false;
      socket.send(Buffer.concat([start, payload, MESSAGE_END]), { binary: false });
      return true;
    };
  }

  /** For graphql-ws's onNext: sends `result` for subscription `id`, or returns undefined. */
  send(
    socket: WebSocket,
    id: string,
    result: ExecutionResult,
  ): FormattedExecutionResult | undefined {
    return this.writer(socket, id)(result) ? (SENT as FormattedExecutionResult) : undefined;
  }
}
