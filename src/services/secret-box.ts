import { createCipheriv, createDecipheriv, createHash, randomBytes } from "node:crypto";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import path from "node:path";

/**
 * Producers' secrets at rest (a Transistor API key, a YouTube refresh token): AES-256-GCM with a
 * key from PODFLOW_SECRET_KEY, which never enters the database. A sealed value names the key
 * that sealed it, so keys can be rotated: put the new key first and keep the old ones after it
 * until every secret has been sealed again (a secret is sealed again whenever it is written).
 *
 * Format: `v1.<key id>.<iv>.<ciphertext>.<tag>` (base64url parts). The connection's id is bound
 * in as associated data, so a sealed value copied onto another row does not open.
 */
export interface SecretBox {
  seal(plaintext: string, context: string): string;
  /** Throws SecretBoxError when no key opens it or it was tampered with. */
  open(sealed: string, context: string): string;
  /** True when the value was sealed with an older key than the current one. */
  isStale(sealed: string): boolean;
}

export class SecretBoxError extends Error {
  override name = "SecretBoxError";
}

const VERSION = "v1";

function keyId(key: Buffer): string {
  return createHash("sha256").update(key).digest("base64url").slice(0, 8);
}

export function createSecretBox(keys: readonly Buffer[]): SecretBox {
  const current = keys[0];
  if (!current || keys.some((key) => key.length !== 32)) {
    throw new SecretBoxError("secret keys must be 32 bytes each");
  }
  const byId = new Map(keys.map((key) => [keyId(key), key]));
  const currentId = keyId(current);
  return {
    seal(plaintext, context) {
      const iv = randomBytes(12);
      const cipher = createCipheriv("aes-256-gcm", current, iv);
      cipher.setAAD(Buffer.from(context));
      const body = Buffer.concat([cipher.update(plaintext, "utf8"), cipher.final()]);
      return [VERSION, currentId, iv, body, cipher.getAuthTag()]
        .map((part) => (typeof part === "string" ? part : part.toString("base64url")))
        .join(".");
    },
    open(sealed, context) {
      const [version, id, iv, body, tag] = sealed.split(".");
      const key = id ? byId.get(id) : undefined;
      if (version !== VERSION || !key || !iv || body === undefined || !tag) {
        throw new SecretBoxError(
          key || version !== VERSION
            ? "a stored secret is not in a known format"
            : "a stored secret was sealed with a key that is no longer in PODFLOW_SECRET_KEY",
        );
      }
      try {
        const decipher = createDecipheriv("aes-256-gcm", key, Buffer.from(iv, "base64url"));
        decipher.setAAD(Buffer.from(context));
        decipher.setAuthTag(Buffer.from(tag, "base64url"));
        return Buffer.concat([
          decipher.update(Buffer.from(body, "base64url")),
          decipher.final(),
        ]).toString("utf8");
      } catch {
        throw new SecretBoxError("a stored secret could not be opened (altered, or another key)");
      }
    },
    isStale(sealed) {
      return sealed.split(".")[1] !== currentId;
    },
  };
}

/**
 * The installation's secret box: PODFLOW_SECRET_KEY, or — on a development server without it —
 * a key kept in `<data dir>/secret.key` (made once, readable by the owner only), so `npm start`
 * can connect Transistor and YouTube. Production without the setting has no box: connecting a
 * service is refused with a message naming the variable.
 */
export async function loadSecretBox(config: {
  secretKeys: Buffer[] | undefined;
  nodeEnv: string;
  dataDir: string;
}): Promise<SecretBox | null> {
  if (config.secretKeys) return createSecretBox(config.secretKeys);
  if (config.nodeEnv === "production") return null;
  const file = path.join(config.dataDir, "secret.key");
  let key: Buffer;
  try {
    key = Buffer.from((await readFile(file, "utf8")).trim(), "base64");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
    await mkdir(config.dataDir, { recursive: true });
    key = randomBytes(32);
    await writeFile(file, `${key.toString("base64")}\n`, { mode: 0o600, flag: "wx" }).catch(
      async (raced: NodeJS.ErrnoException) => {
        if (raced.code !== "EEXIST") throw raced;
        key = Buffer.from((await readFile(file, "utf8")).trim(), "base64");
      },
    );
  }
  return createSecretBox([key]);
}
