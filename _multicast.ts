// Multicast on a Deno.DatagramConn: group membership, TTL and loopback.
//
// The one code path behind DatagramConnTransport's multicast methods and
// (with the low-level sockets module) `Socket.setsockopt(IPPROTO_IP,
// IP_ADD_MEMBERSHIP | IP_DROP_MEMBERSHIP | IP_MULTICAST_TTL |
// IP_MULTICAST_LOOP, …)`: `parseMembershipRequest()` turns the `ip_mreq`
// bytes of setsockopt into the group and interface these functions take, and
// `getMulticastOptions()` answers getsockopt.
//
// Deno exposes membership through `conn.joinMulticastV4/V6()`, which returns
// a membership object with `leave()`, `setTTL()` and `setLoopback()`. TTL and
// loopback are socket options, not per-group ones: without a membership they
// are set through the methods Deno's own node:dgram uses (found by their
// symbol's description, feature-detected; `NotSupported` if absent).

import { checkNumber, describe } from "./_validate.ts";
import { canonicalIPv6, parseIPv4 } from "./_ip.ts";

/** What `getMulticastOptions()` reports for a socket. */
export interface MulticastOptions {
  /** `IP_MULTICAST_TTL`: hops of outgoing multicast datagrams (Linux default 1). */
  ttl: number;
  /**
   * `IP_MULTICAST_LOOP`: whether this host's sockets get the multicast
   * datagrams this socket sends; `undefined` when the socket was made
   * elsewhere and never set.
   */
  loopback: boolean | undefined;
  /** Groups joined through this module, with the interface of each. */
  groups: Array<{ group: string; iface: string | number }>;
}

type Membership = Deno.MulticastV4Membership | Deno.MulticastV6Membership;

interface State {
  ttl: number;
  loopback: boolean | undefined;
  memberships: Map<
    string,
    { group: string; iface: string | number; m: Membership }
  >;
}

const states = new WeakMap<Deno.DatagramConn, State>();

/** Wrappers that stand for a Deno connection (see {@linkcode aliasConn}). */
const aliases = new WeakMap<object, Deno.DatagramConn>();

/**
 * Says that `wrapper` stands for `conn` (a socket's connection handed over
 * to a transport): its multicast state and Deno's internal calls are
 * `conn`'s, so memberships made before the handover can be dropped after.
 */
export function aliasConn(wrapper: object, conn: Deno.DatagramConn): void {
  aliases.set(wrapper, aliases.get(conn) ?? conn);
}

function stateOf(given: Deno.DatagramConn): State {
  const conn = aliases.get(given) ?? given;
  let state = states.get(conn);
  if (state === undefined) {
    state = { ttl: 1, loopback: undefined, memberships: new Map() };
    states.set(conn, state);
  }
  return state;
}

/**
 * Records the `IP_MULTICAST_LOOP` value a socket was created with (the
 * `loopback` option of `Deno.listenDatagram`).
 */
export function initMulticast(
  conn: Deno.DatagramConn,
  options: { loopback: boolean },
): void {
  stateOf(conn).loopback = options.loopback;
}

/** Whether `address` is an IPv4 (224.0.0.0/4) or IPv6 (ff00::/8) multicast literal. */
export function isMulticastAddress(address: string): boolean {
  const v4 = parseIPv4(address);
  if (v4 !== null) return v4[0] >= 224 && v4[0] <= 239;
  const v6 = canonicalIPv6(address);
  return v6 !== null && v6.startsWith("ff");
}

interface Group {
  group: string;
  iface: string | number;
  v6: boolean;
  key: string;
}

function checkGroup(group: unknown, iface: unknown): Group {
  if (typeof group !== "string") {
    throw new TypeError(
      `The multicast group must be a string, got ${describe(group)}`,
    );
  }
  const v4 = parseIPv4(group);
  const v6 = v4 === null ? canonicalIPv6(group) : null;
  if (v4 === null && v6 === null) {
    throw new TypeError(
      `The multicast group must be an IPv4 or IPv6 address, got "${group}"`,
    );
  }
  if (!isMulticastAddress(group)) {
    throw new RangeError(
      `The group ${group} is not a multicast address (224.0.0.0/4 or ff00::/8)`,
    );
  }
  if (v4 !== null) {
    const address = v4.join(".");
    const ifaceAddress = iface === undefined ? "0.0.0.0" : iface;
    if (typeof ifaceAddress !== "string" || parseIPv4(ifaceAddress) === null) {
      throw new TypeError(
        `The interface of an IPv4 group must be the interface's IPv4 address (default "0.0.0.0"), got ${
          describe(iface)
        }`,
      );
    }
    const canonical = parseIPv4(ifaceAddress)!.join(".");
    return {
      group: address,
      iface: canonical,
      v6: false,
      key: `${address}%${canonical}`,
    };
  }
  const index = iface === undefined ? 0 : iface;
  if (typeof index !== "number") {
    throw new TypeError(
      `The interface of an IPv6 group must be an interface index (default 0), got ${
        describe(iface)
      }`,
    );
  }
  if (!Number.isInteger(index) || index < 0 || index > 0xffffffff) {
    throw new RangeError(
      `The interface index must be an integer from 0 to 4294967295, got ${index}`,
    );
  }
  return { group: v6!, iface: index, v6: true, key: `${v6}%${index}` };
}

function checkUdp(conn: Deno.DatagramConn): void {
  if (conn.addr.transport !== "udp") {
    throw new Deno.errors.NotSupported(
      `Multicast is not supported on ${conn.addr.transport} sockets: it needs a UDP socket`,
    );
  }
}

function isV6Socket(conn: Deno.DatagramConn): boolean {
  return (conn.addr as Deno.NetAddr).hostname.includes(":");
}

/** A method Deno keeps under a symbol (node:dgram's hooks), or `undefined`. */
function internalMethod(
  given: Deno.DatagramConn,
  description: string,
): ((...args: unknown[]) => Promise<unknown>) | undefined {
  const conn = aliases.get(given) ?? given;
  let proto: object | null = Object.getPrototypeOf(conn);
  while (proto !== null && proto !== Object.prototype) {
    for (const symbol of Object.getOwnPropertySymbols(proto)) {
      if (symbol.description !== description) continue;
      const method = (conn as unknown as Record<symbol, unknown>)[symbol];
      if (typeof method !== "function") return undefined;
      return (...args: unknown[]) =>
        Promise.resolve(method.apply(conn, args) as unknown);
    }
    proto = Object.getPrototypeOf(proto);
  }
  return undefined;
}

/**
 * Joins a multicast group (`IP_ADD_MEMBERSHIP` / `IPV6_JOIN_GROUP`) on the
 * interface with the given IPv4 address (default `"0.0.0.0"`: the kernel
 * picks one, by the route to the group) or IPv6 interface index (default 0).
 * Joining the same group on the same interface twice rejects with
 * `AddrInUse`, as setsockopt does.
 */
export async function addMembership(
  conn: Deno.DatagramConn,
  group: string,
  iface?: string | number,
): Promise<void> {
  const g = checkGroup(group, iface);
  checkUdp(conn);
  const state = stateOf(conn);
  if (state.memberships.has(g.key)) {
    throw new Deno.errors.AddrInUse(
      `Already a member of ${g.group} on interface ${g.iface}`,
    );
  }
  const m = g.v6
    ? await conn.joinMulticastV6(g.group, g.iface as number)
    : await conn.joinMulticastV4(g.group, g.iface as string);
  state.memberships.set(g.key, { group: g.group, iface: g.iface, m });
}

/**
 * Leaves a multicast group (`IP_DROP_MEMBERSHIP` / `IPV6_LEAVE_GROUP`).
 * Leaving a group the socket is not a member of rejects with
 * `AddrNotAvailable`, as setsockopt does.
 */
export async function dropMembership(
  conn: Deno.DatagramConn,
  group: string,
  iface?: string | number,
): Promise<void> {
  const g = checkGroup(group, iface);
  checkUdp(conn);
  const state = stateOf(conn);
  const entry = state.memberships.get(g.key);
  if (entry !== undefined) {
    await entry.m.leave();
    state.memberships.delete(g.key);
    return;
  }
  // Joined outside this module (conn.joinMulticastV4 called directly).
  const drop = internalMethod(conn, "dropMembership");
  if (drop === undefined) {
    throw new Deno.errors.AddrNotAvailable(
      `Not a member of ${g.group} on interface ${g.iface}`,
    );
  }
  await drop(g.v6, g.group, g.iface);
}

/**
 * Sets `IP_MULTICAST_TTL`, the hop limit of the multicast datagrams the
 * socket sends (0–255; Linux's default is 1, the local network). IPv6
 * sockets: Deno has no `IPV6_MULTICAST_HOPS`, so this is `NotSupported`.
 */
export async function setMulticastTtl(
  conn: Deno.DatagramConn,
  ttl: number,
): Promise<void> {
  checkNumber(ttl, "multicast TTL");
  if (!Number.isInteger(ttl) || ttl > 255) {
    throw new RangeError(
      `The multicast TTL must be an integer from 0 to 255, got ${ttl}`,
    );
  }
  checkUdp(conn);
  if (isV6Socket(conn)) {
    throw new Deno.errors.NotSupported(
      "The multicast hop limit of an IPv6 socket is not supported: Deno does not expose IPV6_MULTICAST_HOPS",
    );
  }
  const state = stateOf(conn);
  const viaMembership = [...state.memberships.values()]
    .map((entry) => entry.m)
    .find((m): m is Deno.MulticastV4Membership => "setTTL" in m);
  if (viaMembership !== undefined) {
    await viaMembership.setTTL(ttl);
  } else {
    const set = internalMethod(conn, "setMulticastTTL");
    if (set === undefined) {
      throw new Deno.errors.NotSupported(
        "Setting the multicast TTL before joining a group is not supported by this Deno version: join a group first",
      );
    }
    await set(ttl);
  }
  state.ttl = ttl;
}

/**
 * Sets `IP_MULTICAST_LOOP` (`IPV6_MULTICAST_LOOP` on an IPv6 socket):
 * whether multicast datagrams this socket sends are delivered to this
 * host's own members too. Note that a datagram sent through the loopback
 * interface comes back whatever this says: the interface itself loops.
 */
export async function setMulticastLoopback(
  conn: Deno.DatagramConn,
  enabled: boolean,
): Promise<void> {
  if (typeof enabled !== "boolean") {
    throw new TypeError(
      `The multicast loopback flag must be a boolean, got ${describe(enabled)}`,
    );
  }
  checkUdp(conn);
  const v6 = isV6Socket(conn);
  const state = stateOf(conn);
  const viaMembership = [...state.memberships.values()]
    .find((entry) => (typeof entry.iface === "number") === v6)?.m;
  if (viaMembership !== undefined) {
    await viaMembership.setLoopback(enabled);
  } else {
    const set = internalMethod(conn, "setMultiLoopback");
    if (set === undefined) {
      throw new Deno.errors.NotSupported(
        "Setting multicast loopback before joining a group is not supported by this Deno version: join a group first, or create the socket with the loopback option",
      );
    }
    await set(v6, enabled);
  }
  state.loopback = enabled;
}

/** The multicast options as last set through this module (for getsockopt). */
export function getMulticastOptions(conn: Deno.DatagramConn): MulticastOptions {
  const state = stateOf(conn);
  return {
    ttl: state.ttl,
    loopback: state.loopback,
    groups: [...state.memberships.values()].map(({ group, iface }) => ({
      group,
      iface,
    })),
  };
}

/**
 * Reads the option value of `setsockopt(IPPROTO_IP, IP_ADD_MEMBERSHIP or
 * IP_DROP_MEMBERSHIP, value)` as Linux does: 8 bytes are a `struct ip_mreq`
 * (group, interface address); 12 or more a `struct ip_mreqn` (group,
 * interface address, interface index) — which is how Linux reads Python's
 * `struct.pack("4sL", group, INADDR_ANY)` (16 bytes on 64-bit). Addresses
 * are in network byte order. An interface given only by index is
 * `NotSupported`: Deno joins by interface address.
 */
export function parseMembershipRequest(
  value: Uint8Array,
): { group: string; iface: string } {
  if (!(value instanceof Uint8Array)) {
    throw new TypeError(
      `The membership request must be a Uint8Array (struct ip_mreq), got ${
        describe(value)
      }`,
    );
  }
  if (value.length !== 8 && value.length < 12) {
    throw new RangeError(
      `A membership request is 8 bytes (ip_mreq) or at least 12 (ip_mreqn), got ${value.length}`,
    );
  }
  const group = [...value.subarray(0, 4)].join(".");
  const iface = [...value.subarray(4, 8)].join(".");
  if (value.length >= 12) {
    const index = new DataView(value.buffer, value.byteOffset + 8, 4)
      .getUint32(0, true);
    if (index !== 0 && iface === "0.0.0.0") {
      throw new Deno.errors.NotSupported(
        `Joining by interface index (${index}) is not supported: Deno joins a group by the interface's IPv4 address`,
      );
    }
  }
  return { group, iface };
}
