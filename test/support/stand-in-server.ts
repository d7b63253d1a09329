import {
  createServer,
  type IncomingHttpHeaders,
  type IncomingMessage,
  type ServerResponse,
} from "node:http";
import type { AddressInfo } from "node:net";
import {
  type DelayFault,
  type FailFault,
  FaultQueue,
  type FaultTarget,
} from "./ittybit-stand-in-faults.ts";

// The HTTP plumbing the Transistor and YouTube stand-ins share: a server on 127.0.0.1:0, every
// request recorded (headers and raw body included, so a test can check where a secret went),
// scripted faults, and a handler that may answer, redirect or drop the connection.

export interface RecordedRequest {
  method: string;
  path: string;
  query: URLSearchParams;
  headers: IncomingHttpHeaders;
  rawBody: Buffer;
  /** The request line's target as sent (path and query). */
  url: string;
  receivedAt: number;
  /**
   * The client went away before its body ended (a killed worker, a cut connection): `rawBody`
   * holds what arrived, and no answer can be sent.
   */
  aborted: boolean;
}

export type StandInAnswer =
  | { status: number; json?: unknown; text?: string; headers?: Record<string, string> }
  /** Close the connection without an answer (the request may have taken effect). */
  | { drop: true };

export type StandInHandler = (request: RecordedRequest) => StandInAnswer | Promise<StandInAnswer>;

export interface StandInServer {
  url: string;
  requests: RecordedRequest[];
  /** The next matching request(s) get this answer instead of reaching the handler. */
  failNext(fault: FailFault): void;
  /** The next matching request(s) are dropped before reaching the handler. */
  dropNext(target: FaultTarget): void;
  /** The next matching request(s) are answered `delayMs` late (the request takes effect). */
  delayNext(fault: DelayFault): void;
  clearFaults(): void;
  close(): Promise<void>;
}

export async function startStandInServer(
  handler: StandInHandler,
  failureBody: (status: number) => unknown,
): Promise<StandInServer> {
  const faults = new FaultQueue();
  const requests: RecordedRequest[] = [];

  const server = createServer((request, response) => {
    onRequest(request, response).catch((failure: unknown) => {
      console.error("stand-in failed to answer", failure);
      if (!response.headersSent) write(response, { status: 500, json: failureBody(500) });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  async function onRequest(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    let aborted = false;
    try {
      for await (const chunk of request) chunks.push(chunk as Buffer);
    } catch {
      aborted = true;
    }
    aborted ||= !request.complete;
    const rawBody = Buffer.concat(chunks);
    const target = request.url ?? "/";
    const { pathname, searchParams } = new URL(target, url);
    const recorded: RecordedRequest = {
      method: request.method ?? "GET",
      path: pathname,
      query: searchParams,
      headers: request.headers,
      rawBody,
      url: target,
      receivedAt: Date.now(),
      aborted,
    };
    requests.push(recorded);
    if (aborted) {
      // Nobody is listening for an answer; the handler still sees what arrived.
      await handler(recorded);
      return;
    }
    const fault = faults.take(recorded.method, recorded.path);
    if (fault?.type === "fail") {
      return write(response, {
        status: fault.status,
        json: fault.body ?? failureBody(fault.status),
        ...(fault.headers ? { headers: fault.headers } : {}),
      });
    }
    if (fault?.type === "drop") {
      response.socket?.destroy();
      return;
    }
    if (fault?.type === "delay") await new Promise((resolve) => setTimeout(resolve, fault.delayMs));
    write(response, await handler(recorded));
  }

  function write(response: ServerResponse, answer: StandInAnswer): void {
    if ("drop" in answer) {
      response.socket?.destroy();
      return;
    }
    const body =
      answer.json !== undefined
        ? Buffer.from(JSON.stringify(answer.json))
        : Buffer.from(answer.text ?? "");
    const headers: Record<string, string | number> = { "content-length": body.length };
    if (answer.json !== undefined) headers["content-type"] = "application/json; charset=UTF-8";
    else if (answer.text) headers["content-type"] = "text/plain";
    response.writeHead(answer.status, { ...headers, ...answer.headers });
    response.end(body);
  }

  return {
    url,
    requests,
    failNext: (fault) => faults.add({ type: "fail", ...fault }),
    dropNext: (target) => faults.add({ type: "drop", ...target }),
    delayNext: (fault) => faults.add({ type: "delay", ...fault }),
    clearFaults: () => faults.clear(),
    async close() {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      await closed;
    },
  };
}

/** Every header value and body of the recorded requests, as one string to search for a secret. */
export function everythingSent(requests: readonly RecordedRequest[]): string {
  return requests
    .map(
      (r) => `${r.method} ${r.url}\n${JSON.stringify(r.headers)}\n${r.rawBody.toString("latin1")}`,
    )
    .join("\n");
}
