import type { PgBoss } from "pg-boss";
import type { Logger } from "pino";
import type { Config } from "./config.ts";
import type { Orm } from "./database/orm.ts";
import type { Metrics } from "./metrics.ts";
import type { Distribution } from "./services/distribution/index.ts";
import type { MediaEngines } from "./services/engines/engine.ts";
import type { EpisodeFeed } from "./services/episode-feed/index.ts";
import type { IttybitClient } from "./services/ittybit/index.ts";
import type { OutputFetcher } from "./services/outputs.ts";
import type { PubSub } from "./services/pubsub.ts";
import type { MediaStorage } from "./services/storage.ts";

/**
 * Everything a request, a job or a command needs, built once in main.ts (or by a test) and
 * passed down. There are no module-level singletons.
 */
export interface AppDeps {
  config: Config;
  logger: Logger;
  orm: Orm;
  boss: PgBoss;
  /** Null while ITTYBIT_API_KEY is unset (the reconciler asks it about Ittybit's tasks). */
  ittybit: IttybitClient | null;
  /** How Ittybit's webhooks reach this installation. */
  webhook: {
    /** The secret last segment of the webhook URL given to Ittybit. */
    token: string;
    /**
     * A client that answers within a webhook's few seconds (one quick retry), for asking Ittybit
     * about a delivered task; null without ITTYBIT_API_KEY.
     */
    ittybit: IttybitClient | null;
  };
  /** Counters served at GET /metrics. */
  metrics: Metrics;
  /** The media engines this installation runs; an episode is processed by the one it names. */
  engines: MediaEngines;
  /**
   * The local engine's side of HTTP: where uploads are stored and outputs served from, and the
   * key that signs upload URLs. Null when the local engine cannot run here (no ffmpeg).
   */
  local: { storage: MediaStorage; uploadSecret: Buffer } | null;
  /** Keys the public export URLs of episodes (src/services/exports/exports.ts). */
  exportSecret: Buffer;
  /** Downloads task outputs (transcripts, chapters) from Ittybit's storage. */
  outputs: OutputFetcher;
  /** Downloads producers' cover art: from any public https host (PODFLOW_OUTPUT_HOSTS' exact entries excepted). */
  images: OutputFetcher;
  /** Announces committed episode and task changes to subscribers on every instance. */
  pubsub: PubSub;
  /** Publishing to Transistor and YouTube: clients, OAuth and the key to producers' secrets. */
  distribution: Distribution;
  /** This instance's GraphQL subscriptions, fed by `pubsub` (listening only in the api role). */
  episodeFeed: EpisodeFeed;
}
