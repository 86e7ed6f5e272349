// Name resolution for sockets.ts: getAddrInfo and getNameInfo over
// node:dns, which uses the system resolver (so /etc/hosts is honoured).

import { ipVersion } from "./_ip.ts";
import { checkKnownOptions, describe } from "./_validate.ts";

const AF_UNSPEC = 0;
const AF_INET = 2;
const AF_INET6 = 10;
const SOCK_STREAM = 1;
const SOCK_DGRAM = 2;
const IPPROTO_TCP = 6;
const IPPROTO_UDP = 17;

/** `getAddrInfo` flag: return wildcard addresses for a `null` host. */
export const AI_PASSIVE = 1;
/** `getAddrInfo` flag: fill in the canonical name. */
export const AI_CANONNAME = 2;
/** `getAddrInfo` flag: the host must be a numeric address. */
export const AI_NUMERICHOST = 4;
/** `getNameInfo` flag: return the numeric host. */
export const NI_NUMERICHOST = 1;
/** `getNameInfo` flag: return the numeric port. */
export const NI_NUMERICSERV = 2;
/** `getNameInfo` flag: fail if the host has no name. */
export const NI_NAMEREQD = 8;
/** `getNameInfo` flag: the service is a datagram service. */
export const NI_DGRAM = 16;

const SERVICES: Record<string, number> = {
  echo: 7,
  discard: 9,
  daytime: 13,
  ftp: 21,
  ssh: 22,
  telnet: 23,
  smtp: 25,
  time: 37,
  domain: 53,
  http: 80,
  pop3: 110,
  ntp: 123,
  imap: 143,
  snmp: 161,
  ldap: 389,
  https: 443,
  submission: 587,
  imaps: 993,
  pop3s: 995,
};

/**
 * One result of {@linkcode getAddrInfo}, as Python's tuple:
 * `[family, type, proto, canonname, address]`.
 */
export type AddrInfo = [
  family: number,
  type: number,
  proto: number,
  canonname: string,
  address: Deno.NetAddr,
];

/** Options of {@linkcode getAddrInfo} (Python's keyword arguments). */
export interface GetAddrInfoOptions {
  /** `AF_INET`, `AF_INET6` or `AF_UNSPEC` (0, the default: both). */
  family?: number;
  /** `SOCK_STREAM`, `SOCK_DGRAM` or 0 (the default: both). */
  type?: number;
  /** `IPPROTO_TCP`, `IPPROTO_UDP` or 0 (the default). */
  proto?: number;
  /** `AI_PASSIVE | AI_CANONNAME | AI_NUMERICHOST`. */
  flags?: number;
}

function resolvePort(port: unknown): number {
  if (port === null || port === undefined) return 0;
  if (typeof port === "number") {
    if (!Number.isInteger(port) || port < 0 || port > 65535) {
      throw new RangeError(
        `The port must be an integer from 0 to 65535, got ${port}`,
      );
    }
    return port;
  }
  if (typeof port === "string") {
    if (/^\d+$/.test(port)) return resolvePort(Number(port));
    const known = SERVICES[port.toLowerCase()];
    if (known !== undefined) return known;
    throw new Deno.errors.NotFound(`Servname not supported: "${port}"`);
  }
  throw new TypeError(
    `The port must be a number, a string or null, got ${describe(port)}`,
  );
}

/**
 * Resolves `host` and `port` into socket addresses, as Python's
 * `socket.getaddrinfo` (and asyncio's `loop.getaddrinfo`): one
 * `[family, type, proto, canonname, { hostname, port }]` per address and
 * socket type. `/etc/hosts` is honoured. A `null` host gives the loopback
 * addresses (the wildcard ones with `AI_PASSIVE`). Ports may be numbers,
 * numeric strings or common service names (`"http"`). Unknown names reject
 * with `Deno.errors.NotFound`.
 *
 * @example Resolve localhost
 * ```ts
 * import { getAddrInfo, SOCK_STREAM } from "@aionet/aionet/sockets";
 *
 * for (const [family, type, proto, , addr] of await getAddrInfo("localhost", 80, { type: SOCK_STREAM })) {
 *   console.log(family, type, proto, addr.hostname, addr.port);
 * }
 * ```
 */
export async function getAddrInfo(
  host: string | null,
  port: number | string | null,
  options?: GetAddrInfoOptions,
): Promise<AddrInfo[]> {
  if (host !== null && host !== undefined && typeof host !== "string") {
    throw new TypeError(
      `The host must be a string or null, got ${describe(host)}`,
    );
  }
  const {
    family = AF_UNSPEC,
    type = 0,
    proto = 0,
    flags = 0,
  } = checkKnownOptions(options, ["family", "type", "proto", "flags"]);
  const portNumber = resolvePort(port);
  if (![AF_UNSPEC, AF_INET, AF_INET6].includes(family)) {
    throw new Deno.errors.NotSupported(
      `Address family ${family} is not supported by getAddrInfo`,
    );
  }
  if (![0, SOCK_STREAM, SOCK_DGRAM].includes(type)) {
    throw new Deno.errors.NotSupported(
      `Socket type ${type} is not supported by getAddrInfo`,
    );
  }
  if (typeof flags !== "number" || typeof proto !== "number") {
    throw new TypeError("The flags and proto must be numbers");
  }
  let addresses: Array<{ address: string; family: number }>;
  if (host === null || host === undefined || host === "") {
    addresses = (flags & AI_PASSIVE)
      ? [{ address: "0.0.0.0", family: 4 }, { address: "::", family: 6 }]
      : [{ address: "127.0.0.1", family: 4 }, { address: "::1", family: 6 }];
  } else {
    const literal = host.startsWith("[") && host.endsWith("]")
      ? host.slice(1, -1)
      : host;
    const version = ipVersion(literal);
    if (version !== 0) {
      addresses = [{ address: literal, family: version }];
    } else if (flags & AI_NUMERICHOST) {
      throw new Deno.errors.NotFound(
        `Name or service not known: "${host}" is not a numeric address`,
      );
    } else {
      try {
        const { lookup } = await import("node:dns/promises");
        addresses = await lookup(host, { all: true, verbatim: true });
      } catch (error) {
        throw new Deno.errors.NotFound(
          `Name or service not known: ${host} (${
            (error as Error).message ?? error
          })`,
        );
      }
    }
  }
  const types = type === 0 ? [SOCK_STREAM, SOCK_DGRAM] : [type];
  const canonname = (flags & AI_CANONNAME) && host ? host : "";
  const out: AddrInfo[] = [];
  for (const { address, family: version } of addresses) {
    const af = version === 6 ? AF_INET6 : AF_INET;
    if (family !== AF_UNSPEC && family !== af) continue;
    for (const t of types) {
      const p = t === SOCK_STREAM ? IPPROTO_TCP : IPPROTO_UDP;
      if (proto !== 0 && proto !== p) continue;
      out.push([af, t, p, out.length === 0 ? canonname : "", {
        transport: t === SOCK_STREAM ? "tcp" : "udp",
        hostname: address,
        port: portNumber,
      }]);
    }
  }
  if (out.length === 0) {
    throw new Deno.errors.NotFound(
      `Address family for hostname not supported: ${host}`,
    );
  }
  return out;
}

/**
 * Turns a socket address into `[host, service]`, as Python's
 * `socket.getnameinfo`: the host's name (from `/etc/hosts` or DNS) and the
 * port's service name. `NI_NUMERICHOST`/`NI_NUMERICSERV` keep them numeric;
 * `NI_NAMEREQD` rejects with `NotFound` when the host has no name.
 *
 * @example Name the loopback address
 * ```ts
 * import { getNameInfo } from "@aionet/aionet/sockets";
 *
 * console.log(await getNameInfo({ hostname: "127.0.0.1", port: 80 })); // e.g. ["localhost", "http"]
 * ```
 */
export async function getNameInfo(
  address: { hostname: string; port: number },
  flags = 0,
): Promise<[host: string, service: string]> {
  if (address === null || typeof address !== "object") {
    throw new TypeError(
      `The address must be an object with hostname and port, got ${
        describe(address)
      }`,
    );
  }
  const { hostname, port } = address;
  if (typeof hostname !== "string") {
    throw new TypeError(
      `The hostname must be a string, got ${describe(hostname)}`,
    );
  }
  resolvePort(port);
  if (typeof flags !== "number") {
    throw new TypeError(`The flags must be a number, got ${describe(flags)}`);
  }
  let numeric = hostname;
  if (ipVersion(hostname) === 0) {
    const [first] = await getAddrInfo(hostname, port, { type: SOCK_STREAM });
    numeric = first[4].hostname;
  }
  let name = numeric;
  let service = String(port);
  if ((flags & NI_NUMERICHOST) === 0 || (flags & NI_NUMERICSERV) === 0) {
    try {
      const { lookupService } = await import("node:dns/promises");
      const found = await lookupService(numeric, port);
      name = found.hostname;
      service = found.service;
    } catch {
      if (flags & NI_NAMEREQD) {
        throw new Deno.errors.NotFound(`Name or service not known: ${numeric}`);
      }
    }
  }
  if (flags & NI_NUMERICHOST) name = numeric;
  else if ((flags & NI_NAMEREQD) && name === numeric) {
    throw new Deno.errors.NotFound(`Name or service not known: ${numeric}`);
  }
  if (flags & NI_NUMERICSERV) service = String(port);
  return [name, service];
}
