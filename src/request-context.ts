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
}

export const requestContext = new AsyncLocalStorage<RequestContext>();

/** The header a request id comes in (from a proxy or a client) and goes back out in. */
export const REQUEST_ID_HEADER = "x-request-id";

/** A request id we pass on as it is: a short token of safe characters (no spaces, quotes, control bytes). */
const SANE_REQUEST_ID = /^[A-Za-z0-9][A-Za-z0-9._:@+=/-]{0,127}$/;

/** The incoming `x-request-id` when it is a sane token, else a new UUID. */
export function requestIdFrom(incoming: string | string[] | undefined): string {
  const value = Array.isArray(incoming) ? incoming[0] : incoming;
  return value && SANE_REQUEST_ID.test(value) ? value : randomUUID();
}
