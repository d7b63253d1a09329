/**
 * The fan-out baseline's server (bench/support/ws-broadcast.ts), run as its own process like a
 * Podflow instance: it LISTENs on a channel and sends each notification, wrapped in a graphql-ws
 * "next" message of the size Podflow's episodeUpdated answer has, to every WebSocket connected to
 * it. No GraphQL, no authentication, no database read: what PostgreSQL, Node and `ws` alone cost
 * to bring one change to N sockets.
 *
 * Usage: node bench/support/ws-broadcast-server.ts <database url> <channel>; prints the port.
 */
import pg from "pg";
import { WebSocketServer } from "ws";

const [databaseUrl, channel] = process.argv.slice(2);
if (!databaseUrl || !channel || !/^[a-z_]+$/.test(channel)) {
  process.stderr.write("usage: ws-broadcast-server.ts <database url> <channel>\n");
  process.exit(2);
}

/** Podflow's episodeUpdated message for one episode with four tasks is about this long. */
const MESSAGE_BYTES = 520;

const wss = new WebSocketServer({ port: 0, host: "127.0.0.1" });
await new Promise<void>((resolve) => wss.once("listening", resolve));
const listener = new pg.Client({ connectionString: databaseUrl, application_name: "bench-ws" });
await listener.connect();
listener.on("notification", (notification) => {
  const key = notification.payload ?? "";
  const padding = "x".repeat(Math.max(0, MESSAGE_BYTES - key.length - 80));
  const message = JSON.stringify({
    id: "1",
    type: "next",
    payload: { data: { episodeUpdated: { key, padding } } },
  });
  for (const socket of wss.clients) socket.send(message);
});
await listener.query(`listen ${channel}`);
const address = wss.address();
process.stdout.write(`${typeof address === "object" && address ? address.port : 0}\n`);

process.on("SIGTERM", () => {
  void listener.end().finally(() => process.exit(0));
});
