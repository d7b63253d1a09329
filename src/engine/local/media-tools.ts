/**
 * Which ffmpeg/ffprobe the local engine runs. A machine's own binaries win (Debian's ffmpeg 5.1
 * is newer and faster than the npm build); an explicit FFMPEG_PATH/FFPROBE_PATH wins over both;
 * the static 4.1 builds shipped in @ffmpeg-installer/@ffprobe-installer are the fallback so a
 * plain `npm ci` is enough to process media.
 */
import { accessSync, constants } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";

export interface MediaTools {
  ffmpeg: string;
  ffprobe: string;
}

export type MediaToolSource = "env" | "path" | "npm";

export interface ResolvedMediaTools extends MediaTools {
  /** Where each binary came from, for the start-up log line. */
  sources: { ffmpeg: MediaToolSource; ffprobe: MediaToolSource };
}

export class MediaToolsMissingError extends Error {
  override name = "MediaToolsMissingError";
}

const require = createRequire(import.meta.url);

export function resolveMediaTools(env: NodeJS.ProcessEnv = process.env): ResolvedMediaTools {
  const ffmpeg = resolveOne("ffmpeg", env.FFMPEG_PATH, env.PATH, () => {
    return (require("@ffmpeg-installer/ffmpeg") as { path: string }).path;
  });
  const ffprobe = resolveOne("ffprobe", env.FFPROBE_PATH, env.PATH, () => {
    return (require("@ffprobe-installer/ffprobe") as { path: string }).path;
  });
  return {
    ffmpeg: ffmpeg.file,
    ffprobe: ffprobe.file,
    sources: { ffmpeg: ffmpeg.source, ffprobe: ffprobe.source },
  };
}

function resolveOne(
  name: string,
  explicit: string | undefined,
  searchPath: string | undefined,
  fromNpm: () => string,
): { file: string; source: MediaToolSource } {
  if (explicit) {
    if (!isExecutable(explicit)) {
      throw new MediaToolsMissingError(
        `${name} at ${explicit} (from the environment) cannot be run`,
      );
    }
    return { file: explicit, source: "env" };
  }
  for (const dir of (searchPath ?? "").split(path.delimiter)) {
    if (!dir) continue;
    const candidate = path.join(dir, name);
    if (isExecutable(candidate)) return { file: candidate, source: "path" };
  }
  let bundled: string;
  try {
    bundled = fromNpm();
  } catch (error) {
    throw new MediaToolsMissingError(
      `${name} is not on PATH and its npm build is not installed: ${(error as Error).message}`,
    );
  }
  if (!isExecutable(bundled)) {
    throw new MediaToolsMissingError(`${name} from npm at ${bundled} is not executable`);
  }
  return { file: bundled, source: "npm" };
}

function isExecutable(file: string): boolean {
  try {
    accessSync(file, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}
