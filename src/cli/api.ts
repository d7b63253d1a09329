import { createClient } from "graphql-ws";

/**
 * Podflow's public GraphQL API as the command line uses it: queries and mutations over HTTP,
 * subscriptions over graphql-ws — the same API and the same token as every other client.
 */
export interface PodflowApi {
  request<T>(query: string, variables?: Record<string, unknown>): Promise<T>;
  /**
   * Calls `onNext` with each result of a subscription until `onNext` returns true (done) or the
   * subscription ends; resolves then. A lost connection is retried by the client.
   */
  subscribe<T>(
    query: string,
    variables: Record<string, unknown>,
    onNext: (data: T) => boolean | undefined,
  ): Promise<void>;
  close(): Promise<void>;
}

/** The API said no: a GraphQL error, an HTTP error, or an unreachable server. */
export class ApiError extends Error {
  override name = "ApiError";
}

export interface ApiOptions {
  /** Podflow's base URL, e.g. http://127.0.0.1:4000. */
  url: string;
  token: string;
}

export function createApi(options: ApiOptions): PodflowApi {
  const endpoint = `${options.url.replace(/\/+$/, "")}/graphql`;
  const authorization = `Bearer ${options.token}`;
  let ws: ReturnType<typeof createClient> | null = null;

  return {
    async request<T>(query: string, variables: Record<string, unknown> = {}): Promise<T> {
      let response: Response;
      try {
        response = await fetch(endpoint, {
          method: "POST",
          headers: { "content-type": "application/json", authorization },
          body: JSON.stringify({ query, variables }),
        });
      } catch (error) {
        throw new ApiError(`cannot reach Podflow at ${options.url}: ${causeOf(error)}`);
      }
      const body = (await response.json().catch(() => null)) as {
        data?: T;
        errors?: Array<{ message: string; extensions?: { code?: string } }>;
      } | null;
      if (body?.errors?.length) {
        const [first] = body.errors;
        throw new ApiError(
          first?.extensions?.code === "UNAUTHENTICATED"
            ? "the API token was refused (set PODFLOW_TOKEN or --token)"
            : (first?.message ?? "the API answered an error"),
        );
      }
      if (!response.ok || !body?.data) {
        throw new ApiError(`Podflow answered HTTP ${response.status}`);
      }
      return body.data;
    },

    subscribe<T>(
      query: string,
      variables: Record<string, unknown>,
      onNext: (data: T) => boolean | undefined,
    ): Promise<void> {
      ws ??= createClient({
        url: endpoint.replace(/^http/, "ws"),
        connectionParams: { authorization },
        retryAttempts: 10,
        shouldRetry: () => true,
        lazy: true,
      });
      const client = ws;
      return new Promise<void>((resolve, reject) => {
        const dispose = client.subscribe<T>(
          { query, variables },
          {
            next: (result) => {
              if (result.errors?.length) {
                dispose();
                reject(new ApiError(result.errors[0]?.message ?? "subscription error"));
                return;
              }
              if (result.data && onNext(result.data as T)) {
                dispose();
                resolve();
              }
            },
            error: (error) => reject(new ApiError(`the live connection failed: ${causeOf(error)}`)),
            complete: () => resolve(),
          },
        );
      });
    },

    async close(): Promise<void> {
      await ws?.dispose();
    },
  };
}

function causeOf(error: unknown): string {
  if (error instanceof Error) {
    const cause = (error as Error & { cause?: unknown }).cause;
    return cause instanceof Error ? cause.message : error.message;
  }
  if (error && typeof error === "object" && "reason" in error) {
    return String((error as { reason: unknown }).reason || "closed");
  }
  return String(error);
}
