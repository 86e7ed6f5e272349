// createDatagramEndpoint (asyncio's loop.create_datagram_endpoint): the
// options checked, the socket opened by the backend (or taken from `sock`)
// and a DatagramConnTransport started on it for the loop.

import { checkUnixPath } from "./_unix_path.ts";
import type { BaseProtocol } from "./protocols.ts";
import type { Socket } from "./sockets.ts";
import { datagramHandleOf } from "./_adopt_socket.ts";
import type { LoopCore } from "./_loop_core.ts";
import type { DatagramHandle } from "./_backend.ts";
import { currentBackend } from "./_io.ts";
import type { DatagramAddress } from "./_transport_types.ts";
import { callFactory } from "./_transport_common.ts";
import {
  checkBoolean,
  checkDestinationPort,
  type DatagramConnTransport,
  type DatagramConnTransportOptions,
  datagramTransportOverHandle,
  isUnixAddress,
} from "./_datagram_transport.ts";
import { canonicalIp, parseIPv4 } from "./_ip.ts";
import {
  checkFunction,
  checkHostname,
  checkKnownOptions,
  checkPort,
  describe,
} from "./_validate.ts";

export {
  DatagramConnTransport,
  type DatagramConnTransportOptions,
} from "./_datagram_transport.ts";

/** Options of {@linkcode createDatagramEndpoint}. */
export interface CreateDatagramEndpointOptions {
  /**
   * Local address to bind (asyncio's `local_addr`). Default: with
   * `remoteAddr` an ephemeral port on the loopback address of the remote's
   * family when the remote is a loopback address, else on the any address
   * (`"0.0.0.0"`/`"::"`); with neither, `"0.0.0.0"` port 0.
   */
  localAddr?: { hostname?: string; port?: number };
  /**
   * The peer (asyncio's `remote_addr`): the default target of `sendTo`;
   * datagrams from any other address are dropped (connected UDP, emulated).
   * A host name is resolved once, at creation. `{ path }` for Unix.
   */
  remoteAddr?: DatagramAddress;
  /**
   * The address family (asyncio's `family`): `AF_INET` (2) or `AF_INET6`
   * (10) restricts name resolution and the default bind address to that
   * family (an address of the other family is a `TypeError`); `AF_UNIX`
   * (1) asks for a Unix datagram endpoint. Default `AF_UNSPEC` (0): the
   * family of the addresses given.
   */
  family?: number;
  /**
   * `SO_REUSEADDR`: lets several sockets bind the same address and port
   * (on Linux any process can then take over the port's unicast traffic;
   * CPython 3.11+ refuses `reuse_address` for UDP for that reason).
   */
  reuseAddress?: boolean;
  /**
   * asyncio's `reuse_port`. The native backend sets `SO_REUSEPORT` (the
   * kernel spreads unicast datagrams across the sockets). The Deno backend
   * cannot set `SO_REUSEPORT` on UDP sockets, so there it sets
   * `SO_REUSEADDR`, which on Linux shares the port the same way for
   * multicast and broadcast, while unicast datagrams all go to the socket
   * bound last.
   */
  reusePort?: boolean;
  /**
   * asyncio's `allow_broadcast` (`SO_BROADCAST`). The native backend sets
   * it only when `true` (asyncio's default is off). The Deno backend sets
   * `SO_BROADCAST` on every UDP socket: broadcast is always allowed there,
   * and `allowBroadcast: false`, which it cannot honour, throws
   * `NotSupported`.
   */
  allowBroadcast?: boolean;
  /**
   * An existing `Deno.DatagramConn`, or an aionet datagram `Socket` (e.g.
   * one that joined a multicast group with `setsockopt`; a connected one
   * keeps its peer as the default target), to use instead of creating one.
   * Excludes the other options.
   */
  sock?: Deno.DatagramConn | Socket;
  /**
   * Unix datagrams: the path to bind. Refused with `NotSupported` on Deno
   * 2.9, where a `unixpacket` socket cannot send while a receive is
   * pending; leave it out (with `remoteAddr: { path }`) for a send-only
   * endpoint.
   */
  path?: string;
}

function isLoopback(ip: string): boolean {
  return ip === "::1" || parseIPv4(ip)?.[0] === 127;
}

/** Resolves a host name as getaddrinfo does (hosts file, then DNS). */
async function resolveHost(
  hostname: string,
  family: 4 | 6 | undefined,
): Promise<string> {
  const literal = canonicalIp(hostname);
  if (literal !== null) return literal;
  const { lookup } = await import("node:dns/promises");
  const options = family === undefined ? {} : { family };
  let address: string;
  try {
    ({ address } = await lookup(hostname, options));
  } catch (error) {
    throw new Deno.errors.NotFound(
      `Cannot resolve the remoteAddr hostname "${hostname}": ${
        error instanceof Error ? error.message : String(error)
      }`,
      { cause: error },
    );
  }
  return canonicalIp(address) ?? address;
}

const ENDPOINT_OPTIONS = [
  "localAddr",
  "remoteAddr",
  "family",
  "reuseAddress",
  "reusePort",
  "allowBroadcast",
  "sock",
  "path",
] as const;

/** Address families `family` takes (Linux values, as sockets.ts exports them). */
const AF_UNSPEC = 0;
const AF_UNIX = 1;
const AF_INET = 2;
const AF_INET6 = 10;

/**
 * Starts a datagram transport over `handle` for a new protocol; closes the
 * handle if the factory throws.
 */
function startEndpoint<P extends BaseProtocol>(
  loop: LoopCore,
  handle: DatagramHandle,
  protocolFactory: () => P,
  options: DatagramConnTransportOptions = {},
): [DatagramConnTransport, P] {
  const protocol = callFactory(protocolFactory, handle);
  const transport = datagramTransportOverHandle(handle, protocol, {
    loop,
    ...options,
  });
  return [transport, protocol];
}

function checkFamily(family: unknown): number {
  if (family === undefined) return AF_UNSPEC;
  if (typeof family !== "number") {
    throw new TypeError(
      `The family must be AF_UNSPEC, AF_INET, AF_INET6 or AF_UNIX, got ${
        describe(family)
      }`,
    );
  }
  if (![AF_UNSPEC, AF_INET, AF_INET6, AF_UNIX].includes(family)) {
    throw new RangeError(
      `The family must be AF_UNSPEC (0), AF_INET (2), AF_INET6 (10) or AF_UNIX (1), got ${family}`,
    );
  }
  return family;
}

/** Throws unless the IP literal `ip` belongs to `family` (when one is set). */
function checkIpFamily(ip: string, family: number, what: string): void {
  if (family === AF_UNSPEC) return;
  const v6 = ip.includes(":");
  if (family === AF_INET6 ? !v6 : v6) {
    throw new TypeError(
      `The ${what} ${ip} is not an ${
        family === AF_INET6 ? "IPv6" : "IPv4"
      } address, as family ${
        family === AF_INET6 ? "AF_INET6" : "AF_INET"
      } asks`,
    );
  }
}

/** `createDatagramEndpoint` for `loop`. */
export async function createDatagramEndpoint<P extends BaseProtocol>(
  loop: LoopCore,
  protocolFactory: () => P,
  options?: CreateDatagramEndpointOptions,
): Promise<[DatagramConnTransport, P]> {
  checkFunction(protocolFactory, "protocol factory");
  const {
    localAddr,
    remoteAddr,
    family: givenFamily,
    reuseAddress,
    reusePort,
    allowBroadcast,
    sock,
    path,
  } = checkKnownOptions(
    options,
    ENDPOINT_OPTIONS,
    "createDatagramEndpoint option",
  );
  checkBoolean(reuseAddress, "reuseAddress option");
  checkBoolean(reusePort, "reusePort option");
  checkBoolean(allowBroadcast, "allowBroadcast option");
  const family = checkFamily(givenFamily);
  const backend = currentBackend();

  if (sock !== undefined) {
    if (
      localAddr !== undefined || remoteAddr !== undefined ||
      path !== undefined || reuseAddress || reusePort ||
      allowBroadcast || family !== AF_UNSPEC
    ) {
      throw new TypeError(
        "The sock option cannot be combined with localAddr, remoteAddr, path, family, reuseAddress, reusePort or allowBroadcast",
      );
    }
    const adopted = await datagramHandleOf(sock);
    return startEndpoint(
      loop,
      adopted.handle,
      protocolFactory,
      adopted.remoteAddr === undefined
        ? {}
        : { remoteAddr: adopted.remoteAddr },
    );
  }

  if (
    remoteAddr !== undefined &&
    (remoteAddr === null || typeof remoteAddr !== "object")
  ) {
    throw new TypeError(
      `The remoteAddr must be an object, got ${describe(remoteAddr)}`,
    );
  }
  const unix = path !== undefined || family === AF_UNIX ||
    (remoteAddr !== undefined && isUnixAddress(remoteAddr));
  if (unix) {
    if (family !== AF_UNSPEC && family !== AF_UNIX) {
      throw new TypeError(
        "A Unix datagram endpoint (path or remoteAddr { path }) needs family AF_UNIX or none",
      );
    }
    if (localAddr !== undefined) {
      throw new TypeError(
        "A Unix datagram endpoint takes path, not localAddr",
      );
    }
    if (remoteAddr !== undefined && !isUnixAddress(remoteAddr)) {
      throw new TypeError(
        "The remoteAddr of a Unix datagram endpoint must be { path }",
      );
    }
    if (path !== undefined) checkUnixPath(path);
    if (remoteAddr === undefined && path === undefined) {
      throw new TypeError(
        "A Unix datagram endpoint needs path, remoteAddr { path } or both",
      );
    }
    if (remoteAddr !== undefined) {
      checkUnixPath((remoteAddr as { path: string }).path);
    }
    if (allowBroadcast || reusePort) {
      throw new TypeError(
        "allowBroadcast and reusePort do not apply to Unix datagram endpoints",
      );
    }
    const handle = backend.openUnixDatagram(path);
    return startEndpoint(
      loop,
      handle,
      protocolFactory,
      remoteAddr === undefined ? {} : { remoteAddr },
    );
  }

  // UDP.
  if (allowBroadcast === false && !backend.features.broadcastOff) {
    throw new Deno.errors.NotSupported(
      "allowBroadcast: false is not supported on the Deno backend: Deno sets SO_BROADCAST on every UDP socket (leave it out, or use the native backend)",
    );
  }
  let bindHost: string | undefined;
  let bindPort = 0;
  if (localAddr !== undefined) {
    if (localAddr === null || typeof localAddr !== "object") {
      throw new TypeError(
        `The localAddr must be an object, got ${describe(localAddr)}`,
      );
    }
    if ("path" in localAddr) {
      throw new TypeError("Unix datagram endpoints take path, not localAddr");
    }
    const { hostname, port, transport } = checkKnownOptions(
      localAddr as { hostname?: string; port?: number; transport?: string },
      ["hostname", "port", "transport"],
      "localAddr field",
    );
    checkUdpTransport(transport, "localAddr");
    if (hostname !== undefined) {
      bindHost = checkHostname(hostname, "localAddr hostname");
      const ip = canonicalIp(bindHost);
      if (ip !== null) checkIpFamily(ip, family, "localAddr hostname");
    }
    if (port !== undefined) bindPort = checkPort(port, "localAddr port");
  }
  let remote: DatagramAddress | undefined;
  let remoteHostname: string | undefined;
  if (remoteAddr !== undefined) {
    const { hostname = "127.0.0.1", port, transport } = checkKnownOptions(
      remoteAddr as { hostname?: string; port: number; transport?: string },
      ["hostname", "port", "transport"],
      "remoteAddr field",
    );
    checkUdpTransport(transport, "remoteAddr");
    checkDestinationPort(port, "remoteAddr port");
    checkHostname(hostname, "remoteAddr hostname");
    const bindIp = bindHost === undefined ? null : canonicalIp(bindHost);
    const wanted = family === AF_INET
      ? 4
      : family === AF_INET6
      ? 6
      : bindIp === null
      ? undefined
      : bindIp.includes(":")
      ? 6
      : 4;
    const ip = await resolveHost(hostname, wanted);
    checkIpFamily(ip, family, "remoteAddr hostname");
    if (bindIp !== null && bindIp.includes(":") !== ip.includes(":")) {
      // asyncio: "can not get address information", before any socket.
      throw new TypeError(
        `The remoteAddr ${ip} and the localAddr ${bindIp} are of different address families`,
      );
    }
    remote = { hostname: ip, port };
    remoteHostname = hostname;
    if (bindHost === undefined) {
      bindHost = ip.includes(":")
        ? (isLoopback(ip) ? "::1" : "::")
        : (isLoopback(ip) ? "127.0.0.1" : "0.0.0.0");
    }
  }
  const handle = backend.bindUdp({
    hostname: bindHost ?? (family === AF_INET6 ? "::" : "0.0.0.0"),
    port: bindPort,
    reuseAddress: reuseAddress === true,
    reusePort: reusePort === true,
    allowBroadcast: allowBroadcast ?? !backend.features.broadcastOff,
    // IP_MULTICAST_LOOP on, as the OS default that asyncio keeps.
    loopback: true,
  });
  return startEndpoint(loop, handle, protocolFactory, {
    remoteAddr: remote,
    remoteHostname,
    // As asyncio: a broadcasting endpoint is not connected; remoteAddr is
    // its default target, and it hears from anyone.
    connect: allowBroadcast !== true,
  });
}

/** A `Deno.NetAddr`'s `transport` field is welcome if it says "udp". */
function checkUdpTransport(transport: unknown, what: string): void {
  if (transport !== undefined && transport !== "udp") {
    throw new TypeError(
      `The ${what} transport must be "udp" (or left out), got ${
        describe(transport)
      }`,
    );
  }
}
