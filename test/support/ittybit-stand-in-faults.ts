// Scripted misbehaviour of the stand-in. A `fail` answers instead of the API, so the request has
// no effect. The others happen after the API has done its work: the request took effect, only the
// answer is slow, lost or garbled — the case idempotency keys exist for.

export interface FaultTarget {
  /** Any method when omitted. */
  method?: string;
  /** The exact path (no query string), or a pattern tested against it. */
  path: string | RegExp;
  /** How many matching requests the fault applies to; 1 when omitted. */
  times?: number;
  /** Let this many matching requests through untouched first (e.g. fail the third task). */
  after?: number;
}

export interface FailFault extends FaultTarget {
  status: number;
  /** JSON body; a string is sent as it is. `{message: <reason phrase>}` when omitted. */
  body?: unknown;
  headers?: Record<string, string>;
}

export interface DelayFault extends FaultTarget {
  delayMs: number;
}

export type Fault =
  | ({ type: "fail" } & FailFault)
  | ({ type: "delay" } & DelayFault)
  | ({ type: "drop" } & FaultTarget)
  | ({ type: "malformed" } & FaultTarget);

export class FaultQueue {
  readonly #faults: Array<{ fault: Fault; skip: number; remaining: number }> = [];

  add(fault: Fault): void {
    this.#faults.push({ fault, skip: fault.after ?? 0, remaining: fault.times ?? 1 });
  }

  /** Forgets every scripted fault not used up yet. */
  clear(): void {
    this.#faults.length = 0;
  }

  /** The first scripted fault that matches this request, used up once. */
  take(method: string, path: string): Fault | undefined {
    const index = this.#faults.findIndex(({ fault }) => matchesTarget(fault, method, path));
    const entry = this.#faults[index];
    if (!entry) return undefined;
    if (entry.skip > 0) {
      entry.skip -= 1;
      return undefined;
    }
    entry.remaining -= 1;
    if (entry.remaining === 0) this.#faults.splice(index, 1);
    return entry.fault;
  }
}

export function matchesTarget(
  target: Omit<FaultTarget, "times">,
  method: string,
  path: string,
): boolean {
  if (target.method && target.method.toUpperCase() !== method) return false;
  return typeof target.path === "string" ? target.path === path : target.path.test(path);
}
