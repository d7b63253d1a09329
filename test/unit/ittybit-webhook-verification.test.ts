import { Webhook } from "standardwebhooks";
import { describe, expect, it } from "vitest";
import {
  decodeWebhookSecret,
  signWebhook,
  verifyWebhook,
  WebhookSecretError,
  webhookHeaders,
} from "../../src/services/ittybit/webhook-verification.ts";

// `standardwebhooks` is the independent reference: every case is checked both ways, ours against
// its signatures and its verifier against ours, so a shared misreading of the spec cannot pass.

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

describe("signWebhook", () => {
  it("produces the signature the reference library produces", () => {
    const timestamp = 1_735_689_886;
    for (const payload of [body, "", "{}", "a.b.c"]) {
      expect(signWebhook(secret, id, timestamp, payload)).toBe(
        reference.sign(id, new Date(timestamp * 1000), payload),
      );
    }
  });

  it("signs raw bytes exactly like the same text", () => {
    expect(signWebhook(secret, id, 1, Buffer.from(body))).toBe(signWebhook(secret, id, 1, body));
  });

  it("gives headers the reference library accepts", () => {
    expect(referenceAccepts(webhookHeaders(secret, id, nowSeconds(), body))).toBe(true);
  });
});

describe("verifyWebhook", () => {
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
    const now = new Date(1_735_689_886_000);
    for (const offset of [-300, 300]) {
      const headers = webhookHeaders(secret, id, 1_735_689_886 + offset, body);
      expect(verifyWebhook({ secret, headers, rawBody: body, now }).ok).toBe(true);
    }
  });

  it("judges the timestamp against the clock it is given", () => {
    const headers = webhookHeaders(secret, id, 1_000_000, body);
    expect(verifyWebhook({ secret, headers, rawBody: body, now: new Date(1_000_000_000) }).ok).toBe(
      true,
    );
    expect(verifyWebhook({ secret, headers, rawBody: body })).toEqual({
      ok: false,
      reason: "timestamp_out_of_tolerance",
    });
  });

  it("accepts when any of several signatures matches, and skips other versions", () => {
    const headers = referenceHeaders();
    const good = headers["webhook-signature"];
    const wrong = signWebhook(otherSecret, id, nowSeconds(), body);
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
    const wrong = signWebhook(otherSecret, id, nowSeconds(), body);
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
    const wrong = signWebhook(otherSecret, id, nowSeconds(), body);
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

describe("decodeWebhookSecret", () => {
  it("takes the secret with or without its whsec_ prefix, as the reference does", () => {
    const bare = secret.slice("whsec_".length);
    expect(decodeWebhookSecret(bare)).toEqual(decodeWebhookSecret(secret));
    expect(signWebhook(bare, id, 1, body)).toBe(new Webhook(bare).sign(id, new Date(1000), body));
  });

  it.each(["", "whsec_", "whsec_not base64!", "plain words"])("refuses %j", (bad) => {
    expect(() => decodeWebhookSecret(bad)).toThrow(WebhookSecretError);
    expect(() =>
      verifyWebhook({ secret: bad, headers: referenceHeaders(), rawBody: body }),
    ).toThrow(WebhookSecretError);
  });
});
