import type { Output } from "./remote.ts";

/** How long the check waits for an answer: under a container health check's usual 3 s timeout. */
const TIMEOUT_MS = 2_500;

/**
 * `podflow health`: asks a running Podflow's `/readyz` — the API's, or a worker-only process's
 * health listener — and exits 0 when it is ready, 1 when it is not or does not answer. Made for
 * container health checks (the Dockerfile's), which run it inside the container.
 */
export async function healthCommand(baseUrl: string, output: Output): Promise<number> {
  const url = `${baseUrl.replace(/\/+$/, "")}/readyz`;
  try {
    const response = await fetch(url, { signal: AbortSignal.timeout(TIMEOUT_MS) });
    const body = await response.text();
    if (response.ok) {
      output.out(body);
      return 0;
    }
    output.err(`podflow: not ready (${response.status}): ${body}`);
    return 1;
  } catch (error) {
    output.err(`podflow: ${url} did not answer: ${(error as Error).message}`);
    return 1;
  }
}

/** The address of this machine's Podflow: PORT (default 4000) on the loopback interface. */
export function localBaseUrl(env: NodeJS.ProcessEnv = process.env): string {
  const port = Number(env.PORT) > 0 ? Number(env.PORT) : 4000;
  return `http://127.0.0.1:${port}`;
}
