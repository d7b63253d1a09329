/** What ffprobe says about an input; anything it cannot read becomes a NotMediaError. */
import { execFile } from "node:child_process";
import { MediaTaskAbortedError, NotMediaError } from "./errors.ts";
import type { MediaTools } from "./media-tools.ts";

export { NotMediaError };

export interface MediaProbe {
  durationSeconds: number;
  hasAudio: boolean;
  hasVideo: boolean;
  width: number | null;
  height: number | null;
  formatName: string;
}

/** ffprobe reads headers only; a minute is generous even for a slow network disk. */
const PROBE_TIMEOUT_MS = 60_000;

interface FfprobeStream {
  codec_type?: string;
  width?: number;
  height?: number;
  duration?: string;
  disposition?: { attached_pic?: number };
}
interface FfprobeOutput {
  streams?: FfprobeStream[];
  format?: { duration?: string; format_name?: string };
}

export async function probeMedia(
  tools: MediaTools,
  file: string,
  signal?: AbortSignal,
): Promise<MediaProbe> {
  const args = ["-v", "error", "-print_format", "json", "-show_format", "-show_streams", file];
  const stdout = await new Promise<string>((resolve, reject) => {
    execFile(
      tools.ffprobe,
      args,
      { signal, timeout: PROBE_TIMEOUT_MS, killSignal: "SIGKILL", maxBuffer: 16 * 1024 * 1024 },
      (error, out, err) => {
        if (signal?.aborted) return reject(new MediaTaskAbortedError());
        if (error) {
          return reject(new NotMediaError(`ffprobe failed: ${(err || error.message).trim()}`));
        }
        resolve(out);
      },
    );
  });
  let parsed: FfprobeOutput;
  try {
    parsed = JSON.parse(stdout) as FfprobeOutput;
  } catch {
    throw new NotMediaError("ffprobe printed no JSON");
  }
  const streams = parsed.streams ?? [];
  const audio = streams.find((stream) => stream.codec_type === "audio");
  // Cover art in an MP3 shows up as a one-frame video stream; it is not a video.
  const video = streams.find(
    (stream) => stream.codec_type === "video" && stream.disposition?.attached_pic !== 1,
  );
  const duration = Number(parsed.format?.duration ?? audio?.duration ?? video?.duration);
  if (!audio && !video) throw new NotMediaError("no audio or video stream");
  if (!Number.isFinite(duration) || duration <= 0) {
    throw new NotMediaError(`no usable duration (${parsed.format?.duration ?? "none"})`);
  }
  return {
    durationSeconds: duration,
    hasAudio: audio !== undefined,
    hasVideo: video !== undefined,
    width: video?.width ?? null,
    height: video?.height ?? null,
    formatName: parsed.format?.format_name ?? "unknown",
  };
}
