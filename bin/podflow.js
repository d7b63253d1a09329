#!/usr/bin/env node
// The `podflow` command. Podflow runs its TypeScript sources directly, which needs Node's type
// stripping on by default: Node 22.18 or later (MikroORM 7 needs 22.17). The same minimum is in
// package.json `engines` and scripts/node24.sh. On an older Node the command re-runs itself with
// the Node 24 that scripts/with-node24 provides.
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";

const MINIMUM_NODE = [22, 18];

const [major, minor] = process.versions.node.split(".").map(Number);
const cli = fileURLToPath(new URL("../src/cli/main.ts", import.meta.url));
if (major > MINIMUM_NODE[0] || (major === MINIMUM_NODE[0] && minor >= MINIMUM_NODE[1])) {
  await import(cli);
} else {
  const withNode24 = fileURLToPath(new URL("../scripts/with-node24", import.meta.url));
  const result = spawnSync(withNode24, ["node", cli, ...process.argv.slice(2)], {
    stdio: "inherit",
  });
  process.exit(result.status ?? 1);
}
