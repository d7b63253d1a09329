import { describe, expect, it } from "vitest";
import { ConfigError, DEFAULT_MAX_UPLOAD_BYTES, loadConfig } from "../../src/config.ts";

describe("loadConfig", () => {
  it("applies the documented defaults to an empty environment", () => {
    const config = loadConfig({});
    expect(config.port).toBe(4000);
    expect(config.host).toBe("127.0.0.1");
    expect(config.publicUrl).toBe("http://127.0.0.1:4000");
    expect(config.databaseUrl).toBeUndefined();
    expect(config.dataDir).toMatch(/\.podflow$/);
    expect([...config.roles].sort()).toEqual(["api", "worker"]);
    expect(config.ittybit.apiUrl).toBe("https://api.ittybit.com");
    expect(config.ittybit.apiKey).toBeUndefined();
    expect(config.maxUploadBytes).toBe(DEFAULT_MAX_UPLOAD_BYTES);
    expect(config.logLevel).toBe("info");
    expect(config.databasePoolSize).toBe(10);
  });

  it("reads every variable", () => {
    const config = loadConfig({
      DATABASE_URL: "postgres://u:p@db:5432/podflow",
      PORT: "8080",
      HOST: "0.0.0.0",
      PUBLIC_URL: "https://podflow.example.com/",
      LOG_LEVEL: "DEBUG",
      PODFLOW_DATA_DIR: "/var/lib/podflow",
      PODFLOW_ROLES: "worker",
      ITTYBIT_API_KEY: "ittybit_key",
      ITTYBIT_API_URL: "http://127.0.0.1:9999",
      ITTYBIT_WEBHOOK_SECRET: "whsec_c2VjcmV0",
    });
    expect(config.databaseUrl).toBe("postgres://u:p@db:5432/podflow");
    expect(config.port).toBe(8080);
    expect(config.host).toBe("0.0.0.0");
    expect(config.publicUrl).toBe("https://podflow.example.com");
    expect(config.logLevel).toBe("debug");
    expect(config.dataDir).toBe("/var/lib/podflow");
    expect([...config.roles]).toEqual(["worker"]);
    expect(config.ittybit).toEqual({
      apiKey: "ittybit_key",
      apiUrl: "http://127.0.0.1:9999",
      webhookSecret: "whsec_c2VjcmV0",
      webhookVerification: "signature",
      webhookToken: undefined,
    });
  });

  it("builds the public URL from HOST and PORT, reachable when bound to all interfaces", () => {
    expect(loadConfig({ HOST: "0.0.0.0", PORT: "5000" }).publicUrl).toBe("http://127.0.0.1:5000");
    expect(loadConfig({ HOST: "::1", PORT: "5000" }).publicUrl).toBe("http://[::1]:5000");
  });

  it.each([
    [{ PORT: "abc" }, /^Invalid PORT: /],
    [{ PORT: "70000" }, /^Invalid PORT: /],
    [{ PORT: "4.5" }, /^Invalid PORT: /],
    [{ DATABASE_URL: "mysql://x" }, /^Invalid DATABASE_URL: /],
    [{ PUBLIC_URL: "ftp://x" }, /^Invalid PUBLIC_URL: /],
    [{ LOG_LEVEL: "loud" }, /^Invalid LOG_LEVEL: /],
    [{ PODFLOW_ROLES: "api,cron" }, /^Invalid PODFLOW_ROLES: /],
    [{ ITTYBIT_API_URL: "not a url" }, /^Invalid ITTYBIT_API_URL: /],
    [{ ITTYBIT_WEBHOOK_SECRET: "plain-secret" }, /^Invalid ITTYBIT_WEBHOOK_SECRET: /],
    [{ PODFLOW_MAX_UPLOAD_BYTES: "-1" }, /^Invalid PODFLOW_MAX_UPLOAD_BYTES: /],
    [{ PODFLOW_DATABASE_POOL_SIZE: "0" }, /^Invalid PODFLOW_DATABASE_POOL_SIZE: /],
    [{ NODE_ENV: "staging" }, /^Invalid NODE_ENV: /],
    [{ PODFLOW_WEBHOOK_VERIFICATION: "trust" }, /^Invalid PODFLOW_WEBHOOK_VERIFICATION: /],
    [{ PODFLOW_WEBHOOK_VERIFICATION: "signature" }, /needs ITTYBIT_WEBHOOK_SECRET/],
    [{ PODFLOW_WEBHOOK_VERIFICATION: "both" }, /needs ITTYBIT_WEBHOOK_SECRET/],
    [{ PODFLOW_WEBHOOK_TOKEN: "short" }, /^Invalid PODFLOW_WEBHOOK_TOKEN: /],
    [{ PODFLOW_WEBHOOK_TOKEN: `${"a".repeat(40)}/..` }, /^Invalid PODFLOW_WEBHOOK_TOKEN: /],
  ])("rejects %o with one line naming the variable", (env, message) => {
    expect(() => loadConfig(env)).toThrow(ConfigError);
    expect(() => loadConfig(env)).toThrow(message);
    try {
      loadConfig(env);
    } catch (error) {
      expect((error as Error).message).not.toContain("\n");
    }
  });

  it("verifies webhooks by asking Ittybit when there is no secret, by signature when there is one", () => {
    const ittybit = { NODE_ENV: "production", ITTYBIT_API_KEY: "key" };
    // No secret is no reason to refuse to start, nor to believe unsigned bodies: refetch.
    expect(loadConfig(ittybit).ittybit.webhookVerification).toBe("refetch");
    const secret = { ...ittybit, ITTYBIT_WEBHOOK_SECRET: "whsec_c2VjcmV0" };
    expect(loadConfig(secret).ittybit.webhookVerification).toBe("signature");
    expect(
      loadConfig({ ...secret, PODFLOW_WEBHOOK_VERIFICATION: "Both" }).ittybit.webhookVerification,
    ).toBe("both");
    expect(
      loadConfig({ ...secret, PODFLOW_WEBHOOK_VERIFICATION: "refetch" }).ittybit
        .webhookVerification,
    ).toBe("refetch");
    const token = "t".repeat(48);
    expect(loadConfig({ PODFLOW_WEBHOOK_TOKEN: token }).ittybit.webhookToken).toBe(token);
  });

  it("reads the local engine's settings, with defaults under the data directory", () => {
    const defaults = loadConfig({ PODFLOW_DATA_DIR: "/srv/podflow" });
    expect(defaults.local).toEqual({
      mediaDir: "/srv/podflow/media",
      concurrency: 1,
      whisperModel: undefined,
      chapterMinSeconds: 120,
      chapterMinSilenceSeconds: 1.5,
    });
    const set = loadConfig({
      PODFLOW_MEDIA_DIR: "/mnt/media",
      PODFLOW_MEDIA_CONCURRENCY: "2",
      PODFLOW_WHISPER_MODEL: "/models/ggml-base.en.bin",
      PODFLOW_CHAPTER_MIN_SECONDS: "60",
      PODFLOW_CHAPTER_MIN_SILENCE_SECONDS: "0.8",
    });
    expect(set.local).toEqual({
      mediaDir: "/mnt/media",
      concurrency: 2,
      whisperModel: "/models/ggml-base.en.bin",
      chapterMinSeconds: 60,
      chapterMinSilenceSeconds: 0.8,
    });
    expect(() => loadConfig({ PODFLOW_MEDIA_CONCURRENCY: "0" })).toThrow(
      /^Invalid PODFLOW_MEDIA_CONCURRENCY: /,
    );
  });

  it("reads the job heartbeat and supervisor settings, and refuses a heartbeat pg-boss refuses", () => {
    expect(loadConfig({}).jobs).toEqual({ heartbeatSeconds: undefined, superviseSeconds: 10 });
    expect(
      loadConfig({ PODFLOW_JOB_HEARTBEAT_SECONDS: "30", PODFLOW_JOB_SUPERVISE_SECONDS: "2" }).jobs,
    ).toEqual({ heartbeatSeconds: 30, superviseSeconds: 2 });
    expect(() => loadConfig({ PODFLOW_JOB_HEARTBEAT_SECONDS: "5" })).toThrow(
      "Invalid PODFLOW_JOB_HEARTBEAT_SECONDS: must be a whole number of seconds, at least 10",
    );
    expect(() => loadConfig({ PODFLOW_JOB_SUPERVISE_SECONDS: "0" })).toThrow(
      /^Invalid PODFLOW_JOB_SUPERVISE_SECONDS: /,
    );
  });

  it("reads the publishing settings: service URLs, the OAuth client, chunk size and secret keys", () => {
    const defaults = loadConfig({});
    expect(defaults.distribution).toMatchObject({
      transistorApiUrl: "https://api.transistor.fm",
      youtubeUploadUrl: "https://www.googleapis.com/upload/youtube/v3",
      googleClientId: undefined,
      youtubeChunkBytes: 32 * 262_144,
    });
    expect(defaults.secretKeys).toBeUndefined();
    const current = Buffer.alloc(32, 1).toString("base64");
    const old = Buffer.alloc(32, 2).toString("base64");
    const config = loadConfig({
      TRANSISTOR_API_URL: "http://127.0.0.1:9/",
      GOOGLE_OAUTH_CLIENT_ID: "client",
      GOOGLE_OAUTH_CLIENT_SECRET: "secret",
      PODFLOW_YOUTUBE_CHUNK_BYTES: String(4 * 262_144),
      PODFLOW_SECRET_KEY: `${current}, ${old}`,
    });
    expect(config.distribution.transistorApiUrl).toBe("http://127.0.0.1:9");
    expect(config.distribution.youtubeChunkBytes).toBe(4 * 262_144);
    expect(config.secretKeys?.map((key) => key.toString("base64"))).toEqual([current, old]);
    expect(() => loadConfig({ PODFLOW_SECRET_KEY: "c2hvcnQ=" })).toThrow(
      /PODFLOW_SECRET_KEY: must be one or more base64 keys of 32 bytes/,
    );
    expect(() => loadConfig({ PODFLOW_YOUTUBE_CHUNK_BYTES: "1000000" })).toThrow(
      /PODFLOW_YOUTUBE_CHUNK_BYTES: must be a positive multiple of 262144/,
    );
    expect(() => loadConfig({ GOOGLE_OAUTH_CLIENT_ID: "client" })).toThrow(
      /GOOGLE_OAUTH_CLIENT_SECRET: YouTube needs both/,
    );
  });

  it("reads the housekeeping settings, with a 30-day retention and a 24-hour stuck bound", () => {
    expect(loadConfig({}).maintenance).toEqual({
      webhookRetentionDays: 30,
      stuckEpisodeHours: 24,
      cron: "*/10 * * * *",
    });
    expect(
      loadConfig({
        PODFLOW_WEBHOOK_RETENTION_DAYS: "7",
        PODFLOW_STUCK_EPISODE_HOURS: "1.5",
        PODFLOW_MAINTENANCE_CRON: "0 * * * *",
      }).maintenance,
    ).toEqual({ webhookRetentionDays: 7, stuckEpisodeHours: 1.5, cron: "0 * * * *" });
    expect(() => loadConfig({ PODFLOW_WEBHOOK_RETENTION_DAYS: "0" })).toThrow(
      "Invalid PODFLOW_WEBHOOK_RETENTION_DAYS: must be a positive number of days",
    );
    expect(() => loadConfig({ PODFLOW_STUCK_EPISODE_HOURS: "soon" })).toThrow(
      "Invalid PODFLOW_STUCK_EPISODE_HOURS: must be a positive number of hours",
    );
  });

  it("traces only when OTEL_EXPORTER_OTLP_ENDPOINT is set", () => {
    expect(loadConfig({}).tracing).toEqual({ otlpEndpoint: undefined, serviceName: "podflow" });
    expect(
      loadConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: "http://collector:4318/", OTEL_SERVICE_NAME: "pf" })
        .tracing,
    ).toEqual({ otlpEndpoint: "http://collector:4318", serviceName: "pf" });
    expect(() => loadConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: "collector:4318" })).toThrow(
      /^Invalid OTEL_EXPORTER_OTLP_ENDPOINT: /,
    );
  });

  it("treats blank values as unset", () => {
    const config = loadConfig({ PORT: "", ITTYBIT_API_KEY: " ", DATABASE_URL: "" });
    expect(config.port).toBe(4000);
    expect(config.ittybit.apiKey).toBeUndefined();
    expect(config.databaseUrl).toBeUndefined();
  });

  it("applies the documented security defaults, and production closes GraphiQL unless asked", () => {
    const { security } = loadConfig({});
    expect(security.graphql).toMatchObject({
      maxAliases: 15,
      maxDepth: 10,
      maxTokens: 2000,
      maxDirectives: 20,
      maxCost: 10_000,
      maxNodeIds: 100,
      maxBodyBytes: 65_536,
      explorable: true,
      corsOrigins: [],
    });
    expect(security.connections).toMatchObject({
      wsMaxInitMessageBytes: 4096,
      wsMaxMessageBytes: 65_536,
      wsMaxSubscriptions: 50,
      wsMaxSocketsPerToken: 50,
      sseMaxStreamsPerToken: 50,
      httpHeadersTimeoutMs: 20_000,
      httpRequestTimeoutMs: 3_600_000,
    });
    expect(security.outputHosts).toEqual({
      hosts: ["api.ittybit.com", "*.ittybit.net"],
      listed: false,
    });
    expect(loadConfig({ NODE_ENV: "production" }).security.graphql.explorable).toBe(false);
    expect(
      loadConfig({ NODE_ENV: "production", PODFLOW_GRAPHIQL: "1" }).security.graphql.explorable,
    ).toBe(true);
    const listed = loadConfig({
      PODFLOW_CORS_ORIGINS: "https://a.example.com, https://b.example.com",
      PODFLOW_OUTPUT_HOSTS: "store.internal:9000,*.cdn.example.com",
    }).security;
    expect(listed.graphql.corsOrigins).toEqual(["https://a.example.com", "https://b.example.com"]);
    expect(listed.outputHosts).toEqual({
      hosts: ["store.internal:9000", "*.cdn.example.com"],
      listed: true,
    });
  });

  it.each([
    [{ PODFLOW_GRAPHQL_MAX_COST: "0" }, /^Invalid PODFLOW_GRAPHQL_MAX_COST: /],
    [{ PODFLOW_GRAPHIQL: "yes" }, /^Invalid PODFLOW_GRAPHIQL: /],
    [{ PODFLOW_CORS_ORIGINS: "https://a.example.com/app" }, /^Invalid PODFLOW_CORS_ORIGINS: /],
    [{ PODFLOW_OUTPUT_HOSTS: "https://store.example.com" }, /^Invalid PODFLOW_OUTPUT_HOSTS: /],
    [{ PODFLOW_WS_MAX_SUBSCRIPTIONS: "-2" }, /^Invalid PODFLOW_WS_MAX_SUBSCRIPTIONS: /],
  ])("rejects the security setting %o with one line naming it", (env, message) => {
    expect(() => loadConfig(env)).toThrow(message);
  });
});
