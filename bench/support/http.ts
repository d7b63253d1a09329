import http from "node:http";
import { performance } from "node:perf_hooks";

/** One HTTP answer and how long it took, from the first byte written to the last byte read. */
export interface TimedResponse {
  status: number;
  body: string;
  ms: number;
}

/**
 * A keep-alive HTTP client with exactly `connections` sockets: the load generator of the
 * throughput scenarios. Requests beyond that wait for a free socket, as a fixed pool of
 * connections does.
 */
export function createLoadClient(baseUrl: string, connections: number) {
  const agent = new http.Agent({
    keepAlive: true,
    maxSockets: connections,
    maxFreeSockets: connections,
  });
  const { hostname, port } = new URL(baseUrl);

  function post(
    path: string,
    headers: Record<string, string>,
    body: string,
    timeoutMs = 30_000,
  ): Promise<TimedResponse> {
    return new Promise((resolve, reject) => {
      const started = performance.now();
      const request = http.request(
        {
          agent,
          host: hostname,
          port: Number(port),
          path,
          method: "POST",
          headers: { ...headers, "content-length": Buffer.byteLength(body) },
          timeout: timeoutMs,
        },
        (response) => {
          const chunks: Buffer[] = [];
          response.on("data", (chunk: Buffer) => chunks.push(chunk));
          response.on("end", () =>
            resolve({
              status: response.statusCode ?? 0,
              body: Buffer.concat(chunks).toString("utf8"),
              ms: performance.now() - started,
            }),
          );
          response.on("error", reject);
        },
      );
      request.on("timeout", () => request.destroy(new Error(`no answer within ${timeoutMs} ms`)));
      request.on("error", reject);
      request.end(body);
    });
  }

  return { post, close: () => agent.destroy() };
}

export type LoadClient = ReturnType<typeof createLoadClient>;

/**
 * Runs `count` operations with at most `concurrency` in flight, in index order, and gives up
 * (rejects) once `deadlineMs` has passed: every loop of the benchmarks is bounded in count and
 * in time. Resolves with the results in index order and the wall time it took.
 */
export async function runBounded<T>(
  count: number,
  concurrency: number,
  deadlineMs: number,
  operation: (index: number) => Promise<T>,
): Promise<{ results: T[]; elapsedMs: number }> {
  const results: T[] = new Array(count);
  const started = performance.now();
  const deadline = started + deadlineMs;
  let next = 0;
  const worker = async () => {
    for (;;) {
      const index = next++;
      if (index >= count) return;
      if (performance.now() > deadline) {
        next = count;
        throw new Error(
          `gave up after ${deadlineMs} ms with ${index} of ${count} operations started`,
        );
      }
      try {
        results[index] = await operation(index);
      } catch (error) {
        // The other workers stop at their next operation.
        next = count;
        throw error;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker));
  return { results, elapsedMs: performance.now() - started };
}

/** A GraphQL request over HTTP (fetch), timed. */
export async function timedGraphql<T>(
  baseUrl: string,
  token: string,
  query: string,
  variables?: Record<string, unknown>,
): Promise<{
  status: number;
  data: T | null;
  errors: Array<{ message: string }> | null;
  ms: number;
}> {
  const started = performance.now();
  const response = await fetch(`${baseUrl}/graphql`, {
    method: "POST",
    headers: {
      "content-type": "application/json",
      accept: "application/json",
      authorization: `Bearer ${token}`,
    },
    body: JSON.stringify({ query, variables }),
    signal: AbortSignal.timeout(30_000),
  });
  const body = (await response.json()) as { data?: T; errors?: Array<{ message: string }> };
  return {
    status: response.status,
    data: body.data ?? null,
    errors: body.errors ?? null,
    ms: performance.now() - started,
  };
}
