export {
  createIttybitClient,
  type IdempotentRequest,
  ITTYBIT_API_VERSION,
  type IttybitClient,
  type IttybitClientOptions,
} from "./client.ts";
export { IttybitError, type IttybitFailure, isRetryableStatus } from "./errors.ts";
export { DEFAULT_RETRY_SETTINGS, type RetrySettings } from "./retry-policy.ts";
export {
  normalizeTaskPayload,
  type TaskEvent,
  type TaskEventOutput,
  TaskEventParseError,
} from "./task-event.ts";
export {
  buildTaskRequest,
  TASK_DEFAULTS,
  type TaskRequest,
  webhookUrlFor,
} from "./task-options.ts";
export type {
  IttybitFile,
  IttybitMedia,
  IttybitTask,
  IttybitTaskStatus,
  SignatureMethod,
  UploadSignature,
} from "./types.ts";
export {
  verifyWebhook,
  type WebhookHeaders,
  type WebhookRejection,
  WebhookSecretError,
  type WebhookVerification,
} from "./webhook-verification.ts";
