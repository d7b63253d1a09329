import type { IncomingMessage, ServerResponse } from "node:http";
import type { EntityManager } from "@mikro-orm/postgresql";
import type { Logger } from "pino";
import { completeYouTubeConnection } from "./connections.ts";
import type { Distribution } from "./index.ts";

const escapeHtml = (text: string) => text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

/**
 * GET /oauth/youtube/callback: where Google sends the producer's browser after consent. The
 * page says in a sentence whether YouTube is connected; the code and state never reach a log.
 */
export async function handleYouTubeCallback(
  deps: { em: () => EntityManager; distribution: Distribution; logger: Logger },
  req: IncomingMessage,
  res: ServerResponse,
  url: URL,
): Promise<void> {
  if (req.method !== "GET") {
    res.writeHead(405, { allow: "GET" }).end();
    return;
  }
  const result = await completeYouTubeConnection(
    { em: deps.em(), distribution: deps.distribution, logger: deps.logger },
    {
      state: url.searchParams.get("state"),
      code: url.searchParams.get("code"),
      error: url.searchParams.get("error"),
    },
  );
  res.writeHead(result.ok ? 200 : 400, {
    "content-type": "text/html; charset=utf-8",
    "cache-control": "no-store",
    "referrer-policy": "no-referrer",
  });
  res.end(
    `<!doctype html><meta charset="utf-8"><title>Podflow · YouTube</title><p>${escapeHtml(result.message)}</p><p>You can close this page.</p>`,
  );
}
