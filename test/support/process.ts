import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));

export interface PodflowProcess {
  child: ChildProcess;
  /** Every log line (parsed JSON, or { raw }) printed so far. */
  lines: Array<Record<string, unknown>>;
  stderr: () => string;
  /** Resolves with the first log line whose `msg` matches. */
  waitForLog(msg: RegExp, timeoutMs?: number): Promise<Record<string, unknown>>;
  /** Resolves with the exit code once the process has exited. */
  exited: Promise<number | null>;
}

/**
 * Runs `node src/main.ts` as `npm start` does, with the given environment. `processGroup` puts it
 * in a process group of its own, so a test can kill it with its children (ffmpeg) as an OOM kill
 * or a lost machine would: `process.kill(-child.pid, "SIGKILL")`.
 */
export function spawnPodflow(
  env: Record<string, string>,
  options: { processGroup?: boolean } = {},
): PodflowProcess {
  const child = spawn(process.execPath, ["src/main.ts"], {
    cwd: ROOT,
    detached: options.processGroup ?? false,
    env: { ...process.env, LOG_LEVEL: "info", NODE_ENV: "development", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const lines: Array<Record<string, unknown>> = [];
  const waiters = new Set<() => void>();
  let stderr = "";
  let buffered = "";
  child.stdout?.setEncoding("utf8").on("data", (chunk: string) => {
    buffered += chunk;
    const parts = buffered.split("\n");
    buffered = parts.pop() ?? "";
    for (const part of parts) {
      if (!part.trim()) continue;
      try {
        lines.push(JSON.parse(part) as Record<string, unknown>);
      } catch {
        lines.push({ raw: part });
      }
    }
    for (const wake of waiters) wake();
  });
  child.stderr?.setEncoding("utf8").on("data", (chunk: string) => {
    stderr += chunk;
  });
  const exited = once(child, "exit").then(([code]) => code as number | null);

  return {
    child,
    lines,
    stderr: () => stderr,
    exited,
    waitForLog(msg, timeoutMs = 60_000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const line = lines.find((entry) => typeof entry.msg === "string" && msg.test(entry.msg));
          if (!line) return false;
          cleanup();
          resolve(line);
          return true;
        };
        const timer = setTimeout(() => {
          cleanup();
          reject(
            new Error(`no log line matching ${msg} within ${timeoutMs} ms; stderr: ${stderr}`),
          );
        }, timeoutMs);
        const onExit = () => {
          if (!check()) {
            cleanup();
            reject(new Error(`process exited before logging ${msg}; stderr: ${stderr}`));
          }
        };
        const cleanup = () => {
          clearTimeout(timer);
          waiters.delete(wake);
          child.off("exit", onExit);
        };
        const wake = () => {
          check();
        };
        if (check()) return;
        waiters.add(wake);
        child.once("exit", onExit);
      });
    },
  };
}
