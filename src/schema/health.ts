import { type DependencyHealth, type Readiness, recentReadiness } from "../services/health.ts";
import { builder } from "./builder.ts";

const DependencyHealthRef = builder.objectRef<DependencyHealth>("DependencyHealth").implement({
  description: "Whether Podflow can reach one of the services it depends on.",
  fields: (t) => ({
    name: t.exposeString("name", { description: "The dependency: `database` or `jobQueue`." }),
    ok: t.exposeBoolean("ok", { description: "True when the check reached it." }),
    error: t.exposeString("error", {
      nullable: true,
      description: "Why the check failed, when it did.",
    }),
  }),
});

const HealthRef = builder.objectRef<Readiness>("Health").implement({
  description: "The state of the Podflow instance that answered.",
  fields: (t) => ({
    ready: t.exposeBoolean("ready", {
      description: "True when the database and the job queue are both reachable.",
    }),
    version: t.exposeString("version", { description: "The Podflow version that answered." }),
    dependencies: t.field({
      type: [DependencyHealthRef],
      description: "Each dependency checked, with its result.",
      resolve: (health) => health.dependencies,
    }),
  }),
});

builder.queryField("health", (t) =>
  t.field({
    type: HealthRef,
    description:
      "Whether the database and the job queue are reachable, from a check at most a second old (PODFLOW_HEALTH_CACHE_MS). Needs no token.",
    resolve: (_root, _args, { deps }) =>
      recentReadiness(deps, deps.config.security.graphql.healthCacheMs),
  }),
);
