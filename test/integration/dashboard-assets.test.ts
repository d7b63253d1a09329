/**
 * The dashboard's files as Podflow serves them (src/dashboard.ts): index.html revalidated on
 * every load with a content security policy, hashed assets cached for good, the right content
 * types, nothing outside the build folder, and a clear answer when the page was never built.
 */
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ownsDashboardPath, serveDashboard } from "../../src/dashboard.ts";

let dir: string;
let server: Server;
let url: string;
let served = "";

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), "podflow-dashboard-"));
  await mkdir(path.join(dir, "assets"));
  await writeFile(path.join(dir, "index.html"), "<!doctype html><title>Podflow</title>");
  await writeFile(path.join(dir, "assets", "index-B-XF0I1m.js"), "console.log(1);");
  await writeFile(path.join(dir, "assets", "index-BkcjOyNA.css"), "body{}");
  await writeFile(path.join(dir, "secret.txt"), "not for the web");
  server = createServer((req, res) => {
    const pathname = new URL(req.url ?? "/", "http://x").pathname;
    if (!ownsDashboardPath(pathname)) return void res.writeHead(418).end();
    void serveDashboard(req, res, pathname, () => res.writeHead(404).end("not found"), served);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  await new Promise((resolve) => server?.close(resolve));
  await rm(dir, { recursive: true, force: true });
});

describe("serving the dashboard", () => {
  it("serves index.html at / with no-cache and a content security policy", async () => {
    served = dir;
    for (const pathname of ["/", "/index.html"]) {
      const response = await fetch(`${url}${pathname}`);
      expect(response.status).toBe(200);
      expect(response.headers.get("content-type")).toBe("text/html; charset=utf-8");
      expect(response.headers.get("cache-control")).toBe("no-cache");
      expect(response.headers.get("content-security-policy")).toMatch(/default-src 'self'/);
      expect(response.headers.get("etag")).toBeTruthy();
      expect(await response.text()).toContain("<title>Podflow</title>");
    }
  });

  it("serves hashed assets with their types, cached for good", async () => {
    served = dir;
    const script = await fetch(`${url}/assets/index-B-XF0I1m.js`);
    expect(script.status).toBe(200);
    expect(script.headers.get("content-type")).toBe("text/javascript; charset=utf-8");
    expect(script.headers.get("cache-control")).toBe("public, max-age=31536000, immutable");
    expect(await script.text()).toBe("console.log(1);");
    const style = await fetch(`${url}/assets/index-BkcjOyNA.css`);
    expect(style.headers.get("content-type")).toBe("text/css; charset=utf-8");
  });

  it("answers 404 for anything not in the build, and 405 for other methods", async () => {
    served = dir;
    expect((await fetch(`${url}/assets/missing-abc.js`)).status).toBe(404);
    expect((await fetch(`${url}/assets/..%2Fsecret.txt`)).status).toBe(404);
    expect((await fetch(`${url}/assets/.hidden`)).status).toBe(404);
    expect((await fetch(`${url}/secret.txt`)).status).toBe(418);
    const posted = await fetch(`${url}/`, { method: "POST" });
    expect(posted.status).toBe(405);
    expect(posted.headers.get("allow")).toBe("GET, HEAD");
  });

  it("says how to build the page when it was never built", async () => {
    served = path.join(dir, "missing");
    const response = await fetch(`${url}/`);
    expect(response.status).toBe(503);
    expect(await response.text()).toMatch(/npm run build:web/);
  });
});
