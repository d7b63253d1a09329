/**
 * Where the local media engine keeps uploaded recordings and the outputs Podflow serves: a folder
 * on disk (PODFLOW_MEDIA_DIR), behind this small interface so an object store can take its place.
 * Keys are relative paths of plain segments; an object appears under its key only once complete
 * (written to a temporary name, then renamed), so a reader never sees half a file.
 */
import { randomUUID } from "node:crypto";
import { createWriteStream } from "node:fs";
import { mkdir, readFile, rename, rm, stat } from "node:fs/promises";
import path from "node:path";
import { type Readable, Transform } from "node:stream";
import { pipeline } from "node:stream/promises";

export interface StoredObject {
  bytes: number;
  modifiedAt: Date;
}

export interface MediaStorage {
  /**
   * Streams `source` to `key` without holding it in memory; more than `maxBytes` stops the
   * stream with ObjectTooLargeError and leaves nothing behind.
   */
  write(key: string, source: Readable, options: { maxBytes: number }): Promise<StoredObject>;
  /** Moves a finished local file (e.g. an ffmpeg output) to `key`. */
  adopt(key: string, file: string): Promise<StoredObject>;
  read(key: string): Promise<Buffer>;
  /** null when there is no such object. */
  stat(key: string): Promise<StoredObject | null>;
  /** A file path ffmpeg and the HTTP file server can read the object from. */
  localPath(key: string): string;
  remove(key: string): Promise<void>;
}

export class ObjectTooLargeError extends Error {
  override name = "ObjectTooLargeError";
  readonly maxBytes: number;
  constructor(maxBytes: number) {
    super(`larger than the limit of ${maxBytes} bytes`);
    this.maxBytes = maxBytes;
  }
}

const KEY_SEGMENT = /^[A-Za-z0-9_-][A-Za-z0-9._-]*$/;

/** A key is a relative path of plain segments: no "..", no absolute paths, no hidden files. */
export function assertStorageKey(key: string): void {
  const segments = key.split("/");
  if (segments.length === 0 || !segments.every((segment) => KEY_SEGMENT.test(segment))) {
    throw new Error(`not a storage key: ${JSON.stringify(key)}`);
  }
}

export function createDiskStorage(root: string): MediaStorage {
  const absolute = (key: string) => {
    assertStorageKey(key);
    return path.join(root, key);
  };
  const describe = async (file: string): Promise<StoredObject> => {
    const stats = await stat(file);
    return { bytes: stats.size, modifiedAt: stats.mtime };
  };
  const temporaryFor = async (file: string) => {
    await mkdir(path.dirname(file), { recursive: true });
    return path.join(path.dirname(file), `.incoming-${randomUUID()}`);
  };

  return {
    async write(key, source, { maxBytes }) {
      const file = absolute(key);
      const temporary = await temporaryFor(file);
      let bytes = 0;
      const limit = new Transform({
        transform(chunk: Buffer, _encoding, callback) {
          bytes += chunk.length;
          if (bytes > maxBytes) callback(new ObjectTooLargeError(maxBytes));
          else callback(null, chunk);
        },
      });
      try {
        await pipeline(source, limit, createWriteStream(temporary, { flags: "wx" }));
        await rename(temporary, file);
      } catch (error) {
        await rm(temporary, { force: true });
        throw error;
      }
      return describe(file);
    },
    async adopt(key, from) {
      const file = absolute(key);
      await mkdir(path.dirname(file), { recursive: true });
      await rename(from, file);
      return describe(file);
    },
    read: (key) => readFile(absolute(key)),
    async stat(key) {
      try {
        return await describe(absolute(key));
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === "ENOENT") return null;
        throw error;
      }
    },
    localPath: absolute,
    remove: (key) => rm(absolute(key), { force: true }),
  };
}
