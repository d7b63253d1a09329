import { randomUUID } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import { webhookHeaders } from "./webhook-signing.ts";

// Deliveries as a per-task `webhook_url` receives them: a JSON POST of the task,
// here signed with Standard Webhooks headers when there is a secret.

export interface WebhookDeliveryOptions {
  /** What to send instead of the task as it is when deliverWebhook is called. */
  payload?: unknown;
  /** Defaults to whether the stand-in has a webhook secret. */
  signed?: boolean;
  /** Sign with this secret instead of the stand-in's (to send a forged delivery). */
  secret?: string;
  webhookId?: string;
  /** Unix seconds; the moment of sending when omitted. */
  timestamp?: number;
  /** Send the identical delivery (same id, body and signature) twice, as a retrying sender does. */
  duplicate?: boolean;
  /** Wait this long before sending; the payload is still the task as it was when called. */
  delayMs?: number;
}

export interface WebhookDeliveryResult {
  webhookId: string;
  /** Of the last attempt. */
  status: number;
  body: unknown;
  responses: Array<{ status: number; body: unknown }>;
}

export async function deliverWebhook(
  target: string,
  task: unknown,
  standInSecret: string | undefined,
  delivery: WebhookDeliveryOptions,
): Promise<WebhookDeliveryResult> {
  // Serialised before any wait, so a delayed delivery carries the task as it was when scheduled.
  const body = JSON.stringify(delivery.payload ?? task);
  assertLoopback(target);
  const webhookId = delivery.webhookId ?? `msg_${randomUUID()}`;
  const secret = delivery.secret ?? (delivery.signed === false ? undefined : standInSecret);
  if (delivery.signed && !secret) throw new Error("a signed delivery needs a webhook secret");
  if (delivery.delayMs) await sleep(delivery.delayMs);

  const timestamp = delivery.timestamp ?? Math.floor(Date.now() / 1000);
  const headers = {
    "content-type": "application/json",
    ...(secret ? webhookHeaders(secret, webhookId, timestamp, body) : {}),
  };
  const responses: WebhookDeliveryResult["responses"] = [];
  for (let attempt = delivery.duplicate ? 2 : 1; attempt > 0; attempt -= 1) {
    const answer = await fetch(target, { method: "POST", headers, body });
    responses.push({ status: answer.status, body: parseLenient(await answer.text()) });
  }
  const last = responses[responses.length - 1] as WebhookDeliveryResult["responses"][number];
  return { webhookId, ...last, responses };
}

// Tests never reach beyond this machine, even when a webhook_url is misconfigured.
function assertLoopback(target: string): void {
  const { hostname } = new URL(target);
  if (!["127.0.0.1", "localhost", "[::1]"].includes(hostname)) {
    throw new Error(`refusing to deliver a webhook beyond 127.0.0.1: ${target}`);
  }
}

function parseLenient(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}
