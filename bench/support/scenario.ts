import type { DatabaseServer } from "./environment.ts";
import { Cleanups } from "./environment.ts";
import type { Check, Figure } from "./results.ts";

/** What a scenario gets from the runner. */
export interface ScenarioContext {
  /** `npm run bench:quick`: the same scenarios at small sizes. */
  quick: boolean;
  server: DatabaseServer;
  /** The scenario's own teardowns, run when it ends (and on Ctrl-C). */
  cleanups: Cleanups;
  /** Progress lines, to stderr (the table goes to stdout). */
  log(message: string): void;
  /** Unique per run; makes ids (webhook ids, emails) unique across runs on one server. */
  runTag: string;
}

/** What a scenario measured; the runner adds its name and how long it took. */
export interface ScenarioOutcome {
  notes: string[];
  figures: Figure[];
  checks: Check[];
}

export interface BenchScenario {
  id: string;
  title: string;
  run(context: ScenarioContext): Promise<ScenarioOutcome>;
}

export { Cleanups };

/**
 * A round's two measurements, the baseline first in odd rounds and Podflow first in even ones:
 * neither always runs on the cooler (or the warmer) machine.
 */
export async function inAlternateOrder(
  round: number,
  podflow: () => Promise<unknown>,
  baseline: () => Promise<unknown>,
): Promise<void> {
  if (round % 2 === 1) {
    await baseline();
    await podflow();
  } else {
    await podflow();
    await baseline();
  }
}
