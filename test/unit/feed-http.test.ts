import { describe, expect, it } from "vitest";
import { matchesEtag } from "../../src/services/exports/exports-http.ts";
import { acceptsGzip } from "../../src/services/feed/feed-http.ts";

describe("content negotiation for feeds and exports", () => {
  it("gzips for clients that name gzip (or *) without refusing it", () => {
    expect(acceptsGzip("gzip, deflate, br")).toBe(true);
    expect(acceptsGzip("br;q=1.0, gzip;q=0.8")).toBe(true);
    expect(acceptsGzip("*")).toBe(true);
    expect(acceptsGzip(undefined)).toBe(false);
    expect(acceptsGzip("identity")).toBe(false);
    expect(acceptsGzip("gzip;q=0")).toBe(false);
    expect(acceptsGzip("deflate, gzip;q=0.000")).toBe(false);
  });

  it("matches If-None-Match weakly, in lists, and for *", () => {
    expect(matchesEtag('W/"3-abc"', 'W/"3-abc"')).toBe(true);
    expect(matchesEtag('"3-abc"', 'W/"3-abc"')).toBe(true);
    expect(matchesEtag('"x", W/"3-abc"', 'W/"3-abc"')).toBe(true);
    expect(matchesEtag("*", '"anything"')).toBe(true);
    expect(matchesEtag('W/"2-abc"', 'W/"3-abc"')).toBe(false);
    expect(matchesEtag(undefined, '"a"')).toBe(false);
  });
});
