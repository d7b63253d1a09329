import { parse } from "graphql";
import { describe, expect, it } from "vitest";
import { loadConfig } from "../../src/config.ts";
import { boundedParserCache } from "../../src/security/graphql-limits.ts";

const limits = (parserCacheSize: number) => ({
  ...loadConfig({}).security.graphql,
  parserCacheSize,
});

describe("the parser cache", () => {
  it("keeps at most PODFLOW_GRAPHQL_PARSER_CACHE_SIZE documents, the least recently used leaving", () => {
    const { documentCache } = boundedParserCache(limits(2));
    for (const query of ["{ a }", "{ b }", "{ c }"]) documentCache.set(query, parse(query));
    expect(documentCache.get("{ a }")).toBeUndefined();
    expect(documentCache.get("{ b }")).toBeDefined();
    expect(documentCache.get("{ c }")).toBeDefined();
  });

  it("keeps at most 2 MiB of query text, however few documents", () => {
    const { documentCache } = boundedParserCache(limits(1_000));
    const big = (name: string) => `{ ${name} } # ${"x".repeat(60 * 1024)}`;
    for (let index = 0; index < 40; index += 1) documentCache.set(big(`f${index}`), {});
    // 40 × 60 KiB is 2.4 MiB: the first ones were let go.
    expect(documentCache.get(big("f0"))).toBeUndefined();
    expect(documentCache.get(big("f39"))).toBeDefined();
    expect(documentCache.calculatedSize).toBeLessThanOrEqual(2 * 1024 * 1024);
  });

  it("never keeps a failed parse", () => {
    const { errorCache } = boundedParserCache(limits(10));
    errorCache.set("{ broken", new Error("Syntax Error"));
    expect(errorCache.get("{ broken")).toBeUndefined();
  });
});
