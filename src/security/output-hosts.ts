import { type LookupAddress, type LookupAllOptions, type LookupOptions, lookup } from "node:dns";
import ipaddr from "ipaddr.js";

/**
 * Where output files may be downloaded from (README "Security"). An output URL comes from a
 * webhook or from Ittybit's answers; it is fetched only when
 * - its host matches an allowed entry (`host`, `host:port`, `*.domain`);
 * - it is https, unless its host is an exact entry the operator listed in PODFLOW_OUTPUT_HOSTS;
 * - every address its name resolves to is public (not loopback, private, link-local, …), unless
 *   its host is an exact entry the operator listed. The check is made on the addresses the
 *   connection then uses (a DNS lookup hook), so a name cannot resolve differently in between;
 * and each redirect's target is held to the same rules before it is followed.
 */
export interface OutputHostPolicy {
  /** Why `url` may not be fetched, or null when it may (its addresses are checked on connect). */
  refusal(url: URL): string | null;
  /** A dns.lookup for the HTTP client: refuses names that resolve to non-public addresses. */
  lookup: typeof lookup;
}

/** The code of every refusal, so the HTTP client neither retries it nor takes it for a network error. */
export const OUTPUT_HOST_REFUSED = "EOUTPUTHOSTREFUSED";

export function createOutputHostPolicy(options: {
  hosts: readonly string[];
  /** True when the operator listed the hosts: exact entries may then be http and private. */
  listed: boolean;
  /**
   * Any host may be fetched (a producer's cover art lives anywhere), still only over https and
   * only from public addresses, except for the exact entries the operator listed.
   */
  anyHost?: boolean;
}): OutputHostPolicy {
  const entries = options.hosts.map((entry) => parseEntry(entry.toLowerCase()));
  const exactListed = (hostname: string, port: string) =>
    options.listed &&
    entries.some((entry) => !entry.wildcard && entry.host === hostname && portMatches(entry, port));
  const privateAllowed = (hostname: string) =>
    options.listed && entries.some((entry) => !entry.wildcard && entry.host === hostname);

  const refusal = (url: URL): string | null => {
    if (url.protocol !== "https:" && url.protocol !== "http:") {
      return `${url.protocol} is not http(s)`;
    }
    const hostname = url.hostname.toLowerCase();
    const port = url.port || (url.protocol === "https:" ? "443" : "80");
    if (
      !options.anyHost &&
      !entries.some((entry) => hostMatches(entry, hostname) && portMatches(entry, port))
    ) {
      return `${url.host} is not in PODFLOW_OUTPUT_HOSTS`;
    }
    if (url.protocol !== "https:" && !exactListed(hostname, port)) {
      return `${url.host} must be https (list it exactly in PODFLOW_OUTPUT_HOSTS to allow http)`;
    }
    // An IP address in the URL is never looked up: check it here.
    const literal = hostname.replace(/^\[|\]$/g, "");
    if (ipaddr.isValid(literal) && !isPublic(literal) && !privateAllowed(hostname)) {
      return `${url.host} is not a public address`;
    }
    return null;
  };

  const guardedLookup = ((
    hostname: string,
    lookupOptions: LookupOptions | number | ((...args: never[]) => void),
    callback?: (...args: unknown[]) => void,
  ) => {
    const done = (typeof lookupOptions === "function" ? lookupOptions : callback) as (
      error: NodeJS.ErrnoException | null,
      address?: string | LookupAddress[],
      family?: number,
    ) => void;
    const given: LookupOptions =
      typeof lookupOptions === "object" && lookupOptions !== null
        ? lookupOptions
        : typeof lookupOptions === "number"
          ? { family: lookupOptions }
          : {};
    const all: LookupAllOptions = { ...given, all: true };
    lookup(hostname, all, (error, addresses) => {
      if (error) return done(error);
      const name = hostname.toLowerCase();
      const bad = addresses.find((address) => !isPublic(address.address));
      if (bad && !privateAllowed(name) && !privateAllowed(`[${name}]`)) {
        const refused: NodeJS.ErrnoException = new Error(
          `${hostname} resolves to ${bad.address}, not a public address`,
        );
        refused.code = OUTPUT_HOST_REFUSED;
        return done(refused);
      }
      if (given.all) return done(null, addresses);
      const first = addresses[0];
      if (!first)
        return done(Object.assign(new Error(`${hostname} has no address`), { code: "ENOTFOUND" }));
      return done(null, first.address, first.family);
    });
  }) as typeof lookup;

  return { refusal, lookup: guardedLookup };
}

interface Entry {
  host: string;
  port: string | null;
  wildcard: boolean;
}

function parseEntry(entry: string): Entry {
  const wildcard = entry.startsWith("*.");
  const bare = wildcard ? entry.slice(2) : entry;
  const match = /^(\[[^\]]+\]|[^:]+)(?::(\d+))?$/.exec(bare);
  return { host: match?.[1] ?? bare, port: match?.[2] ?? null, wildcard };
}

function hostMatches(entry: Entry, hostname: string): boolean {
  return entry.wildcard ? hostname.endsWith(`.${entry.host}`) : hostname === entry.host;
}

function portMatches(entry: Entry, port: string): boolean {
  return entry.port === null || entry.port === port;
}

/** Global unicast only: loopback, private, link-local, CGNAT, multicast, mapped … are not. */
export function isPublic(address: string): boolean {
  try {
    return ipaddr.process(address).range() === "unicast";
  } catch {
    return false;
  }
}

/** A URL as it may be logged: without its query (signatures) or fragment. */
export function loggableUrl(url: string | URL): string {
  try {
    const parsed = new URL(url);
    return `${parsed.origin}${parsed.pathname}`;
  } catch {
    return "(not a URL)";
  }
}
