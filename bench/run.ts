/**
 * The benchmark suite: `npm run bench` (full, a few minutes plus roughly half an hour of
 * media processing for engine-overhead: six encodes of a 10-minute input at ~3.5 min each) or `npm run bench:quick` (the same scenarios at small sizes,
 * a few minutes, most of it engine-overhead's encodes). Starts its own PostgreSQL (or uses a fresh database
 * on DATABASE_URL's server per scenario), Podflow and the Ittybit stand-in; prints one table
 * and writes bench/results/<date>.json. Exits non-zero when a scenario fails its correctness
 * checks or cannot run.
 *
 *   node bench/run.ts [--quick] [--only=<scenario id>[,<id>...]] [--save-baseline]
 */
import { randomBytes } from "node:crypto";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { engineOverhead } from "./scenarios/engine-overhead.ts";
import { episodeListing } from "./scenarios/episode-listing.ts";
import { feed } from "./scenarios/feed.ts";
import { jobPickup } from "./scenarios/job-pickup.ts";
import { recovery } from "./scenarios/recovery.ts";
import { soak } from "./scenarios/soak.ts";
import { webhookIngestion } from "./scenarios/webhook-ingestion.ts";
import { webhookToSubscriber } from "./scenarios/webhook-to-subscriber.ts";
import {
  benchLogger,
  Cleanups,
  type DatabaseServer,
  startDatabaseServer,
} from "./support/environment.ts";
import { renderChecks, renderNotes, renderTable, type ScenarioResult } from "./support/results.ts";
import type { BenchScenario } from "./support/scenario.ts";

const SCENARIOS: BenchScenario[] = [
  webhookIngestion,
  webhookToSubscriber,
  jobPickup,
  episodeListing,
  engineOverhead,
  recovery,
  feed,
  soak,
];

const RESULTS_DIR = fileURLToPath(new URL("./results/", import.meta.url));

interface Arguments {
  quick: boolean;
  only: string[] | null;
  saveBaseline: boolean;
}

function parseArguments(argv: string[]): Arguments {
  const parsed: Arguments = { quick: false, only: null, saveBaseline: false };
  for (const argument of argv) {
    if (argument === "--quick") parsed.quick = true;
    else if (argument === "--save-baseline") parsed.saveBaseline = true;
    else if (argument.startsWith("--only=")) parsed.only = argument.slice(7).split(",");
    else {
      console.error(`bench: unknown argument ${argument}`);
      console.error("usage: node bench/run.ts [--quick] [--only=<id>,...] [--save-baseline]");
      console.error(`scenarios: ${SCENARIOS.map((scenario) => scenario.id).join(", ")}`);
      process.exit(2);
    }
  }
  return parsed;
}

const log = (message: string) => process.stderr.write(`bench: ${message}\n`);

/** The result file of a run, and what baseline.json holds when a run is saved as the baseline. */
interface RunReport {
  version: 1;
  date: string;
  mode: "full" | "quick";
  ok: boolean;
  machine: {
    cpus: number;
    cpuModel: string;
    memoryGiB: number;
    platform: string;
    node: string;
  };
  database: { kind: DatabaseServer["kind"]; version: string; settings: Record<string, string> };
  scenarios: ScenarioResult[];
}

async function main(): Promise<number> {
  const args = parseArguments(process.argv.slice(2));
  const scenarios = args.only
    ? SCENARIOS.filter((scenario) => args.only?.includes(scenario.id))
    : SCENARIOS;
  if (scenarios.length === 0) {
    log(`no scenario matches --only; scenarios: ${SCENARIOS.map((s) => s.id).join(", ")}`);
    return 2;
  }

  const runCleanups = new Cleanups();
  let scenarioCleanups: Cleanups | null = null;
  let interrupted = false;
  const onSignal = (signal: NodeJS.Signals) => {
    if (interrupted) {
      log(`second ${signal}: exiting without cleaning up`);
      process.exit(130);
    }
    interrupted = true;
    log(`${signal}: stopping everything this run started`);
    void (async () => {
      await scenarioCleanups?.runAll(log);
      await runCleanups.runAll(log);
      process.exit(130);
    })();
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);

  const started = new Date();
  const results: ScenarioResult[] = [];
  let server: DatabaseServer;
  try {
    log(
      process.env.DATABASE_URL ? "using DATABASE_URL's server" : "starting an embedded PostgreSQL",
    );
    server = await startDatabaseServer(runCleanups, benchLogger());
    const runTag = randomBytes(3).toString("hex");
    for (const scenario of scenarios) {
      const cleanups = new Cleanups();
      scenarioCleanups = cleanups;
      const scenarioStarted = performance.now();
      log(`${scenario.title}${args.quick ? " (quick)" : ""}`);
      try {
        const outcome = await scenario.run({
          quick: args.quick,
          server,
          cleanups,
          // Quiet once interrupted: what is left running fails as its processes go away.
          log: (message) => {
            if (!interrupted) log(message);
          },
          runTag,
        });
        results.push({
          id: scenario.id,
          title: scenario.title,
          ...outcome,
          durationMs: performance.now() - scenarioStarted,
        });
      } catch (error) {
        if (!interrupted)
          log(`${scenario.title} failed: ${(error as Error).stack ?? String(error)}`);
        results.push({
          id: scenario.id,
          title: scenario.title,
          notes: [],
          figures: [],
          checks: [],
          error: (error as Error).message,
          durationMs: performance.now() - scenarioStarted,
        });
      } finally {
        await cleanups.runAll(log);
        scenarioCleanups = null;
      }
      if (interrupted) return 130;
      await server.checkpoint();
    }
  } finally {
    await runCleanups.runAll(log);
  }

  const ok = results.every((result) => !result.error && result.checks.every((c) => c.ok));
  const report: RunReport = {
    version: 1,
    date: started.toISOString(),
    mode: args.quick ? "quick" : "full",
    ok,
    machine: {
      cpus: os.availableParallelism(),
      cpuModel: os.cpus()[0]?.model ?? "unknown",
      memoryGiB: Math.round(os.totalmem() / 1024 ** 3),
      platform: `${os.platform()} ${os.release()}`,
      node: process.version,
    },
    database: { kind: server.kind, version: server.version, settings: server.settings },
    scenarios: results,
  };

  const stamp = started
    .toISOString()
    .replace(/\.\d+Z$/, "Z")
    .replaceAll(":", "-");
  await mkdir(RESULTS_DIR, { recursive: true });
  const file = path.join(RESULTS_DIR, `${stamp}${args.quick ? "-quick" : ""}.json`);
  await writeFile(file, `${JSON.stringify(report, null, 2)}\n`);

  const out: string[] = [
    "",
    `Podflow benchmarks — ${report.mode}, ${started.toISOString().slice(0, 16).replace("T", " ")} UTC — ${report.machine.cpus} CPUs (${report.machine.cpuModel}), Node ${report.machine.node}, ${server.kind} ${server.version.split(" on ")[0]}`,
    "",
    renderTable(results),
    "",
    "× baseline: how many times the baseline's cost (time, statements, or 1/rate) Podflow's figure is, per round, then the median (min–max); 1.0× is as good as the baseline.",
    "",
    renderChecks(results),
    "",
    renderNotes(results),
    "",
    ...(await compareWithBaseline(report)),
    `Results: ${path.relative(process.cwd(), file)}`,
  ];
  if (args.saveBaseline) {
    const baseline = path.join(RESULTS_DIR, "baseline.json");
    await writeFile(baseline, `${JSON.stringify(report, null, 2)}\n`);
    out.push(`Saved as ${path.relative(process.cwd(), baseline)}`);
  }
  out.push(ok ? "All correctness checks passed." : "SOME CORRECTNESS CHECKS FAILED.");
  process.stdout.write(`${out.join("\n")}\n`);
  return ok ? 0 : 1;
}

/** Ratios against the committed baseline.json of the same mode, when there is one. */
async function compareWithBaseline(report: RunReport): Promise<string[]> {
  let baseline: RunReport;
  try {
    baseline = JSON.parse(
      await readFile(path.join(RESULTS_DIR, "baseline.json"), "utf8"),
    ) as RunReport;
  } catch {
    return [];
  }
  if (baseline.mode !== report.mode) return [];
  const lines: string[] = [];
  for (const scenario of report.scenarios) {
    const before = baseline.scenarios.find((entry) => entry.id === scenario.id);
    for (const entry of scenario.figures) {
      const previous = before?.figures.find((candidate) => candidate.name === entry.name);
      if (!entry.ratio || !previous?.ratio) continue;
      const change = entry.ratio.median / previous.ratio.median;
      lines.push(
        `  ${scenario.title} / ${entry.name}: ${previous.ratio.median.toFixed(2)}× → ${entry.ratio.median.toFixed(2)}×${Math.abs(change - 1) >= 0.25 ? (change > 1 ? "  (further from its baseline)" : "  (closer to its baseline)") : ""}`,
      );
    }
  }
  if (lines.length === 0) return [];
  return [
    `Compared with bench/results/baseline.json (${baseline.date}, × baseline):`,
    ...lines,
    "",
  ];
}

const exitCode = await main().catch((error: unknown) => {
  log(`failed: ${(error as Error).stack ?? String(error)}`);
  return 1;
});
process.exitCode = exitCode;
// Everything the run opened is closed by now; should a library still hold a handle, do not hang.
setTimeout(() => {
  log("some handle is still open after cleanup; exiting anyway");
  process.exit(exitCode);
}, 10_000).unref();
