import { mkdir, writeFile } from "node:fs/promises";
import { Session } from "node:inspector/promises";
import path from "node:path";

/**
 * With BENCH_CPU_PROFILE=<directory>, a CPU profile of this process while `measure` runs, written
 * to <directory>/<name>-<time>.cpuprofile (open it in Chrome DevTools or speedscope). For the
 * scenarios whose Podflow runs in this process, where `BENCH_NODE_OPTIONS=--cpu-prof` (for
 * spawned Podflows) does not apply and a whole-process `node --cpu-prof` is mostly start-up and
 * seeding. The load client shares the process, so its own work is in the profile too.
 */
export async function profiled<T>(
  name: string,
  log: (message: string) => void,
  measure: () => Promise<T>,
): Promise<T> {
  const directory = process.env.BENCH_CPU_PROFILE;
  if (!directory) return measure();
  const session = new Session();
  session.connect();
  try {
    await session.post("Profiler.enable");
    await session.post("Profiler.setSamplingInterval", { interval: 200 });
    await session.post("Profiler.start");
    const result = await measure();
    const { profile } = await session.post("Profiler.stop");
    await mkdir(directory, { recursive: true });
    const file = path.join(directory, `${name}-${Date.now()}.cpuprofile`);
    await writeFile(file, JSON.stringify(profile));
    log(`CPU profile of the measured rounds: ${file}`);
    return result;
  } finally {
    session.disconnect();
  }
}
