/** Progress reporting helpers: integer percent, never going back, several passes in one range. */

export type ProgressListener = (percent: number) => void;

/** Wraps a listener so it only ever sees integers 0–100 that never decrease, each once. */
export function monotonicProgress(listener: ProgressListener): ProgressListener {
  let last = -1;
  return (percent) => {
    const value = Math.max(0, Math.min(100, Math.floor(percent)));
    if (value <= last) return;
    last = value;
    listener(value);
  };
}

/** Maps a pass's own 0–100 onto [from, to] of the whole task (e.g. measure 0–40, encode 40–100). */
export function progressSlice(
  listener: ProgressListener,
  from: number,
  to: number,
): ProgressListener {
  return (percent) => listener(from + ((to - from) * percent) / 100);
}
