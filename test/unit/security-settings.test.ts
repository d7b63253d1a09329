import { describe, expect, it } from "vitest";
import { parseSecuritySettings } from "../../src/security/settings.ts";

// The settings of the per-address caps, stream lifetimes and per-producer limits: defaults,
// and a bad value named.

describe("connection and producer limits", () => {
  it("have defaults", () => {
    const parsed = parseSecuritySettings({}, "production");
    if (!parsed.ok) throw new Error(parsed.message);
    expect(parsed.settings.connections).toMatchObject({
      wsMaxSocketsPerAddress: 100,
      sseMaxStreamsPerAddress: 100,
      trustProxyHops: 0,
      streamMaxMs: 86_400_000,
      streamIdleMs: 300_000,
    });
    expect(parsed.settings.producers).toEqual({ maxEpisodesPerHour: 100, maxRetriesPerHour: 30 });
    expect(parsed.settings.graphql.persistedOperations).toBeNull();
  });

  it("take what is set", () => {
    const parsed = parseSecuritySettings(
      {
        PODFLOW_TRUST_PROXY: "2",
        PODFLOW_STREAM_MAX_SECONDS: "60",
        PODFLOW_STREAM_IDLE_SECONDS: "5",
        PODFLOW_MAX_EPISODES_PER_HOUR: "7",
      },
      "production",
    );
    if (!parsed.ok) throw new Error(parsed.message);
    expect(parsed.settings.connections).toMatchObject({
      trustProxyHops: 2,
      streamMaxMs: 60_000,
      streamIdleMs: 5_000,
    });
    expect(parsed.settings.producers.maxEpisodesPerHour).toBe(7);
  });

  it.each([
    ["PODFLOW_TRUST_PROXY", "-1"],
    ["PODFLOW_TRUST_PROXY", "yes"],
    ["PODFLOW_WS_MAX_SOCKETS_PER_ADDRESS", "0"],
    ["PODFLOW_STREAM_MAX_SECONDS", "1.5"],
    ["PODFLOW_MAX_RETRIES_PER_HOUR", "many"],
  ])("refuse %s=%s, naming it", (variable, value) => {
    const parsed = parseSecuritySettings({ [variable]: value }, "production");
    expect(parsed.ok).toBe(false);
    if (!parsed.ok) expect(parsed.variable).toBe(variable);
  });
});
