import type { IncomingMessage } from "node:http";
import { describe, expect, it } from "vitest";
import { clientAddress } from "../../src/security/client-address.ts";

function request(peer: string, forwardedFor?: string | string[]): IncomingMessage {
  return {
    socket: { remoteAddress: peer },
    headers: forwardedFor === undefined ? {} : { "x-forwarded-for": forwardedFor },
  } as unknown as IncomingMessage;
}

describe("clientAddress", () => {
  it("is the TCP peer without trusted proxies, whatever X-Forwarded-For says", () => {
    expect(clientAddress(request("10.0.0.2", "203.0.113.9"), 0)).toBe("10.0.0.2");
    expect(clientAddress(request("::ffff:10.0.0.2"), 0)).toBe("10.0.0.2");
  });

  it("takes the entry as many hops from the right as there are trusted proxies", () => {
    // client → load balancer (appends the client) → nginx (appends the balancer) → Podflow
    const chain = request("10.0.0.3", "1.1.1.1, 203.0.113.9, 10.0.0.7");
    expect(clientAddress(chain, 1)).toBe("10.0.0.7");
    expect(clientAddress(chain, 2)).toBe("203.0.113.9");
    // Several header lines are one list.
    expect(clientAddress(request("10.0.0.3", ["1.1.1.1", "203.0.113.9"]), 1)).toBe("203.0.113.9");
    expect(clientAddress(request("10.0.0.3", "2001:db8::1"), 1)).toBe("2001:db8::1");
  });

  it("falls back to the peer when the entry is not an address or there is none", () => {
    expect(clientAddress(request("10.0.0.3", "not-an-ip"), 1)).toBe("10.0.0.3");
    expect(clientAddress(request("10.0.0.3"), 1)).toBe("10.0.0.3");
    // Fewer entries than proxies: the leftmost, which is still a proxy's or the client's.
    expect(clientAddress(request("10.0.0.3", "203.0.113.9"), 3)).toBe("203.0.113.9");
  });
});
