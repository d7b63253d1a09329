/**
 * GET/HEAD `/` and `/assets/*`: the browser dashboard, built by vite from web/ into web/dist
 * (`npm run build:web`, run by `npm start` and `npm test`). The page talks to Podflow only through
 * the public GraphQL API. index.html is revalidated on every load (no-cache), so a new build is
 * picked up at once; the assets it names carry a content hash, so browsers keep them for good.
 */
import { existsSync } from "node:fs";
import type { IncomingMessage, ServerResponse } from "node:http";
import path from "node:path";
import send from "send";

export const DASHBOARD_DIR = path.resolve(import.meta.dirname, "../web/dist");
const ASSETS_PREFIX = "/assets/";
/** Vite's output names: name-hash.ext, nothing that walks out of the folder. */
const ASSET_NAME = /^[\w-][\w.-]*$/;

/**
 * What the page may load: only Podflow itself, except media and uploads, which may live at the
 * media engine (Ittybit's signed upload URLs and CDN).
 */
const CONTENT_SECURITY_POLICY = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "media-src 'self' http: https: blob:",
  "connect-src 'self' ws: wss: http: https:",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join("; ");

export function ownsDashboardPath(pathname: string): boolean {
  return pathname === "/" || pathname === "/index.html" || pathname.startsWith(ASSETS_PREFIX);
}

export async function serveDashboard(
  req: IncomingMessage,
  res: ServerResponse,
  pathname: string,
  notFound: () => void,
  dir = DASHBOARD_DIR,
): Promise<void> {
  if (req.method !== "GET" && req.method !== "HEAD") {
    res.writeHead(405, { allow: "GET, HEAD" }).end();
    return;
  }
  const isAsset = pathname.startsWith(ASSETS_PREFIX);
  if (isAsset && !ASSET_NAME.test(pathname.slice(ASSETS_PREFIX.length))) return notFound();
  const file = isAsset ? pathname : "/index.html";
  if (!isAsset && !existsSync(path.join(dir, file))) {
    const text = "The dashboard is not built: run `npm run build:web` (npm start does).\n";
    res.writeHead(503, {
      "content-type": "text/plain; charset=utf-8",
      "cache-control": "no-store",
    });
    res.end(text);
    return;
  }
  await new Promise<void>((resolve, reject) => {
    send(req, file, {
      root: dir,
      index: false,
      dotfiles: "deny",
      ...(isAsset ? { immutable: true, maxAge: "365d" } : { cacheControl: false }),
    })
      .on("error", (error: { status?: number }) => {
        if (error.status === 404) notFound();
        else if (!res.headersSent) res.writeHead(error.status ?? 500).end();
        resolve();
      })
      .on("headers", () => {
        res.setHeader("x-content-type-options", "nosniff");
        if (isAsset) return;
        res.setHeader("cache-control", "no-cache");
        res.setHeader("content-security-policy", CONTENT_SECURITY_POLICY);
        res.setHeader("referrer-policy", "no-referrer");
      })
      .on("end", resolve)
      .pipe(res);
    res.on("close", resolve);
    res.on("error", reject);
  });
}
