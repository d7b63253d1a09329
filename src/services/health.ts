import type { AppDeps } from "../deps.ts";
import { PODFLOW_VERSION } from "../version.ts";

export interface DependencyHealth {
  name: "database" | "jobQueue";
  ok: boolean;
  error: string | null;
}

export interface Readiness {
  ready: boolean;
  version: string;
  dependencies: DependencyHealth[];
}

const CHECK_TIMEOUT_MS = 2_000;

/**
 * Ready means this instance can do its work now: the database answers a query and the job
 * queue's schema is reachable through pg-boss's own pool. Each check is bounded, so a hung
 * database turns into "not ready" rather than a hung probe.
 */
export async function checkReadiness(
  deps: Pick<AppDeps, "orm" | "boss" | "logger">,
): Promise<Readiness> {
  const dependencies = await Promise.all([
    check(deps, "database", () => deps.orm.em.fork().execute("select 1")),
    check(deps, "jobQueue", () => deps.boss.getQueues()),
  ]);
  return {
    ready: dependencies.every((dependency) => dependency.ok),
    version: PODFLOW_VERSION,
    dependencies,
  };
}

const recentChecks = new WeakMap<object, { at: number; readiness: Promise<Readiness> }>();

/**
 * The last readiness check when it is younger than `maxAgeMs`, else a new one (shared by every
 * caller while it runs). `Query.health` needs no token: however many times a request asks, the
 * database is checked at most once per `maxAgeMs`.
 */
export function recentReadiness(
  deps: Pick<AppDeps, "orm" | "boss" | "logger">,
  maxAgeMs: number,
): Promise<Readiness> {
  const recent = recentChecks.get(deps);
  if (recent && performance.now() - recent.at < maxAgeMs) return recent.readiness;
  const readiness = checkReadiness(deps);
  recentChecks.set(deps, { at: performance.now(), readiness });
  return readiness;
}

async function check(
  deps: Pick<AppDeps, "logger">,
  name: DependencyHealth["name"],
  probe: () => Promise<unknown>,
): Promise<DependencyHealth> {
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      probe(),
      new Promise((_, reject) => {
        timer = setTimeout(
          () => reject(new Error(`no answer within ${CHECK_TIMEOUT_MS} ms`)),
          CHECK_TIMEOUT_MS,
        );
      }),
    ]);
    return { name, ok: true, error: null };
  } catch (error) {
    // The probes answer anyone: the driver's message (hosts, user names) stays in the log.
    deps.logger.warn({ err: error, dependency: name }, "readiness check failed");
    return { name, ok: false, error: "unreachable" };
  } finally {
    clearTimeout(timer);
  }
}
