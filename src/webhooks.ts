import { createHash, timingSafeEqual } from "node:crypto";
import type { IncomingMessage } from "node:http";
import type { WebhookVerificationMode } from "./config.ts";
import type { AppDeps } from "./deps.ts";
import { QUEUES } from "./jobs/queues.ts";
import {
  normalizeTaskPayload,
  type TaskEvent,
  TaskEventParseError,
  verifyWebhook,
} from "./services/ittybit/index.ts";
import {
  applyTaskState,
  coalesceByKey,
  fetchTaskState,
  type IttybitTaskState,
} from "./services/ittybit-refetch.ts";
import { createTaskEventCommitter } from "./services/task-events.ts";

/**
 * Where Ittybit's deliveries arrive: `/webhooks/ittybit/<token>`, the token a secret of the
 * installation. The bare path is still served while a signature is checked (installations whose
 * tasks were created before the token existed), for one release.
 */
export const ITTYBIT_WEBHOOK_PATH = "/webhooks/ittybit";

/** Ittybit's deliveries are small task objects; anything near this is not one. */
export const MAX_WEBHOOK_BYTES = 1024 * 1024;

type Reply = (status: number, body: Record<string, unknown>) => void;

/** What the receiver answered, as counted in `podflow_webhook_deliveries_total`. */
type DeliveryResult =
  | "received"
  | "duplicate"
  | "ignored"
  | "queued"
  | "refused_url"
  | "refused_signature"
  | "malformed"
  | "too_large"
  | "unavailable";

export interface IttybitWebhookReceiver {
  /** Whether `path` is the receiver's (the bare path or below it). */
  owns(path: string): boolean;
  handle(req: IncomingMessage, path: string, reply: Reply): Promise<void>;
}

type ReceiverDeps = Pick<AppDeps, "config" | "orm" | "boss" | "logger" | "metrics" | "webhook">;

/**
 * Takes Ittybit's deliveries and turns them into task changes through `applyTaskEvent`, believing
 * a body only as far as PODFLOW_WEBHOOK_VERIFICATION allows:
 * - `signature`: a correctly signed body is applied as it is (the inbox makes repeats harmless);
 * - `refetch`: the body only names a task; Podflow asks Ittybit about it and applies the answer;
 * - `both`: the signature is required, and the state is still Ittybit's answer.
 * Every mode first checks the URL's token. Answers are quick (Ittybit wants one within 5 s):
 * when Ittybit cannot be asked now, the question is queued as a job with retries.
 */
export function createIttybitWebhookReceiver(deps: ReceiverDeps): IttybitWebhookReceiver {
  const mode = deps.config.ittybit.webhookVerification;
  const expectedToken = digest(deps.webhook.token);
  const quickIttybit = deps.webhook.ittybit;
  // Deliveries about one task within a moment share one question to Ittybit.
  const askIttybit =
    quickIttybit &&
    coalesceByKey((taskId) => {
      const asked = fetchTaskState(quickIttybit, taskId);
      asked.then(
        () => deps.metrics.webhookRefetches.inc({ result: "answered" }),
        () => deps.metrics.webhookRefetches.inc({ result: "failed" }),
      );
      return asked;
    });
  // Signed bodies are applied as they come; deliveries arriving together share a commit.
  const committer = createTaskEventCommitter(deps);
  let warnedBarePath = false;

  function finish(
    reply: Reply,
    status: number,
    body: Record<string, unknown>,
    result: DeliveryResult,
    verification: WebhookVerificationMode | "url",
    detail: Record<string, unknown> = {},
  ) {
    deps.metrics.webhookDeliveries.inc({ verification, result });
    deps.logger.debug({ verification, result, ...detail }, "webhook delivery");
    reply(status, body);
  }

  /** Which URL was used: the token's (true), the bare path kept for now (false), or neither. */
  function checkUrl(path: string): boolean | null {
    if (path === ITTYBIT_WEBHOOK_PATH) {
      if (mode === "refetch") return null;
      if (!warnedBarePath) {
        warnedBarePath = true;
        deps.logger.warn(
          "a webhook arrived at /webhooks/ittybit without the URL token; tasks created from now on use the tokened URL, and the bare path will stop working in the next release",
        );
      }
      return false;
    }
    const token = path.slice(ITTYBIT_WEBHOOK_PATH.length + 1);
    if (token.includes("/") || !timingSafeEqual(digest(token), expectedToken)) return null;
    return true;
  }

  async function handle(req: IncomingMessage, path: string, reply: Reply): Promise<void> {
    if (req.method !== "POST") return reply(405, { error: "use POST" });
    // A wrong URL is a 404 before anything else is read, as if nothing listened here.
    if (checkUrl(path) === null) {
      return finish(reply, 404, { error: "not found" }, "refused_url", "url");
    }
    const rawBody = await readBody(req, MAX_WEBHOOK_BYTES);
    if (!rawBody) {
      return finish(
        reply,
        413,
        { error: `body larger than ${MAX_WEBHOOK_BYTES} bytes` },
        "too_large",
        mode,
      );
    }

    let webhookId = headerValue(req, "webhook-id");
    if (mode !== "refetch") {
      const secret = deps.config.ittybit.webhookSecret as string;
      const verified = verifyWebhook({ secret, headers: req.headers, rawBody });
      if (!verified.ok) {
        return finish(
          reply,
          401,
          { error: `signature rejected: ${verified.reason}` },
          "refused_signature",
          mode,
          { reason: verified.reason },
        );
      }
      webhookId = verified.webhookId;
    }

    let payload: unknown;
    let event: TaskEvent;
    try {
      payload = JSON.parse(rawBody.toString("utf8"));
      event = normalizeTaskPayload(payload, webhookId ?? undefined);
    } catch (error) {
      if (!(error instanceof SyntaxError || error instanceof TaskEventParseError)) throw error;
      const message = error instanceof SyntaxError ? "body is not valid JSON" : error.message;
      return finish(reply, 400, { error: message }, "malformed", mode);
    }

    if (mode === "signature") {
      const deliveryId =
        event.deliveryId ??
        `sha256:${createHash("sha256").update(`${event.taskId}\n${event.rawStatus}\n`).update(rawBody).digest("hex")}`;
      const outcome = await committer.apply(event, { id: deliveryId, payload });
      const result = outcome === "applied" || outcome === "stale" ? "received" : outcome;
      return finish(reply, 200, { status: result }, result, mode, { engineTaskId: event.taskId });
    }
    await refetchAndApply(event.taskId, payload, reply);
  }

  /** The body named a task: apply what Ittybit says about it, never what the body says. */
  async function refetchAndApply(taskId: string, payload: unknown, reply: Reply): Promise<void> {
    const detail = { engineTaskId: taskId };
    const known = await knownTask(deps, taskId);
    // Made-up ids never turn into requests to Ittybit.
    if (!known) return finish(reply, 200, { status: "ignored" }, "ignored", mode, detail);
    // A task that has ended with its output can change no further: nothing to ask.
    if (known.settled) return finish(reply, 200, { status: "received" }, "received", mode, detail);
    if (!askIttybit) {
      return finish(
        reply,
        503,
        { error: "ITTYBIT_API_KEY is not set: the delivery cannot be verified" },
        "unavailable",
        mode,
        detail,
      );
    }
    let state: IttybitTaskState;
    try {
      state = await askIttybit(taskId);
    } catch (error) {
      // Kept, not lost: a job asks again with retries (its payload is the task id, which is all
      // a refetch needs), and the reconciler remains the backstop. Ittybit gets its 200: its
      // retry schedule and endpoint auto-disabling are undocumented, ours are known.
      await deps.boss.send(
        QUEUES.refetchIttybitTask,
        { engineTaskId: taskId },
        { singletonKey: taskId },
      );
      deps.logger.warn(
        { err: error, ...detail },
        "Ittybit could not be asked about a delivered task; a job will ask again",
      );
      return finish(reply, 200, { status: "queued" }, "queued", mode, detail);
    }
    const outcome = await applyTaskState(deps, state, payload);
    const result = outcome === "applied" || outcome === "stale" ? "received" : outcome;
    return finish(reply, 200, { status: result }, result, mode, detail);
  }

  return {
    owns: (path) => path === ITTYBIT_WEBHOOK_PATH || path.startsWith(`${ITTYBIT_WEBHOOK_PATH}/`),
    handle,
  };
}

/**
 * Whether a task of an Ittybit episode has this id, and whether it has settled: ended with its
 * output (or failed, or skipped), so that no answer of Ittybit's could change it.
 */
async function knownTask(
  deps: Pick<AppDeps, "orm">,
  engineTaskId: string,
): Promise<{ settled: boolean } | null> {
  const rows = await deps.orm.em.fork().execute<{ settled: boolean }[]>(
    `select (t.status in ('FAILED', 'SKIPPED') or (t.status = 'COMPLETED' and t.output_url is not null)) as settled
       from processing_tasks t join episodes e on e.id = t.episode_id
      where t.engine_task_id = ? and e.engine = 'ittybit'
      limit 1`,
    [engineTaskId],
  );
  return rows[0] ?? null;
}

function digest(value: string): Buffer {
  return createHash("sha256").update(value).digest();
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
