import { usePersistedOperations } from "@graphql-yoga/plugin-persisted-operations";
import { GraphQLError } from "graphql";
import type { Plugin } from "graphql-yoga";
import { type PersistedOperationList, sha256 } from "./settings.ts";

const SETTING = "PODFLOW_PERSISTED_OPERATIONS";

/** What a client sends: a query's text, or a persisted operation's id (Apollo's extension). */
export interface OperationParams {
  query?: string | null;
  extensions?: Record<string, unknown> | null;
}

/**
 * The query an allow-listed request runs, or why it is refused. A request names its operation
 * by id (`extensions.persistedQuery.sha256Hash`, Apollo's extension), or sends the full text of a
 * listed operation (matched by its SHA-256), so a client such as the dashboard needs no
 * change when its operations are listed.
 */
export function resolvePersistedOperation(
  list: PersistedOperationList,
  params: OperationParams,
): { query: string } | { error: GraphQLError } {
  if (typeof params.query === "string" && params.query !== "") {
    const query = list.byHash.get(sha256(params.query));
    if (query !== undefined) return { query };
    return { error: refusal("Only persisted operations may run on this server", "NOT_PERSISTED") };
  }
  const id = operationId(params);
  if (id === null) {
    return {
      error: refusal("A persisted operation id is required", "PERSISTED_QUERY_ID_REQUIRED"),
    };
  }
  const query = list.byId.get(id) ?? list.byHash.get(id);
  if (query === undefined) {
    return { error: refusal("Unknown persisted operation", "PERSISTED_QUERY_NOT_IN_LIST") };
  }
  return { query };
}

function operationId(params: OperationParams): string | null {
  const persisted = params.extensions?.persistedQuery as { sha256Hash?: unknown } | undefined;
  return typeof persisted?.sha256Hash === "string" ? persisted.sha256Hash : null;
}

function refusal(message: string, code: string): GraphQLError {
  return new GraphQLError(`${message} (${SETTING})`, {
    extensions: { code, setting: SETTING, http: { status: 400 } },
  });
}

/**
 * Over HTTP (and SSE): yoga's persisted-operations plugin, fed by the list, after a step that
 * turns the full text of a listed query into its id. The WebSocket path (src/server.ts) calls
 * resolvePersistedOperation itself, since it does not go through yoga's request parameters.
 */
export function usePersistedOperationList(list: PersistedOperationList): Plugin[] {
  const listedText: Plugin = {
    onParams({ params, setParams }) {
      if (typeof params.query !== "string" || params.query === "") return;
      const resolved = resolvePersistedOperation(list, params);
      if ("error" in resolved) throw resolved.error;
      const { query: _text, ...rest } = params;
      setParams({
        ...rest,
        extensions: {
          ...params.extensions,
          persistedQuery: { version: 1, sha256Hash: sha256(resolved.query) },
        },
      });
    },
  };
  const persisted = usePersistedOperations({
    extractPersistedOperationId: (params) => operationId(params as OperationParams),
    allowArbitraryOperations: false,
    getPersistedOperation: (id) => list.byId.get(id) ?? list.byHash.get(id) ?? null,
    customErrors: {
      keyNotFound: () =>
        refusal("A persisted operation id is required", "PERSISTED_QUERY_ID_REQUIRED"),
      notFound: () => refusal("Unknown persisted operation", "PERSISTED_QUERY_NOT_IN_LIST"),
      persistedQueryOnly: () =>
        refusal("Only persisted operations may run on this server", "NOT_PERSISTED"),
    },
  }) as Plugin;
  return [listedText, persisted];
}
