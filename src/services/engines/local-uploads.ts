/**
 * Uploads to the local media engine: `prepareUpload` hands out a URL under PUBLIC_URL that is
 * signed (HMAC-SHA256 with an installation secret), expires, and names one episode, so it works
 * without an API token — like Ittybit's signed upload URLs, which clients already use. A `PUT`
 * of the bytes streams them to storage and answers `201 { "id": "<file id>", … }`.
 */
import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import type { IncomingMessage } from "node:http";
import { PassThrough } from "node:stream";
import type { Orm } from "../../database/orm.ts";
import { Episode } from "../../entities/episode.entity.ts";
import { type MediaStorage, ObjectTooLargeError } from "../storage.ts";

export const UPLOAD_PATH_PREFIX = "/uploads/";

/** How long an upload URL stays valid: a multi-gigabyte upload on a slow line takes hours. */
export const UPLOAD_URL_LIFETIME_MS = 12 * 60 * 60 * 1000;

/** The storage key of an episode's uploaded file; the episode id in the key is what ties them. */
export function uploadKey(episodeId: string, fileId: string): string {
  return `uploads/${episodeId}/${fileId}`;
}

/** What a signature covers: the purpose, the episode and the expiry. */
function signature(secret: Buffer, episodeId: string, expiresAtSeconds: number): string {
  return createHmac("sha256", secret)
    .update(`upload:${episodeId}:${expiresAtSeconds}`)
    .digest("base64url");
}

/**
 * `<base><episodeId>?expires=…&signature=…`: the plain PUT URL (base `PUBLIC_URL/uploads/`) or
 * the tus creation URL (base `PUBLIC_URL/uploads/tus/`), signed alike.
 */
export function signUploadUrl(
  secret: Buffer,
  base: string,
  episodeId: string,
  expiresAt: Date,
): string {
  const expires = Math.floor(expiresAt.getTime() / 1000);
  const url = new URL(`${base}${episodeId}`);
  url.searchParams.set("expires", String(expires));
  url.searchParams.set("signature", signature(secret, episodeId, expires));
  return url.toString();
}

export type UploadCheck = { ok: true } | { ok: false; status: 403 | 410; error: string };

export function checkUploadSignature(
  secret: Buffer,
  episodeId: string,
  query: URLSearchParams,
  now = Date.now(),
): UploadCheck {
  const expires = Number(query.get("expires"));
  const given = Buffer.from(query.get("signature") ?? "");
  const expected = Buffer.from(
    Number.isSafeInteger(expires) ? signature(secret, episodeId, expires) : "",
  );
  if (
    expected.length === 0 ||
    given.length !== expected.length ||
    !timingSafeEqual(given, expected)
  ) {
    return { ok: false, status: 403, error: "the upload URL's signature is not valid" };
  }
  if (expires * 1000 < now) {
    return {
      ok: false,
      status: 410,
      error: "the upload URL has expired; call prepareUpload again",
    };
  }
  return { ok: true };
}

/** A file id the local engine hands out: 128 random bits, for the PUT and the tus upload alike. */
export const FILE_ID = /^file_[A-Za-z0-9_-]{22}$/;

export function newFileId(): string {
  return `file_${randomBytes(16).toString("base64url")}`;
}

/**
 * Whether a request may upload to this episode: a valid, unexpired signature, and an episode of
 * the local engine that still awaits its upload. The PUT route and the tus routes both ask.
 */
export async function authoriseUpload(
  deps: { orm: Orm; secret: Buffer },
  episodeId: string,
  query: URLSearchParams,
): Promise<{ ok: true } | { ok: false; status: 403 | 404 | 409 | 410; error: string }> {
  const check = checkUploadSignature(deps.secret, episodeId, query);
  if (!check.ok) return check;
  const episode = await deps.orm.em.fork().findOne(Episode, { id: episodeId });
  if (episode?.engine !== "local") return { ok: false, status: 404, error: "no such upload" };
  if (episode.status !== "AWAITING_UPLOAD") {
    return {
      ok: false,
      status: 409,
      error: `this episode is ${episode.status} and takes no more uploads`,
    };
  }
  return { ok: true };
}

type Reply = (
  status: number,
  body: Record<string, unknown>,
  headers?: Record<string, string>,
) => void;

/** A refused body is not read to its end: the answer closes the connection instead. */
const CLOSE = { connection: "close" };

/**
 * PUT /uploads/<episodeId>?expires=…&signature=…: streams the body to storage under a new file
 * id. Only an episode of the local engine that still awaits its upload takes one; a file beyond
 * the size limit is refused while it streams (or before, by its Content-Length) and not kept.
 */
export async function handleLocalUpload(
  deps: { orm: Orm; storage: MediaStorage; secret: Buffer; maxBytes: number },
  req: IncomingMessage,
  url: URL,
  reply: Reply,
): Promise<void> {
  const episodeId = url.pathname.slice(UPLOAD_PATH_PREFIX.length);
  if (req.method !== "PUT") return reply(405, { error: "use PUT" });
  const allowed = await authoriseUpload(deps, episodeId, url.searchParams);
  if (!allowed.ok) return reply(allowed.status, { error: allowed.error });
  const declared = Number(req.headers["content-length"]);
  const tooLarge = { error: `the file is larger than the limit of ${deps.maxBytes} bytes` };
  if (declared > deps.maxBytes) return reply(413, tooLarge, CLOSE);
  const fileId = newFileId();
  try {
    // Through a PassThrough, so a refusal stops the body without destroying the request's
    // socket before the 413 is written.
    const body = req.pipe(new PassThrough());
    const stored = await deps.storage.write(uploadKey(episodeId, fileId), body, {
      maxBytes: deps.maxBytes,
    });
    reply(201, {
      id: fileId,
      object: "file",
      episodeId,
      filesize: stored.bytes,
      createdAt: stored.modifiedAt.toISOString(),
    });
  } catch (error) {
    if (error instanceof ObjectTooLargeError) {
      req.unpipe();
      return reply(413, tooLarge, CLOSE);
    }
    // The client went away mid-upload: nothing is kept, nobody is left to answer.
    if (req.destroyed || (error as NodeJS.ErrnoException).code === "ERR_STREAM_PREMATURE_CLOSE") {
      return;
    }
    throw error;
  }
}
