import { maxAliasesPlugin } from "@escape.tech/graphql-armor-max-aliases";
import { maxDepthPlugin } from "@escape.tech/graphql-armor-max-depth";
import { maxDirectivesPlugin } from "@escape.tech/graphql-armor-max-directives";
import { maxTokensPlugin } from "@escape.tech/graphql-armor-max-tokens";
import { type ExecutionArgs, GraphQLError } from "graphql";
import { type ComplexityEstimator, getComplexity } from "graphql-query-complexity";
import type { Plugin } from "graphql-yoga";
import { LRUCache } from "lru-cache";
import type { SecuritySettings } from "./settings.ts";

/**
 * What bounds one GraphQL operation, HTTP and WebSocket alike (the WebSocket path runs yoga's
 * enveloped parse/validate/execute, so every plugin here applies to it too):
 * - graphql-armor: aliases, depth and directives (validation rules) and tokens (the parser stops
 *   at the first token past the limit, before building a large AST);
 * - a cost limit (graphql-query-complexity) computed with the request's variables right before
 *   execution — not as a validation rule, whose cached verdict would be reused for other
 *   variables — in which lists weigh what they can return;
 * - `nodes(ids:)` takes at most `maxNodeIds` ids.
 * Every refusal names the limit and its setting.
 */
export function graphqlLimitPlugins(limits: SecuritySettings["graphql"]): Plugin[] {
  // graphql-armor's own messages give the number but not the setting: say both.
  const named = (what: string, n: number, setting: string) => ({
    n,
    exposeLimits: false,
    errorMessage: `${what} limit of ${n} exceeded (${setting}).`,
  });
  return [
    maxTokensPlugin(named("Token", limits.maxTokens, "PODFLOW_GRAPHQL_MAX_TOKENS")),
    maxAliasesPlugin(named("Aliases", limits.maxAliases, "PODFLOW_GRAPHQL_MAX_ALIASES")),
    maxDepthPlugin({
      ...named("Query depth", limits.maxDepth, "PODFLOW_GRAPHQL_MAX_DEPTH"),
      ignoreIntrospection: true,
      flattenFragments: true,
    }),
    maxDirectivesPlugin(
      named("Directives", limits.maxDirectives, "PODFLOW_GRAPHQL_MAX_DIRECTIVES"),
    ),
    useCostLimit(limits),
  ] as Plugin[];
}

/** Episodes per page when `first` is omitted, and the most a page holds (src/schema/episode.ts). */
const DEFAULT_PAGE_SIZE = 20;
const MAX_PAGE_SIZE = 100;
/**
 * Transcripts are the one field whose size is not bounded by the schema: an hour of speech is
 * ~50 KB of text and ~1,000 segments. They are weighed as a long episode's, so a page of
 * episodes with their transcripts is refused while one episode's passes.
 */
const TRANSCRIPT_COST = 100;
const TRANSCRIPT_SEGMENTS = 500;
/** Chapters one episode may have (a handful in practice). */
const CHAPTERS = 20;

/** The weight of each field: 1 plus its children's, times how many items a list returns. */
function podflowCostEstimator(maxNodeIds: number): ComplexityEstimator {
  return ({ type, field, args, childComplexity }) => {
    switch (`${type.name}.${field.name}`) {
      case "Query.episodes": {
        const first = typeof args.first === "number" ? args.first : DEFAULT_PAGE_SIZE;
        return 1 + Math.min(Math.max(first, 1), MAX_PAGE_SIZE) * childComplexity;
      }
      case "Query.nodes": {
        const count = Array.isArray(args.ids) ? args.ids.length : 0;
        if (count > maxNodeIds) {
          throw limitError(
            `\`nodes\` takes at most ${maxNodeIds} ids (got ${count}; PODFLOW_GRAPHQL_MAX_NODE_IDS)`,
            "PODFLOW_GRAPHQL_MAX_NODE_IDS",
          );
        }
        return 1 + count * childComplexity;
      }
      case "Episode.tasks":
        return 1 + 4 * childComplexity;
      case "Episode.publications":
        return 1 + 3 * childComplexity;
      case "EpisodeOutputs.chapters":
        return 1 + CHAPTERS * childComplexity;
      case "EpisodeOutputs.transcript":
        return TRANSCRIPT_COST;
      case "EpisodeOutputs.transcriptSegments":
        return TRANSCRIPT_COST + TRANSCRIPT_SEGMENTS * childComplexity;
      default:
        return 1 + childComplexity;
    }
  };
}

/** Weighed operations kept, and how much variable text their keys may hold in all. */
const COST_CACHE_ENTRIES = 1_000;
const COST_CACHE_MAX_CHARS = 1024 * 1024;

function useCostLimit(limits: SecuritySettings["graphql"]): Plugin {
  const estimators = [podflowCostEstimator(limits.maxNodeIds)];
  // The same document with the same operation and variables weighs the same, and a dashboard
  // asks the same page again and again: the cost is kept by all three (the document by identity:
  // yoga's parser cache hands the same object to each request with the same text).
  const documentIds = new WeakMap<ExecutionArgs["document"], number>();
  let documents = 0;
  const costs = new LRUCache<string, number>({
    max: COST_CACHE_ENTRIES,
    maxSize: COST_CACHE_MAX_CHARS,
    sizeCalculation: (_cost, key) => Math.max(key.length, 1),
  });
  const refusal = (args: ExecutionArgs): GraphQLError | null => {
    let documentId = documentIds.get(args.document);
    if (documentId === undefined) {
      documentId = documents += 1;
      documentIds.set(args.document, documentId);
    }
    const key = `${documentId}|${args.operationName ?? ""}|${JSON.stringify(args.variableValues ?? {})}`;
    let cost = costs.get(key);
    if (cost === undefined) {
      try {
        cost = getComplexity({
          schema: args.schema,
          query: args.document,
          variables: (args.variableValues ?? {}) as Record<string, unknown>,
          operationName: args.operationName ?? undefined,
          estimators,
        });
      } catch (error) {
        if (error instanceof GraphQLError && error.extensions.code === "LIMIT_EXCEEDED")
          return error;
        if (error instanceof Error && error.message.includes("maximum allowed number of nodes")) {
          return limitError(
            "Query has too many fields to weigh (PODFLOW_GRAPHQL_MAX_COST)",
            "PODFLOW_GRAPHQL_MAX_COST",
          );
        }
        // Bad variables or an unknown operation: execution itself answers with the precise error.
        return null;
      }
      costs.set(key, cost);
    }
    if (cost <= limits.maxCost) return null;
    return limitError(
      `Query cost ${cost} exceeds the limit of ${limits.maxCost} (PODFLOW_GRAPHQL_MAX_COST): ask for smaller pages or fewer fields`,
      "PODFLOW_GRAPHQL_MAX_COST",
    );
  };
  return {
    onExecute({ args, setResultAndStopExecution }) {
      const error = refusal(args);
      if (error) setResultAndStopExecution({ errors: [error] });
    },
    onSubscribe({ args, setResultAndStopExecution }) {
      const error = refusal(args);
      if (error) setResultAndStopExecution({ errors: [error] });
    },
  };
}

function limitError(message: string, setting: string): GraphQLError {
  return new GraphQLError(message, { extensions: { code: "LIMIT_EXCEEDED", setting } });
}

/** Query text all cached documents may add up to (their ASTs are a few times larger). */
const PARSER_CACHE_MAX_CHARS = 2 * 1024 * 1024;

/**
 * Yoga's parser cache, bounded by count and by total query length; failed parses are not
 * cached (yoga's default keeps each one, so junk bodies would fill the cache).
 */
export function boundedParserCache(limits: SecuritySettings["graphql"]) {
  return {
    documentCache: new LRUCache<string, object>({
      max: limits.parserCacheSize,
      maxSize: PARSER_CACHE_MAX_CHARS,
      sizeCalculation: (_document, query) => Math.max(query.length, 1),
    }),
    errorCache: {
      get: (_query: string): Error | undefined => undefined,
      set: (_query: string, _error: Error): void => {},
    },
    validationCache: true,
  };
}
