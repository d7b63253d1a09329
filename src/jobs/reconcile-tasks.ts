import type { AppDeps } from "../deps.ts";
import type { IttybitClient } from "../services/ittybit/index.ts";
import { reconcileTasks } from "../services/reconciler.ts";

export function reconcileTasksHandler(deps: AppDeps, ittybit: IttybitClient) {
  return async () => {
    await reconcileTasks({ ...deps, ittybit }, deps.config.reconcileAfterSeconds);
  };
}
