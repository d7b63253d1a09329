import { createClient } from "graphql-ws";
import { expect } from "vitest";
import WebSocket from "ws";
import type { RunningPodflow } from "../../src/app.ts";

/** One GraphQL result as a subscriber receives it. */
export interface SubscriptionMessage<T> {
  data?: T | null;
  errors?: Array<{ message: string; extensions?: Record<string, unknown> }>;
  /** When it arrived (performance.timeOrigin + performance.now(), in ms). */
  receivedAt: number;
}

/** How a subscription ended: completed by the server, or its connection closed. */
export interface SubscriptionEnd {
  completed: boolean;
  /** The WebSocket close code, when the socket closed. */
  closeCode?: number;
  error?: unknown;
}

/**
 * A subscription a test holds open: every message it received, in order, and ways to wait on
 * them. Waiting is on events, with a timeout that fails the test with what did arrive.
 */
export class SubscriptionStream<T> {
  readonly messages: Array<SubscriptionMessage<T>> = [];
  readonly #wakers = new Set<() => void>();
  #end: SubscriptionEnd | null = null;
  readonly #close: () => void;
  readonly ended: Promise<SubscriptionEnd>;
  #resolveEnded!: (end: SubscriptionEnd) => void;

  constructor(close: () => void) {
    this.#close = close;
    this.ended = new Promise((resolve) => {
      this.#resolveEnded = resolve;
    });
  }

  get end(): SubscriptionEnd | null {
    return this.#end;
  }

  /** The data of every message so far (errors left out). */
  get data(): T[] {
    return this.messages.flatMap((message) => (message.data ? [message.data] : []));
  }

  receive(message: Omit<SubscriptionMessage<T>, "receivedAt">): void {
    this.messages.push({ ...message, receivedAt: performance.timeOrigin + performance.now() });
    this.#wake();
  }

  finish(end: SubscriptionEnd): void {
    if (this.#end) return;
    this.#end = end;
    this.#resolveEnded(end);
    this.#wake();
  }

  #wake(): void {
    for (const wake of [...this.#wakers]) wake();
  }

  /**
   * Resolves with the first message at index `from` or later that matches; rejects when the
   * subscription ends or `timeoutMs` passes first.
   */
  waitFor(
    predicate: (message: SubscriptionMessage<T>) => boolean,
    options: { from?: number; timeoutMs?: number } = {},
  ): Promise<SubscriptionMessage<T>> {
    const { from = 0, timeoutMs = 10_000 } = options;
    return new Promise((resolve, reject) => {
      const check = () => {
        const found = this.messages.slice(from).find(predicate);
        if (found) {
          done();
          resolve(found);
        } else if (this.#end) {
          done();
          reject(
            new Error(
              `the subscription ended (${JSON.stringify(this.#end)}) first; got ${this.#describe()}`,
            ),
          );
        }
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`no matching message within ${timeoutMs} ms; got ${this.#describe()}`));
      }, timeoutMs);
      const done = () => {
        clearTimeout(timer);
        this.#wakers.delete(check);
      };
      this.#wakers.add(check);
      check();
    });
  }

  /** Resolves once `count` messages have arrived in all. */
  waitForCount(count: number, timeoutMs?: number): Promise<SubscriptionMessage<T>> {
    return this.waitFor((message) => this.messages.indexOf(message) === count - 1, {
      timeoutMs,
    });
  }

  /** Resolves with how it ended; rejects when it is still open after `timeoutMs`. */
  waitForEnd(timeoutMs = 10_000): Promise<SubscriptionEnd> {
    let timer: NodeJS.Timeout | undefined;
    return Promise.race([
      this.ended.finally(() => clearTimeout(timer)),
      new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new Error(`still open after ${timeoutMs} ms; got ${this.#describe()}`)),
          timeoutMs,
        );
      }),
    ]);
  }

  close(): void {
    this.#close();
  }

  #describe(): string {
    return JSON.stringify(this.messages.map(({ receivedAt: _at, ...message }) => message));
  }
}

export interface SubscribeOptions {
  /** The whole Authorization value, e.g. `Bearer pf_…`; none when omitted. */
  authorization?: string;
  variables?: Record<string, unknown>;
  /** More request headers (SSE only), e.g. X-Forwarded-For. */
  headers?: Record<string, string>;
}

/**
 * A subscription over graphql-ws, on a WebSocket of its own (as one dashboard tab has). Resolves
 * once the socket is acknowledged, so the subscription is on its way to the server.
 */
export async function subscribeWs<T = Record<string, unknown>>(
  baseUrl: string,
  query: string,
  options: SubscribeOptions = {},
): Promise<SubscriptionStream<T>> {
  let closeCode: number | undefined;
  let connected!: () => void;
  let refused!: (error: unknown) => void;
  const acknowledged = new Promise<void>((resolve, reject) => {
    connected = resolve;
    refused = reject;
  });
  const client = createClient({
    url: `${baseUrl.replace(/^http/, "ws")}/graphql`,
    webSocketImpl: WebSocket,
    connectionParams: options.authorization ? { authorization: options.authorization } : {},
    retryAttempts: 0,
    lazy: true,
    on: {
      connected: () => connected(),
      closed: (event) => {
        closeCode = (event as { code?: number }).code;
        refused(event);
      },
    },
  });
  const stream = new SubscriptionStream<T>(() => void client.dispose());
  client.subscribe<T>(
    { query, variables: options.variables },
    {
      next: (result) => stream.receive(result as Omit<SubscriptionMessage<T>, "receivedAt">),
      error: (error) => {
        stream.finish({ completed: false, closeCode, error });
        void client.dispose();
      },
      complete: () => {
        stream.finish({ completed: true, closeCode });
        void client.dispose();
      },
    },
  );
  await acknowledged.catch(() => {});
  return stream;
}

/**
 * A subscription over server-sent events (yoga's GraphQL over SSE): a POST with
 * `Accept: text/event-stream`. Resolves once the response has started.
 */
export async function subscribeSse<T = Record<string, unknown>>(
  baseUrl: string,
  query: string,
  options: SubscribeOptions = {},
): Promise<SubscriptionStream<T>> {
  const abort = new AbortController();
  const stream = new SubscriptionStream<T>(() => abort.abort());
  const response = await fetch(`${baseUrl}/graphql`, {
    method: "POST",
    headers: {
      "content-type": "application/json",
      accept: "text/event-stream",
      ...(options.authorization ? { authorization: options.authorization } : {}),
      ...options.headers,
    },
    body: JSON.stringify({ query, variables: options.variables }),
    signal: abort.signal,
  });
  void readEvents(response, stream);
  return stream;
}

async function readEvents<T>(response: Response, stream: SubscriptionStream<T>): Promise<void> {
  if (!response.body) {
    stream.finish({ completed: false, error: new Error(`no body (HTTP ${response.status})`) });
    return;
  }
  let buffered = "";
  let completed = false;
  try {
    for await (const chunk of response.body.pipeThrough(new TextDecoderStream())) {
      buffered += chunk;
      let boundary = buffered.indexOf("\n\n");
      while (boundary >= 0) {
        const block = buffered.slice(0, boundary);
        buffered = buffered.slice(boundary + 2);
        boundary = buffered.indexOf("\n\n");
        const event = /^event: (.*)$/m.exec(block)?.[1];
        const data = block
          .split("\n")
          .filter((line) => line.startsWith("data:"))
          .map((line) => line.slice(5).trimStart())
          .join("\n");
        if (event === "next" && data) stream.receive(JSON.parse(data));
        if (event === "complete") completed = true;
      }
    }
    stream.finish({ completed });
  } catch (error) {
    stream.finish({ completed, error });
  }
}

/** graphql-ws or SSE: the tests run the same subscriptions over both. */
export type Transport = typeof subscribeWs;

/**
 * Subscribes on `podflow` with `token` and waits until that instance's feed holds the
 * subscription: changes committed from then on reach it. The caller closes the stream.
 */
export async function follow<T>(
  transport: Transport,
  podflow: RunningPodflow,
  token: string,
  query: string,
  variables?: Record<string, unknown>,
): Promise<SubscriptionStream<T>> {
  const before = podflow.deps.episodeFeed.size;
  const stream = await transport<T>(podflow.url ?? "", query, {
    authorization: `Bearer ${token}`,
    variables,
  });
  await expect
    .poll(() => podflow.deps.episodeFeed.size, { timeout: 10_000, interval: 10 })
    .toBeGreaterThan(before);
  return stream;
}
