export {
  createIttybitClient,
  type IdempotentRequest,
  ITTYBIT_API_VERSION,
  type IttybitClient,
  type IttybitClientOptions,
  type ListTasksParams,
} from "./client.ts";
export { IttybitError, type IttybitFailure, isRetryableStatus } from "./errors.ts";
export { DEFAULT_RETRY_SETTINGS, type RetrySettings } from "./retry-policy.ts";
export {
  normalizeTaskPayload,
  TASK_EVENT_STATUSES,
  type TaskEvent,
  type TaskEventOutput,
  TaskEventParseError,
  type TaskEventStatus,
} from "./task-event.ts";
export {
  buildTaskRequest,
  PODFLOW_TASK_TYPES,
  type PodflowTaskType,
  TASK_DEFAULTS,
  type TaskOverrides,
  type TaskRequest,
  webhookUrlFor,
} from "./task-options.ts";
export type {
  IttybitFile,
  IttybitMedia,
  IttybitTask,
  SignatureMethod,
  TaskStatus,
  UploadSignature,
} from "./types.ts";
export {
  decodeWebhookSecret,
  signWebhook,
  verifyWebhook,
  WEBHOOK_TOLERANCE_SECONDS,
  type WebhookHeaders,
  type WebhookRejection,
  WebhookSecretError,
  type WebhookVerification,
  webhookHeaders,
} from "./webhook-verification.ts";
