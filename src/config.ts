import path from "node:path";
import { z } from "zod";
import { ENGINE_KINDS, type EngineKind } from "./domain/engines.ts";
import { parseSecuritySettings, type SecuritySettings } from "./security/settings.ts";
import type { TracingSettings } from "./tracing.ts";

/** The roles a Podflow process can play: serve the API, run the job workers, or both. */
export type Role = "api" | "worker";

export interface Config {
  nodeEnv: "development" | "production" | "test";
  /** Unset: Podflow starts an embedded PostgreSQL under `dataDir`. */
  databaseUrl: string | undefined;
  port: number;
  host: string;
  /** Externally reachable base URL, without a trailing slash (webhook URLs are built from it). */
  publicUrl: string;
  logLevel: "fatal" | "error" | "warn" | "info" | "debug" | "trace" | "silent";
  dataDir: string;
  roles: ReadonlySet<Role>;
  /** Connections the ORM may open to PostgreSQL (pg-boss and the listener have their own). */
  databasePoolSize: number;
  /** Largest upload `prepareUpload` accepts, in bytes. */
  maxUploadBytes: number;
  /**
   * The media engine new episodes are processed with (PODFLOW_MEDIA_ENGINE): Ittybit when its
   * key is set, else the local engine. Each episode keeps the engine it started with.
   */
  mediaEngine: EngineKind;
  /** The local media engine's settings (used when an episode's engine is `local`). */
  local: {
    /** Uploaded recordings and the outputs Podflow serves (PODFLOW_MEDIA_DIR). */
    mediaDir: string;
    /** Media tasks one worker process runs at once; ffmpeg uses every core for each. */
    concurrency: number;
    /** A whisper.cpp ggml model file; unset: transcripts are SKIPPED. */
    whisperModel: string | undefined;
    /** Chapters are merged until none is shorter than this. */
    chapterMinSeconds: number;
    /** A pause in speech at least this long may start a chapter. */
    chapterMinSilenceSeconds: number;
  };
  ittybit: {
    /** Unset: only the local engine can process. */
    apiKey: string | undefined;
    apiUrl: string;
    /** Standard Webhooks secret (`whsec_…`); needed by the `signature` and `both` modes. */
    webhookSecret: string | undefined;
    /**
     * How a webhook delivery is believed (PODFLOW_WEBHOOK_VERIFICATION): `signature` applies a
     * correctly signed body; `refetch` treats the body as a hint and applies what Ittybit's API
     * answers about the task; `both` requires the signature and still asks the API.
     */
    webhookVerification: WebhookVerificationMode;
    /**
     * The secret path segment of Podflow's webhook URL (PODFLOW_WEBHOOK_TOKEN); unset: one made
     * at first start and kept in the database, the same for every instance.
     */
    webhookToken: string | undefined;
  };
  /** How long a task may stay unchanged before the reconciler asks Ittybit about it. */
  reconcileAfterSeconds: number;
  /** Cron expression for the reconciler. */
  reconcileCron: string;
  /** Abuse limits and production posture (src/security/settings.ts). */
  security: SecuritySettings;
  /** Publishing to Transistor.fm and YouTube (src/services/distribution). */
  distribution: DistributionConfig;
  /**
   * Keys that encrypt producers' secrets at rest (PODFLOW_SECRET_KEY): the first encrypts, every
   * one decrypts, so a key can be rotated. Unset: none, and a development server makes one in its
   * data directory (src/services/secret-box.ts).
   */
  secretKeys: Buffer[] | undefined;
  /** How fast a dead worker's jobs are noticed (see src/jobs/queues.ts). */
  jobs: {
    /**
     * Set: every queue with heartbeats uses this many seconds (pg-boss's minimum is 10). Unset:
     * each queue's own (10 s for episode jobs, 20 s for media tasks).
     */
    heartbeatSeconds: number | undefined;
    /** How often the supervisor looks for jobs whose heartbeat stopped (and expired ones). */
    superviseSeconds: number;
  };
  /** Housekeeping jobs of the worker role (src/services/maintenance.ts). */
  maintenance: {
    /** Webhook deliveries older than this, whose task can no longer change, are deleted. */
    webhookRetentionDays: number;
    /** An episode UPLOADED or PROCESSING with no change of it or its tasks for this long is failed. */
    stuckEpisodeHours: number;
    /** When the pruning and the sweeper run (cron). */
    cron: string;
  };
  /** OpenTelemetry tracing (src/tracing.ts): off unless OTEL_EXPORTER_OTLP_ENDPOINT is set. */
  tracing: TracingSettings;
}

export interface DistributionConfig {
  transistorApiUrl: string;
  youtubeApiUrl: string;
  youtubeUploadUrl: string;
  googleAuthorizeUrl: string;
  googleTokenUrl: string;
  /** The Google OAuth client (a "Web application"); unset: YouTube cannot be connected. */
  googleClientId: string | undefined;
  googleClientSecret: string | undefined;
  /** Bytes per YouTube upload request: a multiple of 256 KiB. */
  youtubeChunkBytes: number;
}

export const WEBHOOK_VERIFICATION_MODES = ["signature", "refetch", "both"] as const;
export type WebhookVerificationMode = (typeof WEBHOOK_VERIFICATION_MODES)[number];

/** A bad environment: the message names the variable and is meant to be shown as one line. */
export class ConfigError extends Error {
  override name = "ConfigError";
}

type Env = Record<string, string | undefined>;

const blankToUndefined = (value: unknown) =>
  typeof value === "string" && value.trim() === "" ? undefined : value;

const optionalString = z.preprocess(blankToUndefined, z.string().optional());

const port = z.preprocess(
  blankToUndefined,
  z.coerce
    .number({ message: "must be a whole number from 1 to 65535" })
    .int("must be a whole number from 1 to 65535")
    .min(1, "must be a whole number from 1 to 65535")
    .max(65535, "must be a whole number from 1 to 65535")
    .optional(),
);

const positiveInt = (message: string) =>
  z.preprocess(
    blankToUndefined,
    z.coerce.number({ message }).int(message).positive(message).optional(),
  );

const positiveNumber = (message: string) =>
  z.preprocess(blankToUndefined, z.coerce.number({ message }).positive(message).optional());

const httpUrl = (message: string) =>
  z.preprocess(
    blankToUndefined,
    z
      .url({ protocol: /^https?$/, message })
      .transform((url) => url.replace(/\/+$/, ""))
      .optional(),
  );

const YOUTUBE_CHUNK_MESSAGE = "must be a positive multiple of 262144 bytes (256 KiB)";

const envSchema = z.object({
  NODE_ENV: z.preprocess(
    blankToUndefined,
    z
      .enum(["development", "production", "test"], {
        message: "must be development, production or test",
      })
      .default("development"),
  ),
  DATABASE_URL: z.preprocess(
    blankToUndefined,
    z
      .url({
        protocol: /^postgres(ql)?$/,
        message: "must be a postgres:// or postgresql:// URL",
      })
      .optional(),
  ),
  PORT: port,
  HOST: z.preprocess(blankToUndefined, z.string().default("127.0.0.1")),
  PUBLIC_URL: httpUrl("must be an http:// or https:// URL"),
  LOG_LEVEL: z.preprocess(
    (value) => (typeof value === "string" ? blankToUndefined(value.toLowerCase()) : value),
    z
      .enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"], {
        message: "must be one of fatal, error, warn, info, debug, trace, silent",
      })
      .default("info"),
  ),
  PODFLOW_DATA_DIR: z.preprocess(blankToUndefined, z.string().default("./.podflow")),
  PODFLOW_ROLES: z.preprocess(
    blankToUndefined,
    z
      .string()
      .default("api,worker")
      .transform((value, ctx) => {
        const roles = value
          .split(/[\s,]+/)
          .map((role) => role.trim().toLowerCase())
          .filter(Boolean);
        const unknown = roles.filter((role) => role !== "api" && role !== "worker");
        if (roles.length === 0 || unknown.length > 0) {
          ctx.addIssue({
            code: "custom",
            message: `must be "api", "worker" or "api,worker" (got "${value}")`,
          });
          return z.NEVER;
        }
        return new Set(roles as Role[]);
      }),
  ),
  PODFLOW_MAX_UPLOAD_BYTES: positiveInt("must be a positive whole number of bytes"),
  PODFLOW_DATABASE_POOL_SIZE: positiveInt("must be a positive whole number of connections"),
  PODFLOW_RECONCILE_AFTER_SECONDS: positiveInt("must be a positive whole number of seconds"),
  PODFLOW_RECONCILE_CRON: z.preprocess(blankToUndefined, z.string().default("* * * * *")),
  PODFLOW_JOB_HEARTBEAT_SECONDS: z.preprocess(
    blankToUndefined,
    z.coerce
      .number({ message: "must be a whole number of seconds, at least 10" })
      .int("must be a whole number of seconds, at least 10")
      .min(10, "must be a whole number of seconds, at least 10")
      .optional(),
  ),
  PODFLOW_JOB_SUPERVISE_SECONDS: positiveInt("must be a positive whole number of seconds"),
  PODFLOW_WEBHOOK_RETENTION_DAYS: positiveNumber("must be a positive number of days"),
  PODFLOW_STUCK_EPISODE_HOURS: positiveNumber("must be a positive number of hours"),
  PODFLOW_MAINTENANCE_CRON: z.preprocess(blankToUndefined, z.string().default("*/10 * * * *")),
  OTEL_EXPORTER_OTLP_ENDPOINT: httpUrl(
    "must be an http:// or https:// URL (the collector's OTLP/HTTP base URL)",
  ),
  OTEL_SERVICE_NAME: z.preprocess(blankToUndefined, z.string().default("podflow")),
  PODFLOW_MEDIA_ENGINE: z.preprocess(
    (value) => (typeof value === "string" ? blankToUndefined(value.toLowerCase()) : value),
    z.enum(ENGINE_KINDS, { message: `must be ${ENGINE_KINDS.join(" or ")}` }).optional(),
  ),
  PODFLOW_MEDIA_DIR: optionalString,
  PODFLOW_MEDIA_CONCURRENCY: positiveInt("must be a positive whole number of tasks"),
  PODFLOW_WHISPER_MODEL: optionalString,
  PODFLOW_CHAPTER_MIN_SECONDS: positiveNumber("must be a positive number of seconds"),
  PODFLOW_CHAPTER_MIN_SILENCE_SECONDS: positiveNumber("must be a positive number of seconds"),
  ITTYBIT_API_KEY: optionalString,
  ITTYBIT_API_URL: httpUrl("must be an http:// or https:// URL"),
  ITTYBIT_WEBHOOK_SECRET: z.preprocess(
    blankToUndefined,
    z
      .string()
      .refine(
        (secret) => /^whsec_[A-Za-z0-9+/]+={0,2}$/.test(secret),
        'must be "whsec_" followed by a base64 key',
      )
      .optional(),
  ),
  PODFLOW_WEBHOOK_VERIFICATION: z.preprocess(
    (value) => (typeof value === "string" ? blankToUndefined(value.toLowerCase()) : value),
    z
      .enum(WEBHOOK_VERIFICATION_MODES, { message: "must be signature, refetch or both" })
      .optional(),
  ),
  PODFLOW_WEBHOOK_TOKEN: z.preprocess(
    blankToUndefined,
    z
      .string()
      .regex(
        /^[A-Za-z0-9_-]{32,128}$/,
        "must be 32 to 128 characters of A-Z, a-z, 0-9, _ and - (e.g. openssl rand -hex 32)",
      )
      .optional(),
  ),
  TRANSISTOR_API_URL: httpUrl("must be an http:// or https:// URL"),
  YOUTUBE_API_URL: httpUrl("must be an http:// or https:// URL"),
  YOUTUBE_UPLOAD_URL: httpUrl("must be an http:// or https:// URL"),
  GOOGLE_OAUTH_AUTHORIZE_URL: httpUrl("must be an http:// or https:// URL"),
  GOOGLE_OAUTH_TOKEN_URL: httpUrl("must be an http:// or https:// URL"),
  GOOGLE_OAUTH_CLIENT_ID: optionalString,
  GOOGLE_OAUTH_CLIENT_SECRET: optionalString,
  PODFLOW_YOUTUBE_CHUNK_BYTES: z.preprocess(
    blankToUndefined,
    z.coerce
      .number({ message: YOUTUBE_CHUNK_MESSAGE })
      .int(YOUTUBE_CHUNK_MESSAGE)
      .positive(YOUTUBE_CHUNK_MESSAGE)
      .refine((bytes) => bytes % YOUTUBE_CHUNK_UNIT === 0, YOUTUBE_CHUNK_MESSAGE)
      .optional(),
  ),
  PODFLOW_SECRET_KEY: z.preprocess(
    blankToUndefined,
    z
      .string()
      .transform((value, ctx) => {
        const keys = value.split(/[\s,]+/).filter(Boolean);
        const decoded = keys.map((key) => Buffer.from(key, "base64"));
        if (
          decoded.length === 0 ||
          decoded.some(
            (key, i) => key.length !== 32 || !/^[A-Za-z0-9+/_-]+={0,2}$/.test(keys[i] ?? ""),
          )
        ) {
          ctx.addIssue({
            code: "custom",
            message:
              "must be one or more base64 keys of 32 bytes, comma-separated, the current one first (openssl rand -base64 32)",
          });
          return z.NEVER;
        }
        return decoded;
      })
      .optional(),
  ),
});

/** YouTube's resumable uploads take chunks in multiples of 256 KiB. */
const YOUTUBE_CHUNK_UNIT = 256 * 1024;

/** Ittybit's direct-upload limit: 4 GiB. */
export const DEFAULT_MAX_UPLOAD_BYTES = 4 * 1024 ** 3;

/**
 * Reads and validates the environment once. Throws a ConfigError whose message is one line
 * naming the offending variable, so `main` can print it and exit.
 */
export function loadConfig(env: Env = process.env): Config {
  const parsed = envSchema.safeParse(env);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const variable = String(issue?.path[0] ?? "environment");
    throw new ConfigError(`Invalid ${variable}: ${issue?.message ?? "invalid value"}`);
  }
  const e = parsed.data;
  const portNumber = e.PORT ?? 4000;
  // Without a secret nothing can be checked but what Ittybit itself says: no body is ever
  // believed unverified, in any environment.
  const webhookVerification =
    e.PODFLOW_WEBHOOK_VERIFICATION ?? (e.ITTYBIT_WEBHOOK_SECRET ? "signature" : "refetch");
  if (webhookVerification !== "refetch" && !e.ITTYBIT_WEBHOOK_SECRET) {
    throw new ConfigError(
      `Invalid PODFLOW_WEBHOOK_VERIFICATION: ${webhookVerification} needs ITTYBIT_WEBHOOK_SECRET (or choose refetch)`,
    );
  }
  const security = parseSecuritySettings(env, e.NODE_ENV);
  if (!security.ok) throw new ConfigError(`Invalid ${security.variable}: ${security.message}`);
  const mediaEngine = e.PODFLOW_MEDIA_ENGINE ?? (e.ITTYBIT_API_KEY ? "ittybit" : "local");
  if (mediaEngine === "ittybit" && !e.ITTYBIT_API_KEY) {
    throw new ConfigError(
      "Invalid PODFLOW_MEDIA_ENGINE: ittybit needs ITTYBIT_API_KEY (or choose local)",
    );
  }
  if (Boolean(e.GOOGLE_OAUTH_CLIENT_ID) !== Boolean(e.GOOGLE_OAUTH_CLIENT_SECRET)) {
    throw new ConfigError(
      `Invalid ${e.GOOGLE_OAUTH_CLIENT_ID ? "GOOGLE_OAUTH_CLIENT_SECRET" : "GOOGLE_OAUTH_CLIENT_ID"}: YouTube needs both the OAuth client's id and its secret`,
    );
  }
  const dataDir = path.resolve(e.PODFLOW_DATA_DIR);
  const publicHost = e.HOST === "0.0.0.0" || e.HOST === "::" ? "127.0.0.1" : e.HOST;
  const hostForUrl = publicHost.includes(":") ? `[${publicHost}]` : publicHost;
  return {
    nodeEnv: e.NODE_ENV,
    databaseUrl: e.DATABASE_URL,
    port: portNumber,
    host: e.HOST,
    publicUrl: e.PUBLIC_URL ?? `http://${hostForUrl}:${portNumber}`,
    logLevel: e.LOG_LEVEL,
    dataDir,
    roles: e.PODFLOW_ROLES,
    databasePoolSize: e.PODFLOW_DATABASE_POOL_SIZE ?? 10,
    maxUploadBytes: e.PODFLOW_MAX_UPLOAD_BYTES ?? DEFAULT_MAX_UPLOAD_BYTES,
    mediaEngine,
    local: {
      mediaDir: path.resolve(e.PODFLOW_MEDIA_DIR ?? path.join(dataDir, "media")),
      concurrency: e.PODFLOW_MEDIA_CONCURRENCY ?? 1,
      whisperModel: e.PODFLOW_WHISPER_MODEL && path.resolve(e.PODFLOW_WHISPER_MODEL),
      chapterMinSeconds: e.PODFLOW_CHAPTER_MIN_SECONDS ?? 120,
      chapterMinSilenceSeconds: e.PODFLOW_CHAPTER_MIN_SILENCE_SECONDS ?? 1.5,
    },
    ittybit: {
      apiKey: e.ITTYBIT_API_KEY,
      apiUrl: e.ITTYBIT_API_URL ?? "https://api.ittybit.com",
      webhookSecret: e.ITTYBIT_WEBHOOK_SECRET,
      webhookVerification,
      webhookToken: e.PODFLOW_WEBHOOK_TOKEN,
    },
    reconcileAfterSeconds: e.PODFLOW_RECONCILE_AFTER_SECONDS ?? 600,
    reconcileCron: e.PODFLOW_RECONCILE_CRON,
    security: security.settings,
    distribution: {
      transistorApiUrl: e.TRANSISTOR_API_URL ?? "https://api.transistor.fm",
      youtubeApiUrl: e.YOUTUBE_API_URL ?? "https://www.googleapis.com/youtube/v3",
      youtubeUploadUrl: e.YOUTUBE_UPLOAD_URL ?? "https://www.googleapis.com/upload/youtube/v3",
      googleAuthorizeUrl:
        e.GOOGLE_OAUTH_AUTHORIZE_URL ?? "https://accounts.google.com/o/oauth2/v2/auth",
      googleTokenUrl: e.GOOGLE_OAUTH_TOKEN_URL ?? "https://oauth2.googleapis.com/token",
      googleClientId: e.GOOGLE_OAUTH_CLIENT_ID,
      googleClientSecret: e.GOOGLE_OAUTH_CLIENT_SECRET,
      youtubeChunkBytes: e.PODFLOW_YOUTUBE_CHUNK_BYTES ?? 32 * YOUTUBE_CHUNK_UNIT,
    },
    secretKeys: e.PODFLOW_SECRET_KEY,
    jobs: {
      heartbeatSeconds: e.PODFLOW_JOB_HEARTBEAT_SECONDS,
      superviseSeconds: e.PODFLOW_JOB_SUPERVISE_SECONDS ?? 10,
    },
    maintenance: {
      webhookRetentionDays: e.PODFLOW_WEBHOOK_RETENTION_DAYS ?? 30,
      stuckEpisodeHours: e.PODFLOW_STUCK_EPISODE_HOURS ?? 24,
      cron: e.PODFLOW_MAINTENANCE_CRON,
    },
    tracing: { otlpEndpoint: e.OTEL_EXPORTER_OTLP_ENDPOINT, serviceName: e.OTEL_SERVICE_NAME },
  };
}
