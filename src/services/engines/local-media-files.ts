/**
 * GET/HEAD /media/<name>: the local engine's outputs, for podcast apps, YouTube and browsers,
 * which fetch without a token — the unguessable name is the access. `send` (the file server
 * under Express's static middleware) answers with Content-Type, Content-Length, ETag and
 * Last-Modified, conditional requests, and byte ranges (206), which podcast players seek with.
 * A name never changes its bytes, so caches may keep a file for good.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import send from "send";
import type { MediaStorage } from "../storage.ts";
import { MEDIA_PATH_PREFIX, OUTPUT_NAME, outputKey } from "./local-outputs.ts";

export { MEDIA_PATH_PREFIX };

export async function serveLocalMedia(
  storage: MediaStorage,
  req: IncomingMessage,
  res: ServerResponse,
  pathname: string,
  notFound: () => void,
): Promise<void> {
  const name = pathname.slice(MEDIA_PATH_PREFIX.length);
  if (req.method !== "GET" && req.method !== "HEAD") {
    res.writeHead(405, { allow: "GET, HEAD" }).end();
    return;
  }
  // A name that is not an output's never reaches the disk; a missing file is send's 404.
  if (!OUTPUT_NAME.test(name)) return notFound();
  await new Promise<void>((resolve, reject) => {
    send(req, storage.localPath(outputKey(name)), { immutable: true, maxAge: "365d" })
      .on("error", (error: { status?: number }) => {
        if (error.status === 404) notFound();
        else if (!res.headersSent) res.writeHead(error.status ?? 500).end();
        resolve();
      })
      .on("end", resolve)
      .on("headers", () => res.setHeader("access-control-allow-origin", "*"))
      .pipe(res);
    res.on("close", resolve);
    res.on("error", reject);
  });
}
