import { readdir, readFile, readlink } from "node:fs/promises";

// CPU and memory of processes, from /proc (Linux). Elsewhere every figure is NaN and the table
// shows "–".

/** Linux's clock ticks per second for /proc/<pid>/stat (USER_HZ, 100 on every common build). */
const CLOCK_TICKS = 100;

interface ProcStat {
  ppid: number;
  /** utime + stime, in ms. */
  ownMs: number;
  /** cutime + cstime: children that exited and were waited for, in ms. */
  reapedChildrenMs: number;
}

async function readProcStat(pid: number): Promise<ProcStat | null> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, "utf8");
    // Fields after the command name, which is in parentheses and may hold spaces; fields[0] is
    // the state (field 3 of proc(5)).
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    const ticks = (index: number) => Number(fields[index]);
    return {
      ppid: ticks(1),
      ownMs: ((ticks(11) + ticks(12)) * 1000) / CLOCK_TICKS,
      reapedChildrenMs: ((ticks(13) + ticks(14)) * 1000) / CLOCK_TICKS,
    };
  } catch {
    return null;
  }
}

/** User + system CPU time of a process, from /proc (Linux); NaN elsewhere. */
export async function processCpuMs(pid: number): Promise<number> {
  return (await readProcStat(pid))?.ownMs ?? Number.NaN;
}

/**
 * CPU time of a process plus that of its children that exited and were waited for (the ffmpeg
 * runs a Node process spawned), from /proc; NaN elsewhere.
 */
export async function processAndReapedChildrenCpuMs(pid: number): Promise<number> {
  const stat = await readProcStat(pid);
  return stat ? stat.ownMs + stat.reapedChildrenMs : Number.NaN;
}

/**
 * CPU time of a process and all its children, alive or exited (a PostgreSQL postmaster and its
 * backends), from /proc; NaN where there is no /proc.
 */
export async function processTreeCpuMs(pid: number): Promise<number> {
  const root = await readProcStat(pid);
  if (!root) return Number.NaN;
  let total = root.ownMs + root.reapedChildrenMs;
  const entries = await readdir("/proc").catch(() => [] as string[]);
  for (const entry of entries) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = await readProcStat(Number(entry));
    if (stat?.ppid === pid) total += stat.ownMs;
  }
  return total;
}

export async function processRssBytes(pid: number): Promise<number> {
  try {
    const status = await readFile(`/proc/${pid}/status`, "utf8");
    const match = /^VmRSS:\s+(\d+)\s+kB/m.exec(status);
    return match ? Number(match[1]) * 1024 : Number.NaN;
  } catch {
    return Number.NaN;
  }
}

/**
 * The process's resident memory split by what backs it (/proc/<pid>/smaps_rollup): anonymous
 * memory (heaps, stacks, allocator arenas) and pages of files (the node binary, libraries), which
 * are clean, shared and reclaimable. NaN when it cannot be read.
 */
export async function processResidentBreakdown(
  pid: number,
): Promise<{ anonymousBytes: number; fileBytes: number }> {
  const text = await readFile(`/proc/${pid}/smaps_rollup`, "utf8").catch(() => "");
  const kib = (field: string) =>
    Number(new RegExp(`^${field}:\\s+(\\d+)\\s+kB`, "m").exec(text)?.[1] ?? Number.NaN) * 1024;
  const rss = kib("Rss");
  const anonymousBytes = kib("Anonymous");
  return { anonymousBytes, fileBytes: rss - anonymousBytes };
}

/**
 * What a process's open file descriptors are, counted by kind (/proc/<pid>/fd with
 * /proc/<pid>/net/tcp{,6}): TCP sockets by role — listening, accepted on `ownPort`, or connected
 * out to a port (5432: PostgreSQL) — and everything else by its link (pipes, eventfds, files).
 * Empty where there is no /proc.
 */
export async function processDescriptorKinds(
  pid: number,
  ownPort: number,
): Promise<Map<string, number>> {
  const kinds = new Map<string, number>();
  const entries = await readdir(`/proc/${pid}/fd`).catch(() => [] as string[]);
  const links = await Promise.all(
    entries.map((fd) => readlink(`/proc/${pid}/fd/${fd}`).catch(() => null)),
  );
  // inode → role, from the process's network namespace's TCP tables.
  const tcp = new Map<string, string>();
  for (const table of ["tcp", "tcp6"]) {
    const text = await readFile(`/proc/${pid}/net/${table}`, "utf8").catch(() => "");
    for (const line of text.split("\n").slice(1)) {
      const fields = line.trim().split(/\s+/);
      const [local, remote, state, inode] = [fields[1], fields[2], fields[3], fields[9]];
      if (!local || !remote || !inode) continue;
      const port = (address: string) => Number.parseInt(address.split(":").pop() ?? "", 16);
      const role =
        state === "0A"
          ? `tcp listening :${port(local)}`
          : port(local) === ownPort
            ? `tcp accepted on :${ownPort}`
            : `tcp out to :${port(remote)}`;
      tcp.set(inode, role);
    }
  }
  for (const link of links) {
    if (link === null) continue;
    const socket = /^socket:\[(\d+)\]$/.exec(link);
    // Pipes by kind alone (their inode differs each time); eventfds, epoll and files as named.
    const kind = socket
      ? (tcp.get(socket[1] ?? "") ?? "socket (not TCP)")
      : link.startsWith("pipe:")
        ? "pipe"
        : link;
    kinds.set(kind, (kinds.get(kind) ?? 0) + 1);
  }
  return kinds;
}
