/**
 * docker-compose.yml, the Dockerfile and .dockerignore cannot be run here (no Docker engine):
 * these checks read them. A tiny reader of the compose file's `services:` block stands in for a
 * YAML parser (the file keeps to plain two-space-indented mappings for that).
 */
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { DEFAULT_SHUTDOWN_GRACE_MS } from "../../src/app.ts";

const root = new URL("../../", import.meta.url);
const compose = readFileSync(new URL("docker-compose.yml", root), "utf8");

/** Each service's own lines (indented under it), by name. */
function services(text: string): Map<string, string[]> {
  const lines = text.split("\n");
  const start = lines.indexOf("services:");
  expect(start).toBeGreaterThanOrEqual(0);
  const found = new Map<string, string[]>();
  let current: string[] | null = null;
  for (const line of lines.slice(start + 1)) {
    if (/^\S/.test(line)) break; // the next top-level key
    const service = /^ {2}([\w-]+):\s*$/.exec(line);
    if (service?.[1]) {
      current = [];
      found.set(service[1], current);
    } else if (current && line.trim() && !line.trim().startsWith("#")) {
      current.push(line);
    }
  }
  return found;
}

/** A service's own key at the first level under it, e.g. `stop_grace_period`. */
function key(lines: string[], name: string): string | undefined {
  const line = lines.find((candidate) => candidate.startsWith(`    ${name}:`));
  return line?.slice(`    ${name}:`.length).trim();
}

/** Compose durations such as `45s`, `1m30s`, `2m`. */
function seconds(duration: string): number {
  const match = /^(?:(\d+)m)?(?:(\d+)s)?$/.exec(duration);
  if (!match || duration === "") throw new Error(`not a duration: ${duration}`);
  return Number(match[1] ?? 0) * 60 + Number(match[2] ?? 0);
}

describe("docker-compose.yml", () => {
  const all = services(compose);
  const podflows = [...all].filter(([, lines]) => key(lines, "build") === ".");

  it("runs Podflow and, as an example, a worker-only service", () => {
    expect(podflows.map(([name]) => name).sort()).toEqual(["podflow", "worker"]);
    const worker = all.get("worker") ?? [];
    expect(worker.some((line) => /PODFLOW_ROLES:\s*worker\s*$/.test(line))).toBe(true);
    expect(key(worker, "healthcheck")).toBe("*podflow-healthcheck");
    expect(compose).toMatch(/test: \["CMD", "node", "bin\/podflow\.js", "health"\]/);
  });

  it("gives every Podflow container a stop grace longer than its longest stop", () => {
    // Jobs handed back, requests, the other jobs: each up to the grace, one after the other.
    const longestStopSeconds = (3 * DEFAULT_SHUTDOWN_GRACE_MS) / 1_000;
    for (const [name, lines] of podflows) {
      const grace = key(lines, "stop_grace_period");
      expect(grace, `${name} has no stop_grace_period`).toBeDefined();
      expect(seconds(grace as string), name).toBeGreaterThan(longestStopSeconds);
    }
  });

  it("has no default database password: it must be set, or compose refuses to start", () => {
    const uses = compose.match(/\$\{POSTGRES_PASSWORD[^}]*\}/g) ?? [];
    expect(uses.length).toBeGreaterThanOrEqual(2); // the server's and the URL Podflow uses
    for (const use of uses) expect(use).toMatch(/^\$\{POSTGRES_PASSWORD:\?.+\}$/);
    // No literal password anywhere either: in the server's variable or a database URL.
    let urls = 0;
    for (const line of compose.split("\n")) {
      const literal = /^\s*POSTGRES_PASSWORD:\s*(\S.*)$/.exec(line);
      if (literal) expect(literal[1]).toMatch(/^\$\{POSTGRES_PASSWORD:\?[^}]+\}$/);
      const url = /postgres(?:ql)?:\/\/[^:/@\s]+:(.+)@[\w.-]+(?::\d+)?\//.exec(line);
      if (url) {
        urls += 1;
        expect(url[1]).toMatch(/^\$\{POSTGRES_PASSWORD:\?[^}]+\}$/);
      }
    }
    expect(urls).toBeGreaterThanOrEqual(1);
  });
});

describe("the image", () => {
  it("keeps secrets, local data and installed tools out of the build context", () => {
    const ignored = readFileSync(new URL(".dockerignore", root), "utf8")
      .split("\n")
      .map((line) => line.trim())
      .filter((line) => line && !line.startsWith("#"));
    for (const entry of [".env", "node_modules", ".tools", "data", ".podflow"]) {
      expect(ignored).toContain(entry);
    }
  });

  it("checks its health with `podflow health`, which fits a worker-only container too", () => {
    const dockerfile = readFileSync(new URL("Dockerfile", root), "utf8");
    expect(dockerfile).toMatch(
      /HEALTHCHECK [^\n]*\\\n\s*CMD \["node", "bin\/podflow\.js", "health"\]/,
    );
  });
});
