// Socket plumbing shared by the native handles and sockets: opening,
// binding and connecting descriptors, socket options, local and peer
// names, closing exactly once, Deno-style permission checks before any
// bind or connect, and synchronous name resolution (libc getaddrinfo,
// for the calls that are synchronous in asyncio too: bind, listen,
// Socket.connect; connectTcp resolves asynchronously instead).

import type { SocketOptionAccess } from "./_backend.ts";
import {
  AF_INET,
  AF_INET6,
  errno,
  IPPROTO_IPV6,
  IPV6_V6ONLY,
  SO_ERROR,
  SO_LINGER,
  SO_REUSEADDR,
  SO_REUSEPORT,
  SOCK_CLOEXEC,
  SOCK_DGRAM,
  SOCK_NONBLOCK,
  SOCK_STREAM,
  SOL_SOCKET,
  sys,
  throwErrno,
} from "./_native_libc.ts";
import {
  encodeInet,
  encodeUnix,
  formatIPv4,
  formatIPv6,
  literalFamily,
  SOCKADDR_SIZE,
  SockaddrBuffer,
} from "./_native_sockaddr.ts";

// ---- permissions ----

function granted(descriptor: Deno.PermissionDescriptor): boolean {
  let status = Deno.permissions.querySync(descriptor);
  if (status.state === "prompt") {
    // What Deno's own ops do: ask (a terminal prompt, or a denial when
    // prompting is off).
    status = Deno.permissions.requestSync(descriptor);
  }
  return status.state === "granted";
}

/** `host:port` as Deno's permission checks spell it (`[::1]:80`). */
export function hostPort(hostname: string, port: number): string {
  return hostname.includes(":")
    ? `[${hostname}]:${port}`
    : `${hostname}:${port}`;
}

/** Throws `NotCapable` as Deno does unless net access to `host:port` is granted. */
export function checkNet(hostname: string, port: number): void {
  const host = hostPort(hostname, port);
  if (!granted({ name: "net", host })) {
    throw new Deno.errors.NotCapable(
      `Requires net access to "${host}", run again with the --allow-net flag`,
    );
  }
}

/**
 * Throws `NotCapable` as Deno's own ops do if `--deny-net` names an address
 * that `hostname` resolved to (the name itself was checked by `checkNet`).
 */
export function checkResolved(
  addresses: readonly ResolvedAddress[],
  port: number,
): void {
  for (const { address } of addresses) {
    const host = hostPort(address, port);
    if (Deno.permissions.querySync({ name: "net", host }).state === "denied") {
      throw new Deno.errors.NotCapable(
        `Requires net access to "${host}", run again with the --allow-net flag`,
      );
    }
  }
}

/**
 * Throws `NotCapable` as Deno does unless read and write access to Unix
 * socket `path` and net access to `unix:<path>` (Deno 2.9 asks it of Unix
 * sockets) are granted (abstract names are checked as given).
 */
export function checkUnixPath(path: string): void {
  // In Deno's order: read, write, then net.
  for (const name of ["read", "write"] as const) {
    if (!granted({ name, path })) {
      throw new Deno.errors.NotCapable(
        `Requires ${name} access to "${path}", run again with the --allow-${name} flag`,
      );
    }
  }
  let absolute = path;
  if (!path.startsWith("/") && !path.startsWith("\0")) {
    try {
      absolute = `${Deno.cwd()}/${path}`;
    } catch {
      absolute = path; // No read access to the working directory.
    }
  }
  const host = `unix:${absolute}`;
  if (!granted({ name: "net", host })) {
    throw new Deno.errors.NotCapable(
      `Requires net access to "${host}", run again with the --allow-net flag`,
    );
  }
}

// ---- descriptors ----

/** A new non-blocking, close-on-exec socket; throws the errno. */
export function openSocket(family: number, type: number): number {
  const fd = sys.socket(family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) throwErrno("socket");
  return fd;
}

/** The error of a call on a handle or socket that was closed. */
export function closedError(): Error {
  return new Deno.errors.BadResource("The socket is closed");
}

/**
 * A converter of byte counts to the BigInt a size_t parameter takes (a JS
 * number there is FFI's slow path), remembering the last one: a connection's
 * writes and a socket's datagrams repeat their sizes.
 */
export function bigSizes(): (n: number) => bigint {
  let last = 0;
  let lastBig = 0n;
  return (n) => {
    if (n === last) return lastBig;
    last = n;
    return lastBig = BigInt(n);
  };
}

/** Closes `fd` (once: the caller guarantees it). EINTR still closed it on Linux. */
export function closeFd(fd: number): void {
  sys.close(fd);
}

const intBuffer = new Int32Array(new ArrayBuffer(8));
const intBytes = new Uint8Array(intBuffer.buffer, 0, 4);
const lengthCell = new Uint32Array(new ArrayBuffer(4));
const lengthBytes = new Uint8Array(lengthCell.buffer);
const lingerBytes = new Uint8Array(new ArrayBuffer(8));

/** `setsockopt` of an int (or raw bytes); throws the errno. */
export function setOption(
  fd: number,
  level: number,
  option: number,
  value: number | Uint8Array,
): void {
  let bytes: Uint8Array;
  if (typeof value === "number") {
    if (level === SOL_SOCKET && option === SO_LINGER) {
      // A number for SO_LINGER: linger that many seconds (< 0: off).
      const view = new Int32Array(lingerBytes.buffer);
      view[0] = value >= 0 ? 1 : 0;
      view[1] = value >= 0 ? value : 0;
      bytes = lingerBytes;
    } else {
      intBuffer[0] = value;
      bytes = intBytes;
    }
  } else {
    bytes = value;
  }
  if (sys.setsockopt(fd, level, option, bytes, bytes.length) < 0) {
    throwErrno(`setsockopt(${level}, ${option})`);
  }
}

/** `getsockopt` of an int; throws the errno. */
export function getOption(fd: number, level: number, option: number): number {
  // As CPython's two-argument getsockopt: the option's first int (for
  // SO_LINGER, l_onoff; its raw bytes come from getOptionBytes).
  intBuffer[0] = 0;
  lengthCell[0] = 4;
  if (sys.getsockopt(fd, level, option, intBytes, lengthBytes) < 0) {
    throwErrno(`getsockopt(${level}, ${option})`);
  }
  // Byte-sized options (IP_MULTICAST_TTL/LOOP may be read back as one byte).
  return lengthCell[0] === 1 ? intBytes[0] : intBuffer[0];
}

/** The first `buflen` bytes of an option (CPython's three-argument form). */
export function getOptionBytes(
  fd: number,
  level: number,
  option: number,
  buflen: number,
): Uint8Array {
  const bytes = new Uint8Array(buflen);
  lengthCell[0] = buflen;
  if (sys.getsockopt(fd, level, option, bytes, lengthBytes) < 0) {
    throwErrno(`getsockopt(${level}, ${option})`);
  }
  return bytes.slice(0, lengthCell[0]);
}

/** The pending error of `fd` (SO_ERROR: read and cleared), 0 for none. */
export function takeError(fd: number): number {
  return getOption(fd, SOL_SOCKET, SO_ERROR);
}

/** SO_LINGER {1, 0}: the next close sends a reset. */
export function lingerZero(fd: number): void {
  const view = new Int32Array(lingerBytes.buffer);
  view[0] = 1;
  view[1] = 0;
  sys.setsockopt(fd, SOL_SOCKET, SO_LINGER, lingerBytes, 8);
}

/** A `SocketOptionAccess` over the descriptor `fd()` returns (throws when closed). */
export function optionAccess(fd: () => number): SocketOptionAccess {
  return {
    set: (level, option, value) => setOption(fd(), level, option, value),
    get: (level, option) => getOption(fd(), level, option),
  };
}

const nameBuffer = new SockaddrBuffer();

/** The local address of `fd`, or `undefined` if the kernel has none to give. */
export function sockName(
  fd: number,
  ip: "tcp" | "udp",
  unix: "unix" | "unixpacket",
): Deno.Addr | undefined {
  if (sys.getsockname(fd, nameBuffer.bytes, nameBuffer.prepare()) < 0) {
    return undefined;
  }
  return nameBuffer.decode(ip, unix);
}

/** The peer address of `fd`; throws (e.g. `NotConnected`) if there is none. */
export function peerName(
  fd: number,
  ip: "tcp" | "udp",
  unix: "unix" | "unixpacket",
): Deno.Addr {
  if (sys.getpeername(fd, nameBuffer.bytes, nameBuffer.prepare()) < 0) {
    throwErrno("getpeername");
  }
  return nameBuffer.decode(ip, unix);
}

/** Transport names for addresses of a socket of `type`. */
export function transportsOf(
  type: number,
): ["tcp" | "udp", "unix" | "unixpacket"] {
  return type === SOCK_DGRAM ? ["udp", "unixpacket"] : ["tcp", "unix"];
}

// ---- addresses ----

/** A resolved IP address. */
export interface ResolvedAddress {
  family: number;
  /** The literal (IPv6 without brackets). */
  address: string;
}

const encodeBuffer = new Uint8Array(new ArrayBuffer(SOCKADDR_SIZE));

/** The interface index of `name` (for `%zone` in IPv6 literals), 0 if none. */
export function interfaceIndex(name: string): number {
  return sys.if_nametoindex(new TextEncoder().encode(name + "\0"));
}

/**
 * Encodes an IP literal address into the shared encode buffer; returns the
 * buffer and the length. Throws `TypeError` when `host` is not a literal.
 */
export function encodeLiteral(
  host: string,
  port: number,
): [Uint8Array, number] {
  const length = encodeInet(encodeBuffer, host, port, interfaceIndex);
  if (length === 0) {
    throw new TypeError(`"${host}" is not an IP address`);
  }
  return [encodeBuffer, length];
}

/** Encodes a Unix path into the shared encode buffer. */
export function encodePath(path: string): [Uint8Array, number] {
  return [encodeBuffer, encodeUnix(encodeBuffer, path)];
}

/** Strips `[` `]` around an IPv6 literal. */
export function unbracket(host: string): string {
  return host.startsWith("[") && host.endsWith("]") ? host.slice(1, -1) : host;
}

const EAI_NONAME = -2;

/**
 * Resolves `host` synchronously (a literal at once; a name through libc
 * `getaddrinfo`, which may block as Python's does). `family` 0 takes
 * both. Throws `Deno.errors.NotFound` when nothing is found.
 */
export function resolveSync(host: string, family = 0): ResolvedAddress[] {
  host = unbracket(host);
  const literal = literalFamily(host);
  if (literal !== 0) {
    if (family !== 0 && family !== literal) {
      throw new TypeError(
        `The address "${host}" is not of the socket's family (${
          family === AF_INET ? "AF_INET" : "AF_INET6"
        })`,
      );
    }
    return [{ family: literal, address: host }];
  }
  // struct addrinfo hints: ai_flags, ai_family, ai_socktype, ai_protocol.
  const hints = new Uint8Array(new ArrayBuffer(48));
  const hintWords = new Int32Array(hints.buffer);
  hintWords[1] = family;
  hintWords[2] = SOCK_STREAM;
  const out = new BigUint64Array(new ArrayBuffer(8));
  const outBytes = new Uint8Array(out.buffer);
  const name = new TextEncoder().encode(host + "\0");
  const status = sys.getaddrinfo(name, null, hints, outBytes);
  if (status !== 0) {
    const pointer = sys.gai_strerror(status);
    const text = pointer === null
      ? `error ${status}`
      : Deno.UnsafePointerView.getCString(pointer);
    const message = `failed to lookup address information: ${text}`;
    if (status === EAI_NONAME) throw new Deno.errors.NotFound(message);
    throw new Error(message);
  }
  const results: ResolvedAddress[] = [];
  const seen = new Set<string>();
  let node = Deno.UnsafePointer.create(out[0]);
  const head = node;
  try {
    for (let guard = 0; node !== null && guard < 256; guard++) {
      const view = new Deno.UnsafePointerView(node);
      const aiFamily = view.getInt32(4);
      const sockaddr = view.getPointer(24);
      if (sockaddr !== null) {
        const addr = new Deno.UnsafePointerView(sockaddr);
        let address: string | null = null;
        if (aiFamily === AF_INET) {
          const bytes = new Uint8Array(4);
          addr.copyInto(bytes, 4);
          address = formatIPv4(bytes);
        } else if (aiFamily === AF_INET6) {
          const bytes = new Uint8Array(16);
          addr.copyInto(bytes, 8);
          address = formatIPv6(bytes);
        }
        if (address !== null && !seen.has(address)) {
          seen.add(address);
          results.push({ family: aiFamily, address });
        }
      }
      node = view.getPointer(40);
    }
  } finally {
    sys.freeaddrinfo(head);
  }
  if (results.length === 0) {
    throw new Deno.errors.NotFound(
      `failed to lookup address information: no address for "${host}"`,
    );
  }
  return results;
}

/**
 * Binds `fd` to `host:port` (a literal; the caller checked permission);
 * throws the errno (`AddrInUse`, …).
 */
export function bindInet(fd: number, host: string, port: number): void {
  const [bytes, length] = encodeLiteral(host, port);
  if (sys.bind(fd, bytes, length) < 0) throwErrno();
}

/** Binds `fd` to Unix `path` (the caller checked permission). */
export function bindUnix(fd: number, path: string): void {
  const [bytes, length] = encodePath(path);
  if (sys.bind(fd, bytes, length) < 0) throwErrno();
}

/** Options applied to a fresh socket before `bind`. */
export interface BindOptions {
  reuseAddress?: boolean;
  reusePort?: boolean;
  /** IPV6_V6ONLY for an AF_INET6 socket (set either way when given). */
  v6Only?: boolean;
}

/**
 * A new socket of `type` bound to `address` (a literal; the caller
 * checked permission), options applied.
 */
export function openBound(
  address: ResolvedAddress,
  port: number,
  type: number,
  options: BindOptions,
): number {
  const fd = openSocket(address.family, type);
  try {
    if (options.reuseAddress) setOption(fd, SOL_SOCKET, SO_REUSEADDR, 1);
    if (options.reusePort) setOption(fd, SOL_SOCKET, SO_REUSEPORT, 1);
    if (address.family === AF_INET6 && options.v6Only !== undefined) {
      setOption(fd, IPPROTO_IPV6, IPV6_V6ONLY, options.v6Only ? 1 : 0);
    }
    bindInet(fd, address.address, port);
    return fd;
  } catch (error) {
    closeFd(fd);
    throw error;
  }
}

/** Starts a non-blocking connect of `fd`; 0, or the errno (EINPROGRESS, …). */
export function startConnect(
  fd: number,
  bytes: Uint8Array,
  length: number,
): number {
  return sys.connect(fd, bytes, length) < 0 ? errno() : 0;
}
