import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type { AppDeps } from "./deps.ts";
import { checkReadiness } from "./services/health.ts";

type OpsDeps = Pick<AppDeps, "orm" | "boss" | "logger" | "metrics">;

/** The operator's endpoints, served by every Podflow process whatever its roles. */
export const OPS_PATHS = ["/healthz", "/readyz", "/metrics"] as const;

/**
 * Answers `GET /healthz` (the process is alive), `GET /readyz` (the database and the job queue
 * answer) and `GET /metrics` (Prometheus). Returns false for any other request.
 */
export async function serveOps(
  deps: OpsDeps,
  req: IncomingMessage,
  res: ServerResponse,
  path: string,
): Promise<boolean> {
  if (req.method !== "GET") return false;
  if (path === "/healthz") {
    send(res, 200, "application/json; charset=utf-8", JSON.stringify({ status: "ok" }));
    return true;
  }
  if (path === "/readyz") {
    const readiness = await checkReadiness(deps);
    send(
      res,
      readiness.ready ? 200 : 503,
      "application/json; charset=utf-8",
      JSON.stringify(readiness),
    );
    return true;
  }
  if (path === "/metrics") {
    send(res, 200, deps.metrics.registry.contentType, await deps.metrics.registry.metrics());
    return true;
  }
  return false;
}

export interface OpsServer {
  readonly url: string;
  stop(): Promise<void>;
}

/**
 * A process without the `api` role (PODFLOW_ROLES=worker) has no HTTP server, yet its container
 * needs a health check and its job metrics a scrape: this listener, on PORT and HOST like the
 * API's, serves only /healthz, /readyz and /metrics (404 for anything else).
 */
export async function startOpsServer(
  deps: OpsDeps,
  port: number,
  host: string,
): Promise<OpsServer> {
  const http = createServer((req, res) => {
    const path = new URL(req.url ?? "/", "http://podflow.invalid").pathname;
    serveOps(deps, req, res, path)
      .then((served) => {
        if (!served) send(res, 404, "application/json; charset=utf-8", '{"error":"not found"}');
      })
      .catch((error: unknown) => {
        deps.logger.error({ err: error, url: req.url }, "health request failed");
        if (!res.headersSent)
          send(res, 500, "application/json; charset=utf-8", '{"error":"internal error"}');
        else res.destroy();
      });
  });
  // Probes are tiny: a slow or idle client is not kept.
  http.headersTimeout = 5_000;
  http.requestTimeout = 10_000;
  http.keepAliveTimeout = 5_000;
  await new Promise<void>((resolve, reject) => {
    http.once("error", reject);
    http.listen(port, host, () => {
      http.off("error", reject);
      resolve();
    });
  });
  const address = http.address() as AddressInfo;
  const shownHost = address.family === "IPv6" ? `[${address.address}]` : address.address;
  const url = `http://${shownHost === "0.0.0.0" ? "127.0.0.1" : shownHost}:${address.port}`;
  return {
    url,
    stop: () =>
      new Promise<void>((resolve) => {
        http.close(() => resolve());
        http.closeAllConnections();
      }),
  };
}

function send(res: ServerResponse, status: number, contentType: string, body: string): void {
  res.writeHead(status, {
    "content-type": contentType,
    "content-length": Buffer.byteLength(body),
    "cache-control": "no-store",
  });
  res.end(body);
}
