import pino from "pino";
import {
  createIttybitClient,
  type IttybitClientOptions,
} from "../../src/services/ittybit/client.ts";
import type { IttybitStandIn } from "./ittybit-stand-in.ts";

/**
 * The real client pointed at a stand-in, with retries fast enough for tests, and every log line
 * it writes kept in `logs` so tests can check what it said (and that it kept secrets).
 */
export function createTestIttybitClient(
  standIn: IttybitStandIn,
  overrides: Partial<IttybitClientOptions> = {},
) {
  const logs: string[] = [];
  const logger = pino({ level: "debug" }, { write: (line: string) => logs.push(line) });
  const client = createIttybitClient({
    apiUrl: standIn.url,
    apiKey: standIn.apiKey,
    publicUrl: "http://127.0.0.1:1",
    logger,
    timeoutMs: 2_000,
    ...overrides,
    retry: { limit: 3, baseDelayMs: 5, maxDelayMs: 20, totalTimeoutMs: 5_000, ...overrides.retry },
  });
  return { client, logs };
}
