import { createHmac, timingSafeEqual } from "node:crypto";

// Ittybit documents no usable signing scheme, so deliveries are verified with the
// Standard Webhooks scheme (standardwebhooks.com), which a signing proxy or Ittybit can send.

/** Deliveries whose timestamp is further than this from our clock are refused (replays). */
export const WEBHOOK_TOLERANCE_SECONDS = 5 * 60;

const SECRET_PREFIX = "whsec_";
const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;

// Standard Webhooks headers, then the same headers as Svix-branded senders name them.
const HEADER_FAMILIES = [
  { id: "webhook-id", timestamp: "webhook-timestamp", signature: "webhook-signature" },
  { id: "svix-id", timestamp: "svix-timestamp", signature: "svix-signature" },
] as const;

export type WebhookHeaders = Headers | Readonly<Record<string, string | string[] | undefined>>;

export type WebhookRejection =
  | "missing_headers"
  | "invalid_timestamp"
  | "timestamp_out_of_tolerance"
  | "no_matching_signature";

export type WebhookVerification =
  | { ok: true; webhookId: string; timestamp: Date }
  | { ok: false; reason: WebhookRejection };

/** A secret that cannot be a Standard Webhooks key: a configuration error, not a bad delivery. */
export class WebhookSecretError extends Error {
  override readonly name = "WebhookSecretError";
}

/** The HMAC key inside `whsec_<base64>` (the prefix is optional, as in the reference library). */
export function decodeWebhookSecret(secret: string): Buffer {
  const encoded = secret.startsWith(SECRET_PREFIX) ? secret.slice(SECRET_PREFIX.length) : secret;
  if (!BASE64.test(encoded)) {
    throw new WebhookSecretError("the webhook secret must be whsec_ followed by base64");
  }
  return Buffer.from(encoded, "base64");
}

/** The `v1,<base64>` signature of a delivery: HMAC-SHA256 over `id.timestamp.body`. */
export function signWebhook(
  secret: string,
  id: string,
  timestamp: number,
  body: string | Uint8Array,
): string {
  return `v1,${hmac(decodeWebhookSecret(secret), id, String(timestamp), body)}`;
}

/** The three headers of a signed delivery, for senders (the stand-in, tests, benchmarks). */
export function webhookHeaders(
  secret: string,
  id: string,
  timestamp: number,
  body: string | Uint8Array,
): Record<string, string> {
  return {
    "webhook-id": id,
    "webhook-timestamp": String(timestamp),
    "webhook-signature": signWebhook(secret, id, timestamp, body),
  };
}

export function verifyWebhook(input: {
  secret: string;
  headers: WebhookHeaders;
  /** The body exactly as received: re-serialised JSON would not match the signature. */
  rawBody: string | Uint8Array;
  now?: Date;
}): WebhookVerification {
  const key = decodeWebhookSecret(input.secret);
  const found = readSignedHeaders(input.headers);
  if (!found) return { ok: false, reason: "missing_headers" };

  if (!/^\d+$/.test(found.timestamp)) return { ok: false, reason: "invalid_timestamp" };
  const nowSeconds = Math.floor((input.now ?? new Date()).getTime() / 1000);
  const timestamp = Number(found.timestamp);
  if (Math.abs(nowSeconds - timestamp) > WEBHOOK_TOLERANCE_SECONDS) {
    return { ok: false, reason: "timestamp_out_of_tolerance" };
  }

  const expected = Buffer.from(hmac(key, found.id, found.timestamp, input.rawBody));
  // Several signatures are allowed so a sender can rotate secrets; entries of other versions
  // (e.g. asymmetric `v1a`) are not ours to check.
  const matches = found.signature.split(" ").some((entry) => {
    const [version, signature] = entry.split(",", 2);
    if (version !== "v1" || !signature) return false;
    const given = Buffer.from(signature);
    return given.length === expected.length && timingSafeEqual(given, expected);
  });
  return matches
    ? { ok: true, webhookId: found.id, timestamp: new Date(timestamp * 1000) }
    : { ok: false, reason: "no_matching_signature" };
}

function hmac(key: Buffer, id: string, timestamp: string, body: string | Uint8Array): string {
  return createHmac("sha256", key).update(`${id}.${timestamp}.`).update(body).digest("base64");
}

function readSignedHeaders(
  headers: WebhookHeaders,
): { id: string; timestamp: string; signature: string } | undefined {
  for (const family of HEADER_FAMILIES) {
    const id = header(headers, family.id);
    const timestamp = header(headers, family.timestamp);
    const signature = header(headers, family.signature);
    if (id && timestamp && signature) return { id, timestamp, signature };
  }
  return undefined;
}

function header(headers: WebhookHeaders, name: string): string | undefined {
  if (headers instanceof Headers) return headers.get(name) ?? undefined;
  const entry = Object.entries(headers).find(([key]) => key.toLowerCase() === name)?.[1];
  return Array.isArray(entry) ? entry.join(" ") : entry;
}
