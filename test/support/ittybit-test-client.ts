import pino from "pino";
import type { TaskType } from "../../src/domain/tasks.ts";
import {
  createIttybitClient,
  type IttybitClientOptions,
} from "../../src/services/ittybit/client.ts";
import { buildTaskRequest, type TaskRequest } from "../../src/services/ittybit/task-options.ts";
import type { IttybitStandIn } from "./ittybit-stand-in.ts";

/** The body Podflow sends Ittybit for a task of this type, reporting to a URL nobody serves. */
export function taskRequest(
  type: TaskType,
  fileId: string,
  webhookUrl = "http://127.0.0.1:1/webhooks/ittybit",
): TaskRequest {
  return buildTaskRequest(type, { fileId, webhookUrl });
}

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
    logger,
    timeoutMs: 2_000,
    ...overrides,
    retry: { limit: 3, baseDelayMs: 5, maxDelayMs: 20, totalTimeoutMs: 5_000, ...overrides.retry },
  });
  return { client, logs };
}
