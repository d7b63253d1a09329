import { createHash } from "node:crypto";
import type { IncomingMessage } from "node:http";
import type { AppDeps } from "./deps.ts";
import {
  normalizeTaskPayload,
  type TaskEvent,
  TaskEventParseError,
  verifyWebhook,
} from "./services/ittybit/index.ts";
import { applyTaskEvent } from "./services/task-events.ts";

export const ITTYBIT_WEBHOOK_PATH = "/webhooks/ittybit";

/** Ittybit's deliveries are small task objects; anything near this is not one. */
export const MAX_WEBHOOK_BYTES = 1024 * 1024;

type Reply = (status: number, body: Record<string, unknown>) => void;

/**
 * POST /webhooks/ittybit: verify, parse, then apply through the inbox in one transaction.
 * Answers in milliseconds with no outside call: 200 received/duplicate/ignored, 4xx for a
 * delivery that must not be retried as it is, 5xx (so Ittybit retries) when we could not store it.
 */
export async function handleIttybitWebhook(
  deps: AppDeps,
  req: IncomingMessage,
  reply: Reply,
): Promise<void> {
  if (req.method !== "POST") return reply(405, { error: "use POST" });
  const rawBody = await readBody(req, MAX_WEBHOOK_BYTES);
  if (!rawBody) return reply(413, { error: `body larger than ${MAX_WEBHOOK_BYTES} bytes` });

  const secret = deps.config.ittybit.webhookSecret;
  let webhookId = headerValue(req, "webhook-id");
  if (secret) {
    const verified = verifyWebhook({ secret, headers: req.headers, rawBody });
    if (!verified.ok) return reply(401, { error: `signature rejected: ${verified.reason}` });
    webhookId = verified.webhookId;
  }

  let payload: unknown;
  try {
    payload = JSON.parse(rawBody.toString("utf8"));
  } catch {
    return reply(400, { error: "body is not valid JSON" });
  }
  let event: TaskEvent;
  try {
    event = normalizeTaskPayload(payload, webhookId ?? undefined);
  } catch (error) {
    if (error instanceof TaskEventParseError) return reply(400, { error: error.message });
    throw error;
  }

  const deliveryId =
    event.deliveryId ??
    `sha256:${createHash("sha256").update(`${event.taskId}\n${event.rawStatus}\n`).update(rawBody).digest("hex")}`;
  const outcome = await applyTaskEvent(deps, event, { id: deliveryId, payload });
  const status = outcome === "applied" || outcome === "stale" ? "received" : outcome;
  reply(200, { status });
}

function headerValue(req: IncomingMessage, name: string): string | null {
  const value = req.headers[name];
  return (Array.isArray(value) ? value[0] : value) ?? null;
}

/** The whole body, or null as soon as it passes `limit` bytes (then the rest is not read). */
async function readBody(req: IncomingMessage, limit: number): Promise<Buffer | null> {
  if (Number(req.headers["content-length"] ?? 0) > limit) return null;
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > limit) return null;
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}
