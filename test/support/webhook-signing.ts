import { Webhook } from "standardwebhooks";

/**
 * The three Standard Webhooks headers of a delivery signed with `secret`, as a sender makes
 * them: for the Ittybit stand-in, tests and benchmarks. Podflow only ever verifies.
 */
export function webhookHeaders(
  secret: string,
  id: string,
  timestamp: number,
  body: string,
): Record<string, string> {
  return {
    "webhook-id": id,
    "webhook-timestamp": String(timestamp),
    "webhook-signature": new Webhook(secret).sign(id, new Date(timestamp * 1000), body),
  };
}
