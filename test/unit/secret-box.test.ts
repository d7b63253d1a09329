import { randomBytes } from "node:crypto";
import { mkdtemp, readFile, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { createSecretBox, loadSecretBox, SecretBoxError } from "../../src/services/secret-box.ts";

describe("the secret box", () => {
  const key = randomBytes(32);

  it("seals so that the plaintext is not in the stored value, and opens it again", () => {
    const box = createSecretBox([key]);
    const sealed = box.seal("transistor-api-key-1234", "connection-1");
    expect(sealed).not.toContain("transistor-api-key-1234");
    expect(sealed).toMatch(/^v1\.[A-Za-z0-9_-]{8}\./);
    expect(box.open(sealed, "connection-1")).toBe("transistor-api-key-1234");
    // Two seals of one secret differ (a fresh IV each time).
    expect(box.seal("transistor-api-key-1234", "connection-1")).not.toBe(sealed);
  });

  it("refuses a value moved to another row, altered, or sealed with an unknown key", () => {
    const box = createSecretBox([key]);
    const sealed = box.seal("refresh-token", "connection-1");
    expect(() => box.open(sealed, "connection-2")).toThrow(SecretBoxError);
    const parts = sealed.split(".");
    const body = Buffer.from(parts[3] ?? "", "base64url");
    body[0] = (body[0] ?? 0) ^ 1;
    parts[3] = body.toString("base64url");
    expect(() => box.open(parts.join("."), "connection-1")).toThrow(SecretBoxError);
    expect(() => createSecretBox([randomBytes(32)]).open(sealed, "connection-1")).toThrow(
      /no longer in PODFLOW_SECRET_KEY/,
    );
  });

  it("rotates: a new key first still opens what the old one sealed, and says it is stale", () => {
    const old = createSecretBox([key]);
    const sealed = old.seal("api-key", "c");
    const rotated = createSecretBox([randomBytes(32), key]);
    expect(rotated.open(sealed, "c")).toBe("api-key");
    expect(rotated.isStale(sealed)).toBe(true);
    expect(rotated.isStale(rotated.seal("api-key", "c"))).toBe(false);
  });

  it("makes a development key in the data directory once, readable by its owner only", async () => {
    const dataDir = await mkdtemp(path.join(tmpdir(), "podflow-secret-"));
    try {
      const first = await loadSecretBox({ secretKeys: undefined, nodeEnv: "development", dataDir });
      const second = await loadSecretBox({
        secretKeys: undefined,
        nodeEnv: "development",
        dataDir,
      });
      const sealed = first?.seal("x", "c") ?? "";
      expect(second?.open(sealed, "c")).toBe("x");
      const file = path.join(dataDir, "secret.key");
      expect((await stat(file)).mode & 0o777).toBe(0o600);
      expect(Buffer.from((await readFile(file, "utf8")).trim(), "base64")).toHaveLength(32);
      // Production never makes one: without PODFLOW_SECRET_KEY there is no box.
      expect(
        await loadSecretBox({ secretKeys: undefined, nodeEnv: "production", dataDir }),
      ).toBeNull();
    } finally {
      await rm(dataDir, { recursive: true, force: true });
    }
  });
});
