import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { z } from "zod";

/**
 * The abuse limits and production posture (README "Security"). Parsed here, apart from the rest
 * of the configuration, so that the limits live in one place; `loadConfig` adds them to Config.
 */
export interface SecuritySettings {
  graphql: {
    /** Aliases in one document (`__typename` aliases are free). */
    maxAliases: number;
    /** Selection depth (introspection excepted). */
    maxDepth: number;
    /** Lexer tokens in one document: the parser stops at the first token past it. */
    maxTokens: number;
    /** Directives in one document. */
    maxDirectives: number;
    /** Estimated cost of one operation: lists weigh their `first`, transcripts their size. */
    maxCost: number;
    /** Ids one `nodes(ids:)` takes. */
    maxNodeIds: number;
    /** Largest GraphQL request body, in bytes. */
    maxBodyBytes: number;
    /** Parsed documents kept (an LRU bounded by count and by total query length). */
    parserCacheSize: number;
    /** GraphiQL, introspection and "did you mean" suggestions: on outside production. */
    explorable: boolean;
    /** Origins allowed to call the API from a browser; `*` any; empty none. */
    corsOrigins: string[];
    /** How long `Query.health` answers from its last check. */
    healthCacheMs: number;
    /** The only operations that may run (PODFLOW_PERSISTED_OPERATIONS); null: any. */
    persistedOperations: PersistedOperationList | null;
  };
  connections: {
    /** Largest WebSocket message before the connection is acknowledged (connection_init). */
    wsMaxInitMessageBytes: number;
    /** Largest WebSocket message after it. */
    wsMaxMessageBytes: number;
    /** Operations one WebSocket may have running at once. */
    wsMaxSubscriptions: number;
    /** WebSockets one token may hold open at once (per instance). */
    wsMaxSocketsPerToken: number;
    /** Subscriptions over server-sent events one token may hold open at once (per instance). */
    sseMaxStreamsPerToken: number;
    /** A socket whose unsent data passes this many bytes is closed (the client stopped reading). */
    wsMaxBufferedBytes: number;
    /** Node's `headersTimeout`: the whole header block must arrive within it. */
    httpHeadersTimeoutMs: number;
    /** Node's `requestTimeout`: the whole request, body included (uploads too). */
    httpRequestTimeoutMs: number;
    /** WebSockets one client address may hold open at once, authenticated or not (per instance). */
    wsMaxSocketsPerAddress: number;
    /** Subscriptions over server-sent events one client address may hold open (per instance). */
    sseMaxStreamsPerAddress: number;
    /**
     * Proxies in front of Podflow whose X-Forwarded-For entries are believed: the client address
     * is the entry this many hops from the right (0: the TCP peer; the header is ignored).
     */
    trustProxyHops: number;
    /** The longest a WebSocket or an event stream stays open; it is then ended, to reconnect. */
    streamMaxMs: number;
    /** An acknowledged WebSocket with no operation running for this long is closed. */
    streamIdleMs: number;
  };
  /** Per-producer limits, counted in the database so that they hold across instances. */
  producers: {
    /** Episodes one producer may create (prepareUpload) in any hour. */
    maxEpisodesPerHour: number;
    /** Retries (retryEpisode) one producer may make in any hour. */
    maxRetriesPerHour: number;
  };
  /** Where outputs may be downloaded from (PODFLOW_OUTPUT_HOSTS; src/security/output-hosts.ts). */
  outputHosts: {
    hosts: string[];
    /** True when the operator listed them: exact entries may then be http and private. */
    listed: boolean;
  };
}

/** Persisted operations: by the file's own keys, and by the SHA-256 of each query's text. */
export interface PersistedOperationList {
  /** Where they were read from (for messages). */
  path: string;
  byId: ReadonlyMap<string, string>;
  byHash: ReadonlyMap<string, string>;
}

/** Ittybit's API host and its delivery domains (project domains and store.ittybit.net). */
export const DEFAULT_OUTPUT_HOSTS = ["api.ittybit.com", "*.ittybit.net"];

const blankToUndefined = (value: unknown) =>
  typeof value === "string" && value.trim() === "" ? undefined : value;

const positiveInt = (message: string) =>
  z.preprocess(
    blankToUndefined,
    z.coerce.number({ message }).int(message).positive(message).optional(),
  );

const flag = z.preprocess(
  blankToUndefined,
  z
    .enum(["0", "1", "true", "false"], { message: "must be 1 or 0" })
    .transform((value) => value === "1" || value === "true")
    .optional(),
);

const list = (check: (item: string) => boolean, message: string) =>
  z.preprocess(
    blankToUndefined,
    z
      .string()
      .transform((value) =>
        value
          .split(/[\s,]+/)
          .map((item) => item.trim())
          .filter(Boolean),
      )
      .refine((items) => items.every(check), message)
      .optional(),
  );

const isOrigin = (origin: string) => {
  if (origin === "*") return true;
  try {
    const url = new URL(origin);
    return (url.protocol === "http:" || url.protocol === "https:") && url.origin === origin;
  } catch {
    return false;
  }
};

/** `host`, `host:port`, `*.domain` or an IP address (IPv6 in brackets). */
const isHostPattern = (host: string) =>
  /^(\*\.)?[a-z0-9.-]+(:\d{1,5})?$/i.test(host) || /^\[[0-9a-f:.]+\](:\d{1,5})?$/i.test(host);

const bytes = "must be a positive whole number of bytes";
const count = "must be a positive whole number";
const seconds = "must be a positive whole number of seconds";
const ms = "must be a positive whole number of milliseconds";

const securityEnvSchema = z.object({
  PODFLOW_GRAPHQL_MAX_ALIASES: positiveInt(count),
  PODFLOW_GRAPHQL_MAX_DEPTH: positiveInt(count),
  PODFLOW_GRAPHQL_MAX_TOKENS: positiveInt(count),
  PODFLOW_GRAPHQL_MAX_DIRECTIVES: positiveInt(count),
  PODFLOW_GRAPHQL_MAX_COST: positiveInt(count),
  PODFLOW_GRAPHQL_MAX_NODE_IDS: positiveInt(count),
  PODFLOW_GRAPHQL_MAX_BODY_BYTES: positiveInt(bytes),
  PODFLOW_GRAPHQL_PARSER_CACHE_SIZE: positiveInt(count),
  PODFLOW_GRAPHIQL: flag,
  PODFLOW_CORS_ORIGINS: list(
    isOrigin,
    "must be a comma-separated list of origins such as https://app.example.com, or *",
  ),
  PODFLOW_HEALTH_CACHE_MS: positiveInt(ms),
  PODFLOW_WS_MAX_INIT_MESSAGE_BYTES: positiveInt(bytes),
  PODFLOW_WS_MAX_MESSAGE_BYTES: positiveInt(bytes),
  PODFLOW_WS_MAX_SUBSCRIPTIONS: positiveInt(count),
  PODFLOW_WS_MAX_SOCKETS_PER_TOKEN: positiveInt(count),
  PODFLOW_WS_MAX_BUFFERED_BYTES: positiveInt(bytes),
  PODFLOW_SSE_MAX_STREAMS_PER_TOKEN: positiveInt(count),
  PODFLOW_HTTP_HEADERS_TIMEOUT_SECONDS: positiveInt(seconds),
  PODFLOW_HTTP_REQUEST_TIMEOUT_SECONDS: positiveInt(seconds),
  PODFLOW_WS_MAX_SOCKETS_PER_ADDRESS: positiveInt(count),
  PODFLOW_SSE_MAX_STREAMS_PER_ADDRESS: positiveInt(count),
  PODFLOW_TRUST_PROXY: z.preprocess(
    blankToUndefined,
    z.coerce
      .number({ message: "must be the number of proxies in front of Podflow (0 for none)" })
      .int("must be the number of proxies in front of Podflow (0 for none)")
      .min(0, "must be the number of proxies in front of Podflow (0 for none)")
      .max(10, "must be at most 10 proxies")
      .optional(),
  ),
  PODFLOW_STREAM_MAX_SECONDS: positiveInt(seconds),
  PODFLOW_STREAM_IDLE_SECONDS: positiveInt(seconds),
  PODFLOW_MAX_EPISODES_PER_HOUR: positiveInt(count),
  PODFLOW_MAX_RETRIES_PER_HOUR: positiveInt(count),
  PODFLOW_PERSISTED_OPERATIONS: z.preprocess(blankToUndefined, z.string().optional()),
  PODFLOW_OUTPUT_HOSTS: list(
    isHostPattern,
    "must be a comma-separated list of host names, host:port or *.domain",
  ),
});

/** A bad variable: the caller turns it into its ConfigError. */
export type SecuritySettingsResult =
  | { ok: true; settings: SecuritySettings }
  | { ok: false; variable: string; message: string };

export function parseSecuritySettings(
  env: Record<string, string | undefined>,
  nodeEnv: "development" | "production" | "test",
): SecuritySettingsResult {
  const parsed = securityEnvSchema.safeParse(env);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    return {
      ok: false,
      variable: String(issue?.path[0] ?? "environment"),
      message: issue?.message ?? "invalid value",
    };
  }
  const e = parsed.data;
  let persistedOperations: PersistedOperationList | null = null;
  if (e.PODFLOW_PERSISTED_OPERATIONS) {
    const operations = readPersistedOperations(e.PODFLOW_PERSISTED_OPERATIONS);
    if (typeof operations === "string") {
      return { ok: false, variable: "PODFLOW_PERSISTED_OPERATIONS", message: operations };
    }
    persistedOperations = operations;
  }
  const wsMaxMessageBytes = e.PODFLOW_WS_MAX_MESSAGE_BYTES ?? 64 * 1024;
  return {
    ok: true,
    settings: {
      graphql: {
        maxAliases: e.PODFLOW_GRAPHQL_MAX_ALIASES ?? 15,
        maxDepth: e.PODFLOW_GRAPHQL_MAX_DEPTH ?? 10,
        maxTokens: e.PODFLOW_GRAPHQL_MAX_TOKENS ?? 2_000,
        maxDirectives: e.PODFLOW_GRAPHQL_MAX_DIRECTIVES ?? 20,
        maxCost: e.PODFLOW_GRAPHQL_MAX_COST ?? 10_000,
        maxNodeIds: e.PODFLOW_GRAPHQL_MAX_NODE_IDS ?? 100,
        maxBodyBytes: e.PODFLOW_GRAPHQL_MAX_BODY_BYTES ?? 64 * 1024,
        parserCacheSize: e.PODFLOW_GRAPHQL_PARSER_CACHE_SIZE ?? 1_000,
        explorable: e.PODFLOW_GRAPHIQL ?? nodeEnv !== "production",
        corsOrigins: e.PODFLOW_CORS_ORIGINS ?? [],
        healthCacheMs: e.PODFLOW_HEALTH_CACHE_MS ?? 1_000,
        persistedOperations,
      },
      connections: {
        wsMaxInitMessageBytes: Math.min(
          e.PODFLOW_WS_MAX_INIT_MESSAGE_BYTES ?? 4 * 1024,
          wsMaxMessageBytes,
        ),
        wsMaxMessageBytes,
        wsMaxSubscriptions: e.PODFLOW_WS_MAX_SUBSCRIPTIONS ?? 50,
        wsMaxSocketsPerToken: e.PODFLOW_WS_MAX_SOCKETS_PER_TOKEN ?? 50,
        wsMaxBufferedBytes: e.PODFLOW_WS_MAX_BUFFERED_BYTES ?? 4 * 1024 * 1024,
        sseMaxStreamsPerToken: e.PODFLOW_SSE_MAX_STREAMS_PER_TOKEN ?? 50,
        httpHeadersTimeoutMs: (e.PODFLOW_HTTP_HEADERS_TIMEOUT_SECONDS ?? 20) * 1000,
        httpRequestTimeoutMs: (e.PODFLOW_HTTP_REQUEST_TIMEOUT_SECONDS ?? 3_600) * 1000,
        wsMaxSocketsPerAddress: e.PODFLOW_WS_MAX_SOCKETS_PER_ADDRESS ?? 100,
        sseMaxStreamsPerAddress: e.PODFLOW_SSE_MAX_STREAMS_PER_ADDRESS ?? 100,
        trustProxyHops: e.PODFLOW_TRUST_PROXY ?? 0,
        streamMaxMs: (e.PODFLOW_STREAM_MAX_SECONDS ?? 24 * 3_600) * 1000,
        streamIdleMs: (e.PODFLOW_STREAM_IDLE_SECONDS ?? 300) * 1000,
      },
      producers: {
        maxEpisodesPerHour: e.PODFLOW_MAX_EPISODES_PER_HOUR ?? 100,
        maxRetriesPerHour: e.PODFLOW_MAX_RETRIES_PER_HOUR ?? 30,
      },
      outputHosts: {
        hosts: e.PODFLOW_OUTPUT_HOSTS ?? DEFAULT_OUTPUT_HOSTS,
        listed: e.PODFLOW_OUTPUT_HOSTS !== undefined,
      },
    },
  };
}

/**
 * Reads a persisted-operations file: a JSON object of `{ "<id or sha256>": "<query>" }`, as
 * written by GraphQL Code Generator's persisted documents or similar. A message when it is not.
 */
function readPersistedOperations(file: string): PersistedOperationList | string {
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(file, "utf8"));
  } catch (error) {
    return `cannot read ${file}: ${(error as Error).message}`;
  }
  const entries = z.record(z.string().min(1), z.string().min(1)).safeParse(parsed);
  if (!entries.success) {
    return `${file} must be a JSON object of { "operation id": "query text" }`;
  }
  const byId = new Map(Object.entries(entries.data));
  const byHash = new Map([...byId.values()].map((query) => [sha256(query), query]));
  return { path: file, byId, byHash };
}

export function sha256(text: string): string {
  return createHash("sha256").update(text).digest("hex");
}
