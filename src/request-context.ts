import { AsyncLocalStorage } from "node:async_hooks";
import { randomUUID } from "node:crypto";

/**
 * The request a piece of work runs for. The HTTP server runs each request inside
 * `requestContext.run(...)`; the logger (src/logger.ts) adds `requestId` to every line written
 * within it — by the router, yoga, resolvers, services and the ORM alike — without a logger
 * being handed down through every call.
 */
export interface RequestContext {
  requestId: string;
  /**
   * Set when the response has ended. Work a request set going that outlives it (a timer, a
   * shared batch, a cache filled for everyone) is no longer the request's: its lines carry no id.
   */
  ended?: boolean;
}

export const requestContext = new AsyncLocalStorage<RequestContext>();

/** The id to put on a log line written now: the current request's, while its response is open. */
export function currentRequestId(): string | undefined {
  const context = requestContext.getStore();
  return context && !context.ended ? context.requestId : undefined;
}

/**
 * Runs `work` as part of `context`'s request, or outside any request when there is none: for
 * work shared by several requests (a batch), which must not carry the id of the one that
 * happened to start it.
 */
export function runInRequest<T>(context: RequestContext | undefined, work: () => T): T {
  return context ? requestContext.run(context, work) : requestContext.exit(work);
}

/** The header a request id comes in (from a proxy or a client) and goes back out in. */
export const REQUEST_ID_HEADER = "x-request-id";

/** A request id we pass on as it is: a short token of safe characters (no spaces, quotes, control bytes). */
const SANE_REQUEST_ID = /^[A-Za-z0-9][A-Za-z0-9._:@+=/-]{0,127}$/;

/** The incoming `x-request-id` when it is a sane token, else a new UUID. */
export function requestIdFrom(incoming: string | string[] | undefined): string {
  const value = Array.isArray(incoming) ? incoming[0] : incoming;
  return value && SANE_REQUEST_ID.test(value) ? value : randomUUID();
}
