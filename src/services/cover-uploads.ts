/**
 * Cover art uploaded to Podflow itself, like an episode's file: `prepareCoverUpload` hands out a
 * signed, expiring `PUT` URL that names one show; the upload is checked (JPEG or PNG, 1400–3000
 * px square), stored under a new unguessable name, and becomes the show's `imageUrl` at once —
 * a new name for new art, as Apple asks. `GET|HEAD /covers/<name>` serves it (with ETag and
 * ranges, which Apple's checks want).
 */
import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import { PassThrough } from "node:stream";
import type { EntityManager } from "@mikro-orm/postgresql";
import send from "send";
import { Show } from "../entities/show.entity.ts";
import type { User } from "../entities/user.entity.ts";
import { coverBytesProblem, imageFacts } from "./cover-image.ts";
import { NotFoundError } from "./errors.ts";
import { findShow } from "./shows.ts";
import { type MediaStorage, ObjectTooLargeError } from "./storage.ts";

export const COVERS_PATH_PREFIX = "/covers/";
const UPLOAD_PATH = `${COVERS_PATH_PREFIX}upload/`;
const COVER_NAME = /^[A-Za-z0-9_-]{22}\.(jpg|png)$/;
const COVER_URL_LIFETIME_MS = 60 * 60 * 1000;
/** Apple's art is at most 3000 px square; a JPEG or PNG of it is well under this. */
export const MAX_COVER_BYTES = 20 * 1024 * 1024;

function signature(secret: Buffer, showId: string, expires: number): string {
  return createHmac("sha256", secret).update(`cover:${showId}:${expires}`).digest("base64url");
}

export interface CoverUploadTarget {
  url: string;
  method: "PUT";
  expiresAt: Date;
}

/** Where to PUT the cover art of one of the user's shows. */
export async function prepareCoverUpload(
  deps: { em: EntityManager; secret: Buffer; publicUrl: string },
  user: User,
  showId: string,
): Promise<CoverUploadTarget> {
  const show = await findShow(deps.em, user, showId);
  if (!show) throw new NotFoundError("No such show");
  const expiresAt = new Date(Date.now() + COVER_URL_LIFETIME_MS);
  const expires = Math.floor(expiresAt.getTime() / 1000);
  const url = new URL(`${deps.publicUrl}${UPLOAD_PATH}${show.id}`);
  url.searchParams.set("expires", String(expires));
  url.searchParams.set("signature", signature(deps.secret, show.id, expires));
  return { url: url.toString(), method: "PUT", expiresAt };
}

type Reply = (
  status: number,
  body: Record<string, unknown>,
  headers?: Record<string, string>,
) => void;

export interface CoverDeps {
  em: () => EntityManager;
  storage: MediaStorage;
  secret: Buffer;
  publicUrl: string;
}

/** PUT /covers/upload/<show id>?expires=…&signature=…, and GET|HEAD /covers/<name>. */
export async function handleCovers(
  deps: CoverDeps,
  req: IncomingMessage,
  res: ServerResponse,
  url: URL,
  reply: Reply,
): Promise<void> {
  if (url.pathname.startsWith(UPLOAD_PATH)) {
    if (req.method !== "PUT") return reply(405, { error: "use PUT" });
    return receiveCover(deps, req, url, reply);
  }
  const name = url.pathname.slice(COVERS_PATH_PREFIX.length);
  if (req.method !== "GET" && req.method !== "HEAD") {
    res.writeHead(405, { allow: "GET, HEAD" }).end();
    return;
  }
  if (!COVER_NAME.test(name)) return reply(404, { error: "not found" });
  await new Promise<void>((resolve) => {
    send(req, deps.storage.localPath(`covers/${name}`), { immutable: true, maxAge: "365d" })
      .on("error", (error: { status?: number }) => {
        if (!res.headersSent) reply(error.status === 404 ? 404 : 500, { error: "not found" });
        resolve();
      })
      .on("end", resolve)
      .on("headers", () => res.setHeader("access-control-allow-origin", "*"))
      .pipe(res);
    res.on("close", resolve);
  });
}

async function receiveCover(deps: CoverDeps, req: IncomingMessage, url: URL, reply: Reply) {
  const showId = url.pathname.slice(UPLOAD_PATH.length);
  const expires = Number(url.searchParams.get("expires"));
  const given = Buffer.from(url.searchParams.get("signature") ?? "");
  const expected = Buffer.from(
    Number.isSafeInteger(expires) && /^[0-9a-f-]{36}$/.test(showId)
      ? signature(deps.secret, showId, expires)
      : "",
  );
  if (
    expected.length === 0 ||
    given.length !== expected.length ||
    !timingSafeEqual(given, expected)
  ) {
    return reply(403, { error: "the upload URL's signature is not valid" });
  }
  if (expires * 1000 < Date.now()) {
    return reply(410, { error: "the upload URL has expired; call prepareCoverUpload again" });
  }
  const close = { connection: "close" };
  const tooLarge = { error: `cover art is at most ${MAX_COVER_BYTES} bytes` };
  if (Number(req.headers["content-length"]) > MAX_COVER_BYTES) return reply(413, tooLarge, close);

  const incoming = `covers/incoming-${randomBytes(16).toString("base64url")}`;
  try {
    await deps.storage.write(incoming, req.pipe(new PassThrough()), { maxBytes: MAX_COVER_BYTES });
  } catch (error) {
    if (error instanceof ObjectTooLargeError) {
      req.unpipe();
      return reply(413, tooLarge, close);
    }
    if (req.destroyed) return;
    throw error;
  }
  try {
    const bytes = await deps.storage.read(incoming);
    const problem = coverBytesProblem(bytes);
    if (problem) return reply(422, { error: `The cover art ${problem}` });
    const name = `${randomBytes(16).toString("base64url")}.${imageFacts(bytes)?.type}`;
    const em = deps.em();
    const show = await em.findOne(Show, { id: showId });
    if (!show) return reply(404, { error: "no such show" });
    await deps.storage.adopt(`covers/${name}`, deps.storage.localPath(incoming));
    show.imageUrl = `${deps.publicUrl}${COVERS_PATH_PREFIX}${name}`;
    await em.flush();
    reply(201, { imageUrl: show.imageUrl, bytes: bytes.length });
  } finally {
    await deps.storage.remove(incoming);
  }
}
