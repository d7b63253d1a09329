import { blockFieldSuggestionsPlugin } from "@escape.tech/graphql-armor-block-field-suggestions";
import { useCSRFPrevention } from "@graphql-yoga/plugin-csrf-prevention";
import { useDisableIntrospection } from "@graphql-yoga/plugin-disable-introspection";
import type { Plugin, YogaServerOptions } from "graphql-yoga";
import { boundedParserCache, graphqlLimitPlugins } from "./graphql-limits.ts";
import { useNoNulText } from "./nul-text.ts";
import { usePersistedOperationList } from "./persisted-operations.ts";
import { useRequestBodyLimit } from "./request-body-limit.ts";
import type { SecuritySettings } from "./settings.ts";
import { useStreamLimits } from "./stream-limits.ts";

/** The header a browser client sends with GET requests (CSRF prevention). */
export const CSRF_HEADER = "x-graphql-yoga-csrf";

type SecurityOptions = Pick<
  YogaServerOptions<Record<string, never>, Record<string, unknown>>,
  "plugins" | "maxRequestBodySize" | "parserAndValidationCache" | "graphiql" | "cors"
>;

/**
 * The yoga options that limit and expose the API (README "Security"):
 * - the limits of graphql-limits.ts, a request body limit (request-body-limit.ts), a bounded parser cache, event
 *   streams per token (stream-limits.ts);
 * - GraphiQL, introspection and "did you mean" suggestions only when explorable (outside
 *   production, or with PODFLOW_GRAPHIQL=1);
 * - CORS only for the listed origins, never with credentials (tokens are bearer headers, not
 *   cookies); none listed: no cross-origin access at all;
 * - CSRF prevention: a GET or a "simple" POST (form, text/plain) must carry the
 *   `x-graphql-yoga-csrf` header, so a browser always preflights it. JSON POSTs (fetch,
 *   graphql-sse) and WebSockets (token in connectionParams) are unaffected.
 */
export function yogaSecurityOptions(security: SecuritySettings): SecurityOptions {
  const settings = security.graphql;
  const plugins: Plugin[] = [
    // First: an operation not on the list is refused before it is even parsed.
    ...(settings.persistedOperations
      ? usePersistedOperationList(settings.persistedOperations)
      : []),
    ...graphqlLimitPlugins(settings),
    useStreamLimits(security.connections),
    useCSRFPrevention(),
    useNoNulText(),
    // After yoga's request parsers (user plugins come after them), like yoga's own limit.
    useRequestBodyLimit(settings.maxBodyBytes),
  ];
  if (!settings.explorable) {
    plugins.push(useDisableIntrospection() as Plugin, blockFieldSuggestionsPlugin() as Plugin);
  }
  const origins = settings.corsOrigins;
  return {
    plugins,
    // useRequestBodyLimit instead: yoga's counts every body through a stream.
    maxRequestBodySize: false,
    parserAndValidationCache: boundedParserCache(settings) as never,
    graphiql: settings.explorable ? { title: "Podflow", subscriptionsProtocol: "WS" } : false,
    cors:
      origins.length === 0
        ? false
        : {
            origin: origins.includes("*") ? "*" : origins,
            credentials: false,
            methods: ["GET", "POST"],
            allowedHeaders: ["authorization", "content-type", "accept", CSRF_HEADER],
          },
  };
}
