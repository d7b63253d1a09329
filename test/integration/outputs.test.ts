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
    const file = await fetcher.fetch(`${base}/ok`);
    expect(file.body.toString()).toBe('{"ok":true}');
    expect(file.contentType).toBe("application/json");
  });

  it("retries a transient failure", async () => {
    const file = await fetcher.fetch(`${base}/flaky`);
    expect(file.body.toString()).toBe('{"ok":true}');
    expect(hits.get("/flaky")).toBe(3);
  });

  it("refuses a file over the size bound", async () => {
    await expect(fetcher.fetch(`${base}/big`)).rejects.toThrow(OutputError);
    await expect(fetcher.fetch(`${base}/big`)).rejects.toThrow(/larger than 16384 bytes/);
  });

  it("reports a missing file with its status, without retrying it", async () => {
    await expect(fetcher.fetch(`${base}/missing`)).rejects.toThrow(/HTTP 404/);
    expect(hits.get("/missing")).toBe(1);
  });
});
