import path from "node:path";
import type { Config } from "./config.ts";
import { type EmbeddedDatabase, startEmbeddedDatabase } from "./database/embedded.ts";
import { migrate, openOrm } from "./database/orm.ts";
import type { AppDeps } from "./deps.ts";
import { resolveMediaTools } from "./engine/local/media-tools.ts";
import { startBoss } from "./jobs/boss.ts";
import { startWorkers } from "./jobs/index.ts";
import { createLogger, type Logger } from "./logger.ts";
import { createMetrics } from "./metrics.ts";
import { type OpsServer, startOpsServer } from "./ops-http.ts";
import { createOutputHostPolicy } from "./security/output-hosts.ts";
import { buildServer, GRAPHQL_PATH, type PodflowServer } from "./server.ts";
import { createDistribution } from "./services/distribution/index.ts";
import type { MediaEngines } from "./services/engines/engine.ts";
import { createIttybitEngine } from "./services/engines/ittybit-engine.ts";
import { createLocalEngine } from "./services/engines/local-engine.ts";
import type { LocalRunnerDeps } from "./services/engines/local-task-runner.ts";
import { createEpisodeFeed, type EpisodeFeedOptions } from "./services/episode-feed/index.ts";
import { installationSecret, webhookToken } from "./services/installation-secrets.ts";
import {
  createIttybitClient,
  type IttybitClientOptions,
  webhookUrlFor,
} from "./services/ittybit/index.ts";
import { createOutputFetcher } from "./services/outputs.ts";
import { createPostgresPubSub, type PostgresPubSubOptions } from "./services/pubsub.ts";
import { loadSecretBox } from "./services/secret-box.ts";
import { createDiskStorage } from "./services/storage.ts";
import { startTracing } from "./tracing.ts";

export interface RunningPodflow {
  deps: AppDeps;
  /** Present when this process has the `api` role. */
  server: PodflowServer | null;
  /** Base URL of the API, when it runs. */
  url: string | null;
  /**
   * A process without the `api` role: the listener serving /healthz, /readyz and /metrics on
   * PORT (src/ops-http.ts). Null when the API runs (it serves them itself).
   */
  opsUrl: string | null;
  /** Orderly stop: HTTP, then jobs, then database connections, then the embedded database. */
  stop(): Promise<void>;
}

/**
 * How long each step of a stop may wait: the jobs handed back, then in-flight requests, then the
 * other jobs — so a stop can take up to three times this (docker-compose.yml's stop grace is
 * longer).
 */
export const DEFAULT_SHUTDOWN_GRACE_MS = 10_000;

export interface StartOptions {
  logger?: Logger;
  /** How long in-flight requests and jobs get to finish on stop. */
  shutdownGraceMs?: number;
  /** Timeouts and retry pacing of the Ittybit client (tests make them short). */
  ittybit?: Pick<IttybitClientOptions, "retry" | "timeoutMs">;
  /** Pacing of output downloads (tests make retries short). */
  outputs?: { timeoutMs?: number; retryLimit?: number; maxBytes?: number };
  /** Called with each SQL statement the ORM sends (for measuring queries per request). */
  onSqlQuery?: (sql: string) => void;
  /** Pacing of subscriptions: token re-checks, the listener's reconnects (tests make them short). */
  subscriptions?: EpisodeFeedOptions &
    Pick<PostgresPubSubOptions, "reconnectDelayMs" | "healthCheckIntervalMs">;
  /** Pacing of publishing (tests look at Transistor's processing more often). */
  distribution?: { transistorPollMs?: number };
  /** The local engine's ffmpeg stall detection (tests make it short). */
  localEngine?: { stallTimeoutMs?: number };
}

/**
 * Builds the dependencies and starts the roles the config asks for. On a failure half-way,
 * whatever was started is stopped again before the error is rethrown.
 */
export async function startPodflow(
  config: Config,
  options: StartOptions = {},
): Promise<RunningPodflow> {
  const logger = options.logger ?? createLogger(config);
  const graceMs = options.shutdownGraceMs ?? DEFAULT_SHUTDOWN_GRACE_MS;
  const cleanups: Array<() => Promise<void>> = [];
  const stopAll = async () => {
    for (const cleanup of cleanups.reverse()) {
      await cleanup().catch((error: unknown) =>
        logger.error({ err: error }, "error while stopping"),
      );
    }
    cleanups.length = 0;
  };

  try {
    // First started, last stopped: the spans of the whole stop are sent.
    const tracing = startTracing(config.tracing, logger);
    if (tracing) cleanups.push(() => tracing.shutdown());
    let embedded: EmbeddedDatabase | null = null;
    let databaseUrl = config.databaseUrl;
    if (!databaseUrl) {
      embedded = await startEmbeddedDatabase({ dataDir: config.dataDir, logger });
      cleanups.push(() => (embedded as EmbeddedDatabase).stop());
      databaseUrl = embedded.url;
    }

    const orm = await openOrm(databaseUrl, logger, {
      poolMax: config.databasePoolSize,
      onQuery: options.onSqlQuery,
    });
    cleanups.push(() => orm.close());
    await migrate(orm, databaseUrl, logger);

    const worker = config.roles.has("worker");
    const boss = await startBoss({
      databaseUrl,
      logger,
      schedule: worker,
      heartbeatSeconds: config.jobs.heartbeatSeconds,
      superviseSeconds: config.jobs.superviseSeconds,
      propagateTraceContext: tracing !== null,
    });
    cleanups.push(() => boss.stop({ graceful: true, timeout: graceMs, close: true }));

    const ittybitOptions = config.ittybit.apiKey
      ? { apiUrl: config.ittybit.apiUrl, apiKey: config.ittybit.apiKey, logger }
      : null;
    const ittybit =
      ittybitOptions && createIttybitClient({ ...ittybitOptions, ...options.ittybit });
    // Ittybit wants a webhook answered within 5 s: the question a delivery asks gets one quick
    // retry, and is otherwise left to a job with the full retries.
    const quickIttybit =
      ittybitOptions &&
      createIttybitClient({
        ...ittybitOptions,
        timeoutMs: 2_000,
        ...options.ittybit,
        retry: { ...options.ittybit?.retry, limit: 1, totalTimeoutMs: 3_000 },
      });
    const token = await webhookToken(orm.em.fork(), config.ittybit.webhookToken);
    const { reconnectDelayMs, healthCheckIntervalMs, ...feedOptions } = options.subscriptions ?? {};
    const metrics = createMetrics();
    const pubsub = createPostgresPubSub({
      databaseUrl,
      logger,
      reconnectDelayMs,
      healthCheckIntervalMs,
      onReconnect: () => metrics.listenerReconnects.inc(),
    });
    cleanups.push(() => pubsub.close());
    const episodeFeed = createEpisodeFeed({ orm, pubsub, logger }, feedOptions);
    const outputs = createOutputFetcher({
      logger,
      hosts: createOutputHostPolicy(config.security.outputHosts),
      ...options.outputs,
    });
    // Cover art is wherever the producer keeps it: any public https host.
    const images = createOutputFetcher({
      logger,
      hosts: createOutputHostPolicy({ ...config.security.outputHosts, anyHost: true }),
      ...options.outputs,
    });
    const engines: MediaEngines = {};
    if (ittybit) {
      engines.ittybit = createIttybitEngine({
        ittybit,
        outputs,
        webhookUrl: webhookUrlFor(config.publicUrl, token),
      });
    }
    // The local engine runs wherever ffmpeg does; it ships with npm install, so that is anywhere
    // the install went through. Episodes it started keep it even when Ittybit is the default.
    const tools = resolveMediaTools();
    const storage = createDiskStorage(config.local.mediaDir);
    const uploadSecret = await installationSecret(orm.em.fork(), "local-upload-urls");
    engines.local = createLocalEngine({
      storage,
      tools,
      boss,
      publicUrl: config.publicUrl,
      uploadSecret,
    });
    const exportSecret = await installationSecret(orm.em.fork(), "export-urls");
    const localRunner: LocalRunnerDeps = {
      orm,
      boss,
      logger,
      storage,
      tools,
      publicUrl: config.publicUrl,
      metrics,
      settings: {
        ...config.local,
        workRoot: path.join(config.local.mediaDir, "work"),
        stallTimeoutMs: options.localEngine?.stallTimeoutMs,
      },
    };
    const deps: AppDeps = {
      config,
      logger,
      orm,
      boss,
      ittybit,
      webhook: { token, ittybit: quickIttybit },
      metrics,
      engines,
      local: { storage, uploadSecret },
      exportSecret,
      pubsub,
      outputs,
      images,
      episodeFeed,
      distribution: createDistribution(
        config,
        logger,
        await loadSecretBox(config),
        options.distribution,
      ),
    };
    logger.info(
      { mediaEngine: config.mediaEngine, ffmpeg: tools.ffmpeg, mediaDir: config.local.mediaDir },
      `new episodes are processed by the ${config.mediaEngine} media engine`,
    );
    // Only an installation that talks to Ittybit receives its webhooks.
    if (config.ittybit.apiKey) {
      logger.info(
        { verification: config.ittybit.webhookVerification },
        `Ittybit's webhooks are verified by ${config.ittybit.webhookVerification}`,
      );
    }

    const jobsInHand = worker ? await startWorkers(deps, localRunner) : null;

    let server: PodflowServer | null = null;
    let url: string | null = null;
    if (config.roles.has("api")) {
      // Listening before serving: a subscription never starts before changes can reach it.
      await episodeFeed.start();
      cleanups.push(() => episodeFeed.stop());
      const api = buildServer(deps);
      server = api;
      url = await api.start(config.port, config.host);
      // Runs first on stop: no new requests while jobs drain.
      cleanups.push(() => api.stop(graceMs));
      const graphiql = config.security.graphql.explorable;
      logger.info(
        { url, graphiql: graphiql ? `${url}${GRAPHQL_PATH}` : null },
        `Podflow is serving ${graphiql ? "GraphiQL" : "GraphQL"} at ${url}${GRAPHQL_PATH}`,
      );
    }
    let ops: OpsServer | null = null;
    if (!server) {
      // A worker-only process still answers its health checks and metrics, on PORT.
      const opsServer = await startOpsServer(deps, config.port, config.host);
      ops = opsServer;
      // Runs last on stop: the health check answers while the jobs drain.
      cleanups.unshift(() => opsServer.stop());
      logger.info({ url: opsServer.url }, `health checks and metrics at ${opsServer.url}/readyz`);
    }
    // Runs first on stop: the jobs waiting on ffmpeg or Ittybit are handed back at once, for a
    // living worker to continue, rather than held until the grace ends (src/jobs/in-hand.ts).
    if (jobsInHand) cleanups.push(() => jobsInHand.handBack(graceMs));
    logger.info({ roles: [...config.roles] }, "Podflow started");

    let stopping: Promise<void> | null = null;
    return {
      deps,
      server,
      url,
      opsUrl: ops?.url ?? null,
      stop: () => {
        stopping ??= stopAll().then(() => logger.info("Podflow stopped"));
        return stopping;
      },
    };
  } catch (error) {
    await stopAll();
    throw error;
  }
}
