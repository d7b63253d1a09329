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
