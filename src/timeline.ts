/**
 * TEMPORARY: hrtime stamps of one delivery's path, for the latency timeline (issue 15). With
 * PODFLOW_TIMELINE_FILE set, stamps are kept in memory and written there as JSON at exit.
 * process.hrtime.bigint() is CLOCK_MONOTONIC: comparable between processes of one machine.
 */
import { writeFileSync } from "node:fs";

const file = process.env.PODFLOW_TIMELINE_FILE;
const stamps: Array<[string, string]> = [];

export function stamp(name: string): void {
  if (file) stamps.push([name, process.hrtime.bigint().toString()]);
}

if (file) {
  process.on("exit", () => {
    writeFileSync(file, JSON.stringify(stamps));
    const sql = (globalThis as { loadSql?: unknown }).loadSql ?? null;
    writeFileSync(`${file}.sql`, JSON.stringify(sql));
  });
}
