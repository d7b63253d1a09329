/** Summaries of samples and of rounds: the only arithmetic the benchmarks do. */

/** The p-th percentile (0–100) of the samples, interpolated between the nearest ranks. */
export function percentile(samples: readonly number[], p: number): number {
  if (samples.length === 0) return Number.NaN;
  const sorted = [...samples].sort((a, b) => a - b);
  const rank = (p / 100) * (sorted.length - 1);
  const low = Math.floor(rank);
  const high = Math.ceil(rank);
  const lowValue = sorted[low] as number;
  const highValue = sorted[high] as number;
  return lowValue + (highValue - lowValue) * (rank - low);
}

export function median(values: readonly number[]): number {
  return percentile(values, 50);
}

/** A figure over rounds: the median of the per-round values, with their min and max beside it. */
export interface Spread {
  median: number;
  min: number;
  max: number;
  /** The per-round values, in round order. */
  rounds: number[];
}

export function spread(rounds: readonly number[]): Spread {
  const finite = rounds.filter((value) => Number.isFinite(value));
  if (finite.length === 0) {
    return { median: Number.NaN, min: Number.NaN, max: Number.NaN, rounds: [...rounds] };
  }
  return {
    median: median(finite),
    min: Math.min(...finite),
    max: Math.max(...finite),
    rounds: [...rounds],
  };
}

/** p50 and p99 of one round's latencies, in ms. */
export function latencyPercentiles(samplesMs: readonly number[]): { p50: number; p99: number } {
  return { p50: percentile(samplesMs, 50), p99: percentile(samplesMs, 99) };
}
