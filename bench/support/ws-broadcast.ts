/**
 * The fan-out baseline of scenario 2: one committed change brought to N WebSocket subscribers
 * with nothing of Podflow in between. An autocommitted UPDATE + pg_notify (as the single
 * subscriber's baseline), heard by a bare `ws` server in its own process
 * (ws-broadcast-server.ts), which sends one message to each of N plain WebSocket clients held
 * here; each sample is the time from the UPDATE to one client having decoded its message. The
 * clients are in this process, as Podflow's subscribers are, so decoding N messages on this
 * machine's cores is part of both figures.
 */
import { spawn } from "node:child_process";
import path from "node:path";
import { fileURLToPath } from "node:url";
import pg from "pg";
import WebSocket from "ws";
import { type Cleanups, withTimeout } from "./environment.ts";

const SERVER = path.join(path.dirname(fileURLToPath(import.meta.url)), "ws-broadcast-server.ts");
const CHANNEL = "podflow_bench_broadcast";
const CONNECT_BATCH = 250;
const DELIVERY_TIMEOUT_MS = 15_000;

export interface BroadcastBaseline {
  /** Per round, every (change, client) latency in ms. */
  rounds: number[][];
  /** Messages that never arrived. */
  missing: number;
}

export async function measureBroadcastBaseline(options: {
  databaseUrl: string;
  clients: number;
  rounds: number;
  changesPerRound: number;
  cleanups: Cleanups;
}): Promise<BroadcastBaseline> {
  const { databaseUrl, clients, rounds, changesPerRound, cleanups } = options;
  const server = spawn(process.execPath, [SERVER, databaseUrl, CHANNEL], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  cleanups.add("stop the broadcast baseline's server", async () => {
    server.kill("SIGTERM");
  });
  const port = await withTimeout(
    new Promise<number>((resolve, reject) => {
      server.stdout.once("data", (chunk: Buffer) => resolve(Number(chunk.toString().trim())));
      server.once("exit", (code) => reject(new Error(`the broadcast server exited (${code})`)));
    }),
    30_000,
    "the broadcast baseline's server to start",
  );

  // Which change each client waits for, and what to call when it has it.
  let expected = "";
  let onArrival: (() => void) | null = null;
  const sockets: WebSocket[] = [];
  for (let start = 0; start < clients; start += CONNECT_BATCH) {
    const batch = Array.from(
      { length: Math.min(CONNECT_BATCH, clients - start) },
      () =>
        new Promise<WebSocket>((resolve, reject) => {
          const socket = new WebSocket(`ws://127.0.0.1:${port}`);
          socket.once("open", () => resolve(socket));
          socket.once("error", reject);
          socket.on("message", (data) => {
            const message = JSON.parse(String(data)) as {
              payload: { data: { episodeUpdated: { key: string } } };
            };
            if (message.payload.data.episodeUpdated.key === expected) onArrival?.();
          });
        }),
    );
    sockets.push(...(await Promise.all(batch)));
  }
  cleanups.add("close the broadcast baseline's clients", async () => {
    for (const socket of sockets) socket.terminate();
  });

  const writer = new pg.Client({ connectionString: databaseUrl, application_name: "bench-bcast" });
  await writer.connect();
  try {
    await writer.query(
      "create table if not exists bench_broadcast_rows (id int primary key, progress int not null)",
    );
    await writer.query(
      "insert into bench_broadcast_rows values (1, 0) on conflict (id) do update set progress = 0",
    );
    let change = 0;
    let missing = 0;
    const one = async (): Promise<number[]> => {
      const key = `change-${++change}`;
      const latencies: number[] = [];
      let allArrived!: () => void;
      const arrived = new Promise<void>((resolve) => {
        allArrived = resolve;
      });
      const sentAt = performance.now();
      expected = key;
      onArrival = () => {
        latencies.push(performance.now() - sentAt);
        if (latencies.length === sockets.length) allArrived();
      };
      await writer.query(
        `with changed as (update bench_broadcast_rows set progress = $1 where id = 1 returning id)
         select pg_notify('${CHANNEL}', $2) from changed`,
        [change, key],
      );
      await withTimeout(arrived, DELIVERY_TIMEOUT_MS, "a broadcast").catch(() => {});
      onArrival = null;
      missing += sockets.length - latencies.length;
      return latencies;
    };
    for (let i = 0; i < 3; i += 1) await one(); // warm-up
    const measured: number[][] = [];
    for (let round = 0; round < rounds; round += 1) {
      const samples: number[] = [];
      for (let i = 0; i < changesPerRound; i += 1) samples.push(...(await one()));
      measured.push(samples);
    }
    return { rounds: measured, missing };
  } finally {
    await writer.end().catch(() => {});
    for (const socket of sockets) socket.terminate();
    server.kill("SIGTERM");
  }
}
