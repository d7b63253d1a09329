import { type Spread, spread } from "./stats.ts";

/** Whether a bigger number is the better one (a rate) or the worse one (a time, a count). */
export type Better = "higher" | "lower";

/** One measured figure of a scenario, next to its baseline from the same run. */
export interface Figure {
  /** What is measured, e.g. "deliveries/s, 16 connections". */
  name: string;
  unit: string;
  better: Better;
  podflow: Spread;
  baseline: (Spread & { name: string }) | null;
  /**
   * How many times the baseline's cost Podflow's figure is, per round (paired with the baseline
   * of the same round) and summarised: 1.0 is the baseline itself, 4.0 is four times slower
   * (or four times as many statements). For rates it is baseline ÷ Podflow, otherwise
   * Podflow ÷ baseline, so that the column always reads "how far from the limit".
   */
  ratio: Spread | null;
}

/** A correctness check of a scenario: a failed one makes the run exit non-zero. */
export interface Check {
  name: string;
  ok: boolean;
  detail: string;
}

export interface ScenarioResult {
  id: string;
  title: string;
  /** How the scenario was set up, for whoever reads the numbers (seeded rows, roles...). */
  notes: string[];
  figures: Figure[];
  checks: Check[];
  /** Set when the scenario could not run to its end. */
  error?: string;
  durationMs: number;
}

export function figure(
  name: string,
  unit: string,
  better: Better,
  podflowRounds: readonly number[],
  baseline?: { name: string; rounds: readonly number[] } | null,
): Figure {
  const podflow = spread(podflowRounds);
  if (!baseline) return { name, unit, better, podflow, baseline: null, ratio: null };
  const base = spread(baseline.rounds);
  const cost = (value: number, reference: number) =>
    better === "higher" ? reference / value : value / reference;
  const paired = podflowRounds.length === baseline.rounds.length;
  const ratioRounds = paired
    ? podflowRounds.map((value, index) => cost(value, baseline.rounds[index] as number))
    : [cost(podflow.median, base.median)];
  return {
    name,
    unit,
    better,
    podflow,
    baseline: { name: baseline.name, ...base },
    ratio: spread(ratioRounds),
  };
}

export function check(name: string, ok: boolean, detail: string): Check {
  return { name, ok, detail };
}

/** A number as the table shows it: few significant digits, thousands separated. */
export function formatNumber(value: number): string {
  if (!Number.isFinite(value)) return "–";
  const abs = Math.abs(value);
  const digits = abs >= 100 ? 0 : abs >= 10 ? 1 : abs >= 1 ? 2 : 3;
  return value.toLocaleString("en-US", {
    minimumFractionDigits: digits,
    maximumFractionDigits: digits,
  });
}

function formatSpread(value: Spread, unit: string): string {
  const suffix = unit ? ` ${unit}` : "";
  if (value.rounds.length <= 1 || value.min === value.max) {
    return `${formatNumber(value.median)}${suffix}`;
  }
  return `${formatNumber(value.median)}${suffix} (${formatNumber(value.min)}–${formatNumber(value.max)})`;
}

function formatRatio(ratio: Spread | null): string {
  if (!ratio) return "–";
  const median = `${formatNumber(ratio.median)}×`;
  if (ratio.rounds.length <= 1 || ratio.min === ratio.max) return median;
  return `${median} (${formatNumber(ratio.min)}–${formatNumber(ratio.max)})`;
}

/** One Markdown table for the whole run: readable in a terminal, pasteable into the README. */
export function renderTable(results: readonly ScenarioResult[]): string {
  const header = ["Scenario", "Figure", "Podflow: median (min–max)", "Baseline", "× baseline"];
  const rows: string[][] = [];
  for (const result of results) {
    if (result.figures.length === 0) {
      rows.push([result.title, "(no figures)", result.error ? "error" : "–", "–", "–"]);
      continue;
    }
    result.figures.forEach((entry, index) => {
      rows.push([
        index === 0 ? result.title : "",
        entry.name,
        formatSpread(entry.podflow, entry.unit),
        entry.baseline
          ? `${formatSpread(entry.baseline, entry.unit)} — ${entry.baseline.name}`
          : "–",
        formatRatio(entry.ratio),
      ]);
    });
  }
  const widths = header.map((title, column) =>
    Math.max(title.length, ...rows.map((row) => (row[column] ?? "").length)),
  );
  const line = (cells: readonly string[]) =>
    `| ${cells.map((cell, column) => cell.padEnd(widths[column] ?? 0)).join(" | ")} |`;
  return [
    line(header),
    `|${widths.map((width) => "-".repeat(width + 2)).join("|")}|`,
    ...rows.map(line),
  ].join("\n");
}

export function renderChecks(results: readonly ScenarioResult[]): string {
  const lines: string[] = [];
  for (const result of results) {
    for (const entry of result.checks) {
      lines.push(
        `${entry.ok ? "ok    " : "FAILED"} ${result.title}: ${entry.name} — ${entry.detail}`,
      );
    }
    if (result.error) lines.push(`FAILED ${result.title}: did not complete — ${result.error}`);
  }
  return lines.join("\n");
}

export function renderNotes(results: readonly ScenarioResult[]): string {
  return results
    .filter((result) => result.notes.length > 0)
    .map((result) => `${result.title}:\n${result.notes.map((note) => `  - ${note}`).join("\n")}`)
    .join("\n");
}
