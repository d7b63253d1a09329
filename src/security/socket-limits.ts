import type { IncomingMessage, Server } from "node:http";
import { GraphQLError } from "graphql";
import type { Logger } from "pino";
import type { WebSocket, WebSocketServer } from "ws";
import { clientAddress } from "./client-address.ts";
import { Counter } from "./counter.ts";
import type { SecuritySettings } from "./settings.ts";

type Limits = SecuritySettings["connections"];

/** Close codes: the message-size one is the WebSocket standard's, the others graphql-ws style. */
export const CLOSE_MESSAGE_TOO_BIG = 1009;
export const CLOSE_TOO_MANY_SOCKETS = 4429;
export const CLOSE_SEND_BUFFER_FULL = 4008;
/** Lifetime reached: graphql-ws clients reconnect on it (it is not one of their fatal codes). */
export const CLOSE_LIFETIME_REACHED = 4410;
/** Idle: a normal closure, which a lazy graphql-ws client reopens when it next subscribes. */
export const CLOSE_IDLE = 1000;

/** What graphql-ws keeps of an acknowledged socket's running operations. */
type RunningOperations = Readonly<Record<string, unknown>>;

interface Tracked {
  connectedAt: number;
  /** This socket's lifetime: the limit, less up to 10 % (see lifetime()). */
  lifetimeMs: number;
  /** Set once acknowledged. */
  operations?: RunningOperations;
  /** When an operation was last seen running (or the socket acknowledged). */
  lastBusyAt: number;
}

/**
 * The bounds of Podflow's WebSockets, beside graphql-ws (README "Security"):
 * - every message is at most `wsMaxMessageBytes` (ws's own `maxPayload`, which closes with
 *   1009), and at most `wsMaxInitMessageBytes` until the connection is acknowledged: a bigger
 *   one closes the socket with 1009 and the socket's connection_init is refused without
 *   looking its token up;
 * - a token holds at most `wsMaxSocketsPerToken` sockets on this instance (4429 past it), and a
 *   client address (client-address.ts) at most `wsMaxSocketsPerAddress`, authenticated or not
 *   (4429 at once, before anything is read);
 * - a socket lives at most `streamMaxMs`, less up to 10 % (closed with 4410, which clients
 *   reconnect on), and an
 *   acknowledged socket with no operation running for `streamIdleMs` is closed with 1000;
 * - a socket runs at most `wsMaxSubscriptions` operations; one more errors that operation only;
 * - a socket whose unsent data passes `wsMaxBufferedBytes` (its client stopped reading) is
 *   dropped rather than buffered without end.
 * Install it before graphql-ws's useServer, so its message listener runs first.
 */
export class SocketLimits {
  readonly #limits: Limits;
  readonly #logger: Logger;
  /** Sockets refused before authentication (too many from the address, an oversized message). */
  readonly #refused = new WeakSet<WebSocket>();
  /** Acknowledged sockets, with their token's hash. */
  readonly #tokens = new WeakMap<WebSocket, string>();
  /** Open sockets per client address (refused ones not counted). */
  readonly #perAddress = new Counter();
  /** Open acknowledged sockets per token hash. */
  readonly #perToken = new Counter();
  readonly #tracked = new Map<WebSocket, Tracked>();
  readonly #sweeper: NodeJS.Timeout;

  constructor(wss: WebSocketServer, limits: Limits, logger: Logger) {
    this.#limits = limits;
    this.#logger = logger;
    wss.on("connection", (socket, request: IncomingMessage) => {
      const address = clientAddress(request, limits.trustProxyHops);
      if (this.#perAddress.get(address) >= limits.wsMaxSocketsPerAddress) {
        this.#refused.add(socket);
        socket.close(
          CLOSE_TOO_MANY_SOCKETS,
          `Too many connections from this address (PODFLOW_WS_MAX_SOCKETS_PER_ADDRESS=${limits.wsMaxSocketsPerAddress})`,
        );
        return;
      }
      this.#perAddress.add(address);
      const now = Date.now();
      this.#tracked.set(socket, {
        connectedAt: now,
        lifetimeMs: lifetime(limits.streamMaxMs),
        lastBusyAt: now,
      });
      socket.once("close", () => {
        this.#tracked.delete(socket);
        this.#perAddress.remove(address);
        const tokenHash = this.#tokens.get(socket);
        if (tokenHash !== undefined) this.#perToken.remove(tokenHash);
      });
      const check = (data: Buffer | ArrayBuffer | Buffer[]) => {
        if (this.#tokens.has(socket)) {
          socket.off("message", check);
          return;
        }
        if (messageBytes(data) > limits.wsMaxInitMessageBytes) {
          this.#refused.add(socket);
          socket.close(CLOSE_MESSAGE_TOO_BIG, "Message too big before connection_init");
        }
      };
      socket.on("message", check);
    });
    const every = Math.max(
      100,
      Math.min(10_000, Math.floor(Math.min(limits.streamIdleMs, limits.streamMaxMs) / 5)),
    );
    this.#sweeper = setInterval(() => this.#sweep(), every).unref();
    wss.once("close", () => clearInterval(this.#sweeper));
  }

  /** Closes the sockets past their lifetime, and the acknowledged ones idle too long. */
  #sweep(): void {
    const now = Date.now();
    for (const [socket, tracked] of this.#tracked) {
      if (socket.readyState !== socket.OPEN) continue;
      if (now - tracked.connectedAt >= tracked.lifetimeMs) {
        this.#tracked.delete(socket);
        socket.close(
          CLOSE_LIFETIME_REACHED,
          "Connection lifetime reached (PODFLOW_STREAM_MAX_SECONDS): reconnect",
        );
        continue;
      }
      if (!tracked.operations) continue;
      if (Object.keys(tracked.operations).length > 0) tracked.lastBusyAt = now;
      else if (now - tracked.lastBusyAt >= this.#limits.streamIdleMs) {
        this.#tracked.delete(socket);
        socket.close(CLOSE_IDLE, "Idle: no operation running (PODFLOW_STREAM_IDLE_SECONDS)");
      }
    }
  }

  /** The options for `new WebSocketServer`. */
  static serverOptions(limits: Limits): { maxPayload: number } {
    return { maxPayload: limits.wsMaxMessageBytes };
  }

  /** False when the socket was already refused (an oversized first message): do not authenticate. */
  mayAuthenticate(socket: WebSocket): boolean {
    return !this.#refused.has(socket);
  }

  /**
   * Called once the token is valid: false (and the socket closed) when the token already holds
   * its share of sockets, else the socket counts against it from now on.
   */
  admit(socket: WebSocket, tokenHash: string, operations: RunningOperations): boolean {
    if (this.#tokens.has(socket)) return true;
    // Closed while its token was being checked: its close has run, so it must not count.
    if (socket.readyState !== socket.OPEN) return false;
    if (this.#perToken.get(tokenHash) >= this.#limits.wsMaxSocketsPerToken) {
      socket.close(
        CLOSE_TOO_MANY_SOCKETS,
        `Too many connections for this token (PODFLOW_WS_MAX_SOCKETS_PER_TOKEN=${this.#limits.wsMaxSocketsPerToken})`,
      );
      return false;
    }
    this.#tokens.set(socket, tokenHash);
    this.#perToken.add(tokenHash);
    const tracked = this.#tracked.get(socket);
    if (tracked) {
      tracked.operations = operations;
      tracked.lastBusyAt = Date.now();
    }
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
    // One already closing was dealt with (its buffer stays counted until ws lets it go).
    if (socket.readyState !== socket.OPEN) return;
    if (socket.bufferedAmount <= this.#limits.wsMaxBufferedBytes) return;
    this.#logger.warn(
      { bufferedBytes: socket.bufferedAmount, limit: this.#limits.wsMaxBufferedBytes },
      "closing a WebSocket whose client stopped reading (PODFLOW_WS_MAX_BUFFERED_BYTES)",
    );
    // close() would queue its frame behind the data the client does not read.
    socket.terminate();
  }
}

/**
 * The limit less a random part of up to 10 %: streams opened together (after a deploy, a network
 * blip) do not all reconnect together when their lifetime ends.
 */
export function lifetime(maxMs: number): number {
  return Math.round(maxMs * (0.9 + Math.random() * 0.1));
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
