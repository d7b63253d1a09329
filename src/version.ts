import { readFileSync } from "node:fs";

/** Podflow's version, from package.json (shown in the user agent, health and logs). */
export const PODFLOW_VERSION: string = (
  JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")) as {
    version: string;
  }
).version;
