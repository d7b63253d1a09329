import { Webhook, WebhookVerificationError } from "standardwebhooks";

// Ittybit documents no usable signing scheme of its own, so deliveries are verified with the
// Standard Webhooks scheme (standardwebhooks.com), which a signing proxy or Ittybit can send.
// The scheme's reference library checks the signature and the timestamp; this module only maps
// headers onto it and names why a delivery was refused.

const STANDARD_HEADERS = {
  id: "webhook-id",
  timestamp: "webhook-timestamp",
  signature: "webhook-signature",
} as const;

// Svix-branded senders name the same three headers differently; the library reads only the
// unbranded names, so a Svix delivery is mapped onto them.
const HEADER_FAMILIES = [
  STANDARD_HEADERS,
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

/**
 * Checks a delivery's Standard Webhooks signature (HMAC-SHA256 over `id.timestamp.body`, any of
 * several `v1,` entries) and that its timestamp is within five minutes of our clock.
 */
export function verifyWebhook(input: {
  /** `whsec_<base64>`, the prefix optional. */
  secret: string;
  headers: WebhookHeaders;
  /**
   * The body exactly as received: re-serialised JSON would not match the signature. The library
   * signs text, so a body that is not UTF-8 (never a Standard Webhooks JSON payload) fails.
   */
  rawBody: string | Buffer;
}): WebhookVerification {
  const webhook = standardWebhook(input.secret);
  const found = readSignedHeaders(input.headers);
  if (!found) return { ok: false, reason: "missing_headers" };
  // The library reads the timestamp with parseInt, which takes "2025-01-01T…" for the year 2025
  // and then calls it stale; a timestamp that is not Unix seconds is a malformed delivery.
  if (!/^\d+$/.test(found.timestamp)) return { ok: false, reason: "invalid_timestamp" };

  try {
    webhook.verify(
      input.rawBody,
      {
        [STANDARD_HEADERS.id]: found.id,
        [STANDARD_HEADERS.timestamp]: found.timestamp,
        [STANDARD_HEADERS.signature]: found.signature,
      },
      { jsonParse: false },
    );
  } catch (error) {
    if (!(error instanceof WebhookVerificationError)) throw error;
    // The library tells its refusals apart only by message: "Message timestamp too old/new".
    const stale = /timestamp too (old|new)/i.test(error.message);
    return { ok: false, reason: stale ? "timestamp_out_of_tolerance" : "no_matching_signature" };
  }
  return { ok: true, webhookId: found.id, timestamp: new Date(Number(found.timestamp) * 1000) };
}

/** The last secret's verifier: the secret is decoded once, not per delivery. */
let cached: { secret: string; webhook: Webhook } | null = null;

function standardWebhook(secret: string): Webhook {
  if (cached?.secret === secret) return cached.webhook;
  try {
    const webhook = new Webhook(secret);
    cached = { secret, webhook };
    return webhook;
  } catch (error) {
    throw new WebhookSecretError("the webhook secret must be whsec_ followed by base64", {
      cause: error,
    });
  }
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

/** A header whatever its case; one sent several times is read as its entries joined. */
function header(headers: WebhookHeaders, name: string): string | undefined {
  if (headers instanceof Headers) return headers.get(name) ?? undefined;
  const entry = Object.entries(headers).find(([key]) => key.toLowerCase() === name)?.[1];
  return Array.isArray(entry) ? entry.join(" ") : entry;
}
