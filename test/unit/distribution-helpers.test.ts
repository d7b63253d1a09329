import { createHash } from "node:crypto";
import { describe, expect, it } from "vitest";
import { pkcePair } from "../../src/services/distribution/google-oauth.ts";
import { transistorPublishedAt } from "../../src/services/distribution/transistor-client.ts";
import {
  classifyYouTubeError,
  nextOffset,
} from "../../src/services/distribution/youtube-client.ts";

describe("transistorPublishedAt", () => {
  const at = new Date("2026-07-01T16:05:09.700Z");

  it("writes the wall-clock time in the show's time zone", () => {
    expect(transistorPublishedAt(at, "America/New_York")).toBe("2026-07-01 12:05:09");
    expect(transistorPublishedAt(at, "Asia/Kolkata")).toBe("2026-07-01 21:35:09");
    expect(transistorPublishedAt(new Date("2026-12-31T23:30:00Z"), "Europe/Berlin")).toBe(
      "2027-01-01 00:30:00",
    );
  });

  it("understands Rails zone names too", () => {
    expect(transistorPublishedAt(at, "Eastern Time (US & Canada)")).toBe("2026-07-01 12:05:09");
    expect(transistorPublishedAt(at, "Berlin")).toBe("2026-07-01 18:05:09");
  });

  it("uses UTC when the zone is unknown", () => {
    expect(transistorPublishedAt(at, null)).toBe("2026-07-01 16:05:09");
    expect(transistorPublishedAt(at, "Not/AZone")).toBe("2026-07-01 16:05:09");
  });

  it("writes midnight as 00, not 24", () => {
    expect(transistorPublishedAt(new Date("2026-07-02T04:00:00Z"), "America/New_York")).toBe(
      "2026-07-02 00:00:00",
    );
  });
});

describe("pkcePair", () => {
  it("makes a 64-character base64url verifier and its S256 challenge", () => {
    const { verifier, challenge } = pkcePair();
    expect(verifier).toMatch(/^[A-Za-z0-9_-]{64}$/);
    expect(challenge).toBe(createHash("sha256").update(verifier).digest("base64url"));
    expect(pkcePair().verifier).not.toBe(verifier);
  });
});

describe("nextOffset", () => {
  it("reads the byte after the Range's upper bound, 0 without a Range", () => {
    expect(nextOffset("bytes=0-999999")).toBe(1_000_000);
    expect(nextOffset("bytes=0-0")).toBe(1);
    expect(nextOffset(undefined)).toBe(0);
    expect(nextOffset("garbage")).toBe(0);
  });
});

describe("classifyYouTubeError", () => {
  it("sorts Google's answers into what a job should do", () => {
    expect(classifyYouTubeError(403, "quotaExceeded", "")).toBe("quota");
    expect(
      classifyYouTubeError(
        429,
        "rateLimitExceeded",
        "Quota exceeded for quota metric 'Video Uploads' and limit 'Video Uploads per day'",
      ),
    ).toBe("quota");
    expect(classifyYouTubeError(429, "rateLimitExceeded", "slow down")).toBe("rateLimit");
    expect(classifyYouTubeError(403, "userRateLimitExceeded", "")).toBe("rateLimit");
    expect(classifyYouTubeError(401, "authError", "")).toBe("auth");
    expect(classifyYouTubeError(503, "backendError", "")).toBe("transient");
    expect(classifyYouTubeError(500, null, "")).toBe("transient");
    expect(classifyYouTubeError(400, "uploadLimitExceeded", "")).toBe("fatal");
    expect(classifyYouTubeError(403, "forbidden", "")).toBe("fatal");
    expect(classifyYouTubeError(400, "invalidTitle", "")).toBe("fatal");
  });
});
