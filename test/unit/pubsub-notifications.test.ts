import { createHash } from "node:crypto";
import { describe, expect, it } from "vitest";
import {
  type ChangeListener,
  dispatchNotification,
  parseNotification,
} from "../../src/services/pubsub.ts";

// What the triggers send on the changes channel, and which listener method hears each.

const HASH = createHash("sha256").update("a token").digest("hex");
const EPISODE = { episodeId: "3f1c2a4e-1d2b-4c3d-8e9f-0a1b2c3d4e5f", userId: "u-1" };

function recorder(): { heard: string[]; listener: ChangeListener } {
  const heard: string[] = [];
  return {
    heard,
    listener: {
      change: (change) => heard.push(`change ${change.episodeId} ${change.userId}`),
      revoked: (tokenHash) => heard.push(`revoked ${tokenHash}`),
      transactionEnded: (txid) => heard.push(`ended ${txid}`),
      resync: () => heard.push("resync"),
    },
  };
}

describe("parseNotification", () => {
  it("reads an episode change: ids only", () => {
    expect(parseNotification(JSON.stringify({ ...EPISODE, extra: 1 }))).toEqual({
      kind: "change",
      change: EPISODE,
    });
  });

  it("reads a token revocation: the token's hash", () => {
    expect(HASH).toHaveLength(64);
    expect(parseNotification(JSON.stringify({ revokedToken: HASH }))).toEqual({
      kind: "revoked",
      tokenHash: HASH,
    });
  });

  it.each([
    ["not JSON", "{"],
    ["nothing", undefined],
    ["null", "null"],
    ["a string", '"revokedToken"'],
    ["a change without its user", JSON.stringify({ episodeId: EPISODE.episodeId })],
    ["a hash too short", JSON.stringify({ revokedToken: "abc" })],
    ["a hash in upper case", JSON.stringify({ revokedToken: HASH.toUpperCase() })],
    ["a hash that is not a string", JSON.stringify({ revokedToken: 42, ...EPISODE })],
  ])("refuses %s", (_, payload) => {
    expect(parseNotification(payload)).toBeNull();
  });
});

describe("dispatchNotification", () => {
  it("hands a change to `change`, a revocation to `revoked`, a transaction's end to `transactionEnded`", () => {
    const { heard, listener } = recorder();
    for (const payload of [
      JSON.stringify(EPISODE),
      JSON.stringify({ revokedToken: HASH }),
      JSON.stringify({ txEnd: "812" }),
      JSON.stringify({ txEnd: 812 }),
      JSON.stringify(EPISODE),
    ]) {
      const notice = parseNotification(payload);
      if (notice) dispatchNotification(notice, listener);
    }
    expect(heard).toEqual([
      `change ${EPISODE.episodeId} ${EPISODE.userId}`,
      `revoked ${HASH}`,
      "ended 812",
      `change ${EPISODE.episodeId} ${EPISODE.userId}`,
    ]);
  });
});
