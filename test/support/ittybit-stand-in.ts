import { createServer, type IncomingMessage, type ServerResponse, STATUS_CODES } from "node:http";
import type { AddressInfo } from "node:net";
import { setTimeout as sleep } from "node:timers/promises";
import {
  type ApiRequest,
  type ApiResponse,
  error,
  fileUrl,
  handleApiRequest,
  type StandInState,
} from "./ittybit-stand-in-api.ts";
import {
  type DelayFault,
  type FailFault,
  FaultQueue,
  type FaultTarget,
  matchesTarget,
} from "./ittybit-stand-in-faults.ts";
import {
  defaultOutput,
  type FileObject,
  newFile,
  newId,
  newMedia,
  now,
  type StandInTask,
  type TaskObject,
} from "./ittybit-stand-in-resources.ts";
import {
  deliverWebhook,
  type WebhookDeliveryOptions,
  type WebhookDeliveryResult,
} from "./ittybit-stand-in-webhooks.ts";

// An in-memory Ittybit on 127.0.0.1 that speaks the 2025-08-20 API, for tests that exercise real
// HTTP through the real client. Tests script it: faults, task progress and webhook deliveries.

export type {
  FileObject,
  MediaObject,
  StandInTask,
  TaskObject,
} from "./ittybit-stand-in-resources.ts";
export type {
  WebhookDeliveryOptions,
  WebhookDeliveryResult,
} from "./ittybit-stand-in-webhooks.ts";

export interface IttybitStandInOptions {
  apiKey: string;
  /** `whsec_…`; deliveries are signed (Standard Webhooks) only when it is set. */
  webhookSecret?: string;
}

export interface RecordedRequest extends ApiRequest {
  receivedAt: number;
}

export interface TaskChanges {
  progress?: number;
  /** Fields of the output file; `null` completes a task without one. Defaults by task kind. */
  output?: Partial<FileObject> | null;
  error?: string | null;
}

const SUCCEEDED = new Set(["completed", "ready", "succeeded"]);
const FAILED = new Set(["failed", "error"]);

export async function startIttybitStandIn(options: IttybitStandInOptions) {
  const faults = new FaultQueue();
  const requests: RecordedRequest[] = [];
  const waiters = new Set<() => void>();
  const closing = new AbortController();

  const server = createServer((request, response) => {
    onRequest(request, response).catch((failure: unknown) => {
      console.error("Ittybit stand-in failed to answer", failure);
      if (!response.headersSent) send(response, error(500, "Stand-in error"));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  const state: StandInState = {
    baseUrl: url,
    apiKey: options.apiKey,
    keyId: newId("key"),
    files: new Map(),
    media: new Map(),
    tasks: new Map(),
    signatures: [],
    contents: new Map(),
    idempotent: new Map(),
  };

  async function onRequest(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const rawBody = Buffer.concat(await request.toArray());
    const { pathname, searchParams } = new URL(request.url ?? "/", url);
    const parsed = parseJsonBody(rawBody, request.headers["content-type"]);
    const recorded: RecordedRequest = {
      method: request.method ?? "GET",
      path: pathname,
      query: searchParams,
      headers: request.headers,
      body: parsed.body,
      rawBody,
      receivedAt: Date.now(),
    };
    requests.push(recorded);
    for (const wake of waiters) wake();

    const fault = faults.take(recorded.method, recorded.path);
    if (fault?.type === "fail") {
      const body = fault.body ?? { message: STATUS_CODES[fault.status] ?? "Error" };
      return send(response, { status: fault.status, body, headers: fault.headers });
    }
    const answer = parsed.ok ? handleApiRequest(state, recorded) : error(400, "Invalid JSON body");
    if (fault?.type === "drop") {
      response.socket?.destroy();
      return;
    }
    if (fault?.type === "malformed") return send(response, answer, { truncate: true });
    if (fault?.type === "delay") {
      await sleep(fault.delayMs, undefined, { signal: closing.signal }).catch(() => undefined);
      if (closing.signal.aborted || response.destroyed) return;
    }
    send(response, answer);
  }

  function addOutputFile({ task, request }: StandInTask, fields: Partial<FileObject>): FileObject {
    const ref = typeof request.ref === "string" ? request.ref : null;
    const defaults = defaultOutput(task, ref);
    const file = newFile(
      {
        media_id: task.input?.media_id ?? addMedia().id,
        ref,
        filesize: defaults.content.body.length,
        created_by: state.keyId,
        ...defaults.file,
        ...fields,
      },
      (id) => fileUrl(state, id),
    );
    state.files.set(file.id, file);
    if (!state.contents.has(file.id)) state.contents.set(file.id, defaults.content);
    return file;
  }

  function addMedia() {
    const media = newMedia();
    state.media.set(media.id, media);
    return media;
  }

  function requireTask(taskId: string) {
    const entry = state.tasks.get(taskId);
    if (!entry) throw new Error(`the Ittybit stand-in has no task ${taskId}`);
    return entry;
  }

  return {
    url,
    apiKey: options.apiKey,
    webhookSecret: options.webhookSecret,
    /** Every request received, in order of arrival, faulted ones included. */
    requests,
    files: state.files,
    media: state.media,
    tasks: state.tasks,
    signatures: state.signatures,

    /** Makes the next matching request(s) fail with this status instead of reaching the API. */
    failNext: (fault: FailFault) => faults.add({ type: "fail", ...fault }),
    /** Holds the answer back; the request itself takes effect at once. */
    delayNext: (fault: DelayFault) => faults.add({ type: "delay", ...fault }),
    /** Closes the connection without an answer, after the request took effect. */
    dropNext: (target: FaultTarget) => faults.add({ type: "drop", ...target }),
    /** Answers with a truncated body, after the request took effect. */
    malformedNext: (target: FaultTarget) => faults.add({ type: "malformed", ...target }),
    /** Forgets the scripted faults not used up yet: from now on every request is answered. */
    clearFaults: () => faults.clear(),

    /** Registers a file as if it had been uploaded, in a new media item unless one is given. */
    addFile(fields: Partial<FileObject> = {}): FileObject {
      const file = newFile(
        {
          media_id: fields.media_id ?? addMedia().id,
          original: true,
          created_by: state.keyId,
          ...fields,
        },
        (id) => fileUrl(state, id),
      );
      state.files.set(file.id, file);
      return file;
    },

    /** What `GET <file url>` serves for this file id. */
    setOutputContent(fileId: string, body: string | Buffer | object, contentType?: string): void {
      const isJson = !(typeof body === "string" || Buffer.isBuffer(body));
      state.contents.set(fileId, {
        body: isJson ? Buffer.from(JSON.stringify(body)) : Buffer.from(body),
        contentType: contentType ?? (isJson ? "application/json" : "application/octet-stream"),
      });
    },

    /**
     * Moves a task to any status word Ittybit uses and returns a copy of it as it is now. A
     * success without a given output gets a default output file (served by the stand-in); a
     * failure without an error gets a default error.
     */
    setTaskStatus(taskId: string, status: string, changes: TaskChanges = {}): TaskObject {
      const entry = requireTask(taskId);
      const { task } = entry;
      task.status = status;
      task.updated = now();
      task.progress = changes.progress ?? (SUCCEEDED.has(status) ? 100 : task.progress);
      if (changes.output === null) task.output = null;
      else if (changes.output || (SUCCEEDED.has(status) && !task.output)) {
        task.output = addOutputFile(entry, changes.output ?? {});
      }
      if (changes.error !== undefined) task.error = changes.error;
      else if (FAILED.has(status)) task.error ??= "Processing failed";
      return structuredClone(task);
    },

    /** POSTs the task, as it is now, to the `webhook_url` it was created with. */
    async deliverWebhook(
      taskId: string,
      delivery: WebhookDeliveryOptions = {},
    ): Promise<WebhookDeliveryResult> {
      const { request, task } = requireTask(taskId);
      if (typeof request.webhook_url !== "string") {
        throw new Error(`task ${taskId} has no webhook_url`);
      }
      return deliverWebhook(request.webhook_url, task, options.webhookSecret, delivery);
    },

    /** Resolves once `count` requests matching the target have arrived (earlier ones count). */
    waitForRequests(target: Omit<FaultTarget, "times">, count = 1): Promise<RecordedRequest[]> {
      return new Promise((resolve) => {
        const check = () => {
          const matching = requests.filter((r) => matchesTarget(target, r.method, r.path));
          if (matching.length < count) return false;
          waiters.delete(wake);
          resolve(matching.slice(0, count));
          return true;
        };
        const wake = () => void check();
        if (!check()) waiters.add(wake);
      });
    },

    async close(): Promise<void> {
      closing.abort();
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      await closed;
    },
  };
}

export type IttybitStandIn = Awaited<ReturnType<typeof startIttybitStandIn>>;

function parseJsonBody(
  rawBody: Buffer,
  contentType: string | undefined,
): { ok: boolean; body: unknown } {
  if (rawBody.length === 0 || !contentType?.includes("json")) return { ok: true, body: undefined };
  try {
    return { ok: true, body: JSON.parse(rawBody.toString("utf8")) };
  } catch {
    return { ok: false, body: rawBody.toString("utf8") };
  }
}

function send(response: ServerResponse, answer: ApiResponse, { truncate = false } = {}): void {
  const { body, contentType, headers } =
    "raw" in answer
      ? { body: answer.raw, contentType: answer.contentType, headers: {} }
      : typeof answer.body === "string"
        ? { body: Buffer.from(answer.body), contentType: "text/plain", headers: answer.headers }
        : {
            body: Buffer.from(JSON.stringify(answer.body)),
            contentType: "application/json",
            headers: answer.headers,
          };
  const payload = truncate ? body.subarray(0, Math.floor(body.length / 2)) : body;
  response.writeHead(answer.status, {
    "content-type": contentType,
    "content-length": payload.length,
    ...headers,
  });
  response.end(payload);
}
