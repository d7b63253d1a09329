/**
 * GET/HEAD /exports/<episode id>/<key>/<file>: an episode's exports, public like the media
 * files (the key is the access), with their content types, a strong ETag (304 on a match) and
 * CORS for in-browser players. The body is made from the episode's row on each miss; it changes
 * only when a retry re-processes the episode, so caches revalidate after a few minutes.
 */
import { createHash } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { EntityManager } from "@mikro-orm/postgresql";
import { Episode } from "../../entities/episode.entity.ts";
import { EXPORT_FILES, type ExportFile, isExportKey, renderExport } from "./exports.ts";

const EXPORT_PATH =
  /^\/exports\/([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})\/([A-Za-z0-9_-]{22})\/([a-z]+\.[a-z]+)$/;

export async function serveExport(
  deps: { em: () => EntityManager; secret: Buffer },
  req: IncomingMessage,
  res: ServerResponse,
  pathname: string,
  notFound: () => void,
): Promise<void> {
  if (req.method !== "GET" && req.method !== "HEAD") {
    res.writeHead(405, { allow: "GET, HEAD" }).end();
    return;
  }
  const [, episodeId, key, file] = EXPORT_PATH.exec(pathname) ?? [];
  if (!episodeId || !key || !file || !(file in EXPORT_FILES)) return notFound();
  if (!isExportKey(deps.secret, episodeId, key)) return notFound();
  // The columns exports are made from are lazy (a list leaves them out): asked for here.
  const episode = await deps
    .em()
    .findOne(
      Episode,
      { id: episodeId, status: "PROCESSED" },
      { populate: ["transcript", "transcriptSegments", "chapters"] },
    );
  const body = episode && renderExport(file as ExportFile, episode);
  if (body == null) return notFound();
  const bytes = Buffer.from(body, "utf8");
  const etag = `"${createHash("sha256").update(bytes).digest("base64url").slice(0, 27)}"`;
  const headers = {
    etag,
    "cache-control": "public, max-age=300",
    "access-control-allow-origin": "*",
  };
  if (matchesEtag(req.headers["if-none-match"], etag)) {
    res.writeHead(304, headers).end();
    return;
  }
  res.writeHead(200, {
    ...headers,
    "content-type": EXPORT_FILES[file as ExportFile],
    "content-length": bytes.length,
  });
  res.end(req.method === "HEAD" ? undefined : bytes);
}

/** If-None-Match: `*` or a list of (possibly weak) tags, compared weakly (RFC 9110 13.1.2). */
export function matchesEtag(header: string | undefined, etag: string): boolean {
  if (!header) return false;
  const bare = (tag: string) => tag.trim().replace(/^W\//, "");
  return header.trim() === "*" || header.split(",").some((tag) => bare(tag) === bare(etag));
}
