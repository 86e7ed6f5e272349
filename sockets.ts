/**
 * Python's `socket` module for Deno: {@linkcode socket}, {@linkcode Socket},
 * {@linkcode socketpair}, the constants, {@linkcode getAddrInfo} and
 * {@linkcode getNameInfo}.
 *
 * JavaScript cannot block, so a `Socket` is always non-blocking: an
 * operation that would block throws `Deno.errors.WouldBlock`. Wait for
 * readiness with `DefaultSelector` (`selectors.ts`), `loop.addReader()`/
 * `addWriter()`, or let the `loop.sock*` functions (`events.ts`) do it.
 *
 * On the Deno backend (the default) a socket models the kernel: a bounded
 * receive buffer is filled in the background (reading stops while it is
 * full) and a bounded send buffer is drained in the background, so a
 * socket reported readable has data (or EOF, or a pending connection) and
 * one reported writable takes at least a byte. Bytes queued before
 * `close()` are still sent. On the native backend (`native.ts`) a socket
 * is a real non-blocking OS socket with the kernel's own readiness.
 *
 * Addresses are `{ hostname, port }` for `AF_INET`/`AF_INET6` and
 * `{ path }` for `AF_UNIX`; every address returned is a `Deno.Addr`.
 * Datagram sockets need Deno's `--unstable-net`.
 *
 * @example Echo over a socket pair
 * ```ts
 * import { socketpair } from "@aionet/aionet/sockets";
 * import { getEventLoop } from "@aionet/aionet/events";
 *
 * const loop = getEventLoop();
 * const [a, b] = socketpair();
 * await loop.sockSendAll(a, new TextEncoder().encode("ping"));
 * console.log(new TextDecoder().decode(await loop.sockRecv(b, 100))); // "ping"
 * a.close();
 * b.close();
 * ```
 *
 * @module
 */

import { type DetachedSocket, Socket, socketOfImpl } from "./_socket.ts";
import { detachHandle, isOsSocket } from "./_socket.ts";
import { currentBackend } from "./_io.ts";
import { denoSocketFromConn } from "./_deno_backend.ts";
import {
  AF_INET,
  AF_INET6,
  AF_UNIX,
  SOCK_STREAM,
} from "./_socket_constants.ts";
import { assertBytes, describe } from "./_validate.ts";

export * from "./_socket_constants.ts";
export {
  type AddrInfo,
  AI_CANONNAME,
  AI_NUMERICHOST,
  AI_PASSIVE,
  getAddrInfo,
  type GetAddrInfoOptions,
  getNameInfo,
  NI_DGRAM,
  NI_NAMEREQD,
  NI_NUMERICHOST,
  NI_NUMERICSERV,
} from "./_addrinfo.ts";
export { type DetachedSocket, Socket, type SocketAddress } from "./_socket.ts";

/**
 * A new non-blocking socket, as Python's `socket.socket(family, type)`.
 *
 * @example A UDP socket (needs `--unstable-net`)
 * ```ts
 * import { AF_INET, SOCK_DGRAM, socket } from "@aionet/aionet/sockets";
 *
 * using udp = socket(AF_INET, SOCK_DGRAM);
 * udp.bind({ hostname: "127.0.0.1", port: 0 });
 * console.log(udp.getSockName());
 * ```
 */
export function socket(
  family: number = AF_INET,
  type: number = SOCK_STREAM,
): Socket {
  return new Socket(family, type);
}

/**
 * Two connected sockets, as Python's `socket.socketpair()`: both are
 * connected when it returns (a send right away is buffered, never
 * `WouldBlock`). On the native backend this is `socketpair(2)`; on the
 * Deno backend the pair is joined in the background over an abstract Unix
 * socket (`AF_UNIX`, the default) or a loopback TCP listener
 * (`AF_INET`/`AF_INET6`), and a read waits for that as it waits for data.
 * The Deno backend pairs `SOCK_STREAM` sockets only. Needs `--allow-net`
 * on the Deno backend.
 *
 * @example Using `socketpair`
 * ```ts
 * import { socketpair } from "@aionet/aionet/sockets";
 * import { getEventLoop } from "@aionet/aionet/events";
 *
 * const [rsock, wsock] = socketpair();
 * wsock.send(new Uint8Array([1, 2, 3]));
 * console.log(await getEventLoop().sockRecv(rsock, 10)); // Uint8Array(3) [ 1, 2, 3 ]
 * rsock.close();
 * wsock.close();
 * ```
 */
export function socketpair(
  family: number = AF_UNIX,
  type: number = SOCK_STREAM,
): [Socket, Socket] {
  // The checks of new Socket(), before anything is opened.
  new Socket(family, type).close();
  const [a, b] = currentBackend().socketPair(family, type);
  return [socketOfImpl(a), socketOfImpl(b)];
}

/**
 * Hands the Deno resource under `sock` to a new owner, without losing a
 * byte: a connected stream socket gives its `Deno.Conn` (which replays the
 * bytes already received), a listening or bound stream socket its
 * `Deno.Listener` (which yields the connections already accepted into the
 * backlog first), a datagram socket its `Deno.DatagramConn`. Waits for a
 * connection in progress (a `socketpair()` end or a non-blocking
 * `connect()`); rejects with its error if it failed, with `NotConnected`
 * for a socket that is neither connected nor bound, with `BadResource` if
 * closed, with `NotSupported` for a socket of the native backend (it has
 * no Deno resource: pass the `Socket` itself as `sock`). Afterwards
 * `sock` behaves as closed (`fileno()` is -1, `close()` does nothing): the
 * new owner closes the resource.
 *
 * For aionet's own use (`createConnection({ sock })`, `openConnection({
 * sock })`, `createServer({ sock })`, `createDatagramEndpoint({ sock })`);
 * exported so that other transports can adopt a `Socket` too.
 *
 * @example Wrap a socketpair end in a raw Deno connection
 * ```ts
 * import { detachSocket, socketpair } from "@aionet/aionet/sockets";
 *
 * const [rsock, wsock] = socketpair();
 * const detached = await detachSocket(rsock);
 * if (detached.kind === "stream") {
 *   wsock.send(new TextEncoder().encode("hi"));
 *   const buffer = new Uint8Array(10);
 *   console.log(await detached.conn.read(buffer)); // 2
 *   detached.conn.close();
 * }
 * wsock.close();
 * ```
 */
export async function detachSocket(sock: Socket): Promise<DetachedSocket> {
  if (!(sock instanceof Socket)) {
    throw new TypeError(`The sock must be a Socket, got ${describe(sock)}`);
  }
  if (isOsSocket(sock)) {
    throw new Deno.errors.NotSupported(
      "detachSocket() hands over a Deno resource and a native socket has none: pass the Socket itself as sock to createConnection/createServer/createDatagramEndpoint",
    );
  }
  const detached = await detachHandle(sock);
  switch (detached.kind) {
    case "stream":
      return { kind: "stream", conn: detached.handle.resource! };
    case "listener":
      return {
        kind: "listener",
        listener: detached.handle.resource!,
        backlog: detached.backlog,
      };
    case "datagram":
      return {
        kind: "datagram",
        conn: detached.handle.resource!,
        remoteAddr: detached.remoteAddr,
      };
  }
}

/**
 * Wraps an already connected `Deno.Conn` in a `Socket` (the reverse of
 * {@linkcode detachSocket}), e.g. to use `loop.sock*` on a connection made
 * with `Deno.connect`.
 *
 * @example Using `socketFromConn`
 * ```ts
 * import { socketFromConn } from "@aionet/aionet/sockets";
 *
 * const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
 * const accepting = listener.accept();
 * const conn = await Deno.connect({ hostname: "127.0.0.1", port: listener.addr.port });
 * using sock = socketFromConn(conn);
 * console.log(sock.getPeerName());
 * (await accepting).close();
 * listener.close();
 * ```
 */
export function socketFromConn(conn: Deno.Conn): Socket {
  if (
    conn === null || typeof conn !== "object" ||
    typeof conn.read !== "function" || typeof conn.write !== "function"
  ) {
    throw new TypeError(`The conn must be a Deno.Conn, got ${describe(conn)}`);
  }
  const remote = conn.remoteAddr;
  const family = remote.transport === "unix"
    ? AF_UNIX
    : (remote as Deno.NetAddr).hostname.includes(":")
    ? AF_INET6
    : AF_INET;
  return socketOfImpl(denoSocketFromConn(conn, family));
}

/**
 * The 4 bytes of a dotted IPv4 address, as Python's `socket.inet_aton`.
 *
 * @example Build an `ip_mreq` for `IP_ADD_MEMBERSHIP`
 * ```ts
 * import { inetAton } from "@aionet/aionet/sockets";
 *
 * const mreq = new Uint8Array([...inetAton("239.255.255.250"), ...inetAton("0.0.0.0")]);
 * console.log(mreq.length); // 8
 * ```
 */
export function inetAton(address: string): Uint8Array {
  if (typeof address !== "string") {
    throw new TypeError(
      `The address must be a string, got ${describe(address)}`,
    );
  }
  const bytes = parseInetAton(address);
  if (bytes === null) {
    throw new RangeError(`Not an IPv4 address (inet_aton): "${address}"`);
  }
  return bytes;
}

/**
 * The C library's `inet_aton`: 1 to 4 parts, each decimal, octal (a
 * leading 0) or hex (0x), the last one filling the bytes left; whatever
 * follows a whitespace character is ignored.
 */
function parseInetAton(text: string): Uint8Array | null {
  const space = text.search(/\s/);
  if (space === 0) return null;
  const parts = (space === -1 ? text : text.slice(0, space)).split(".");
  if (parts.length > 4) return null;
  const values: number[] = [];
  for (const part of parts) {
    if (/^0[xX][0-9a-fA-F]+$/.test(part)) values.push(parseInt(part, 16));
    else if (/^0[0-7]*$/.test(part)) values.push(parseInt(part, 8));
    else if (/^[1-9][0-9]*$/.test(part)) values.push(Number(part));
    else return null;
  }
  const last = values.pop()!;
  if (values.some((value) => value > 255)) return null;
  if (last > 2 ** (8 * (4 - values.length)) - 1) return null;
  const out = new Uint8Array(4);
  values.forEach((value, i) => out[i] = value);
  for (
    let i = 3, rest = last;
    i >= values.length;
    i--, rest = Math.floor(rest / 256)
  ) {
    out[i] = rest % 256;
  }
  return out;
}

/**
 * The dotted form of 4 address bytes, as Python's `socket.inet_ntoa`.
 *
 * @example Using `inetNtoa`
 * ```ts
 * import { inetNtoa } from "@aionet/aionet/sockets";
 * console.log(inetNtoa(new Uint8Array([127, 0, 0, 1]))); // "127.0.0.1"
 * ```
 */
export function inetNtoa(bytes: Uint8Array): string {
  assertBytes(bytes, "address bytes");
  if (bytes.length !== 4) {
    throw new RangeError(`An IPv4 address has 4 bytes, got ${bytes.length}`);
  }
  return Array.from(bytes).join(".");
}
