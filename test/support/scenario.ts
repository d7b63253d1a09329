import type { EntityManager } from "@mikro-orm/postgresql";
import type { RunningPodflow, StartOptions } from "../../src/app.ts";
import type { Config } from "../../src/config.ts";
import { createUser, issueToken } from "../../src/services/accounts.ts";
import { createTestDatabase } from "./database.ts";
import { graphql } from "./http.ts";
import { type IttybitStandIn, startIttybitStandIn } from "./ittybit-stand-in.ts";
import { startTestPodflow } from "./podflow.ts";

export const ITTYBIT_TEST_KEY = "ittybit_test_key_0123456789";
/** Attempts the Ittybit client makes per request in a scenario (the first and its retries). */
export const ITTYBIT_TEST_ATTEMPTS = 3;
export const WEBHOOK_TEST_SECRET = `whsec_${Buffer.from("podflow test webhook secret").toString("base64")}`;

/** A producer with a working token, and GraphQL requests made as them. */
export interface TestProducer {
  email: string;
  userId: string;
  token: string;
  gql<T = Record<string, unknown>>(
    query: string,
    variables?: Record<string, unknown>,
  ): ReturnType<typeof graphql<T>>;
}

export interface Scenario {
  podflow: RunningPodflow;
  ittybit: IttybitStandIn;
  url: string;
  databaseUrl: string;
  /** A fresh EntityManager on the scenario's database. */
  em(): EntityManager;
  producer(email?: string): Promise<TestProducer>;
  stop(): Promise<void>;
}

let producers = 0;

/**
 * A fresh database, an Ittybit stand-in and a Podflow wired to both (the client's retries made
 * fast). `env` adds or overrides environment variables, e.g. PODFLOW_ROLES.
 */
export async function startScenario(
  options: {
    env?: Record<string, string>;
    overrides?: Partial<Config>;
    start?: StartOptions;
    /** More loopback hosts (`host:port`) Podflow may download from, e.g. a cover art server. */
    outputHosts?: string[];
  } = {},
): Promise<Scenario> {
  const database = await createTestDatabase();
  const ittybit = await startIttybitStandIn({
    apiKey: ITTYBIT_TEST_KEY,
    webhookSecret: WEBHOOK_TEST_SECRET,
  });
  const podflow = await startTestPodflow({
    databaseUrl: database.url,
    env: {
      ITTYBIT_API_KEY: ITTYBIT_TEST_KEY,
      ITTYBIT_API_URL: ittybit.url,
      // The stand-in serves the outputs too, over http on loopback: listed exactly, as an
      // operator would list an internal store.
      PODFLOW_OUTPUT_HOSTS: [new URL(ittybit.url).host, ...(options.outputHosts ?? [])].join(","),
      ITTYBIT_WEBHOOK_SECRET: WEBHOOK_TEST_SECRET,
      ...options.env,
    },
    overrides: options.overrides,
    start: {
      ittybit: {
        timeoutMs: 2_000,
        retry: {
          limit: ITTYBIT_TEST_ATTEMPTS - 1,
          baseDelayMs: 10,
          maxDelayMs: 50,
          totalTimeoutMs: 5_000,
        },
      },
      ...options.start,
    },
  });
  const url = podflow.url ?? "";
  const em = () => podflow.deps.orm.em.fork();
  return {
    podflow,
    ittybit,
    url,
    databaseUrl: database.url,
    em,
    async producer(email = `producer${++producers}-${Date.now()}@example.com`) {
      const forked = em();
      const user = await createUser(forked, email);
      const { secret } = await issueToken(forked, user, "test");
      return {
        email: user.email,
        userId: user.id,
        token: secret,
        gql: (query, variables) =>
          graphql(url, query, variables, { authorization: `Bearer ${secret}` }),
      };
    },
    async stop() {
      await podflow.stop();
      await ittybit.close();
      await database.drop();
    },
  };
}
