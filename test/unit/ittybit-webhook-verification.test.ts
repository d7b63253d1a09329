import { createHmac } from "node:crypto";
import { Webhook } from "standardwebhooks";
import { afterEach, describe, expect, it, vi } from "vitest";
import {
  verifyWebhook,
  WebhookSecretError,
} from "../../src/services/ittybit/webhook-verification.ts";
import { webhookHeaders } from "../support/webhook-signing.ts";

// Verification runs on the `standardwebhooks` reference library; these cases pin what Podflow
// adds around it (header names and forms, the reason for a refusal) and that the library's own
// verdict is the one reported. Signatures are also made by hand from the scheme's definition, so
// a library that drifted from the spec would not pass.

const secret = `whsec_${Buffer.from("podflow test secret, 32 bytes!!").toString("base64")}`;
const otherSecret = `whsec_${Buffer.from("someone else's secret, 32 bytes").toString("base64")}`;
const reference = new Webhook(secret);
const body = JSON.stringify({ id: "task_abcdefghijkl", status: "completed", note: "ünïcødé ✓" });
const id = "msg_2b9Xq7";

function nowSeconds(): number {
  return Math.floor(Date.now() / 1000);
}

/** Headers as the reference library signs them. */
type SignedHeaders = Record<"webhook-id" | "webhook-timestamp" | "webhook-signature", string>;

function referenceHeaders(timestamp = nowSeconds(), payload = body): SignedHeaders {
  return {
    "webhook-id": id,
    "webhook-timestamp": String(timestamp),
    "webhook-signature": reference.sign(id, new Date(timestamp * 1000), payload),
  };
}

function referenceAccepts(headers: Record<string, string>, payload = body): boolean {
  try {
    reference.verify(payload, headers);
    return true;
  } catch {
    return false;
  }
}

/** `v1,` + base64 HMAC-SHA256 over `id.timestamp.body`, keyed by the secret's base64 part. */
function signByHand(key: string, msgId: string, timestamp: number, payload: string | Buffer) {
  const hmac = createHmac("sha256", Buffer.from(key.replace(/^whsec_/, ""), "base64"));
  return `v1,${hmac.update(`${msgId}.${timestamp}.`).update(payload).digest("base64")}`;
}

describe("the senders' signing helper", () => {
  it("signs as the Standard Webhooks definition says", () => {
    const timestamp = 1_735_689_886;
    for (const payload of [body, "", "{}", "a.b.c"]) {
      expect(webhookHeaders(secret, id, timestamp, payload)["webhook-signature"]).toBe(
        signByHand(secret, id, timestamp, payload),
      );
    }
  });
});

describe("verifyWebhook", () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it("accepts a delivery signed by hand from the scheme's definition", () => {
    const timestamp = nowSeconds();
    const headers = {
      "webhook-id": id,
      "webhook-timestamp": String(timestamp),
      "webhook-signature": signByHand(secret, id, timestamp, body),
    };
    expect(verifyWebhook({ secret, headers, rawBody: body }).ok).toBe(true);
    expect(verifyWebhook({ secret, headers, rawBody: `${body} ` })).toEqual({
      ok: false,
      reason: "no_matching_signature",
    });
  });

  it("accepts a delivery signed by the reference library and names it", () => {
    const timestamp = nowSeconds();
    expect(verifyWebhook({ secret, headers: referenceHeaders(timestamp), rawBody: body })).toEqual({
      ok: true,
      webhookId: id,
      timestamp: new Date(timestamp * 1000),
    });
  });

  it("accepts the raw body as bytes", () => {
    const result = verifyWebhook({
      secret,
      headers: referenceHeaders(),
      rawBody: Buffer.from(body),
    });
    expect(result.ok).toBe(true);
  });

  it("rejects a tampered body, as the reference does", () => {
    const headers = referenceHeaders();
    const tampered = body.replace("completed", "failed");
    expect(verifyWebhook({ secret, headers, rawBody: tampered })).toEqual({
      ok: false,
      reason: "no_matching_signature",
    });
    expect(referenceAccepts(headers, tampered)).toBe(false);
  });

  it("rejects a delivery signed with another secret, as the reference does", () => {
    const headers = webhookHeaders(otherSecret, id, nowSeconds(), body);
    expect(verifyWebhook({ secret, headers, rawBody: body })).toEqual({
      ok: false,
      reason: "no_matching_signature",
    });
    expect(referenceAccepts(headers)).toBe(false);
  });

  it("rejects a changed id or timestamp, which are signed too", () => {
    const headers = referenceHeaders();
    const otherId = { ...headers, "webhook-id": "msg_other" };
    const otherTime = { ...headers, "webhook-timestamp": String(nowSeconds() - 1) };
    for (const changed of [otherId, otherTime]) {
      expect(verifyWebhook({ secret, headers: changed, rawBody: body }).ok).toBe(false);
      expect(referenceAccepts(changed)).toBe(false);
    }
  });

  it("rejects timestamps more than five minutes away, either way, as the reference does", () => {
    for (const offset of [-301, 301]) {
      const headers = referenceHeaders(nowSeconds() + offset);
      expect(verifyWebhook({ secret, headers, rawBody: body })).toEqual({
        ok: false,
        reason: "timestamp_out_of_tolerance",
      });
      expect(referenceAccepts(headers)).toBe(false);
    }
  });

  it("accepts timestamps up to five minutes away", () => {
    vi.useFakeTimers({ now: new Date(1_735_689_886_000), toFake: ["Date"] });
    for (const offset of [-300, 300]) {
      const headers = webhookHeaders(secret, id, 1_735_689_886 + offset, body);
      expect(verifyWebhook({ secret, headers, rawBody: body }).ok).toBe(true);
    }
  });

  it("judges the timestamp against the clock", () => {
    const headers = webhookHeaders(secret, id, 1_000_000, body);
    expect(verifyWebhook({ secret, headers, rawBody: body })).toEqual({
      ok: false,
      reason: "timestamp_out_of_tolerance",
    });
    vi.useFakeTimers({ now: new Date(1_000_000_000), toFake: ["Date"] });
    expect(verifyWebhook({ secret, headers, rawBody: body }).ok).toBe(true);
  });

  it("accepts when any of several signatures matches, and skips other versions", () => {
    const headers = referenceHeaders();
    const good = headers["webhook-signature"];
    const wrong = signByHand(otherSecret, id, nowSeconds(), body);
    const several = {
      ...headers,
      "webhook-signature": `${wrong} v1a,${good.slice(3)} ${good}`,
    };
    expect(verifyWebhook({ secret, headers: several, rawBody: body }).ok).toBe(true);
    expect(referenceAccepts(several)).toBe(true);
  });

  it("rejects when none of several signatures matches, even a right one under another version", () => {
    const headers = referenceHeaders();
    const good = headers["webhook-signature"].slice(3);
    const wrong = signByHand(otherSecret, id, nowSeconds(), body);
    const none = { ...headers, "webhook-signature": `${wrong} v2,${good} v1, ${good}` };
    expect(verifyWebhook({ secret, headers: none, rawBody: body })).toEqual({
      ok: false,
      reason: "no_matching_signature",
    });
    expect(referenceAccepts(none)).toBe(false);
  });

  it("rejects a delivery missing any of the three headers, as the reference does", () => {
    for (const missing of ["webhook-id", "webhook-timestamp", "webhook-signature"] as const) {
      const headers: Partial<SignedHeaders> = referenceHeaders();
      delete headers[missing];
      expect(verifyWebhook({ secret, headers, rawBody: body })).toEqual({
        ok: false,
        reason: "missing_headers",
      });
      expect(referenceAccepts(headers)).toBe(false);
    }
  });

  it("rejects a timestamp that is not Unix seconds", () => {
    const headers = { ...referenceHeaders(), "webhook-timestamp": "2025-01-01T00:00:00Z" };
    expect(verifyWebhook({ secret, headers, rawBody: body })).toEqual({
      ok: false,
      reason: "invalid_timestamp",
    });
  });

  it("reads headers whatever their case, from a fetch Headers object too", () => {
    const headers = referenceHeaders();
    const shouted = Object.fromEntries(
      Object.entries(headers).map(([name, value]) => [name.toUpperCase(), value]),
    );
    expect(verifyWebhook({ secret, headers: shouted, rawBody: body }).ok).toBe(true);
    expect(verifyWebhook({ secret, headers: new Headers(headers), rawBody: body }).ok).toBe(true);
  });

  it("joins a signature header that arrived several times", () => {
    const headers = referenceHeaders();
    const wrong = signByHand(otherSecret, id, nowSeconds(), body);
    const repeated = { ...headers, "webhook-signature": [wrong, headers["webhook-signature"]] };
    expect(verifyWebhook({ secret, headers: repeated, rawBody: body }).ok).toBe(true);
  });

  it("accepts the Svix-branded header names", () => {
    const headers = referenceHeaders();
    const svix = {
      "svix-id": headers["webhook-id"],
      "svix-timestamp": headers["webhook-timestamp"],
      "svix-signature": headers["webhook-signature"],
    };
    expect(verifyWebhook({ secret, headers: svix, rawBody: body }).ok).toBe(true);
  });
});

describe("the webhook secret", () => {
  it("is taken with or without its whsec_ prefix, as the reference does", () => {
    const bare = secret.slice("whsec_".length);
    expect(verifyWebhook({ secret: bare, headers: referenceHeaders(), rawBody: body }).ok).toBe(
      true,
    );
  });

  it.each(["", "whsec_", "whsec_not base64!", "plain words"])("refuses %j", (bad) => {
    expect(() =>
      verifyWebhook({ secret: bad, headers: referenceHeaders(), rawBody: body }),
    ).toThrow(WebhookSecretError);
  });
});
