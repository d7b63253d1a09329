import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { Writable } from "node:stream";
import pino from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createOutputHostPolicy } from "../../src/security/output-hosts.ts";
import {
  createOutputFetcher,
  OutputError,
  type OutputFetcher,
} from "../../src/services/outputs.ts";

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
    } else if (path === "/redirect") {
      res.writeHead(302, { location: `http://localhost:${port()}/redirected?signature=s3cr3t` });
      res.end();
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

const port = () => (server.address() as AddressInfo).port;
const logLines: string[] = [];
const logger = pino(
  { level: "warn" },
  new Writable({
    write(chunk, _encoding, done) {
      logLines.push(String(chunk));
      done();
    },
  }),
);
let fetcher: OutputFetcher;
beforeAll(() => {
  // The file server is listed exactly, so http and its loopback address are allowed.
  fetcher = createOutputFetcher({
    logger,
    hosts: createOutputHostPolicy({ hosts: [new URL(base).host], listed: true }),
    maxBytes: 16 * 1024,
    retryLimit: 3,
  });
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

describe("where outputs may come from", () => {
  const refusedWithoutRequest = async (
    hosts: Parameters<typeof createOutputHostPolicy>[0],
    url: string,
  ) => {
    const strict = createOutputFetcher({ logger, hosts: createOutputHostPolicy(hosts) });
    const before = new Map(hits);
    const failure = await strict.fetch(url, "transcript").catch((error) => error);
    expect(failure).toBeInstanceOf(OutputError);
    expect(failure.message).toBe("the transcript could not be downloaded");
    expect(hits).toEqual(before);
  };

  it("refuses a host that is not allowed, and the default hosts never include loopback", async () => {
    await refusedWithoutRequest(
      { hosts: ["api.ittybit.com", "*.ittybit.net"], listed: false },
      `${base}/ok`,
    );
    await refusedWithoutRequest({ hosts: ["127.0.0.1:1"], listed: true }, `${base}/ok`);
  });

  it("refuses http to a host that is only allowed by a pattern or by default", async () => {
    await refusedWithoutRequest({ hosts: [new URL(base).host], listed: false }, `${base}/ok`);
  });

  it("refuses a name that resolves to a loopback address, before connecting", async () => {
    // An allowed name and https: only the resolved address is wrong (what DNS rebinding does).
    await refusedWithoutRequest(
      { hosts: ["localhost"], listed: false },
      `https://localhost:${port()}/ok`,
    );
  });

  it("checks every redirect: a hop to a host not allowed is not followed", async () => {
    const before = hits.get("/redirected") ?? 0;
    logLines.length = 0;
    const failure = await fetcher.fetch(`${base}/redirect`, "chapters file").catch((e) => e);
    expect(failure).toBeInstanceOf(OutputError);
    expect(failure.message).toBe("the chapters file could not be downloaded");
    expect(hits.get("/redirected") ?? 0).toBe(before);
    // The log says why, without the signature of the URL it refused.
    expect(logLines.join("")).toMatch(
      /redirect refused: localhost:\d+ is not in PODFLOW_OUTPUT_HOSTS/,
    );
    expect(logLines.join("")).not.toContain("s3cr3t");
  });
});
