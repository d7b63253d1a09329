import type { Server } from "node:http";
import { GraphQLError } from "graphql";
import type { Logger } from "pino";
import type { WebSocket, WebSocketServer } from "ws";
import type { SecuritySettings } from "./settings.ts";

type Limits = SecuritySettings["connections"];

/** Close codes: the message-size one is the WebSocket standard's, the others graphql-ws style. */
export const CLOSE_MESSAGE_TOO_BIG = 1009;
export const CLOSE_TOO_MANY_SOCKETS = 4429;
export const CLOSE_SEND_BUFFER_FULL = 4008;

/**
 * The bounds of Podflow's WebSockets, beside graphql-ws (README "Security"):
 * - every message is at most `wsMaxMessageBytes` (ws's own `maxPayload`, which closes with
 *   1009), and at most `wsMaxInitMessageBytes` until the connection is acknowledged: a bigger
 *   one closes the socket with 1009 and the socket's connection_init is refused without
 *   looking its token up;
 * - a token holds at most `wsMaxSocketsPerToken` sockets on this instance (4429 past it);
 * - a socket runs at most `wsMaxSubscriptions` operations; one more errors that operation only;
 * - a socket whose unsent data passes `wsMaxBufferedBytes` (its client stopped reading) is
 *   dropped rather than buffered without end.
 * Install it before graphql-ws's useServer, so its message listener runs first.
 */
export class SocketLimits {
  readonly #limits: Limits;
  readonly #logger: Logger;
  readonly #wss: WebSocketServer;
  /** Sockets that sent an oversized message before their connection was acknowledged. */
  readonly #oversized = new WeakSet<WebSocket>();
  /** Acknowledged sockets, with their token's hash. */
  readonly #tokens = new WeakMap<WebSocket, string>();

  constructor(wss: WebSocketServer, limits: Limits, logger: Logger) {
    this.#wss = wss;
    this.#limits = limits;
    this.#logger = logger;
    wss.on("connection", (socket) => {
      const check = (data: Buffer | ArrayBuffer | Buffer[]) => {
        if (this.#tokens.has(socket)) {
          socket.off("message", check);
          return;
        }
        if (messageBytes(data) > limits.wsMaxInitMessageBytes) {
          this.#oversized.add(socket);
          socket.close(CLOSE_MESSAGE_TOO_BIG, "Message too big before connection_init");
        }
      };
      socket.on("message", check);
    });
  }

  /** The options for `new WebSocketServer`. */
  static serverOptions(limits: Limits): { maxPayload: number } {
    return { maxPayload: limits.wsMaxMessageBytes };
  }

  /** False when the socket was already refused (an oversized first message): do not authenticate. */
  mayAuthenticate(socket: WebSocket): boolean {
    return !this.#oversized.has(socket);
  }

  /**
   * Called once the token is valid: false (and the socket closed) when the token already holds
   * its share of sockets, else the socket counts against it from now on.
   */
  admit(socket: WebSocket, tokenHash: string): boolean {
    let held = 0;
    for (const other of this.#wss.clients) {
      if (other !== socket && this.#tokens.get(other) === tokenHash) held += 1;
    }
    if (held >= this.#limits.wsMaxSocketsPerToken) {
      socket.close(
        CLOSE_TOO_MANY_SOCKETS,
        `Too many connections for this token (PODFLOW_WS_MAX_SOCKETS_PER_TOKEN=${this.#limits.wsMaxSocketsPerToken})`,
      );
      return false;
    }
    this.#tokens.set(socket, tokenHash);
    return true;
  }

  /** The error for one operation too many on a socket running `running` (this one included). */
  subscriptionRefusal(running: number): GraphQLError[] | null {
    if (running <= this.#limits.wsMaxSubscriptions) return null;
    return [
      new GraphQLError(
        `At most ${this.#limits.wsMaxSubscriptions} operations per connection (PODFLOW_WS_MAX_SUBSCRIPTIONS)`,
        { extensions: { code: "LIMIT_EXCEEDED", setting: "PODFLOW_WS_MAX_SUBSCRIPTIONS" } },
      ),
    ];
  }

  /** Before each message sent: a socket whose client stopped reading is dropped. */
  checkSendBuffer(socket: WebSocket): void {
    if (socket.bufferedAmount <= this.#limits.wsMaxBufferedBytes) return;
    this.#logger.warn(
      { bufferedBytes: socket.bufferedAmount, limit: this.#limits.wsMaxBufferedBytes },
      "closing a WebSocket whose client stopped reading (PODFLOW_WS_MAX_BUFFERED_BYTES)",
    );
    // close() would queue its frame behind the data the client does not read.
    socket.terminate();
  }
}

function messageBytes(data: Buffer | ArrayBuffer | Buffer[]): number {
  if (Array.isArray(data)) return data.reduce((total, part) => total + part.length, 0);
  return data.byteLength;
}

/** Node's timeouts for receiving a request: headers within one bound, the whole within another. */
export function applyHttpTimeouts(http: Server, limits: Limits): void {
  http.requestTimeout = limits.httpRequestTimeoutMs;
  http.headersTimeout = Math.min(limits.httpHeadersTimeoutMs, limits.httpRequestTimeoutMs);
}

/**
 * How often Node checks those timeouts (its default, 30 s, would let a 1 s timeout run 30 s).
 * Passed to createServer.
 */
export function httpServerOptions(limits: Limits): { connectionsCheckingInterval: number } {
  return {
    connectionsCheckingInterval: Math.max(
      250,
      Math.min(30_000, Math.floor(limits.httpHeadersTimeoutMs / 4)),
    ),
  };
}
