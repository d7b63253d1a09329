import { createHmac } from "node:crypto";
import type { IncomingHttpHeaders } from "node:http";
import {
  type FileObject,
  type MediaObject,
  newFile,
  newId,
  newMedia,
  now,
  type SignatureObject,
  type StandInTask,
  type StoredContent,
  TASK_KINDS,
} from "./ittybit-stand-in-resources.ts";

// The HTTP behaviour of Ittybit's 2025-08-20 API as the reference documents it: bare resources,
// 201 on create, `{message}` errors, 401 without the key, 404 for unknown ids, page/limit lists,
// and `Idempotency-Key` on POST answered with the original response.

export interface StandInState {
  baseUrl: string;
  apiKey: string;
  /** The `created_by` of everything made with the key. */
  keyId: string;
  files: Map<string, FileObject>;
  media: Map<string, MediaObject>;
  tasks: Map<string, StandInTask>;
  signatures: SignatureObject[];
  /** What `GET /_files/<id>` serves. */
  contents: Map<string, StoredContent>;
  /** First successful response per `POST path + Idempotency-Key`. */
  idempotent: Map<string, unknown>;
}

export interface ApiRequest {
  method: string;
  path: string;
  query: URLSearchParams;
  headers: IncomingHttpHeaders;
  body: unknown;
  rawBody: Buffer;
}

export type ApiResponse =
  | { status: number; body: unknown; headers?: Record<string, string> }
  | { status: number; raw: Buffer; contentType: string };

type Handler = (state: StandInState, request: ApiRequest, id: string) => ApiResponse;

const ROUTES: Array<{ pattern: RegExp; handlers: Partial<Record<string, Handler>> }> = [
  { pattern: /^\/signatures$/, handlers: { POST: createSignature } },
  {
    pattern: /^\/files\/([^/]+)$/,
    handlers: { GET: (state, _, id) => found(state.files.get(id), "File") },
  },
  { pattern: /^\/media$/, handlers: { POST: createMedia } },
  { pattern: /^\/media\/([^/]+)$/, handlers: { GET: getMedia } },
  { pattern: /^\/tasks$/, handlers: { GET: listTasks, POST: createTask } },
  {
    pattern: /^\/tasks\/([^/]+)$/,
    handlers: { GET: (state, _, id) => found(state.tasks.get(id)?.task, "Task") },
  },
];

export function handleApiRequest(state: StandInState, request: ApiRequest): ApiResponse {
  // Delivery URLs live on the project's own domain and need no API key.
  if (request.path.startsWith("/_files/")) return serveFile(state, request);
  if (request.path.startsWith("/_uploads/")) return signedUpload(state, request);

  const authorization = request.headers.authorization;
  if (!authorization) return error(401, "Missing API key");
  if (authorization !== `Bearer ${state.apiKey}`) return error(401, "Invalid API key");

  const route = ROUTES.find(({ pattern }) => pattern.test(request.path));
  if (!route) return error(404, "Not found");
  const handler = route.handlers[request.method];
  if (!handler) return error(405, "Method not allowed");
  const id = decodeURIComponent(route.pattern.exec(request.path)?.[1] ?? "");

  const key = request.headers["idempotency-key"];
  const idempotencyKey = request.method === "POST" && typeof key === "string" ? key : undefined;
  const replayKey = `${request.path} ${idempotencyKey}`;
  if (idempotencyKey && state.idempotent.has(replayKey)) {
    return { status: 200, body: state.idempotent.get(replayKey) };
  }
  const response = handler(state, request, id);
  if (idempotencyKey && "body" in response && response.status < 300) {
    state.idempotent.set(replayKey, response.body);
  }
  return response;
}

export function error(status: number, message: string): ApiResponse {
  return { status, body: { message } };
}

function found(resource: unknown, name: string): ApiResponse {
  return resource ? { status: 200, body: resource } : error(404, `${name} not found`);
}

function objectBody(request: ApiRequest): Record<string, unknown> | undefined {
  const { body } = request;
  return body && typeof body === "object" && !Array.isArray(body)
    ? (body as Record<string, unknown>)
    : undefined;
}

function optionalString(value: unknown): string | null {
  return typeof value === "string" ? value : null;
}

function createSignature(state: StandInState, request: ApiRequest): ApiResponse {
  const body = objectBody(request);
  if (!body || typeof body.filename !== "string" || !body.filename) {
    return error(400, "filename is required");
  }
  const method = body.method ?? "get";
  if (method !== "get" && method !== "put") return error(400, "method must be get or put");
  const expiry =
    typeof body.expiry === "number" ? body.expiry : Math.floor(Date.now() / 1000) + 3600;
  const folder = optionalString(body.folder);
  const deliveryPath = [folder, body.filename]
    .filter((part) => part !== null)
    .map((part) => `/${encodeURIComponent(part)}`)
    .join("");
  const signature = signPath(state.apiKey, deliveryPath, expiry, method);
  const created: SignatureObject = {
    domain: new URL(state.baseUrl).host,
    filename: body.filename,
    folder,
    expiry,
    method,
    signature,
    url: `${state.baseUrl}/_uploads${deliveryPath}?expiry=${expiry}&method=${method}&signature=${signature}`,
  };
  state.signatures.push(created);
  return { status: 201, body: created };
}

/** Ittybit's documented URL signing: HMAC-SHA256 keyed with the API key, base64url. */
function signPath(apiKey: string, path: string, expiry: number, method: string): string {
  return createHmac("sha256", apiKey)
    .update(`${path}?expiry=${expiry}&method=${method}`)
    .digest("base64url");
}

function signedUpload(state: StandInState, request: ApiRequest): ApiResponse {
  if (request.method !== "PUT") return error(405, "Method not allowed");
  const deliveryPath = request.path.slice("/_uploads".length);
  const expiry = Number(request.query.get("expiry"));
  const method = request.query.get("method") ?? "";
  const expected = signPath(state.apiKey, deliveryPath, expiry, method);
  if (request.query.get("signature") !== expected) return error(403, "Invalid signature");
  if (expiry < Date.now() / 1000) return error(403, "Signature expired");
  if (method !== "put") return error(403, "Signature not valid for uploads");

  const segments = deliveryPath.split("/").slice(1).map(decodeURIComponent);
  const filename = segments.pop() ?? "";
  const folder = segments.length > 0 ? segments.join("/") : null;
  const contentType = request.headers["content-type"] ?? "application/octet-stream";
  const media = newMedia({ title: filename });
  state.media.set(media.id, media);
  const file = newFile(
    {
      media_id: media.id,
      kind: contentType.split("/")[0] === "audio" ? "audio" : "video",
      type: contentType,
      filesize: request.rawBody.length,
      folder,
      filename,
      original: true,
      created_by: state.keyId,
    },
    (id) => fileUrl(state, id),
  );
  state.files.set(file.id, file);
  state.contents.set(file.id, { body: request.rawBody, contentType });
  return { status: 201, body: file };
}

export function fileUrl(state: StandInState, fileId: string): string {
  return `${state.baseUrl}/_files/${fileId}`;
}

/** Ittybit's file server: GET, and HEAD with the file's Content-Length (Node sends no body). */
function serveFile(state: StandInState, request: ApiRequest): ApiResponse {
  if (request.method !== "GET" && request.method !== "HEAD") {
    return error(405, "Method not allowed");
  }
  const content = state.contents.get(decodeURIComponent(request.path.slice("/_files/".length)));
  if (!content) return error(404, "File not found");
  return { status: 200, raw: content.body, contentType: content.contentType };
}

function createMedia(state: StandInState, request: ApiRequest): ApiResponse {
  const body = objectBody(request) ?? {};
  const media = newMedia({
    title: optionalString(body.title),
    alt: optionalString(body.alt),
    metadata: (body.metadata as Record<string, unknown> | undefined) ?? {},
  });
  state.media.set(media.id, media);
  return { status: 201, body: media };
}

function getMedia(state: StandInState, _: ApiRequest, id: string): ApiResponse {
  const media = state.media.get(id);
  if (!media) return error(404, "Media not found");
  const files = [...state.files.values()].filter((file) => file.media_id === id);
  return {
    status: 200,
    body: {
      ...media,
      files: files.map(({ media_id: _mediaId, ...file }) => file),
      // A task's `ref` files its output under that key.
      urls: Object.fromEntries(
        files.filter((file) => file.ref).map((file) => [file.ref, file.url]),
      ),
    },
  };
}

function createTask(state: StandInState, request: ApiRequest): ApiResponse {
  const body = objectBody(request);
  if (!body) return error(400, "Request body must be a JSON object");
  const { kind, file_id: fileId, url, webhook_url: webhookUrl, ...options } = body;
  if (typeof kind !== "string" || !TASK_KINDS.has(kind)) return error(400, "Invalid kind");
  if ((fileId === undefined) === (url === undefined)) {
    return error(400, "Send exactly one of file_id or url");
  }
  if (webhookUrl !== undefined && (typeof webhookUrl !== "string" || !URL.canParse(webhookUrl))) {
    return error(400, "webhook_url must be a URL");
  }
  let input: FileObject | null = null;
  if (fileId !== undefined) {
    if (typeof fileId !== "string") return error(400, "file_id must be a string");
    input = state.files.get(fileId) ?? null;
    if (!input) return error(404, "File not found");
  }

  const at = now();
  const task: StandInTask = {
    request: structuredClone(body),
    task: {
      id: newId("task"),
      object: "task",
      kind,
      status: "pending",
      progress: 0,
      input,
      options,
      output: null,
      error: null,
      created_by: state.keyId,
      created: at,
      updated: at,
    },
  };
  state.tasks.set(task.task.id, task);
  return { status: 201, body: task.task };
}

function listTasks(state: StandInState, request: ApiRequest): ApiResponse {
  const page = Number(request.query.get("page") ?? 1);
  const limit = Number(request.query.get("limit") ?? 20);
  if (!Number.isInteger(page) || page < 1) return error(400, "page must be a positive integer");
  if (!Number.isInteger(limit) || limit < 1 || limit > 100) {
    return error(400, "limit must be between 1 and 100");
  }
  const status = request.query.get("status");
  const kind = request.query.get("kind");
  const tasks = [...state.tasks.values()]
    .map(({ task }) => task)
    .filter((task) => (!status || task.status === status) && (!kind || task.kind === kind))
    .reverse();
  return { status: 200, body: tasks.slice((page - 1) * limit, page * limit) };
}
