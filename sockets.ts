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
 * A socket models the kernel: a bounded receive buffer is filled in the
 * background (reading stops while it is full) and a bounded send buffer is
 * drained in the background, so a socket reported readable has data (or
 * EOF, or a pending connection) and one reported writable takes at least a
 * byte. Bytes queued before `close()` are still sent.
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

import { nextFd } from "./_fd.ts";
import { errno, errnoOf, errorOfErrno, toError } from "./_errno.ts";
import {
  forgetFd,
  READ,
  Readiness,
  setReadiness,
  WRITE,
} from "./_readiness.ts";
import { StreamChannel } from "./_socket_stream.ts";
import { ListenerChannel } from "./_socket_listener.ts";
import { DatagramChannel, MAX_DATAGRAM } from "./_socket_datagram.ts";
import { isMulticastAddress, parseMembershipRequest } from "./_multicast.ts";
import {
  assertBytes,
  checkPort,
  describe,
  requireUnstableNet,
} from "./_validate.ts";

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

/** Unspecified address family (Linux value 0). */
export const AF_UNSPEC = 0;
/** Unix domain sockets (Linux value 1). */
export const AF_UNIX = 1;
/** IPv4 (Linux value 2). */
export const AF_INET = 2;
/** IPv6 (Linux value 10). */
export const AF_INET6 = 10;
/** Stream sockets: TCP, or Unix stream (Linux value 1). */
export const SOCK_STREAM = 1;
/** Datagram sockets: UDP, or Unix datagrams (Linux value 2). */
export const SOCK_DGRAM = 2;
/** Socket-level options (Linux value 1). */
export const SOL_SOCKET = 1;
/** IPv4-level options (Linux value 0). */
export const IPPROTO_IP = 0;
/** IPv6-level options (Linux value 41). */
export const IPPROTO_IPV6 = 41;
/** TCP-level options, and the TCP protocol number (Linux value 6). */
export const IPPROTO_TCP = 6;
/** The UDP protocol number (Linux value 17). */
export const IPPROTO_UDP = 17;
/** `IPPROTO_TCP` option: disable Nagle's algorithm (Linux value 1). */
export const TCP_NODELAY = 1;
/** `SOL_SOCKET` option: reuse a local address (Linux value 2). */
export const SO_REUSEADDR = 2;
/** `SOL_SOCKET` option: pending error, read and cleared (Linux value 4). */
export const SO_ERROR = 4;
/** `SOL_SOCKET` option: allow broadcast datagrams (Linux value 6). */
export const SO_BROADCAST = 6;
/** `SOL_SOCKET` option: send buffer size in bytes (Linux value 7). */
export const SO_SNDBUF = 7;
/** `SOL_SOCKET` option: receive buffer size in bytes (Linux value 8). */
export const SO_RCVBUF = 8;
/** `SOL_SOCKET` option: TCP keep-alive probes (Linux value 9). */
export const SO_KEEPALIVE = 9;
/** `SOL_SOCKET` option: several sockets on one port (Linux value 15). */
export const SO_REUSEPORT = 15;
/** `IPPROTO_IP` option: multicast time-to-live (Linux value 33). */
export const IP_MULTICAST_TTL = 33;
/** `IPPROTO_IP` option: loop multicast back to this host (Linux value 34). */
export const IP_MULTICAST_LOOP = 34;
/** `IPPROTO_IP` option: join a multicast group, value `ip_mreq` bytes (35). */
export const IP_ADD_MEMBERSHIP = 35;
/** `IPPROTO_IP` option: leave a multicast group, value `ip_mreq` bytes (36). */
export const IP_DROP_MEMBERSHIP = 36;
/** The IPv4 wildcard address as a number (0). */
export const INADDR_ANY = 0;
/** `shutdown()`: no more receives (0). */
export const SHUT_RD = 0;
/** `shutdown()`: no more sends, FIN after the send buffer (1). */
export const SHUT_WR = 1;
/** `shutdown()`: both (2). */
export const SHUT_RDWR = 2;
/** The largest `listen()` backlog Linux accepts by default (4096). */
export const SOMAXCONN = 4096;

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

type State =
  | "fresh"
  | "bound"
  | "listening"
  | "connecting"
  | "connected"
  | "closed"
  | "detached";

interface Options {
  noDelay: number;
  keepAlive: number;
  reuseAddr: number;
  reusePort: number;
  rcvBuf: number | undefined;
  sndBuf: number | undefined;
  multicastTtl: number;
  multicastLoop: number | undefined;
}

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

let detach: (sock: Socket) => Promise<DetachedSocket>;
let adoptConn: (sock: Socket, conn: Deno.Conn) => void;
let pairWith: (
  sock: Socket,
  connecting: Promise<Deno.Conn>,
  ready: Promise<unknown>,
) => void;

/**
 * A non-blocking socket, as Python's `socket.socket` with
 * `setblocking(False)`. Create it with {@linkcode socket}.
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
  #family: number;
  #type: number;
  #fd: number;
  #state: State = "fresh";
  #readiness: Readiness;
  #stream: StreamChannel | null = null;
  #listener: ListenerChannel | null = null;
  #dgram: DatagramChannel | null = null;
  #backlog: number | null = null;
  #connecting: Promise<void> | null = null;
  #connectAbort: AbortController | null = null;
  #soError = 0;
  #soErrorException: Error | null = null;
  #remote: Deno.NetAddr | Deno.UnixAddr | null = null;
  #pendingGroups: Array<[string, string]> = [];
  #boundUnix = false;
  #options: Options = {
    noDelay: 0,
    keepAlive: 0,
    reuseAddr: 0,
    reusePort: 0,
    rcvBuf: undefined,
    sndBuf: undefined,
    multicastTtl: 1,
    multicastLoop: undefined,
  };

  static {
    detach = (sock) => sock.#detach();
    adoptConn = (sock, conn) => sock.#adopt(conn);
    pairWith = (sock, connecting, ready) => sock.#pairWith(connecting, ready);
  }

  /**
   * A new, unconnected socket. `socket()` is the usual spelling.
   *
   * @param family `AF_INET` (default), `AF_INET6` or `AF_UNIX`.
   * @param type `SOCK_STREAM` (default) or `SOCK_DGRAM`.
   */
  constructor(family: number = AF_INET, type: number = SOCK_STREAM) {
    if (typeof family !== "number" || !Number.isInteger(family)) {
      throw new TypeError(
        `The family must be an integer such as AF_INET, got ${
          describe(family)
        }`,
      );
    }
    if (typeof type !== "number" || !Number.isInteger(type)) {
      throw new TypeError(
        `The type must be an integer such as SOCK_STREAM, got ${
          describe(type)
        }`,
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
    this.#family = family;
    this.#type = baseType;
    this.#fd = nextFd();
    this.#readiness = new Readiness(
      this.#fd,
      () => this.#poll(),
      () => this.#state === "closed" || this.#state === "detached",
    );
    setReadiness(this, this.#readiness);
  }

  /** The address family: `AF_INET`, `AF_INET6` or `AF_UNIX`. */
  get family(): number {
    return this.#family;
  }

  /** The socket type: `SOCK_STREAM` or `SOCK_DGRAM`. */
  get type(): number {
    return this.#type;
  }

  /** The protocol number (always 0: the default for the type). */
  get proto(): number {
    return 0;
  }

  /** A number unique to this socket in this process; -1 once closed. */
  fileno(): number {
    return this.#isGone() ? -1 : this.#fd;
  }

  /**
   * Binds to a local address. Stream sockets start listening at the OS
   * level here (Deno has no bind without listen), so connections may be
   * queued before `listen()`; binding a stream socket and then connecting
   * it is not supported. Datagram sockets start receiving.
   */
  bind(address: SocketAddress): void {
    this.#checkOpen();
    if (this.#state !== "fresh" || this.#dgram !== null) {
      throw new Deno.errors.AlreadyExists(
        "Invalid argument: the socket is already bound or connected",
      );
    }
    const addr = this.#checkAddress(address, "bind");
    if (this.#type === SOCK_STREAM) {
      let listener: Deno.Listener;
      if ("path" in addr) {
        listener = Deno.listen({ transport: "unix", path: addr.path });
      } else {
        const options: Deno.TcpListenOptions & { reusePort?: boolean } = {
          hostname: addr.hostname,
          port: addr.port,
        };
        if (this.#options.reusePort) {
          requireUnstableNet("SO_REUSEPORT");
          options.reusePort = true;
        }
        listener = Deno.listen(options);
      }
      this.#listener = new ListenerChannel(listener, () => this.#notify());
      this.#state = "bound";
    } else {
      this.#bindDatagram(addr);
    }
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
    if (!Number.isInteger(backlog)) {
      throw new RangeError(`The backlog must be an integer, got ${backlog}`);
    }
    if (this.#type !== SOCK_STREAM) {
      throw new Deno.errors.NotSupported(
        "Operation not supported: listen() needs a SOCK_STREAM socket",
      );
    }
    if (this.#state === "fresh") {
      if (this.#family === AF_UNIX) {
        throw new Deno.errors.NotSupported(
          "listen() on an unbound AF_UNIX socket is not supported: bind() it to a path first",
        );
      }
      this.bind({ hostname: "", port: 0 });
    }
    if (this.#state !== "bound" && this.#state !== "listening") {
      throw new Deno.errors.AlreadyExists(
        "Invalid argument: a connected socket cannot listen",
      );
    }
    this.#backlog = Math.max(0, Math.min(backlog, SOMAXCONN));
    this.#state = "listening";
    this.#listener!.listen(this.#backlog);
  }

  /**
   * Takes a waiting connection: `[socket, peerAddress]`. Throws
   * `WouldBlock` when none waits (wait with `loop.sockAccept()` or a
   * selector).
   */
  accept(): [Socket, Deno.Addr] {
    this.#checkOpen();
    if (this.#state !== "listening") {
      throw new Deno.errors.NotConnected(
        "Invalid argument: accept() needs a listening socket (call listen() first)",
      );
    }
    const conn = this.#listener!.accept();
    this.#notify();
    const sock = new Socket(this.#family, SOCK_STREAM);
    // Options an accepted socket inherits from its listener, as on Linux.
    sock.#options.noDelay = this.#options.noDelay;
    sock.#options.keepAlive = this.#options.keepAlive;
    sock.#options.rcvBuf = this.#options.rcvBuf;
    sock.#options.sndBuf = this.#options.sndBuf;
    sock.#adopt(conn);
    return [sock, conn.remoteAddr];
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
    const code = this.#connect(address);
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
    const error = this.#soErrorException ??
      errorOfErrno(code, `Connection failed (errno ${code})`);
    this.#soError = 0;
    this.#soErrorException = null;
    throw error;
  }

  /**
   * `connect()` that returns an errno instead of throwing: 115
   * (`EINPROGRESS`) when the attempt starts, 114 (`EALREADY`) while it
   * runs, 106 (`EISCONN`) once connected, or the error of a failed attempt.
   */
  connectEx(address: SocketAddress): number {
    const code = this.#connect(address);
    if (code !== 0 && code !== errno.EINPROGRESS && code !== errno.EALREADY) {
      this.#soError = 0;
      this.#soErrorException = null;
    }
    return code;
  }

  /**
   * Up to `n` received bytes; an empty array at EOF. Throws `WouldBlock`
   * when nothing was received yet. On a datagram socket: one datagram, cut
   * to `n` bytes.
   */
  recv(n: number): Uint8Array {
    checkSize(n, "n");
    return this.#recv(n)[0];
  }

  /**
   * Receives into `buffer` (at most `nbytes`, default its length); returns
   * the count.
   */
  recvInto(buffer: Uint8Array, nbytes = 0): number {
    assertBytes(buffer, "buffer");
    checkSize(nbytes, "nbytes");
    const limit = nbytes === 0 ? buffer.length : nbytes;
    if (limit > buffer.length) {
      throw new RangeError(
        `The nbytes (${nbytes}) must not exceed the buffer length (${buffer.length})`,
      );
    }
    const [data] = this.#recv(limit);
    buffer.set(data);
    return data.length;
  }

  /** As `recv`, with the sender's address: `[data, address]`. */
  recvFrom(n: number): [Uint8Array, Deno.Addr] {
    checkSize(n, "n");
    return this.#recv(n);
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
    const [data, addr] = this.#recv(limit);
    buffer.set(data);
    return [data.length, addr];
  }

  /**
   * Queues as much of `data` as the send buffer takes and returns that
   * count; throws `WouldBlock` when the buffer is full. On a connected
   * datagram socket, sends one datagram to the peer.
   */
  send(data: Uint8Array): number {
    assertBytes(data);
    this.#checkOpen();
    if (this.#type === SOCK_DGRAM) {
      if (this.#remote === null) {
        throw new Deno.errors.NotConnected(
          "Destination address required: connect() the datagram socket or use sendTo()",
        );
      }
      return this.#sendDatagram(data, this.#remote);
    }
    return this.#connectedStream().send(data);
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
    if (this.#type === SOCK_DGRAM) {
      this.send(data);
      return;
    }
    this.#connectedStream().send(data, true);
  }

  /**
   * Sends one datagram to `address`; returns its length. An unbound socket
   * is bound to a free port first. On a stream socket the address is
   * ignored, as Linux does, and this is `send()`.
   */
  sendTo(data: Uint8Array, address: SocketAddress): number {
    assertBytes(data);
    this.#checkOpen();
    if (this.#type === SOCK_STREAM) return this.send(data);
    const addr = this.#checkAddress(address, "sendTo");
    return this.#sendDatagram(data, this.#toDenoAddr(addr));
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
    if (this.#type === SOCK_DGRAM) {
      throw new Deno.errors.NotSupported(
        "shutdown() of a datagram socket is not supported",
      );
    }
    const stream = this.#stream;
    if (stream === null) {
      throw new Deno.errors.NotConnected(
        "Transport endpoint is not connected",
      );
    }
    if (how !== SHUT_WR) stream.shutdownRead();
    if (how !== SHUT_RD) stream.shutdownWrite();
  }

  /**
   * Closes the socket. Bytes already queued are still sent, then the
   * connection closes (FIN, as the kernel's `close()`); a listener stops
   * and the connections waiting in its backlog are closed. Closing twice
   * does nothing.
   */
  close(): void {
    if (this.#isGone()) return;
    const wasDetached = this.#state === "detached";
    this.#state = "closed";
    forgetFd(this.#fd);
    if (!wasDetached) {
      this.#stream?.close();
      this.#listener?.close();
      this.#dgram?.close();
      this.#connectAbort?.abort();
    }
    this.#readiness.notify();
  }

  /** Closes the socket (`using sock = socket()`). */
  [Symbol.dispose](): void {
    this.close();
  }

  /** The local address. An unbound socket reports the wildcard, port 0. */
  getSockName(): Deno.Addr {
    this.#checkOpen();
    if (this.#stream !== null) return this.#stream.conn.localAddr;
    if (this.#listener !== null) return this.#listener.listener.addr;
    if (this.#dgram !== null) return this.#dgram.conn.addr;
    if (this.#family === AF_UNIX) return { transport: "unix", path: "" };
    return {
      transport: this.#type === SOCK_STREAM ? "tcp" : "udp",
      hostname: this.#family === AF_INET6 ? "::" : "0.0.0.0",
      port: 0,
    };
  }

  /** The peer's address; `NotConnected` if there is none. */
  getPeerName(): Deno.Addr {
    this.#checkOpen();
    if (this.#stream !== null) return this.#stream.conn.remoteAddr;
    if (this.#remote !== null) return this.#remote;
    throw new Deno.errors.NotConnected("Transport endpoint is not connected");
  }

  /**
   * `setBlocking(false)` is accepted (sockets are always non-blocking);
   * `setBlocking(true)` throws `NotSupported`: JavaScript cannot block, use
   * the `loop.sock*` functions.
   */
  setBlocking(flag: boolean): void {
    this.#checkOpen();
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
   * Sets an option. Supported: `IPPROTO_TCP`/`TCP_NODELAY`; `SOL_SOCKET`/
   * `SO_KEEPALIVE`, `SO_REUSEADDR`, `SO_REUSEPORT` (set before `bind()`),
   * `SO_BROADCAST` (Deno datagram sockets always allow broadcast: 0 is not
   * supported), `SO_RCVBUF`, `SO_SNDBUF` (the emulated buffer sizes);
   * `IPPROTO_IP`/`IP_ADD_MEMBERSHIP`, `IP_DROP_MEMBERSHIP` (value:
   * `ip_mreq` bytes, group then interface, as `inetAton(group)` followed by
   * `inetAton(iface)`), `IP_MULTICAST_TTL` and `IP_MULTICAST_LOOP` (applied
   * through Deno's multicast membership: they take effect once a group is
   * joined). Others throw `NotSupported`.
   */
  setsockopt(
    level: number,
    option: number,
    value: number | boolean | Uint8Array,
  ): void {
    this.#checkOpen();
    if (typeof level !== "number" || typeof option !== "number") {
      throw new TypeError("The level and option must be numbers");
    }
    const key = `${level}:${option}`;
    if (key === `${IPPROTO_IP}:${IP_ADD_MEMBERSHIP}`) {
      this.#membership(value, true);
      return;
    }
    if (key === `${IPPROTO_IP}:${IP_DROP_MEMBERSHIP}`) {
      this.#membership(value, false);
      return;
    }
    const number = toOptionNumber(value);
    switch (key) {
      case `${IPPROTO_TCP}:${TCP_NODELAY}`:
        this.#streamOnly("TCP_NODELAY");
        this.#options.noDelay = number ? 1 : 0;
        this.#applyConnOptions();
        return;
      case `${SOL_SOCKET}:${SO_KEEPALIVE}`:
        this.#streamOnly("SO_KEEPALIVE");
        this.#options.keepAlive = number ? 1 : 0;
        this.#applyConnOptions();
        return;
      case `${SOL_SOCKET}:${SO_REUSEADDR}`:
        this.#options.reuseAddr = number ? 1 : 0;
        return;
      case `${SOL_SOCKET}:${SO_REUSEPORT}`:
        if (number) requireUnstableNet("SO_REUSEPORT");
        this.#options.reusePort = number ? 1 : 0;
        return;
      case `${SOL_SOCKET}:${SO_BROADCAST}`:
        if (!number) {
          throw new Deno.errors.NotSupported(
            "SO_BROADCAST 0 is not supported: Deno datagram sockets always allow broadcast",
          );
        }
        return;
      case `${SOL_SOCKET}:${SO_RCVBUF}`:
        checkBufferSize(number, "SO_RCVBUF");
        this.#options.rcvBuf = number;
        this.#stream?.setRecvCapacity(number);
        this.#dgram?.setRecvCapacity(number);
        return;
      case `${SOL_SOCKET}:${SO_SNDBUF}`:
        checkBufferSize(number, "SO_SNDBUF");
        this.#options.sndBuf = number;
        this.#stream?.setSendCapacity(number);
        this.#dgram?.setSendCapacity(number);
        return;
      case `${IPPROTO_IP}:${IP_MULTICAST_TTL}`:
        this.#datagramOnly("IP_MULTICAST_TTL");
        if (!Number.isInteger(number) || number < 0 || number > 255) {
          throw new RangeError(
            `IP_MULTICAST_TTL must be an integer from 0 to 255, got ${number}`,
          );
        }
        this.#options.multicastTtl = number;
        this.#dgram?.setMulticastTtl(number);
        return;
      case `${IPPROTO_IP}:${IP_MULTICAST_LOOP}`:
        this.#datagramOnly("IP_MULTICAST_LOOP");
        this.#options.multicastLoop = number ? 1 : 0;
        this.#dgram?.setMulticastLoop(number !== 0);
        return;
      case `${SOL_SOCKET}:${SO_ERROR}`:
        throw new Deno.errors.NotSupported("SO_ERROR can only be read");
    }
    throw new Deno.errors.NotSupported(
      `Socket option ${option} at level ${level} is not supported`,
    );
  }

  /**
   * Reads an option set with `setsockopt` (or its default). `SO_ERROR`
   * returns the pending error as an errno (0 for none) and clears it: the
   * outcome of a non-blocking `connect()`. `SO_BROADCAST` is 1 for datagram
   * sockets (Deno always allows broadcast).
   */
  getsockopt(level: number, option: number): number {
    this.#checkOpen();
    if (typeof level !== "number" || typeof option !== "number") {
      throw new TypeError("The level and option must be numbers");
    }
    switch (`${level}:${option}`) {
      case `${SOL_SOCKET}:${SO_ERROR}`: {
        let code = this.#soError;
        if (code === 0 && this.#dgram !== null) {
          const error = this.#dgram.takeError();
          if (error !== null) code = errnoOf(error);
        }
        this.#soError = 0;
        this.#soErrorException = null;
        if (code !== 0) this.#notify();
        return code;
      }
      case `${IPPROTO_TCP}:${TCP_NODELAY}`:
        this.#streamOnly("TCP_NODELAY");
        return this.#options.noDelay;
      case `${SOL_SOCKET}:${SO_KEEPALIVE}`:
        return this.#options.keepAlive;
      case `${SOL_SOCKET}:${SO_REUSEADDR}`:
        return this.#options.reuseAddr;
      case `${SOL_SOCKET}:${SO_REUSEPORT}`:
        return this.#options.reusePort;
      case `${SOL_SOCKET}:${SO_BROADCAST}`:
        return this.#type === SOCK_DGRAM ? 1 : 0;
      case `${SOL_SOCKET}:${SO_RCVBUF}`:
        return this.#options.rcvBuf ??
          (this.#type === SOCK_STREAM ? 128 * 1024 : 212_992);
      case `${SOL_SOCKET}:${SO_SNDBUF}`:
        return this.#options.sndBuf ??
          (this.#type === SOCK_STREAM ? 64 * 1024 : 212_992);
      case `${IPPROTO_IP}:${IP_MULTICAST_TTL}`:
        this.#datagramOnly("IP_MULTICAST_TTL");
        return this.#options.multicastTtl;
      case `${IPPROTO_IP}:${IP_MULTICAST_LOOP}`:
        this.#datagramOnly("IP_MULTICAST_LOOP");
        return this.#options.multicastLoop ?? 0;
    }
    throw new Deno.errors.NotSupported(
      `Socket option ${option} at level ${level} cannot be read`,
    );
  }

  /** A short description: `<Socket fd=5 AF_INET SOCK_STREAM connected>`. */
  toString(): string {
    return `<Socket fd=${this.fileno()} ${FAMILY_NAMES[this.#family]} ${
      TYPE_NAMES[this.#type]
    } ${this.#state}>`;
  }

  /** What `console.log(sock)` shows: the same as `toString()`. */
  [Symbol.for("Deno.customInspect")](): string {
    return this.toString();
  }

  // ---- internals ----

  #isGone(): boolean {
    return this.#state === "closed" || this.#state === "detached";
  }

  #checkOpen(): void {
    if (this.#state === "closed") {
      throw new Deno.errors.BadResource("Bad file descriptor: socket closed");
    }
    if (this.#state === "detached") {
      throw new Deno.errors.BadResource(
        "Bad file descriptor: the socket was handed over to a transport",
      );
    }
  }

  #notify(): void {
    this.#readiness.notify();
  }

  #poll(): number {
    if (this.#soError !== 0) return READ | WRITE;
    switch (this.#state) {
      case "listening":
        return this.#listener!.readable() ? READ : 0;
      case "connected":
        if (this.#stream !== null) {
          return (this.#stream.readable() ? READ : 0) |
            (this.#stream.writable() ? WRITE : 0);
        }
        break;
    }
    if (this.#type === SOCK_DGRAM) {
      if (this.#dgram === null) return this.#family === AF_UNIX ? 0 : WRITE;
      return (this.#dgram.readable() ? READ : 0) |
        (this.#dgram.writable() ? WRITE : 0);
    }
    return 0;
  }

  #streamOnly(name: string): void {
    if (this.#type !== SOCK_STREAM) {
      throw new Deno.errors.NotSupported(`${name} needs a SOCK_STREAM socket`);
    }
  }

  #datagramOnly(name: string): void {
    if (this.#type !== SOCK_DGRAM) {
      throw new Deno.errors.NotSupported(`${name} needs a SOCK_DGRAM socket`);
    }
  }

  #checkAddress(
    address: unknown,
    what: string,
  ): { hostname: string; port: number } | { path: string } {
    if (address === null || typeof address !== "object") {
      const shape = this.#family === AF_UNIX
        ? "{ path }"
        : "{ hostname, port }";
      throw new TypeError(
        `The address of ${what}() must be an object ${shape}, got ${
          describe(address)
        }`,
      );
    }
    if (this.#family === AF_UNIX) {
      const { path } = address as { path?: unknown };
      if (typeof path !== "string") {
        throw new TypeError(
          `An AF_UNIX address must be { path: string }, got path ${
            describe(path)
          }`,
        );
      }
      if (path.length === 0) {
        throw new RangeError("The socket path must not be empty");
      }
      return { path };
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
        ? (this.#family === AF_INET6 ? "::" : "0.0.0.0")
        : (this.#family === AF_INET6 ? "::1" : "127.0.0.1");
    }
    return { hostname: host, port: port as number };
  }

  #toDenoAddr(
    addr: { hostname: string; port: number } | { path: string },
  ): Deno.NetAddr | Deno.UnixAddr {
    if ("path" in addr) {
      return {
        transport: this.#type === SOCK_STREAM ? "unix" : "unixpacket",
        path: addr.path,
      };
    }
    return {
      transport: this.#type === SOCK_STREAM ? "tcp" : "udp",
      hostname: addr.hostname,
      port: addr.port,
    };
  }

  #bindDatagram(
    addr: { hostname: string; port: number } | { path: string },
  ): void {
    requireUnstableNet("Datagram sockets");
    const notify = () => this.#notify();
    const capacities = {
      recv: this.#options.rcvBuf,
      send: this.#options.sndBuf,
    };
    let conn: Deno.DatagramConn;
    if ("path" in addr) {
      conn = Deno.listenDatagram({ transport: "unixpacket", path: addr.path });
      this.#boundUnix = true;
    } else {
      const options: Deno.UdpListenOptions & { transport: "udp" } = {
        transport: "udp",
        hostname: addr.hostname,
        port: addr.port,
      };
      if (this.#options.reuseAddr || this.#options.reusePort) {
        options.reuseAddress = true;
      }
      if (this.#options.multicastLoop !== undefined) {
        options.loopback = this.#options.multicastLoop === 1;
      }
      conn = Deno.listenDatagram(options);
    }
    this.#dgram = new DatagramChannel(conn, notify, {
      ...capacities,
      loopback: this.#options.multicastLoop === undefined
        ? undefined
        : this.#options.multicastLoop === 1,
    });
    if (this.#remote !== null) this.#dgram.setFilter(peerFilter(this.#remote));
    for (const [group, iface] of this.#pendingGroups.splice(0)) {
      this.#dgram.join(group, iface);
    }
    if (this.#options.multicastTtl !== 1) {
      this.#dgram.setMulticastTtl(this.#options.multicastTtl);
    }
    this.#notify();
  }

  #autoBindDatagram(): DatagramChannel {
    if (this.#dgram === null) {
      if (this.#family === AF_UNIX) {
        requireUnstableNet("Datagram sockets");
        const conn = Deno.listenDatagram({ transport: "unixpacket" });
        this.#dgram = new DatagramChannel(conn, () => this.#notify(), {
          recv: this.#options.rcvBuf,
          send: this.#options.sndBuf,
          receive: false,
        });
      } else {
        this.#bindDatagram({
          hostname: this.#family === AF_INET6 ? "::" : "0.0.0.0",
          port: 0,
        });
      }
    }
    return this.#dgram!;
  }

  #sendDatagram(data: Uint8Array, addr: Deno.Addr): number {
    if (this.#family === AF_UNIX && this.#dgram !== null && this.#boundUnix) {
      throw new Deno.errors.NotSupported(
        "Sending from a bound AF_UNIX datagram socket is not supported: Deno cannot send on a Unix datagram socket while a receive is pending (it fails with Busy); send from an unbound socket instead",
      );
    }
    if (this.#family !== AF_UNIX && data.length > MAX_DATAGRAM) {
      throw new RangeError(
        `Message too long: a UDP datagram holds at most ${MAX_DATAGRAM} bytes, got ${data.length}`,
      );
    }
    return this.#autoBindDatagram().sendTo(data, addr);
  }

  #membership(value: unknown, join: boolean): void {
    this.#datagramOnly(join ? "IP_ADD_MEMBERSHIP" : "IP_DROP_MEMBERSHIP");
    if (this.#family === AF_UNIX) {
      throw new Deno.errors.NotSupported(
        "Multicast needs an AF_INET datagram socket",
      );
    }
    const { group, iface } = parseMembershipRequest(value as Uint8Array);
    if (!isMulticastAddress(group)) {
      throw new RangeError(
        `The group ${group} is not an IPv4 multicast address (224.0.0.0/4)`,
      );
    }
    if (this.#dgram !== null) {
      if (join) this.#dgram.join(group, iface);
      else this.#dgram.leave(group, iface);
      return;
    }
    // Not bound yet: remembered, and joined at bind(), as the kernel would.
    const index = this.#pendingGroups.findIndex(([g, i]) =>
      g === group && i === iface
    );
    if (join) {
      if (index >= 0) {
        throw new Deno.errors.AddrInUse(
          `Already a member of ${group} on interface ${iface}`,
        );
      }
      this.#pendingGroups.push([group, iface]);
    } else {
      if (index < 0) {
        throw new Deno.errors.AddrNotAvailable(
          `Not a member of ${group} on interface ${iface}`,
        );
      }
      this.#pendingGroups.splice(index, 1);
    }
  }

  #applyConnOptions(): void {
    const conn = this.#stream?.conn as Partial<Deno.TcpConn> | undefined;
    if (conn?.setNoDelay === undefined) return;
    try {
      conn.setNoDelay(this.#options.noDelay === 1);
      conn.setKeepAlive!(this.#options.keepAlive === 1);
    } catch {
      // The connection is already closed.
    }
  }

  #connectedStream(): StreamChannel {
    if (this.#stream === null) {
      if (this.#soError !== 0) {
        const error = this.#soErrorException ??
          errorOfErrno(this.#soError, "Connection failed");
        this.#soError = 0;
        this.#soErrorException = null;
        throw error;
      }
      if (this.#state === "connecting") {
        throw new Deno.errors.WouldBlock(
          "Resource temporarily unavailable: the socket is still connecting",
        );
      }
      throw new Deno.errors.NotConnected(
        "Transport endpoint is not connected",
      );
    }
    return this.#stream;
  }

  #recv(n: number): [Uint8Array, Deno.Addr] {
    this.#checkOpen();
    if (this.#type === SOCK_DGRAM) {
      if (this.#dgram === null) {
        throw new Deno.errors.WouldBlock(
          "Resource temporarily unavailable: the socket is not bound, nothing can arrive",
        );
      }
      return this.#dgram.recvFrom(n);
    }
    if (this.#state === "listening") {
      throw new Deno.errors.NotConnected(
        "Transport endpoint is not connected: this socket is listening",
      );
    }
    const stream = this.#connectedStream();
    const data = stream.recv(n);
    return [data, stream.conn.remoteAddr];
  }

  #adopt(conn: Deno.Conn): void {
    this.#stream = new StreamChannel(conn, () => this.#notify(), {
      recv: this.#options.rcvBuf,
      send: this.#options.sndBuf,
    });
    this.#state = "connected";
    this.#applyConnOptions();
    this.#notify();
  }

  #connect(address: SocketAddress): number {
    this.#checkOpen();
    const addr = this.#checkAddress(address, "connect");
    if (this.#type === SOCK_DGRAM) {
      const remote = this.#toDenoAddr(addr);
      this.#remote = remote;
      this.#autoBindDatagram();
      if (this.#family !== AF_UNIX) this.#dgram!.setFilter(peerFilter(remote));
      return 0;
    }
    switch (this.#state) {
      case "connecting":
        return errno.EALREADY;
      case "connected":
        return errno.EISCONN;
      case "bound":
      case "listening":
        throw new Deno.errors.NotSupported(
          "Connecting a bound or listening stream socket is not supported: Deno cannot bind a local address before connecting",
        );
    }
    if (this.#soError !== 0) return this.#soError;
    this.#state = "connecting";
    let connecting: Promise<Deno.Conn>;
    if ("path" in addr) {
      connecting = Deno.connect({ transport: "unix", path: addr.path });
    } else {
      const abort = new AbortController();
      this.#connectAbort = abort;
      connecting = Deno.connect({
        hostname: addr.hostname,
        port: addr.port,
        transport: "tcp",
        signal: abort.signal,
      });
    }
    this.#connecting = this.#finishConnect(connecting);
    return errno.EINPROGRESS;
  }

  async #finishConnect(connecting: Promise<Deno.Conn>): Promise<void> {
    try {
      const conn = await connecting;
      this.#connectAbort = null;
      if (this.#isGone()) {
        conn.close();
        return;
      }
      this.#adopt(conn);
    } catch (error) {
      this.#connectAbort = null;
      if (this.#isGone()) return;
      this.#state = "fresh";
      this.#soErrorException = toError(error);
      this.#soError = errnoOf(error);
      this.#notify();
    } finally {
      this.#connecting = null;
    }
  }

  #pairWith(connecting: Promise<Deno.Conn>, ready: Promise<unknown>): void {
    this.#state = "connecting";
    this.#connecting = (async () => {
      let conn: Deno.Conn | undefined;
      try {
        conn = await connecting;
        await ready;
        if (this.#isGone()) {
          conn.close();
          return;
        }
        this.#adopt(conn);
      } catch (error) {
        if (this.#isGone()) {
          conn?.close();
          return;
        }
        conn?.close();
        this.#state = "fresh";
        this.#soErrorException = toError(error);
        this.#soError = errnoOf(error);
        this.#notify();
      } finally {
        this.#connecting = null;
      }
    })();
  }

  async #detach(): Promise<DetachedSocket> {
    this.#checkOpen();
    if (this.#connecting !== null) await this.#connecting;
    this.#checkOpen();
    if (this.#soError !== 0) {
      const error = this.#soErrorException ??
        errorOfErrno(this.#soError, "Connection failed");
      this.#soError = 0;
      this.#soErrorException = null;
      throw error;
    }
    if (this.#type === SOCK_DGRAM) {
      const channel = this.#autoBindDatagram();
      this.#state = "detached";
      forgetFd(this.#fd);
      this.#notify();
      return {
        kind: "datagram",
        conn: channel.release(),
        remoteAddr: this.#remote,
      };
    }
    if (this.#stream !== null) {
      this.#state = "detached";
      forgetFd(this.#fd);
      this.#notify();
      return { kind: "stream", conn: this.#stream.release() };
    }
    if (this.#listener !== null) {
      this.#state = "detached";
      forgetFd(this.#fd);
      this.#notify();
      return {
        kind: "listener",
        listener: this.#listener.release(),
        backlog: this.#backlog,
      };
    }
    throw new Deno.errors.NotConnected(
      "The socket is neither connected nor bound: nothing to hand over",
    );
  }
}

function peerFilter(remote: Deno.Addr): (addr: Deno.Addr) => boolean {
  if (!("hostname" in remote)) {
    const path = "path" in remote ? remote.path : null;
    return (addr) => "path" in addr && addr.path === path;
  }
  const wanted = normalizeHost(remote.hostname);
  const literal = wanted.includes(":") || /^\d+\.\d+\.\d+\.\d+$/.test(wanted);
  return (addr) => {
    if (!("hostname" in addr) || addr.port !== remote.port) return false;
    return !literal || normalizeHost(addr.hostname) === wanted;
  };
}

function normalizeHost(host: string): string {
  const lower = host.toLowerCase();
  if (lower.startsWith("::ffff:") && lower.includes(".")) return lower.slice(7);
  return lower;
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

function checkBufferSize(n: number, what: string): void {
  if (!Number.isInteger(n) || n < 1) {
    throw new RangeError(`${what} must be a positive integer, got ${n}`);
  }
}

function toOptionNumber(value: unknown): number {
  if (typeof value === "boolean") return value ? 1 : 0;
  if (typeof value === "number" && !Number.isNaN(value)) return value;
  if (value instanceof Uint8Array && value.length === 4) {
    return new DataView(value.buffer, value.byteOffset, 4).getInt32(0, true);
  }
  throw new TypeError(
    `The option value must be a number or a boolean, got ${describe(value)}`,
  );
}

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
 * Two connected sockets, as Python's `socket.socketpair()`. It returns at
 * once; the pair connects in the background (over an abstract Unix socket
 * for `AF_UNIX`, the default, or over a loopback TCP listener for
 * `AF_INET`/`AF_INET6`) and neither socket is readable or writable until
 * both ends are connected. Only `SOCK_STREAM` pairs are supported. Needs
 * `--allow-net`.
 *
 * @example Using `socketpair`
 * ```ts
 * import { socketpair } from "@aionet/aionet/sockets";
 * import { getEventLoop } from "@aionet/aionet/events";
 *
 * const [rsock, wsock] = socketpair();
 * await getEventLoop().sockSendAll(wsock, new Uint8Array([1, 2, 3]));
 * console.log(await getEventLoop().sockRecv(rsock, 10)); // Uint8Array(3) [ 1, 2, 3 ]
 * rsock.close();
 * wsock.close();
 * ```
 */
export function socketpair(
  family: number = AF_UNIX,
  type: number = SOCK_STREAM,
): [Socket, Socket] {
  if (typeof type === "number" && (type & ~TYPE_FLAGS) === SOCK_DGRAM) {
    throw new Deno.errors.NotSupported(
      "socketpair() of SOCK_DGRAM sockets is not supported: use two bound datagram sockets",
    );
  }
  const a = new Socket(family, type);
  const b = new Socket(family, type);
  let listener: Deno.Listener;
  let connecting: Promise<Deno.Conn>;
  if (family === AF_UNIX) {
    const path = `\0aionet-socketpair-${crypto.randomUUID()}`;
    listener = Deno.listen({ transport: "unix", path });
    connecting = Deno.connect({ transport: "unix", path });
  } else {
    const hostname = family === AF_INET6 ? "::1" : "127.0.0.1";
    listener = Deno.listen({ hostname, port: 0, transport: "tcp" });
    connecting = Deno.connect({
      hostname,
      port: (listener.addr as Deno.NetAddr).port,
      transport: "tcp",
    });
  }
  const accepting = listener.accept();
  const both = Promise.all([accepting, connecting]);
  both.then(() => {}, () => {}).finally(() => {
    try {
      listener.close();
    } catch {
      // Already closed.
    }
  });
  // A pair connected by TCP must not accept a stranger: check the ports.
  const checked = both.then(([accepted, connected]) => {
    const local = connected.localAddr;
    const remote = accepted.remoteAddr;
    if ("port" in local && "port" in remote && local.port !== remote.port) {
      throw new Deno.errors.ConnectionAborted(
        "socketpair() accepted an unexpected connection",
      );
    }
  });
  checked.catch(() => {
    accepting.then((c) => c.close(), () => {});
    connecting.then((c) => c.close(), () => {});
  });
  pairWith(a, accepting, checked);
  pairWith(b, connecting, checked);
  return [a, b];
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
 * closed. Afterwards `sock` behaves as closed (`fileno()` is -1, `close()`
 * does nothing): the new owner closes the resource.
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
export function detachSocket(sock: Socket): Promise<DetachedSocket> {
  if (!(sock instanceof Socket)) {
    return Promise.reject(
      new TypeError(`The sock must be a Socket, got ${describe(sock)}`),
    );
  }
  return detach(sock);
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
  const sock = new Socket(family, SOCK_STREAM);
  adoptConn(sock, conn);
  return sock;
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
  const parts = address.split(".");
  if (
    parts.length !== 4 ||
    parts.some((p) => !/^\d{1,3}$/.test(p) || Number(p) > 255)
  ) {
    throw new RangeError(`Not a dotted IPv4 address: "${address}"`);
  }
  return new Uint8Array(parts.map(Number));
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
