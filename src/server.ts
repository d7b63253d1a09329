import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import nodePath from "node:path";
import {
  context as otelContext,
  propagation,
  ROOT_CONTEXT,
  SpanKind,
  SpanStatusCode,
  trace,
} from "@opentelemetry/api";
import { type ExecutionArgs, GraphQLError } from "graphql";
import { useServer } from "graphql-ws/use/ws";
import { createYoga, type YogaInitialContext } from "graphql-yoga";
import { WebSocketServer } from "ws";
import { ownsDashboardPath, serveDashboard } from "./dashboard.ts";
import type { AppDeps } from "./deps.ts";
import { useOperationMetrics } from "./graphql-metrics.ts";
import { serveOps } from "./ops-http.ts";
import {
  REQUEST_ID_HEADER,
  type RequestContext,
  requestContext,
  requestIdFrom,
} from "./request-context.ts";
import { useCompiledQueries } from "./schema/compiled-queries.ts";
import { createContext, type GraphQLContext } from "./schema/context.ts";
import { schema } from "./schema/index.ts";
import { SharedNextMessages, useSharedSubscriptionExecution } from "./schema/shared-executions.ts";
import { resolvePersistedOperation } from "./security/persisted-operations.ts";
import { applyHttpTimeouts, httpServerOptions, SocketLimits } from "./security/socket-limits.ts";
import { yogaSecurityOptions } from "./security/yoga-options.ts";
import { authenticate } from "./services/accounts.ts";
import { COVERS_PATH_PREFIX, handleCovers } from "./services/cover-uploads.ts";
import { YOUTUBE_CALLBACK_PATH } from "./services/distribution/index.ts";
import { handleYouTubeCallback } from "./services/distribution/oauth-callback.ts";
import { MEDIA_PATH_PREFIX, serveLocalMedia } from "./services/engines/local-media-files.ts";
import { createTusUploads, TUS_PATH } from "./services/engines/local-tus.ts";
import { handleLocalUpload, UPLOAD_PATH_PREFIX } from "./services/engines/local-uploads.ts";
import { EXPORTS_PATH_PREFIX } from "./services/exports/exports.ts";
import { serveExport } from "./services/exports/exports-http.ts";
import { createFeedServer, FEED_PATH_PREFIX } from "./services/feed/feed-http.ts";
import { bearerTokenHash } from "./services/subscriber-tokens.ts";
import { TRACER_NAME } from "./tracing.ts";
import { createIttybitWebhookReceiver } from "./webhooks.ts";

export const GRAPHQL_PATH = "/graphql";

export interface PodflowServer {
  /** Listens on `port` (0 picks a free one) and resolves with the base URL. */
  start(port: number, host?: string): Promise<string>;
  /**
   * Stops accepting, lets in-flight requests finish (up to `graceMs`), then closes what is
   * left, WebSockets included.
   */
  stop(graceMs?: number): Promise<void>;
  /** The base URL once started, e.g. http://127.0.0.1:4000. */
  readonly url: string;
}

/** What graphql-ws keeps per socket. */
type SocketExtra = {
  request: IncomingMessage;
  socket: import("ws").WebSocket;
  /** The Authorization value from connectionParams, checked on connect. */
  authorization?: string;
};

/** What a graphql-ws operation's context carries besides yoga's: its socket and its id. */
interface WebSocketOperation {
  socket: import("ws").WebSocket;
  subscriptionId: string;
}

/** Yoga's envelop exposes execute/subscribe as functions taking the args bag. */
interface EnvelopedRoot {
  execute: (args: ExecutionArgs) => unknown;
  subscribe: (args: ExecutionArgs) => unknown;
}

/**
 * One HTTP server: GraphQL (HTTP, SSE and graphql-ws on /graphql), health probes, webhooks, the
 * local media engine's uploads and output files, podcast feeds and episode exports, and the
 * browser dashboard at `/`.
 */
export function buildServer(deps: AppDeps): PodflowServer {
  const { logger } = deps;
  const security = yogaSecurityOptions(deps.config.security);
  const yoga = createYoga<Record<string, never>, GraphQLContext>({
    schema,
    graphqlEndpoint: GRAPHQL_PATH,
    // Internal errors reach clients as "Unexpected error." — never stack traces or SQL.
    maskedErrors: true,
    landingPage: false,
    // Limits, GraphiQL/introspection, CORS and CSRF: src/security/ (README "Security").
    ...security,
    plugins: [
      ...(security.plugins ?? []),
      // Queries run compiled (before the metrics, which wrap whichever executor runs).
      useCompiledQueries(logger),
      // Operation durations and open subscriptions for GET /metrics.
      useOperationMetrics(deps.metrics),
      // One execution and one serialisation per event for subscribers who ask the same thing.
      useSharedSubscriptionExecution({
        viewerOf: (context) => (context as GraphQLContext).viewer?.id ?? null,
        onEvent: deps.metrics.countSubscriptionEvent,
        // A graphql-ws subscription's shared results are written to its socket directly.
        directWriter: (context) => {
          const { socket, subscriptionId } = context as Partial<WebSocketOperation>;
          if (!socket || subscriptionId === undefined) return null;
          const write = sharedSends.writer(socket, subscriptionId);
          return (result) => nextMessage(socket, () => write(result));
        },
      }),
    ],
    logging: {
      debug: (...args) => logger.debug({ yoga: args }, "graphql"),
      info: (...args) => logger.info({ yoga: args }, "graphql"),
      warn: (...args) => logger.warn({ yoga: args }, "graphql"),
      error: (...args) => logger.error({ yoga: args }, "graphql"),
    },
    // HTTP: the token is in the Authorization header. WebSocket: it was in connectionParams,
    // checked on connect and kept on the socket (see onConnect below).
    context: ({ request, extra }: { request?: Request; extra?: SocketExtra }) =>
      createContext(deps, extra?.authorization ?? request?.headers.get("authorization")),
  });

  const webhooks = createIttybitWebhookReceiver(deps);
  const tus =
    deps.local &&
    createTusUploads({
      orm: deps.orm,
      storage: deps.local.storage,
      secret: deps.local.uploadSecret,
      publicUrl: deps.config.publicUrl,
      directory: nodePath.join(deps.config.local.mediaDir, "tus"),
      maxBytes: deps.config.maxUploadBytes,
    });

  const feeds = createFeedServer({
    em: () => deps.orm.em.fork(),
    publicUrl: deps.config.publicUrl,
    exportSecret: deps.exportSecret,
  });

  const limits = deps.config.security.connections;
  // A no-op unless tracing is on (OTEL_EXPORTER_OTLP_ENDPOINT, src/tracing.ts).
  const tracer = trace.getTracer(TRACER_NAME);
  const http = createServer(httpServerOptions(limits), (req, res) => {
    // Every response says its request id, and every log line written for it carries the id.
    const requestId = requestIdFrom(req.headers[REQUEST_ID_HEADER]);
    res.setHeader(REQUEST_ID_HEADER, requestId);
    const started = performance.now();
    const context: RequestContext = { requestId };
    const routeName = routeClass(req.url);
    const method = methodLabel(req.method);
    // A caller's `traceparent` is continued; the span never names the raw path (tokens, ids).
    const parent = propagation.extract(ROOT_CONTEXT, req.headers);
    const span = tracer.startSpan(
      `${method} ${routeName}`,
      {
        kind: SpanKind.SERVER,
        attributes: {
          "http.request.method": method,
          "http.route": routeName,
          "podflow.request_id": requestId,
        },
      },
      parent,
    );
    res.once("close", () => {
      context.ended = true;
      // Closed before the response ended: the client left (an SSE stream, an upload).
      const status = res.writableFinished ? String(res.statusCode) : "aborted";
      deps.metrics.httpRequestDuration.observe(
        { route: routeName, method, status },
        (performance.now() - started) / 1_000,
      );
      span.setAttribute("http.response.status_code", res.statusCode);
      if (status === "aborted") span.setAttribute("podflow.aborted", true);
      if (res.statusCode >= 500) span.setStatus({ code: SpanStatusCode.ERROR });
      span.end();
    });
    otelContext.with(trace.setSpan(parent, span), () =>
      requestContext.run(context, () => {
        route(req, res).catch((error: unknown) => {
          logger.error({ err: error, url: req.url }, "request failed");
          if (!res.headersSent) sendJson(res, 500, { error: "internal error" });
          else res.destroy();
        });
      }),
    );
  });

  async function route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? "/", "http://podflow.invalid");
    const path = url.pathname;
    // /healthz, /readyz, /metrics (src/ops-http.ts; a worker-only process serves them alone).
    if (await serveOps(deps, req, res, path)) return;
    if (webhooks.owns(path)) {
      await webhooks.handle(req, path, (status, body) => sendJson(res, status, body));
      return;
    }
    if (path === GRAPHQL_PATH) {
      await yoga(req, res);
      return;
    }
    const notFound = () => sendJson(res, 404, { error: "not found" });
    if (path === YOUTUBE_CALLBACK_PATH) {
      await handleYouTubeCallback(
        { em: () => deps.orm.em.fork(), distribution: deps.distribution, logger },
        req,
        res,
        url,
      );
      return;
    }
    if (path.startsWith(FEED_PATH_PREFIX)) {
      await feeds.handle(req, res, path, notFound);
      return;
    }
    if (path.startsWith(EXPORTS_PATH_PREFIX)) {
      await serveExport(
        { em: () => deps.orm.em.fork(), secret: deps.exportSecret },
        req,
        res,
        path,
        notFound,
      );
      return;
    }
    const local = deps.local;
    if (local && path.startsWith(COVERS_PATH_PREFIX)) {
      await handleCovers(
        {
          em: () => deps.orm.em.fork(),
          storage: local.storage,
          secret: local.uploadSecret,
          publicUrl: deps.config.publicUrl,
        },
        req,
        res,
        url,
        (status, body, headers) => sendJson(res, status, body, headers),
      );
      return;
    }
    if (tus && (path === TUS_PATH || path.startsWith(`${TUS_PATH}/`))) {
      await tus.handle(req, res);
      return;
    }
    if (local && path.startsWith(UPLOAD_PATH_PREFIX)) {
      await handleLocalUpload(
        {
          orm: deps.orm,
          storage: local.storage,
          secret: local.uploadSecret,
          maxBytes: deps.config.maxUploadBytes,
        },
        req,
        url,
        (status, body, headers) => sendJson(res, status, body, headers),
      );
      return;
    }
    if (local && path.startsWith(MEDIA_PATH_PREFIX)) {
      await serveLocalMedia(local.storage, req, res, path, () =>
        sendJson(res, 404, { error: "not found" }),
      );
      return;
    }
    if (ownsDashboardPath(path)) {
      await serveDashboard(req, res, path, () => sendJson(res, 404, { error: "not found" }));
      return;
    }
    sendJson(res, 404, { error: "not found" });
  }

  applyHttpTimeouts(http, limits);

  const wss = new WebSocketServer({
    server: http,
    path: GRAPHQL_PATH,
    ...SocketLimits.serverOptions(limits),
  });
  // The upgrade's answer says its request id too; open sockets are counted for GET /metrics.
  wss.on("headers", (headers, request) => {
    headers.push(`${REQUEST_ID_HEADER}: ${requestIdFrom(request.headers[REQUEST_ID_HEADER])}`);
  });
  wss.on("connection", (socket) => {
    deps.metrics.websocketsOpen.inc();
    socket.once("close", () => deps.metrics.websocketsOpen.dec());
  });
  // Before useServer: its message listener must run before graphql-ws's.
  const socketLimits = new SocketLimits(wss, limits, logger);
  // A revoked token's subscriptions end (the feed sees to that); its sockets are closed with
  // 4401 too, so clients know to sign in again rather than reconnect.
  const socketTokens = new WeakMap<import("ws").WebSocket, string | null>();
  const stopWatchingRevocations = deps.episodeFeed.onRevoked((tokenHash) => {
    for (const socket of wss.clients) {
      if (socketTokens.get(socket) === tokenHash) socket.close(4401, "Token revoked");
    }
  });
  const sharedSends = new SharedNextMessages();
  /** Each subscription's next message, however it is written: a reader too slow is dropped. */
  const nextMessage = <T>(socket: import("ws").WebSocket, send: () => T): T => {
    socketLimits.checkSendBuffer(socket);
    return send();
  };
  useServer<Record<string, unknown>, SocketExtra>(
    {
      // A connection without a valid token is refused with 4401 (graphql-ws would say 4403).
      onConnect: async (ctx) => {
        if (!socketLimits.mayAuthenticate(ctx.extra.socket)) return false;
        const raw = ctx.connectionParams?.authorization;
        const authorization = typeof raw === "string" ? raw : undefined;
        const viewer = await authenticate(deps.orm.em.fork(), authorization);
        if (!viewer) {
          ctx.extra.socket.close(4401, "Unauthorized");
          return false;
        }
        const tokenHash = bearerTokenHash(authorization);
        if (!tokenHash || !socketLimits.admit(ctx.extra.socket, tokenHash, ctx.subscriptions)) {
          return false;
        }
        ctx.extra.authorization = authorization;
        socketTokens.set(ctx.extra.socket, tokenHash);
        sharedSends.install(ctx.extra.socket);
        return true;
      },
      execute: (args) => (args.rootValue as EnvelopedRoot).execute(args) as never,
      subscribe: (args) => (args.rootValue as EnvelopedRoot).subscribe(args) as never,
      // Most next messages are written by the feed directly (directWriter above): whatever is
      // done per message belongs in nextMessage, which both go through.
      onNext: (ctx, id, _payload, _args, result) =>
        nextMessage(ctx.extra.socket, () => sharedSends.send(ctx.extra.socket, id, result)),
      onSubscribe: async (ctx, id, sent) => {
        let params = sent;
        const tooMany = socketLimits.subscriptionRefusal(Object.keys(ctx.subscriptions).length);
        if (tooMany) return tooMany;
        // PODFLOW_PERSISTED_OPERATIONS: what yoga's plugin does for HTTP requests.
        const persisted = deps.config.security.graphql.persistedOperations;
        if (persisted) {
          const resolved = resolvePersistedOperation(persisted, params);
          if ("error" in resolved) return [resolved.error];
          params = { ...params, query: resolved.query };
        }
        const {
          schema: enveloped,
          execute,
          subscribe,
          contextFactory,
          parse,
          validate,
        } = yoga.getEnveloped({
          ...ctx,
          req: ctx.extra.request,
          socket: ctx.extra.socket,
          subscriptionId: id,
          params,
        } satisfies WebSocketOperation & Record<string, unknown> as unknown as YogaInitialContext);
        // A refused document (syntax, a limit) errors this subscription, not the socket; the
        // limits' validation rules throw rather than report.
        let document: ReturnType<typeof parse>;
        try {
          document = parse(params.query);
          const errors = validate(enveloped, document);
          if (errors.length) return errors;
        } catch (error) {
          if (error instanceof GraphQLError) return [error];
          throw error;
        }
        const args = {
          schema: enveloped,
          operationName: params.operationName,
          document,
          variableValues: params.variables,
          contextValue: await contextFactory(),
          rootValue: { execute, subscribe },
        };
        return args;
      },
    },
    wss,
  );

  let baseUrl = "";
  return {
    get url() {
      return baseUrl;
    },
    start(port, host = "127.0.0.1") {
      return new Promise((resolve, reject) => {
        http.once("error", reject);
        http.listen(port, host, () => {
          http.off("error", reject);
          const address = http.address() as AddressInfo;
          const shownHost = address.family === "IPv6" ? `[${address.address}]` : address.address;
          baseUrl = `http://${shownHost === "0.0.0.0" ? "127.0.0.1" : shownHost}:${address.port}`;
          resolve(baseUrl);
        });
      });
    },
    async stop(graceMs = 10_000) {
      // Going away: clients reconnect to another instance.
      for (const socket of wss.clients) socket.close(1001, "server shutting down");
      const closed = new Promise<void>((resolve) => http.close(() => resolve()));
      http.closeIdleConnections();
      // Subscriptions complete, so open SSE streams end instead of holding the stop to the deadline.
      stopWatchingRevocations();
      await deps.episodeFeed.stop();
      const deadline = setTimeout(() => {
        logger.warn({ graceMs }, "in-flight requests did not finish in time; closing them");
        http.closeAllConnections();
        for (const socket of wss.clients) socket.terminate();
      }, graceMs);
      await closed;
      clearTimeout(deadline);
      await new Promise<void>((resolve) => wss.close(() => resolve()));
    },
  };
}

/**
 * The class of route a request went to, for metrics: a fixed, small set (never the raw path,
 * whose ids and tokens would make a label per request).
 */
export function routeClass(rawUrl: string | undefined): string {
  const path = (rawUrl ?? "/").split("?", 1)[0] ?? "/";
  if (path === GRAPHQL_PATH) return "graphql";
  if (path === "/healthz" || path === "/readyz" || path === "/metrics") return path.slice(1);
  if (path === YOUTUBE_CALLBACK_PATH) return "oauth";
  const prefixes: Array<[string, string]> = [
    ["/webhooks/", "webhook"],
    [FEED_PATH_PREFIX, "feed"],
    [EXPORTS_PATH_PREFIX, "export"],
    [COVERS_PATH_PREFIX, "cover"],
    [TUS_PATH, "tus"],
    [UPLOAD_PATH_PREFIX, "upload"],
    [MEDIA_PATH_PREFIX, "media"],
  ];
  if (path === "/webhooks/ittybit") return "webhook";
  for (const [prefix, name] of prefixes) if (path.startsWith(prefix)) return name;
  return ownsDashboardPath(path) ? "dashboard" : "other";
}

const METHODS = new Set(["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]);

function methodLabel(method: string | undefined): string {
  return method && METHODS.has(method) ? method : "other";
}

function sendJson(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    ...headers,
    "content-type": "application/json; charset=utf-8",
    "content-length": Buffer.byteLength(text),
    "cache-control": "no-store",
  });
  res.end(text);
}
