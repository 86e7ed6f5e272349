// The Socket class (public through sockets.ts): the checks and errors users
// see, over the kernel side a backend provides (SocketImpl: emulated on the
// Deno backend, a real socket on the native one). Internal helpers here let
// the transports take a socket over.

import { ipVersion } from "./_ip.ts";
import { checkIntOption } from "./_validate.ts";
import { checkUnixPath } from "./_unix_path.ts";
import type { DetachedHandle, SocketImpl } from "./_backend.ts";
import { currentBackend } from "./_io.ts";
import { currentLoop } from "./_loop_core.ts";
import { type UnclosedState, watchUnclosed } from "./_debug.ts";
import { errno, errnoOf, errorOfErrno } from "./_errno.ts";
import { forgetFd, setReadiness } from "./_readiness.ts";
import { isMulticastAddress } from "./_multicast.ts";
import { MAX_UDP4_PAYLOAD, MAX_UDP6_PAYLOAD } from "./_ip.ts";
import {
  AF_INET,
  AF_INET6,
  AF_UNIX,
  IP_ADD_MEMBERSHIP,
  IP_DROP_MEMBERSHIP,
  IP_MULTICAST_TTL,
  IPPROTO_IP,
  SHUT_RD,
  SHUT_RDWR,
  SHUT_WR,
  SOCK_DGRAM,
  SOCK_STREAM,
  SOMAXCONN,
} from "./_socket_constants.ts";
import { assertBytes, checkPort, describe } from "./_validate.ts";

const FAMILY_NAMES: Record<number, string> = {
  [AF_UNIX]: "AF_UNIX",
  [AF_INET]: "AF_INET",
  [AF_INET6]: "AF_INET6",
};
const TYPE_NAMES: Record<number, string> = {
  [SOCK_STREAM]: "SOCK_STREAM",
  [SOCK_DGRAM]: "SOCK_DGRAM",
};
/** `SOCK_NONBLOCK | SOCK_CLOEXEC`, accepted in `type` and ignored. */
const TYPE_FLAGS = 0o4000 | 0o2000000;
const NOT_BLOCKING =
  "use the async loop.sock* functions of events.ts (sockRecv, sockSendAll, sockConnect, sockAccept, ...) to wait instead";

/** An address as sockets take it: `{ hostname, port }` or `{ path }`. */
export type SocketAddress =
  | { hostname?: string; port: number }
  | { path: string };

/**
 * What {@linkcode detachSocket} hands over: the Deno resource under a
 * socket, positioned exactly where the socket left it.
 */
export type DetachedSocket =
  | {
    /** A connected stream socket. */
    kind: "stream";
    /**
     * The connection. Its `read()` first returns the bytes the socket had
     * already received (and the result of the read it had in flight), so
     * nothing is lost; its `write()` waits until the bytes the socket had
     * queued are written.
     */
    conn: Deno.Conn;
  }
  | {
    /** A listening (or only bound) stream socket. */
    kind: "listener";
    /**
     * The listener. Its `accept()` first returns the connections already
     * accepted into the socket's backlog.
     */
    listener: Deno.Listener;
    /** The backlog given to `listen()`, or `null` if it was only bound. */
    backlog: number | null;
  }
  | {
    /** A datagram socket (bound; an unbound one is bound to port 0). */
    kind: "datagram";
    /**
     * The datagram socket. Its `receive()` first returns the datagrams the
     * socket had received; its `send()` waits for the queued ones.
     */
    conn: Deno.DatagramConn;
    /** The peer given to `connect()`, or `null`. */
    remoteAddr: Deno.NetAddr | Deno.UnixAddr | null;
  };

/** Checks `family` and `type` as `socket()` takes them; returns the base type. */
function checkKind(family: unknown, type: unknown): number {
  if (typeof family !== "number" || !Number.isInteger(family)) {
    throw new TypeError(
      `The family must be an integer such as AF_INET, got ${describe(family)}`,
    );
  }
  if (typeof type !== "number" || !Number.isInteger(type)) {
    throw new TypeError(
      `The type must be an integer such as SOCK_STREAM, got ${describe(type)}`,
    );
  }
  if (!(family in FAMILY_NAMES)) {
    throw new Deno.errors.NotSupported(
      `Address family ${family} is not supported: use AF_INET, AF_INET6 or AF_UNIX`,
    );
  }
  const baseType = type & ~TYPE_FLAGS;
  if (!(baseType in TYPE_NAMES)) {
    throw new Deno.errors.NotSupported(
      `Socket type ${type} is not supported: use SOCK_STREAM or SOCK_DGRAM`,
    );
  }
  return baseType;
}

function checkSize(n: unknown, what: string): void {
  if (typeof n !== "number" || Number.isNaN(n)) {
    throw new TypeError(`The ${what} must be a number, got ${describe(n)}`);
  }
  if (!Number.isInteger(n) || n < 0) {
    throw new RangeError(
      `The ${what} must be a non-negative integer, got ${n}`,
    );
  }
}

/**
 * Values out of their range are a RangeError on any backend (the kernel
 * would say EINVAL): the multicast TTL, and membership requests for a
 * group that is not multicast.
 */
function checkOptionValue(
  level: number,
  option: number,
  value: number | Uint8Array,
): void {
  if (level !== IPPROTO_IP) return;
  if (option === IP_MULTICAST_TTL && typeof value === "number") {
    if (!Number.isInteger(value) || value < 0 || value > 255) {
      throw new RangeError(
        `IP_MULTICAST_TTL must be an integer from 0 to 255, got ${value}`,
      );
    }
  }
  if (
    (option === IP_ADD_MEMBERSHIP || option === IP_DROP_MEMBERSHIP) &&
    value instanceof Uint8Array
  ) {
    if (value.length < 8) {
      throw new RangeError(
        `A membership request (ip_mreq) is at least 8 bytes, got ${value.length}`,
      );
    }
    const group = value.subarray(0, 4).join(".");
    if (!isMulticastAddress(group)) {
      throw new RangeError(
        `The group ${group} is not an IPv4 multicast address (224.0.0.0/4)`,
      );
    }
  }
}

let detachOf: (sock: Socket) => Promise<DetachedHandle>;
let implOf: (sock: Socket) => SocketImpl;

/** Whether `sock` is an OS socket (native backend), not an emulated one. */
export function isOsSocket(sock: Socket): boolean {
  return implOf(sock).osSocket;
}

/** The kernel side of `sock`, handed over (internal: the transports' `sock`). */
export function detachHandle(sock: Socket): Promise<DetachedHandle> {
  return detachOf(sock);
}

/** A `Socket` over `impl` (internal: accepted sockets, pairs, conns). */
export function socketOfImpl(impl: SocketImpl): Socket {
  return wrap(impl);
}

let wrap: (impl: SocketImpl) => Socket;

/**
 * A non-blocking socket, as Python's `socket.socket` with
 * `setblocking(False)`. Create it with {@linkcode socket}.
 *
 * On the Deno backend (the default) the socket's kernel side is emulated
 * over Deno's resources and `fileno()` is a number unique in the process;
 * on the native backend (`native.ts`) it is a real non-blocking OS socket
 * and `fileno()` is its descriptor.
 *
 * @example A TCP server socket on a free port
 * ```ts
 * import { AF_INET, SOCK_STREAM, socket } from "@aionet/aionet/sockets";
 *
 * using server = socket(AF_INET, SOCK_STREAM);
 * server.bind({ hostname: "127.0.0.1", port: 0 });
 * server.listen(5);
 * console.log(server.getSockName());
 * ```
 */
export class Socket {
  static #pending: SocketImpl | null = null;
  #impl: SocketImpl;
  #detached = false;
  /** Debug mode's record of whether this socket was closed. */
  #unclosed: UnclosedState | null;

  static {
    detachOf = (sock) => sock.#detach();
    implOf = (sock) => sock.#impl;
    wrap = (impl) => {
      Socket.#pending = impl;
      try {
        return new Socket(impl.family, impl.type);
      } finally {
        Socket.#pending = null;
      }
    };
  }

  /**
   * A new, unconnected socket. `socket()` is the usual spelling.
   *
   * @param family `AF_INET` (default), `AF_INET6` or `AF_UNIX`.
   * @param type `SOCK_STREAM` (default) or `SOCK_DGRAM`.
   */
  constructor(family: number = AF_INET, type: number = SOCK_STREAM) {
    let impl = Socket.#pending;
    Socket.#pending = null;
    if (impl === null) {
      impl = currentBackend().newSocket(family, checkKind(family, type));
    }
    this.#impl = impl;
    setReadiness(this, impl.readiness);
    this.#unclosed = watchUnclosed(currentLoop(), this, "socket");
  }

  /** The address family: `AF_INET`, `AF_INET6` or `AF_UNIX`. */
  get family(): number {
    return this.#impl.family;
  }

  /** The socket type: `SOCK_STREAM` or `SOCK_DGRAM`. */
  get type(): number {
    return this.#impl.type;
  }

  /** The protocol number (always 0: the default for the type). */
  get proto(): number {
    return 0;
  }

  /**
   * The descriptor: the OS descriptor on the native backend, a number
   * unique to this socket in this process on the Deno backend; -1 once
   * closed.
   */
  fileno(): number {
    return this.#impl.closed ? -1 : this.#impl.fd;
  }

  /**
   * Binds to a local address. On the Deno backend, stream sockets start
   * listening at the OS level here (Deno has no bind without listen), so
   * connections may be queued before `listen()`, and binding a stream
   * socket then connecting it is not supported (the native backend does
   * both, as the kernel). Datagram sockets start receiving.
   */
  bind(address: SocketAddress): void {
    this.#checkOpen();
    this.#impl.bind(this.#checkAddress(address, "bind"));
  }

  /**
   * Starts accepting connections; up to `backlog` (default 128) wait for
   * `accept()`. An unbound `AF_INET`/`AF_INET6` socket is bound to a free
   * port first, as the kernel does.
   */
  listen(backlog = 128): void {
    this.#checkOpen();
    if (typeof backlog !== "number" || Number.isNaN(backlog)) {
      throw new TypeError(
        `The backlog must be a number, got ${describe(backlog)}`,
      );
    }
    if (!Number.isInteger(backlog) || backlog > 2 ** 31 - 1) {
      throw new RangeError(
        `The backlog must be an integer that fits a C int, got ${backlog}`,
      );
    }
    this.#impl.listen(Math.max(0, Math.min(backlog, SOMAXCONN)));
  }

  /**
   * Takes a waiting connection: `[socket, peerAddress]`. Throws
   * `WouldBlock` when none waits (wait with `loop.sockAccept()` or a
   * selector).
   */
  accept(): [Socket, Deno.Addr] {
    this.#checkOpen();
    const [impl, addr] = this.#impl.accept();
    return [wrap(impl), addr];
  }

  /**
   * Starts connecting. A stream socket throws `WouldBlock` at once (as a
   * non-blocking `connect()` does with `EINPROGRESS`); it turns writable
   * when the attempt ends and `getsockopt(SOL_SOCKET, SO_ERROR)` tells the
   * outcome (0 or an errno, e.g. 111 for refused). `loop.sockConnect()`
   * does all of this for you. A datagram socket connects at once: it sends
   * to `address` by default and receives only from it.
   */
  connect(address: SocketAddress): void {
    this.#checkOpen();
    const code = this.#impl.connect(this.#checkAddress(address, "connect"));
    if (code === 0) return;
    if (code === errno.EINPROGRESS) {
      throw new Deno.errors.WouldBlock(
        "Operation now in progress: wait until the socket is writable, then read SO_ERROR",
      );
    }
    if (code === errno.EALREADY) {
      throw new Deno.errors.WouldBlock(
        "Operation already in progress: the socket is still connecting",
      );
    }
    if (code === errno.EISCONN) {
      throw new Deno.errors.AlreadyExists(
        "Transport endpoint is already connected",
      );
    }
    throw errorOfErrno(code, `Connection failed (errno ${code})`);
  }

  /**
   * `connect()` that returns an errno instead of throwing: 115
   * (`EINPROGRESS`) when the attempt starts, 114 (`EALREADY`) while it
   * runs, 106 (`EISCONN`) once connected, or the error of a failed attempt.
   */
  connectEx(address: SocketAddress): number {
    this.#checkOpen();
    const addr = this.#checkAddress(address, "connect");
    try {
      return this.#impl.connect(addr);
    } catch (error) {
      if (error instanceof TypeError || error instanceof RangeError) {
        throw error;
      }
      if (error instanceof Deno.errors.NotSupported) throw error;
      return errnoOf(error);
    }
  }

  /**
   * Up to `n` received bytes; an empty array at EOF. Throws `WouldBlock`
   * when nothing was received yet. On a datagram socket: one datagram, cut
   * to `n` bytes.
   */
  recv(n: number): Uint8Array {
    checkSize(n, "n");
    this.#checkOpen();
    return this.#impl.recv(n)[0];
  }

  /**
   * Receives into `buffer` (at most `nbytes`, default its length); returns
   * the count.
   */
  recvInto(buffer: Uint8Array, nbytes = 0): number {
    return this.recvFromInto(buffer, nbytes)[0];
  }

  /** As `recv`, with the sender's address: `[data, address]`. */
  recvFrom(n: number): [Uint8Array, Deno.Addr] {
    checkSize(n, "n");
    this.#checkOpen();
    return this.#impl.recv(n);
  }

  /** As `recvInto`, with the sender's address: `[count, address]`. */
  recvFromInto(buffer: Uint8Array, nbytes = 0): [number, Deno.Addr] {
    assertBytes(buffer, "buffer");
    checkSize(nbytes, "nbytes");
    const limit = nbytes === 0 ? buffer.length : nbytes;
    if (limit > buffer.length) {
      throw new RangeError(
        `The nbytes (${nbytes}) must not exceed the buffer length (${buffer.length})`,
      );
    }
    this.#checkOpen();
    return this.#impl.recvInto(buffer.subarray(0, limit));
  }

  /**
   * Queues as much of `data` as the send buffer takes and returns that
   * count; throws `WouldBlock` when the buffer is full. On a connected
   * datagram socket, sends one datagram to the peer.
   */
  send(data: Uint8Array): number {
    assertBytes(data);
    this.#checkOpen();
    this.#checkDatagramSize(data);
    return this.#impl.send(data);
  }

  /**
   * Queues all of `data` if the socket is writable (the send buffer may
   * then hold more than its size until it drains), else throws
   * `WouldBlock` and queues nothing. Unlike Python's `sendall` on a
   * non-blocking socket it never sends part of the data; to wait for room,
   * use `loop.sockSendAll()`.
   */
  sendAll(data: Uint8Array): void {
    assertBytes(data);
    this.#checkOpen();
    this.#checkDatagramSize(data);
    this.#impl.sendAll(data);
  }

  /**
   * Sends one datagram to `address`; returns its length. An unbound socket
   * is bound to a free port first. On a stream socket the address is
   * ignored, as Linux does, and this is `send()`.
   */
  sendTo(data: Uint8Array, address: SocketAddress): number {
    assertBytes(data);
    this.#checkOpen();
    if (this.type === SOCK_STREAM) return this.#impl.send(data);
    this.#checkDatagramSize(data);
    return this.#impl.sendTo(data, this.#checkAddress(address, "sendTo"));
  }

  /**
   * Shuts down reading (`SHUT_RD`: receives return EOF), writing
   * (`SHUT_WR`: FIN once the send buffer drained) or both (`SHUT_RDWR`).
   */
  shutdown(how: number): void {
    this.#checkOpen();
    if (how !== SHUT_RD && how !== SHUT_WR && how !== SHUT_RDWR) {
      if (typeof how !== "number") {
        throw new TypeError(
          `The how must be SHUT_RD, SHUT_WR or SHUT_RDWR, got ${describe(how)}`,
        );
      }
      throw new RangeError(
        `The how must be SHUT_RD (0), SHUT_WR (1) or SHUT_RDWR (2), got ${how}`,
      );
    }
    this.#impl.shutdown(how);
  }

  /**
   * Closes the socket. Bytes already queued are still sent, then the
   * connection closes (FIN, as the kernel's `close()`); a listener stops
   * and the connections waiting in its backlog are closed. Closing twice
   * does nothing.
   */
  close(): void {
    const impl = this.#impl;
    if (this.#unclosed !== null) this.#unclosed.closed = true;
    forgetFd(impl.fd);
    if (this.#detached) {
      // The new owner has the resource; this socket only reads as closed.
      this.#detached = false;
      return;
    }
    impl.close();
  }

  /** Closes the socket (`using sock = socket()`). */
  [Symbol.dispose](): void {
    this.close();
  }

  /** The local address. An unbound socket reports the wildcard, port 0. */
  getSockName(): Deno.Addr {
    this.#checkOpen();
    return this.#impl.getSockName();
  }

  /** The peer's address; `NotConnected` if there is none. */
  getPeerName(): Deno.Addr {
    this.#checkOpen();
    return this.#impl.getPeerName();
  }

  /**
   * `setBlocking(false)` is accepted (sockets are always non-blocking);
   * `setBlocking(true)` throws `NotSupported`: JavaScript cannot block, use
   * the `loop.sock*` functions.
   */
  setBlocking(flag: boolean): void {
    this.#checkOpen();
    if (typeof flag !== "boolean") {
      throw new TypeError(
        `The setBlocking flag must be a boolean, got ${describe(flag)}`,
      );
    }
    if (flag) {
      throw new Deno.errors.NotSupported(
        `Blocking sockets are not supported (JavaScript cannot block): ${NOT_BLOCKING}`,
      );
    }
  }

  /** Always `false`: sockets are non-blocking. */
  getBlocking(): boolean {
    this.#checkOpen();
    return false;
  }

  /**
   * `setTimeout(0)` and `setTimeout(null)` are accepted and change nothing
   * (operations never wait); a positive timeout throws `NotSupported`: use
   * the `loop.sock*` functions with an `AbortSignal.timeout()` instead.
   */
  setTimeout(timeout: number | null): void {
    this.#checkOpen();
    if (timeout === null || timeout === 0) return;
    if (typeof timeout !== "number" || Number.isNaN(timeout)) {
      throw new TypeError(
        `The timeout must be a number or null, got ${describe(timeout)}`,
      );
    }
    if (timeout < 0) {
      throw new RangeError(`The timeout must not be negative, got ${timeout}`);
    }
    throw new Deno.errors.NotSupported(
      `Socket timeouts are not supported (operations never wait): ${NOT_BLOCKING}, with { signal: AbortSignal.timeout(ms) }`,
    );
  }

  /** Always 0: operations never wait. */
  getTimeout(): number {
    this.#checkOpen();
    return 0;
  }

  /**
   * Sets an option. The native backend sets any option on the OS socket
   * (`setsockopt(2)`). The Deno backend supports `IPPROTO_TCP`/
   * `TCP_NODELAY`; `SOL_SOCKET`/`SO_KEEPALIVE`, `SO_REUSEADDR`,
   * `SO_REUSEPORT` (set before `bind()`), `SO_BROADCAST` (Deno datagram
   * sockets always allow broadcast: 0 is not supported), `SO_RCVBUF`,
   * `SO_SNDBUF` (the emulated buffer sizes); `IPPROTO_IP`/
   * `IP_ADD_MEMBERSHIP`, `IP_DROP_MEMBERSHIP` (value: `ip_mreq` bytes,
   * group then interface, as `inetAton(group)` followed by
   * `inetAton(iface)`), `IP_MULTICAST_TTL` and `IP_MULTICAST_LOOP`
   * (applied through Deno's multicast membership: they take effect once a
   * group is joined); others throw `NotSupported` there.
   */
  setsockopt(
    level: number,
    option: number,
    value: number | boolean | Uint8Array,
  ): void {
    this.#checkOpen();
    checkLevelOption(level, option);
    if (typeof value === "boolean") value = value ? 1 : 0;
    if (
      !(value instanceof Uint8Array) &&
      (typeof value !== "number" || Number.isNaN(value))
    ) {
      throw new TypeError(
        `The option value must be a number, a boolean or bytes, got ${
          describe(value)
        }`,
      );
    }
    if (typeof value === "number") checkIntOption(value);
    checkOptionValue(level, option, value);
    this.#impl.setsockopt(level, option, value);
  }

  /**
   * Reads an option set with `setsockopt` (or its default). `SO_ERROR`
   * returns the pending error as an errno (0 for none) and clears it: the
   * outcome of a non-blocking `connect()`. On the Deno backend
   * `SO_BROADCAST` is 1 for datagram sockets (Deno always allows
   * broadcast). With `buflen` (1 to 1024), the option's raw bytes, as
   * CPython's three-argument form: how struct-valued options such as
   * `SO_LINGER` are read (native backend; the Deno backend has no raw
   * options and throws `NotSupported`).
   */
  getsockopt(level: number, option: number): number;
  /** The option's first `buflen` (1 to 1024) bytes (native backend). */
  getsockopt(level: number, option: number, buflen: number): Uint8Array;
  getsockopt(
    level: number,
    option: number,
    buflen?: number,
  ): number | Uint8Array {
    this.#checkOpen();
    checkLevelOption(level, option);
    if (buflen === undefined) return this.#impl.getsockopt(level, option);
    if (typeof buflen !== "number") {
      throw new TypeError(
        `The buflen must be a number, got ${describe(buflen)}`,
      );
    }
    if (!Number.isInteger(buflen) || buflen < 1 || buflen > 1024) {
      throw new RangeError(`The buflen must be 1 to 1024, got ${buflen}`);
    }
    if (this.#impl.getsockoptBytes === undefined) {
      throw new Deno.errors.NotSupported(
        "Reading an option's raw bytes needs the native backend (Deno's sockets expose no options)",
      );
    }
    return this.#impl.getsockoptBytes(level, option, buflen);
  }

  /** A short description: `<Socket fd=5 AF_INET SOCK_STREAM connected>`. */
  toString(): string {
    const state = (this.#impl as { state?: string }).state;
    return `<Socket fd=${this.fileno()} ${FAMILY_NAMES[this.family]} ${
      TYPE_NAMES[this.type]
    }${
      state === undefined ? (this.#impl.closed ? " closed" : "") : ` ${state}`
    }>`;
  }

  /** What `console.log(sock)` shows: the same as `toString()`. */
  [Symbol.for("Deno.customInspect")](): string {
    return this.toString();
  }

  // ---- internals ----

  /** A UDP datagram larger than IP allows is a RangeError on any backend. */
  #checkDatagramSize(data: Uint8Array): void {
    if (this.type !== SOCK_DGRAM || this.family === AF_UNIX) return;
    const limit = this.family === AF_INET6
      ? MAX_UDP6_PAYLOAD
      : MAX_UDP4_PAYLOAD;
    if (data.length > limit) {
      throw new RangeError(
        `Message too long: a UDP datagram over IPv${
          this.family === AF_INET6 ? 6 : 4
        } holds at most ${limit} bytes, got ${data.length}`,
      );
    }
  }

  #checkOpen(): void {
    if (!this.#impl.closed) return;
    if (this.#detached) {
      throw new Deno.errors.BadResource(
        "Bad file descriptor: the socket was handed over to a transport",
      );
    }
    throw new Deno.errors.BadResource("Bad file descriptor: socket closed");
  }

  async #detach(): Promise<DetachedHandle> {
    this.#checkOpen();
    const detached = await this.#impl.detach();
    this.#detached = true;
    if (this.#unclosed !== null) this.#unclosed.closed = true;
    forgetFd(this.#impl.fd);
    return detached;
  }

  #checkAddress(
    address: unknown,
    what: string,
  ): { hostname: string; port: number } | { path: string } {
    if (address === null || typeof address !== "object") {
      const shape = this.family === AF_UNIX ? "{ path }" : "{ hostname, port }";
      throw new TypeError(
        `The address of ${what}() must be an object ${shape}, got ${
          describe(address)
        }`,
      );
    }
    if (this.family === AF_UNIX) {
      const { path } = address as { path?: unknown };
      if (typeof path !== "string") {
        throw new TypeError(
          `An AF_UNIX address must be { path: string }, got path ${
            describe(path)
          }`,
        );
      }
      return { path: checkUnixPath(path, "socket path") };
    }
    const { hostname = "", port } = address as {
      hostname?: unknown;
      port?: unknown;
    };
    if (typeof hostname !== "string") {
      throw new TypeError(
        `The hostname must be a string, got ${describe(hostname)}`,
      );
    }
    checkPort(port);
    let host = hostname;
    if (host.startsWith("[") && host.endsWith("]")) host = host.slice(1, -1);
    if (host === "") {
      host = what === "bind"
        ? (this.family === AF_INET6 ? "::" : "0.0.0.0")
        : (this.family === AF_INET6 ? "::1" : "127.0.0.1");
    }
    // An IP of the other family cannot work (CPython: gaierror).
    const version = ipVersion(host);
    if (version !== 0 && (version === 6) !== (this.family === AF_INET6)) {
      throw new TypeError(
        `The address ${host} is IPv${version}, but the socket is ${
          FAMILY_NAMES[this.family]
        }`,
      );
    }
    return { hostname: host, port: port as number };
  }
}

/** An option's level and name: integers (`TypeError`, `RangeError`). */
function checkLevelOption(level: unknown, option: unknown): void {
  for (const [what, value] of [["level", level], ["option", option]]) {
    if (typeof value !== "number") {
      throw new TypeError(
        `The option ${what} must be a number, got ${describe(value)}`,
      );
    }
    if (!Number.isInteger(value) || value < 0 || value > 2 ** 31 - 1) {
      throw new RangeError(
        `The option ${what} must be a non-negative integer, got ${value}`,
      );
    }
  }
}
