#!/usr/bin/env node
// The `podflow` command. Podflow runs its TypeScript sources directly, which needs Node's type
// stripping (Node 22.18+); on an older Node the command re-runs itself with the Node 24 that
// scripts/with-node24 provides.
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";

const [major, minor] = process.versions.node.split(".").map(Number);
const cli = fileURLToPath(new URL("../src/cli/main.ts", import.meta.url));
if (major > 22 || (major === 22 && minor >= 18)) {
  await import(cli);
} else {
  const withNode24 = fileURLToPath(new URL("../scripts/with-node24", import.meta.url));
  const result = spawnSync(withNode24, ["node", cli, ...process.argv.slice(2)], {
    stdio: "inherit",
  });
  process.exit(result.status ?? 1);
}
