import { lookup as dnsLookup } from "node:dns";
import { BlockList, isIP } from "node:net";
import { DomainError } from "../domain/errors.ts";

/**
 * Which webhook URLs Tally will call.
 *
 * Syntax (always): http or https, a host, no user or password in the URL (a secret there would be
 * shown back in every listing and log; receivers authenticate Tally by the signature instead).
 *
 * Addresses: self-hosted receivers on loopback or a private network are common, so they are allowed
 * by default; `TALLY_WEBHOOK_PRIVATE=deny` refuses any URL whose host resolves to a non-public
 * address (every address the name resolves to is checked, not only the first).
 *
 * DNS rebinding: a name may resolve to a public address when the endpoint is created and to
 * 127.0.0.1 when a delivery goes out. The create-time check is only early feedback; the check that
 * counts happens at send time, inside the connection itself: `guardedLookup` is the `lookup` of the
 * socket that delivers (send-webhook.ts), so the address that is checked is the address that is
 * connected to, with no second resolution in between. Redirects are not followed (a 3xx is a failed
 * attempt), so a receiver cannot bounce a delivery to an internal address either.
 */

export type PrivateAddressPolicy = "allow" | "deny";

/** Addresses that are not on the public internet: loopback, private, link-local (cloud metadata), ... */
const nonPublic = new BlockList();
for (const [net, prefix] of [
  ["0.0.0.0", 8], // "this network"
  ["10.0.0.0", 8],
  ["100.64.0.0", 10], // carrier-grade NAT
  ["127.0.0.0", 8],
  ["169.254.0.0", 16], // link-local, incl. 169.254.169.254 metadata services
  ["172.16.0.0", 12],
  ["192.0.0.0", 24],
  ["192.168.0.0", 16],
  ["198.18.0.0", 15], // benchmarking
  ["224.0.0.0", 4], // multicast
  ["240.0.0.0", 4], // reserved, incl. 255.255.255.255
] as const) {
  nonPublic.addSubnet(net, prefix, "ipv4");
}
for (const [net, prefix] of [
  ["::", 128],
  ["::1", 128],
  ["fc00::", 7], // unique local
  ["fe80::", 10], // link-local
  ["ff00::", 8], // multicast
  ["64:ff9b::", 96], // NAT64: embeds an IPv4 address the gateway will reach
  ["2002::", 16], // 6to4: likewise
] as const) {
  nonPublic.addSubnet(net, prefix, "ipv6");
}

/**
 * True for an address that is not publicly routable. BlockList judges an IPv4-mapped IPv6 address
 * (`::ffff:7f00:1`, what the URL parser makes of `[::ffff:127.0.0.1]`) by its IPv4 rules.
 */
export function isNonPublicAddress(address: string): boolean {
  const family = isIP(address);
  if (family === 4) return nonPublic.check(address, "ipv4");
  if (family === 6) return nonPublic.check(address, "ipv6");
  return true; // not an address at all: never treat as public
}

const urlError = (msg: string) => DomainError.validation(["body", "url"], msg);

/** The syntax check of an endpoint URL; throws a validation error naming `url`. */
export function parseEndpointUrl(raw: unknown): URL {
  if (typeof raw !== "string" || raw.trim() === "") throw urlError("must be an http or https URL");
  if (raw.length > 2048) throw urlError("must be at most 2048 characters");
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw urlError("must be an absolute http or https URL");
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") throw urlError("must use http or https");
  if (url.username !== "" || url.password !== "") throw urlError("must not contain a user name or password");
  if (url.hostname === "") throw urlError("must name a host");
  if (url.hash !== "") throw urlError("must not contain a fragment");
  return url;
}

export interface ResolvedAddress {
  address: string;
  family: number;
}
/** Resolves a host name to all its addresses (injected in tests). */
export type ResolveHost = (hostname: string) => Promise<ResolvedAddress[]>;

export const resolveWithSystem: ResolveHost = (hostname) =>
  new Promise((resolve, reject) => {
    dnsLookup(hostname, { all: true, verbatim: true }, (err, addresses) =>
      err ? reject(err) : resolve(addresses),
    );
  });

/** The URL's host without IPv6 brackets. */
function hostOf(url: URL): string {
  return url.hostname.startsWith("[") ? url.hostname.slice(1, -1) : url.hostname;
}

/**
 * The full create-time check: syntax, then (under `deny`) every address of the host must be public.
 * An unresolvable host is refused only under `deny`; under `allow` a receiver that is not up yet
 * (or only resolvable inside its network) may still be registered.
 */
export async function checkEndpointUrl(
  raw: unknown,
  policy: PrivateAddressPolicy,
  resolve: ResolveHost = resolveWithSystem,
): Promise<URL> {
  const url = parseEndpointUrl(raw);
  if (policy === "allow") return url;
  const host = hostOf(url);
  let addresses: ResolvedAddress[];
  if (isIP(host)) {
    addresses = [{ address: host, family: isIP(host) }];
  } else {
    try {
      addresses = await resolve(host);
    } catch {
      throw urlError(`host ${host} does not resolve`);
    }
    if (addresses.length === 0) throw urlError(`host ${host} does not resolve`);
  }
  const refused = addresses.find((a) => isNonPublicAddress(a.address));
  if (refused) {
    throw urlError(
      `resolves to ${refused.address}, a private or loopback address (TALLY_WEBHOOK_PRIVATE=deny)`,
    );
  }
  return url;
}

/**
 * The send-time check for a URL whose host is an address literal (a socket does no lookup for
 * those, so `guardedLookup` never sees them): the reason to refuse, or null.
 */
export function refusedLiteralHost(url: URL, policy: PrivateAddressPolicy): string | null {
  const host = hostOf(url);
  if (policy === "deny" && isIP(host) !== 0 && isNonPublicAddress(host)) {
    return `${host} is a private or loopback address (TALLY_WEBHOOK_PRIVATE=deny)`;
  }
  return null;
}

type LookupCallback = (
  err: NodeJS.ErrnoException | null,
  address: string | ResolvedAddress[],
  family?: number,
) => void;

/**
 * A `lookup` for the delivering socket that refuses non-public addresses under `deny`: the
 * send-time half of the rebinding defence (see the top of this file). Under `allow` it is the
 * system lookup.
 */
export function guardedLookup(policy: PrivateAddressPolicy) {
  return (hostname: string, options: { all?: boolean }, callback: LookupCallback): void => {
    dnsLookup(hostname, { ...options, all: true, verbatim: true }, (err, addresses) => {
      if (err) return callback(err, []);
      if (policy === "deny") {
        const refused = addresses.find((a) => isNonPublicAddress(a.address));
        if (refused) {
          const denied: NodeJS.ErrnoException = new Error(
            `${hostname} resolves to ${refused.address}, a private or loopback address (TALLY_WEBHOOK_PRIVATE=deny)`,
          );
          denied.code = "ERR_WEBHOOK_PRIVATE_ADDRESS";
          return callback(denied, []);
        }
      }
      if (options.all) return callback(null, addresses);
      return callback(null, addresses[0].address, addresses[0].family);
    });
  };
}
