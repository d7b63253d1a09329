import type { IncomingMessage } from "node:http";
import { isIP } from "node:net";

/**
 * The address a request comes from, for the per-address limits. With `trustProxyHops` 0 it is
 * the TCP peer and X-Forwarded-For is ignored (anyone can send it). With N proxies in front,
 * each appending the address it saw, the client is the entry N hops from the right of
 * `X-Forwarded-For, peer`: entries further left were sent by the client and are not believed.
 */
export function clientAddress(request: IncomingMessage, trustProxyHops: number): string {
  const peer = normalize(request.socket.remoteAddress ?? "unknown");
  if (trustProxyHops === 0) return peer;
  const header = request.headers["x-forwarded-for"];
  const forwarded = (Array.isArray(header) ? header.join(",") : (header ?? ""))
    .split(",")
    .map((entry) => entry.trim())
    .filter(Boolean);
  const chain = [...forwarded, peer];
  const entry = chain[Math.max(0, chain.length - 1 - trustProxyHops)] ?? peer;
  // A proxy that forwards a malformed entry is not one we were told about: use the peer.
  return isIP(normalize(entry)) ? normalize(entry) : peer;
}

/** `::ffff:10.0.0.1` (an IPv4 client on a dual-stack socket) is 10.0.0.1. */
function normalize(address: string): string {
  return address.startsWith("::ffff:") && isIP(address.slice(7)) === 4 ? address.slice(7) : address;
}
