import type { IncomingMessage } from "node:http";
import { type ExecutionResult, GraphQLError } from "graphql";
import type { Plugin } from "graphql-yoga";
import { clientAddress } from "./client-address.ts";
import { Counter } from "./counter.ts";
import type { SecuritySettings } from "./settings.ts";
import { lifetime } from "./socket-limits.ts";

type Limits = SecuritySettings["connections"];

/** The code of the last message of an event stream ended by PODFLOW_STREAM_MAX_SECONDS. */
export const STREAM_EXPIRED = "STREAM_EXPIRED";

/**
 * Subscriptions over HTTP (server-sent events), on this instance (WebSocket subscriptions are
 * bounded by socket-limits.ts instead: sockets per token and per address × operations per
 * socket):
 * - at most `sseMaxStreamsPerToken` per token and `sseMaxStreamsPerAddress` per client address
 *   (client-address.ts); the next one is answered with an error naming the setting. A stream
 *   counts from its start until it ends, however it ends (completed, client gone, token revoked);
 * - a stream lasts at most `streamMaxMs`, less up to 10 % (socket-limits.ts): it then sends one last result whose error has the
 *   code STREAM_EXPIRED, and completes, so that the client subscribes again (and is counted,
 *   authenticated and load-balanced again).
 */
export function useStreamLimits(limits: Limits): Plugin {
  const byToken = new Counter();
  const byAddress = new Counter();
  return {
    onSubscribe({ context, setResultAndStopExecution }) {
      const { tokenHash, socket, req } = context as {
        tokenHash?: string | null;
        socket?: unknown;
        req?: IncomingMessage;
      };
      // Over WebSocket: bounded by socket-limits.ts.
      if (socket) return;
      const address = req ? clientAddress(req, limits.trustProxyHops) : null;
      const refuse = (message: string, setting: string) =>
        setResultAndStopExecution({
          errors: [
            new GraphQLError(`${message} (${setting})`, {
              extensions: { code: "LIMIT_EXCEEDED", setting },
            }),
          ],
        });
      // Without a token the resolvers refuse it: not counted per token.
      if (tokenHash && byToken.get(tokenHash) >= limits.sseMaxStreamsPerToken) {
        refuse(
          `At most ${limits.sseMaxStreamsPerToken} event streams per token`,
          "PODFLOW_SSE_MAX_STREAMS_PER_TOKEN",
        );
        return;
      }
      if (address && byAddress.get(address) >= limits.sseMaxStreamsPerAddress) {
        refuse(
          `At most ${limits.sseMaxStreamsPerAddress} event streams per client address`,
          "PODFLOW_SSE_MAX_STREAMS_PER_ADDRESS",
        );
        return;
      }
      if (tokenHash) byToken.add(tokenHash);
      if (address) byAddress.add(address);
      const release = () => {
        if (tokenHash) byToken.remove(tokenHash);
        if (address) byAddress.remove(address);
      };
      return {
        onSubscribeResult({ result, setResult }) {
          // A refusal or an error result is no stream: give the place back now.
          if (!(Symbol.asyncIterator in Object(result))) {
            release();
            return;
          }
          setResult(
            expiring(result as AsyncIterable<ExecutionResult>, lifetime(limits.streamMaxMs), {
              errors: [
                new GraphQLError(
                  `This stream reached its lifetime of ${limits.streamMaxMs / 1000} s (PODFLOW_STREAM_MAX_SECONDS): subscribe again`,
                  { extensions: { code: STREAM_EXPIRED, setting: "PODFLOW_STREAM_MAX_SECONDS" } },
                ),
              ],
            }),
          );
          return { onEnd: release };
        },
      };
    },
  };
}

/**
 * The source's results until `ms` pass, then `last`, then done. Hand-written rather than an
 * async generator: a generator waiting on the source could not be ended (`return()`) before
 * the next result, so a client leaving would hold its place until then. The lifetime's timer
 * answers the `next()` waiting at that moment itself, rather than each `next()` racing the
 * source against one promise of the lifetime: every Promise.race left a reaction on that
 * promise until it settled, ~350 bytes per event held for up to the whole lifetime (24 h by
 * default) by every open stream. One `next()` at a time, as `for await` and yoga's event stream
 * ask.
 */
export function expiring<T>(
  source: AsyncIterable<T>,
  ms: number,
  last: T,
): AsyncIterableIterator<T> {
  const iterator = source[Symbol.asyncIterator]();
  const ended: IteratorResult<T> = { done: true, value: undefined };
  /** "expired": the lifetime passed with no `next()` waiting; the next one gets `last`. */
  let state: "open" | "expired" | "done" = "open";
  /** The `next()` waiting for the source, answered by whichever comes first. */
  let waiting: ((result: IteratorResult<T>) => void) | null = null;
  const endSource = () => {
    // Not awaited: the source may only notice at its next result.
    Promise.resolve(iterator.return?.()).catch(() => {});
  };
  // setTimeout takes at most 2^31 - 1 ms (24.8 days); a longer lifetime is that long.
  const timer = setTimeout(
    () => {
      if (state !== "open") return;
      endSource();
      if (waiting) {
        state = "done";
        const answer = waiting;
        waiting = null;
        answer({ done: false, value: last });
      } else {
        state = "expired";
      }
    },
    Math.min(ms, 2 ** 31 - 1),
  );
  const finish = async (value?: unknown): Promise<IteratorResult<T>> => {
    state = "done";
    clearTimeout(timer);
    waiting?.(ended);
    waiting = null;
    await iterator.return?.(value);
    return ended;
  };
  return {
    [Symbol.asyncIterator]() {
      return this;
    },
    next() {
      if (state === "done") return Promise.resolve(ended);
      if (state === "expired") {
        state = "done";
        return Promise.resolve({ done: false, value: last });
      }
      return new Promise<IteratorResult<T>>((resolve, reject) => {
        waiting = resolve;
        iterator.next().then(
          (result) => {
            // Answered already: by the lifetime (then `last`) or by return().
            if (waiting !== resolve) return;
            waiting = null;
            if (result.done) {
              state = "done";
              clearTimeout(timer);
            }
            resolve(result);
          },
          (error: unknown) => {
            if (waiting !== resolve) return;
            waiting = null;
            reject(error);
          },
        );
      });
    },
    return: finish,
    async throw(error: unknown) {
      await finish();
      throw error;
    },
  };
}
