import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import pino from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createOutputFetcher, OutputError } from "../../src/services/outputs.ts";

// A file server on 127.0.0.1 that misbehaves on request: the storage output URLs point at.
let server: Server;
let base: string;
const hits = new Map<string, number>();

beforeAll(async () => {
  server = createServer((req, res) => {
    const path = req.url ?? "/";
    const count = (hits.get(path) ?? 0) + 1;
    hits.set(path, count);
    if (path === "/flaky" && count < 3) {
      res.writeHead(503).end("busy");
    } else if (path === "/big") {
      res.writeHead(200, { "content-type": "application/json" });
      res.end(Buffer.alloc(64 * 1024, "x"));
    } else if (path === "/down") {
      res.writeHead(503).end("down");
    } else if (path === "/missing") {
      res.writeHead(404).end();
    } else {
      res.writeHead(200, { "content-type": "application/json" }).end('{"ok":true}');
    }
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

const fetcher = createOutputFetcher({
  logger: pino({ level: "silent" }),
  maxBytes: 16 * 1024,
  retryLimit: 3,
});

describe("output downloads", () => {
  it("returns the body and its content type", async () => {
    const file = await fetcher.fetch(`${base}/ok`, "transcript");
    expect(file.body.toString()).toBe('{"ok":true}');
    expect(file.contentType).toBe("application/json");
  });

  it("retries a transient failure", async () => {
    const file = await fetcher.fetch(`${base}/flaky`, "transcript");
    expect(file.body.toString()).toBe('{"ok":true}');
    expect(hits.get("/flaky")).toBe(3);
  });

  it("refuses a file over the size bound", async () => {
    await expect(fetcher.fetch(`${base}/big`, "transcript")).rejects.toThrow(OutputError);
    await expect(fetcher.fetch(`${base}/big`, "transcript")).rejects.toThrow(
      "the transcript is larger than 16384 bytes",
    );
  });

  it("reports a missing file as permanent, with its status and without its URL, and does not retry it", async () => {
    const failure = await fetcher.fetch(`${base}/missing`, "chapters file").catch((error) => error);
    expect(failure).toBeInstanceOf(OutputError);
    expect(failure.message).toBe("the chapters file could not be downloaded (HTTP 404)");
    expect(hits.get("/missing")).toBe(1);
  });

  it("leaves a failure that outlasted the retries to the job, not to the episode", async () => {
    const failure = await fetcher.fetch(`${base}/down`, "transcript").catch((error) => error);
    expect(failure).toBeInstanceOf(Error);
    expect(failure).not.toBeInstanceOf(OutputError);
    expect(failure.message).toContain("HTTP 503");
    expect(hits.get("/down")).toBe(4);
  });
});
