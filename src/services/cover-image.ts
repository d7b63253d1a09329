import { imageSize } from "image-size";
import { OutputError } from "./outputs.ts";

/** Downloads a file (bounded in size and time, with retries): the output fetcher fits. */
export interface ImageFetcher {
  fetch(url: string, what: string): Promise<{ body: Buffer; contentType: string | null }>;
}

export const COVER_MIN_PX = 1400;
export const COVER_MAX_PX = 3000;

/**
 * Apple's artwork rules, checked on the image itself: reachable, JPEG or PNG, square, 1400–3000
 * px. Null when it passes, otherwise why not (for the `imageUrl` field's error).
 */
export async function checkCoverImage(fetcher: ImageFetcher, url: string): Promise<string | null> {
  let body: Buffer;
  try {
    ({ body } = await fetcher.fetch(url, "cover image"));
  } catch (error) {
    const reason = error instanceof OutputError ? error.message : (error as Error).message;
    return `could not be downloaded: ${reason}`;
  }
  return coverBytesProblem(body);
}

/** Null when these bytes are cover art Apple takes; otherwise why not. */
export function coverBytesProblem(body: Buffer): string | null {
  const size = imageFacts(body);
  if (!size) return "is not an image (JPEG or PNG expected)";
  if (size.type !== "jpg" && size.type !== "png") {
    return `is ${size.type ?? "an unknown format"}; Apple Podcasts takes JPEG or PNG`;
  }
  const { width, height } = size;
  if (width !== height) return `must be square; it is ${width}×${height} px`;
  if (width < COVER_MIN_PX || width > COVER_MAX_PX) {
    return `must be ${COVER_MIN_PX}–${COVER_MAX_PX} px square; it is ${width}×${height} px`;
  }
  return null;
}

/** Width, height and type (`jpg`, `png`…) from an image's header; null for anything else. */
export function imageFacts(body: Buffer): { width: number; height: number; type?: string } | null {
  try {
    return imageSize(body);
  } catch {
    return null;
  }
}
