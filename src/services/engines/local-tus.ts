/**
 * Resumable uploads to the local engine with the tus 1.0 protocol (@tus/server, the reference
 * implementation; clients such as tus-js-client and Uppy speak it), for recordings too large to
 * send in one go over a line that may drop.
 *
 * - `POST /uploads/tus/<episodeId>?expires=…&signature=…` creates an upload (the same signature
 *   as the plain PUT URL: the URL is the authorisation, no API token);
 * - `PATCH`/`HEAD /uploads/tus/<episodeId>/<fileId>?…` send and resume it — the Location the
 *   server answers carries the signature on, so clients need nothing else;
 * - when the last byte is in, the file moves to the episode's uploads and the final PATCH answers
 *   `200 {"id": "<fileId>"}`; the file id is also the last segment of the upload's URL, which is
 *   what `confirmUpload` takes.
 *
 * Partial uploads live under PODFLOW_MEDIA_DIR/tus. The lock that keeps two requests for one
 * upload apart is per process: a load balancer should keep an upload on one instance.
 */

import { rm } from "node:fs/promises";
import type { IncomingMessage, ServerResponse } from "node:http";
import path from "node:path";
import { FileStore } from "@tus/file-store";
import { Server } from "@tus/server";
import type { Orm } from "../../database/orm.ts";
import type { MediaStorage } from "../storage.ts";
import { authoriseUpload, FILE_ID, newFileId, uploadKey } from "./local-uploads.ts";

export const TUS_PATH = "/uploads/tus";

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** tus's hooks reject a request by throwing this shape. */
function refuse(status_code: number, message: string): never {
  throw { status_code, body: JSON.stringify({ error: message }) };
}

/** The upload's id in the store: `<episodeId>.<fileId>`; its URL: `/uploads/tus/<episodeId>/<fileId>`. */
function parseUploadId(id: string): { episodeId: string; fileId: string } | null {
  const [episodeId = "", fileId = ""] = id.split(".");
  return UUID.test(episodeId) && FILE_ID.test(fileId) ? { episodeId, fileId } : null;
}

export function createTusUploads(deps: {
  orm: Orm;
  storage: MediaStorage;
  secret: Buffer;
  publicUrl: string;
  /** Where partial uploads are kept (on the storage's disk, so finished ones move). */
  directory: string;
  maxBytes: number;
}) {
  const segments = (url: string) =>
    new URL(url).pathname
      .slice(TUS_PATH.length + 1)
      .split("/")
      .filter(Boolean);

  const server = new Server({
    path: TUS_PATH,
    datastore: new FileStore({ directory: deps.directory }),
    maxSize: deps.maxBytes,
    namingFunction: (req) => {
      const [episodeId = ""] = segments(req.url);
      if (!UUID.test(episodeId)) refuse(404, "no such upload");
      return `${episodeId}.${newFileId()}`;
    },
    getFileIdFromRequest: (req) => {
      const [episodeId = "", fileId = "", ...rest] = segments(req.url);
      return rest.length === 0 && parseUploadId(`${episodeId}.${fileId}`)
        ? `${episodeId}.${fileId}`
        : undefined;
    },
    generateUrl: (req, { id }) => {
      const { episodeId, fileId } = parseUploadId(id) ?? refuse(404, "no such upload");
      const query = new URL(req.url).search;
      return `${deps.publicUrl}${TUS_PATH}/${episodeId}/${fileId}${query}`;
    },
    onIncomingRequest: async (req, id) => {
      const upload = parseUploadId(id) ?? refuse(404, "no such upload");
      const allowed = await authoriseUpload(deps, upload.episodeId, new URL(req.url).searchParams);
      if (!allowed.ok) refuse(allowed.status, allowed.error);
    },
    onUploadFinish: async (_req, upload) => {
      const { episodeId, fileId } = parseUploadId(upload.id) ?? refuse(404, "no such upload");
      const partial = path.join(deps.directory, upload.id);
      await deps.storage.adopt(uploadKey(episodeId, fileId), partial);
      await rm(`${partial}.json`, { force: true });
      return {
        status_code: 200,
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ id: fileId, object: "file", episodeId, filesize: upload.size }),
      };
    },
  });

  return {
    handle: (req: IncomingMessage, res: ServerResponse) => server.handle(req, res),
  };
}
