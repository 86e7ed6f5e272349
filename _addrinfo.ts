// Name resolution for sockets.ts: getAddrInfo and getNameInfo over
// node:dns, which uses the system resolver (so /etc/hosts is honoured).

import { ipVersion } from "./_ip.ts";
import { checkCount, checkKnownOptions, describe } from "./_validate.ts";

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

/** A service's port per protocol, as /etc/services lists it. */
interface Service {
  tcp?: number;
  udp?: number;
}

/**
 * Services known without reading /etc/services (when the program may not):
 * the common ones, with the protocols netbase lists them for.
 */
const BUILT_IN: Array<
  [names: string, port: number, protos: "tcp" | "udp" | "both"]
> = [
  ["echo", 7, "both"],
  ["discard", 9, "both"],
  ["daytime", 13, "both"],
  ["ftp", 21, "tcp"],
  ["ssh", 22, "tcp"],
  ["telnet", 23, "tcp"],
  ["smtp mail", 25, "tcp"],
  ["time", 37, "both"],
  ["domain", 53, "both"],
  ["tftp", 69, "udp"],
  ["http www", 80, "tcp"],
  ["pop3", 110, "tcp"],
  ["ntp", 123, "udp"],
  ["imap imap2", 143, "tcp"],
  ["snmp", 161, "udp"],
  ["ldap", 389, "both"],
  ["https", 443, "both"],
  ["submission", 587, "tcp"],
  ["imaps", 993, "tcp"],
  ["pop3s", 995, "tcp"],
  ["postgresql postgres", 5432, "tcp"],
];

let services: Map<string, Service> | undefined;

/**
 * The services by name: /etc/services when the program may read it (as
 * the C library's getaddrinfo does), else the built-in list.
 */
function serviceTable(): Map<string, Service> {
  if (services !== undefined) return services;
  const table = new Map<string, Service>();
  let text: string | null = null;
  try {
    const path = "/etc/services";
    if (
      Deno.permissions.querySync({ name: "read", path }).state === "granted"
    ) {
      text = Deno.readTextFileSync(path);
    }
  } catch {
    text = null;
  }
  const add = (name: string, port: number, proto: "tcp" | "udp") => {
    const entry = table.get(name) ?? {};
    entry[proto] ??= port;
    table.set(name, entry);
  };
  if (text !== null) {
    for (const line of text.split("\n")) {
      const [name, portProto, ...aliases] = line.replace(/#.*/, "").trim()
        .split(/\s+/);
      const match = /^(\d+)\/(tcp|udp)$/.exec(portProto ?? "");
      if (!name || match === null) continue;
      for (const n of [name, ...aliases]) {
        add(n.toLowerCase(), Number(match[1]), match[2] as "tcp" | "udp");
      }
    }
  }
  if (table.size === 0) {
    for (const [names, port, protos] of BUILT_IN) {
      for (const name of names.split(" ")) {
        if (protos !== "udp") add(name, port, "tcp");
        if (protos !== "tcp") add(name, port, "udp");
      }
    }
  }
  return services = table;
}

/** The first service name for `port` over `proto`, if there is one. */
function serviceName(port: number, proto: "tcp" | "udp"): string | undefined {
  for (const [name, entry] of serviceTable()) {
    if (entry[proto] === port) return name;
  }
  return undefined;
}

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

/** A port, and the protocols it is for when given as a service name. */
function resolvePort(port: unknown): { port: number; service?: Service } {
  if (port === null || port === undefined) return { port: 0 };
  if (typeof port === "number") {
    if (!Number.isInteger(port) || port < 0 || port > 65535) {
      throw new RangeError(
        `The port must be an integer from 0 to 65535, got ${port}`,
      );
    }
    return { port };
  }
  if (typeof port === "string") {
    if (/^\d+$/.test(port)) return resolvePort(Number(port));
    const service = serviceTable().get(port.toLowerCase());
    if (service !== undefined) {
      return { port: (service.tcp ?? service.udp)!, service };
    }
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
 * addresses (the wildcard ones with `AI_PASSIVE`); `""`, or no host and no
 * port, is `NotFound`, as in CPython. Ports may be numbers, numeric strings
 * or service names: those of /etc/services when the program may read it
 * (else a built-in list of common ones), each only for the protocols it
 * lists (`"http"` gives stream entries only). Unknown names reject with
 * `Deno.errors.NotFound`.
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
  checkCount(family, "family");
  checkCount(type, "type");
  const { port: portNumber, service } = resolvePort(port);
  if (
    (host === null || host === undefined) &&
    (port === null || port === undefined)
  ) {
    throw new Deno.errors.NotFound(
      "Name or service not known: give a host or a port",
    );
  }
  if (host === "") {
    throw new Deno.errors.NotFound(
      'Name or service not known: "" (use null for the local addresses)',
    );
  }
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
  checkCount(flags, "flags");
  checkCount(proto, "proto");
  let addresses: Array<{ address: string; family: number }>;
  if (host === null || host === undefined) {
    // The C library's order: IPv4 first for the wildcards, IPv6 first for
    // the loopback addresses.
    addresses = (flags & AI_PASSIVE)
      ? [{ address: "0.0.0.0", family: 4 }, { address: "::", family: 6 }]
      : [{ address: "::1", family: 6 }, { address: "127.0.0.1", family: 4 }];
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
  // A service name is for the protocols /etc/services lists it with.
  const types = (type === 0 ? [SOCK_STREAM, SOCK_DGRAM] : [type]).filter((t) =>
    service === undefined ||
    (t === SOCK_STREAM ? service.tcp : service.udp) !== undefined
  );
  if (types.length === 0) {
    throw new Deno.errors.NotFound(
      `Servname not supported for the socket type: "${port}"`,
    );
  }
  const canonname = (flags & AI_CANONNAME) && host ? host : "";
  const out: AddrInfo[] = [];
  for (const { address, family: version } of addresses) {
    const af = version === 6 ? AF_INET6 : AF_INET;
    if (family !== AF_UNSPEC && family !== af) continue;
    for (const t of types) {
      const p = t === SOCK_STREAM ? IPPROTO_TCP : IPPROTO_UDP;
      if (proto !== 0 && proto !== p) continue;
      const servicePort = service === undefined
        ? portNumber
        : (t === SOCK_STREAM ? service.tcp : service.udp)!;
      out.push([af, t, p, out.length === 0 ? canonname : "", {
        transport: t === SOCK_STREAM ? "tcp" : "udp",
        hostname: address,
        port: servicePort,
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
 * port's service name (over UDP with `NI_DGRAM`). The host must be a
 * numeric address (`NotFound` otherwise, as CPython's).
 * `NI_NUMERICHOST`/`NI_NUMERICSERV` keep them numeric; `NI_NAMEREQD` rejects
 * with `NotFound` when the host has no name.
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
  const { port: portNumber } = resolvePort(port);
  checkCount(flags, "flags");
  // As CPython's: the host must be a numeric address.
  if (ipVersion(hostname) === 0) {
    throw new Deno.errors.NotFound(
      `Name or service not known: getNameInfo takes a numeric address, got "${hostname}"`,
    );
  }
  let name = hostname;
  if ((flags & NI_NUMERICHOST) === 0) {
    try {
      const { lookupService } = await import("node:dns/promises");
      name = (await lookupService(hostname, portNumber)).hostname;
    } catch {
      name = hostname;
    }
    if ((flags & NI_NAMEREQD) && name === hostname) {
      throw new Deno.errors.NotFound(`Name or service not known: ${hostname}`);
    }
  }
  const service = flags & NI_NUMERICSERV
    ? String(portNumber)
    : serviceName(portNumber, flags & NI_DGRAM ? "udp" : "tcp") ??
      String(portNumber);
  return [name, service];
}
