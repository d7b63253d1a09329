import { useGraphQlJit } from "@envelop/graphql-jit";
import { getOperationAST } from "graphql";
import type { Plugin } from "graphql-yoga";
import type { Logger } from "../logger.ts";

/**
 * Queries run as JavaScript compiled from their document (graphql-jit), once per parsed
 * document: yoga's parser cache hands the same document object to each request with the same
 * text, and the compiled query is kept beside it (a WeakMap, so it goes when the cache drops the
 * document). A page of 100 episodes with their tasks is ~3,300 fields; the interpreting executor
 * spent most of a listing's CPU walking them (collecting fields, argument values, type checks,
 * a promise per level). Mutations and subscriptions keep the standard executor: they execute a
 * handful of fields, and subscriptions run through the shared executions
 * (src/schema/shared-executions.ts). Parsing, validation, the limits, persisted operations and
 * error masking are before or after execution and apply alike.
 */
export function useCompiledQueries(logger: Logger): Plugin {
  return useGraphQlJit(
    {},
    {
      enableIf: (args) => getOperationAST(args.document, args.operationName)?.operation === "query",
      // A document the compiler refuses (none of Podflow's schema should) answers with its errors.
      onError: (result) => logger.warn({ errors: result.errors }, "graphql query not compiled"),
    },
  ) as Plugin;
}
