// The native backend's sockets-module side: `NativeSocket`, a real
// non-blocking OS socket behind aionet's `Socket` (bind, listen, accept,
// connect as connect_ex, recv/send, options by number), whose `readiness`
// is the kernel's: `poll()` is poll(2) with a zero timeout and change
// notifications come from an edge-triggered epoll registration of the
// bits someone waits for. Also the readiness of any other descriptor (a
// pipe, a terminal) for selectors and addReader/addWriter.

import type { DetachedHandle, SocketAddress, SocketImpl } from "./_backend.ts";
import {
  AF_INET6,
  AF_UNIX,
  EPOLLERR,
  EPOLLET,
  EPOLLHUP,
  EPOLLIN,
  EPOLLOUT,
  errno,
  IP_ADD_MEMBERSHIP,
  IP_DROP_MEMBERSHIP,
  IPPROTO_IP,
  IPPROTO_IPV6,
  IPV6_JOIN_GROUP,
  IPV6_LEAVE_GROUP,
  MAX_IO,
  osError,
  POLLERR,
  POLLHUP,
  POLLIN,
  POLLNVAL,
  POLLOUT,
  POLLPRI,
  SEND_FLAGS,
  SHUT_RD,
  SHUT_RDWR,
  SHUT_WR,
  SO_ACCEPTCONN,
  SOCK_CLOEXEC,
  SOCK_DGRAM,
  SOCK_NONBLOCK,
  SOL_SOCKET,
  strerror,
  sys,
} from "./_native_libc.ts";
import {
  bindInet,
  bindUnix,
  checkNet,
  checkResolved,
  checkUnixPath,
  closeFd,
  encodeLiteral,
  encodePath,
  getOption,
  getOptionBytes,
  peerName,
  resolveSync,
  setOption,
  sockName,
  takeError,
  transportsOf,
  unbracket,
} from "./_native_net.ts";
import { SockaddrBuffer } from "./_native_sockaddr.ts";
import { type Pollable, type Poller, poller } from "./_native_poller.ts";
import { NativeListenerHandle, NativeStreamHandle } from "./_native_stream.ts";
import { NativeDatagramHandle } from "./_native_datagram.ts";
import { READ, Readiness, waitReady, WRITE } from "./_readiness.ts";

const EAGAIN = 11;
const EINTR = 4;
const EINPROGRESS = 115;
const EALREADY = 114;
const EISCONN = 106;
const EDESTADDRREQ = 89;
const EINVAL = 22;

// ---- poll(2) with a zero timeout ----

const pollBytes = new Uint8Array(new ArrayBuffer(8));
const pollView = new DataView(pollBytes.buffer);

/** The `revents` of `fd` right now (POLLNVAL when it is not open). */
export function pollNow(fd: number): number {
  pollView.setInt32(0, fd, true);
  pollView.setInt16(4, POLLIN | POLLPRI | POLLOUT, true);
  pollView.setInt16(6, 0, true);
  const n = sys.poll(pollBytes, 1n, 0);
  return n > 0 ? pollView.getUint16(6, true) : 0;
}

/** `READ | WRITE` of poll(2) `revents` (errors and hang-ups are both). */
export function readinessMask(revents: number): number {
  let mask = 0;
  if (revents & (POLLIN | POLLPRI | POLLERR | POLLHUP)) mask |= READ;
  if (revents & (POLLOUT | POLLERR | POLLHUP)) mask |= WRITE;
  return mask;
}

/** epoll events for readiness `mask` (edge-triggered: notify on changes). */
function epollEvents(mask: number): number {
  const events = (mask & READ ? EPOLLIN : 0) | (mask & WRITE ? EPOLLOUT : 0);
  return events === 0 ? 0 : events | EPOLLET;
}

/** Options whose value is a struct: level/option → its smallest size. */
const STRUCT_OPTIONS = new Map<string, number>([
  [`${IPPROTO_IP}/${IP_ADD_MEMBERSHIP}`, 8], // struct ip_mreq
  [`${IPPROTO_IP}/${IP_DROP_MEMBERSHIP}`, 8],
  [`${IPPROTO_IPV6}/${IPV6_JOIN_GROUP}`, 20], // struct ipv6_mreq
  [`${IPPROTO_IPV6}/${IPV6_LEAVE_GROUP}`, 20],
]);

function closedError(): Error {
  return new Deno.errors.BadResource("Bad file descriptor: socket closed");
}

let fromBuffer: SockaddrBuffer | null = null;

/** A real non-blocking socket for aionet's `Socket`. */
export class NativeSocket implements SocketImpl, Pollable {
  readonly family: number;
  readonly type: number;
  readonly fd: number;
  readonly osSocket = true;
  readonly readiness: Readiness;
  pollGen = 0;
  pollEvents = 0;
  readonly #poller: Poller;
  readonly #ip: "tcp" | "udp";
  readonly #unix: "unix" | "unixpacket";
  /** Closed or detached, as the user sees it. */
  #closed = false;
  /** The descriptor is closed (later than `#closed` while sendAll drains). */
  #released = false;
  #detached = false;
  #watchMask = 0;
  #listening = false;
  #backlog: number | null = null;
  #connecting = false;
  #connected = false;
  #remote: Deno.NetAddr | Deno.UnixAddr | null = null;
  #peer: Deno.Addr | null = null;
  // sendAll's rest, sent when writable; then maybe a deferred shutdown/close.
  #queue: Uint8Array | null = null;
  #queueError: Error | null = null;
  #shutdownAfterQueue = false;
  #closeAfterQueue = false;
  // The last destination of sendTo, checked and encoded.
  #destinationKey = "";
  #destination: Uint8Array | null = null;

  /**
   * Wraps `fd` (a new socket, or an accepted/paired one when `connected`).
   * The socket owns the descriptor from here on.
   */
  constructor(family: number, type: number, fd: number, connected = false) {
    this.family = family;
    this.type = type;
    this.fd = fd;
    this.#connected = connected;
    [this.#ip, this.#unix] = transportsOf(type);
    this.#poller = poller();
    this.#poller.attach(this);
    this.readiness = new Readiness(
      fd,
      () => this.#poll(),
      () => this.#closed,
      (mask) => this.#setInterest(mask),
    );
  }

  /** A new socket of `family` and `type` (SOCK_STREAM or SOCK_DGRAM). */
  static open(family: number, type: number): NativeSocket {
    const fd = sys.socket(family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) throw osError(errno(), "socket");
    return new NativeSocket(family, type, fd);
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** The state, for `Socket.toString()`. */
  get state(): string {
    if (this.#detached) return "detached";
    if (this.#closed) return "closed";
    if (this.#listening) return "listening";
    if (this.#connecting) return "connecting";
    if (this.#connected) return "connected";
    return "fresh";
  }

  bind(address: SocketAddress): void {
    this.#open();
    if ("path" in address) {
      this.#requireFamily(AF_UNIX);
      checkUnixPath(address.path);
      bindUnix(this.fd, address.path);
      return;
    }
    checkNet(unbracket(address.hostname), address.port);
    const host = this.#resolve(address.hostname, address.port);
    bindInet(this.fd, host, address.port);
  }

  listen(backlog: number): void {
    this.#open();
    if (sys.listen(this.fd, backlog) < 0) throw osError(errno(), "listen");
    this.#listening = true;
    this.#backlog = backlog;
  }

  accept(): [SocketImpl, Deno.Addr] {
    this.#open();
    const from = fromBuffer ??= new SockaddrBuffer();
    for (;;) {
      const fd = sys.accept4(
        this.fd,
        from.bytes,
        from.prepare(),
        SOCK_NONBLOCK | SOCK_CLOEXEC,
      );
      if (fd >= 0) {
        const addr = from.decode(this.#ip, this.#unix, this.family);
        return [new NativeSocket(this.family, this.type, fd, true), addr];
      }
      const code = errno();
      if (code === EINVAL) {
        throw osError(
          code,
          "accept() needs a listening socket: listen() first",
        );
      }
      if (code !== EINTR) throw osError(code, "accept");
    }
  }

  connect(address: SocketAddress): number {
    this.#open();
    let bytes: Uint8Array;
    let length: number;
    if ("path" in address) {
      this.#requireFamily(AF_UNIX);
      checkUnixPath(address.path);
      [bytes, length] = encodePath(address.path);
    } else {
      checkNet(unbracket(address.hostname), address.port);
      const host = this.#resolve(address.hostname, address.port);
      [bytes, length] = encodeLiteral(host, address.port);
    }
    let code = 0;
    while (sys.connect(this.fd, bytes, length) < 0) {
      code = errno();
      if (code !== EINTR) break;
      code = 0;
    }
    if (code === 0 || code === EISCONN) {
      this.#connecting = false;
      this.#connected = true;
      if (this.type === SOCK_DGRAM) {
        this.#remote = "path" in address
          ? { transport: "unixpacket", path: address.path }
          : {
            transport: "udp",
            hostname: unbracket(address.hostname),
            port: address.port,
          };
      }
    } else if (code === EINPROGRESS || code === EALREADY) {
      this.#connecting = true;
    } else {
      // Failed (EAGAIN on a Unix socket: the listener's backlog is full;
      // nothing is in progress, as the kernel says).
      this.#connecting = false;
    }
    return code;
  }

  recv(n: number): [Uint8Array, Deno.Addr] {
    const buffer = new Uint8Array(n);
    const [count, addr] = this.recvInto(buffer);
    return [count === n ? buffer : buffer.slice(0, count), addr];
  }

  recvInto(buffer: Uint8Array): [number, Deno.Addr] {
    this.#open();
    const length = buffer.length < MAX_IO ? buffer.length : MAX_IO;
    if (this.type === SOCK_DGRAM) {
      const from = fromBuffer ??= new SockaddrBuffer();
      for (;;) {
        const n = sys.recvfrom(
          this.fd,
          buffer,
          BigInt(length),
          0,
          from.bytes,
          from.prepare(),
        );
        if (n >= 0) return [n, from.decode(this.#ip, this.#unix, this.family)];
        const code = errno();
        if (code !== EINTR) throw osError(code, "recvfrom");
      }
    }
    // recv(0) never blocks (the kernel would say EAGAIN with nothing queued).
    if (length === 0) return [0, this.#peerAddress()];
    for (;;) {
      const n = sys.recv(this.fd, buffer, BigInt(length), 0);
      if (n >= 0) return [n, this.#peerAddress()];
      const code = errno();
      if (code !== EINTR) throw osError(code, "recv");
    }
  }

  send(data: Uint8Array): number {
    this.#open();
    this.#checkQueue();
    const length = data.length < MAX_IO ? data.length : MAX_IO;
    for (;;) {
      const n = sys.send(this.fd, data, BigInt(length), SEND_FLAGS);
      if (n >= 0) return n;
      const code = errno();
      if (code === EINTR) continue;
      if (code === EDESTADDRREQ) {
        throw new Deno.errors.NotConnected(
          `${
            strerror(code)
          } (os error ${code}): connect() the datagram socket or use sendTo()`,
        );
      }
      throw osError(code, "send");
    }
  }

  sendAll(data: Uint8Array): void {
    if (this.type === SOCK_DGRAM) {
      this.send(data);
      return;
    }
    const sent = this.send(data);
    if (sent < data.length) {
      // Keep the rest (a copy: the caller may reuse its bytes) and send
      // it when the socket turns writable.
      this.#queue = data.slice(sent);
      this.#setInterest(this.#watchMask);
    }
  }

  sendTo(data: Uint8Array, address: SocketAddress): number {
    this.#open();
    let key: string;
    if ("path" in address) {
      this.#requireFamily(AF_UNIX);
      key = `unix:${address.path}`;
      if (key !== this.#destinationKey) {
        checkUnixPath(address.path);
        const [bytes, length] = encodePath(address.path);
        this.#destination = bytes.slice(0, length);
        this.#destinationKey = key;
      }
    } else {
      key = `${address.hostname}|${address.port}`;
      if (key !== this.#destinationKey) {
        checkNet(unbracket(address.hostname), address.port);
        const host = this.#resolve(address.hostname, address.port);
        const [bytes, length] = encodeLiteral(host, address.port);
        this.#destination = bytes.slice(0, length);
        this.#destinationKey = key;
      }
    }
    const destination = this.#destination!;
    for (;;) {
      const n = sys.sendto(
        this.fd,
        data,
        BigInt(data.length),
        SEND_FLAGS,
        destination,
        destination.length,
      );
      if (n >= 0) return n;
      const code = errno();
      if (code !== EINTR) throw osError(code, "sendto");
    }
  }

  shutdown(how: number): void {
    this.#open();
    if (this.#queue !== null && how !== SHUT_RD) {
      // FIN after sendAll's rest: shut reading now, writing later.
      this.#shutdownAfterQueue = true;
      if (how === SHUT_RDWR) how = SHUT_RD;
      else return;
    }
    if (sys.shutdown(this.fd, how) < 0) throw osError(errno(), "shutdown");
  }

  getSockName(): Deno.Addr {
    this.#open();
    const addr = sockName(this.fd, this.#ip, this.#unix);
    if (addr === undefined) throw osError(errno(), "getsockname");
    return addr;
  }

  getPeerName(): Deno.Addr {
    this.#open();
    return peerName(this.fd, this.#ip, this.#unix);
  }

  setsockopt(level: number, option: number, value: number | Uint8Array): void {
    this.#open();
    const size = STRUCT_OPTIONS.get(`${level}/${option}`);
    if (size !== undefined) {
      if (!(value instanceof Uint8Array)) {
        throw new TypeError(
          `This option takes the struct's bytes (a Uint8Array of ${size}+ bytes), got ${typeof value}`,
        );
      }
      if (value.length < size) {
        throw new RangeError(
          `This option takes at least ${size} bytes, got ${value.length}`,
        );
      }
    }
    setOption(this.fd, level, option, value);
  }

  getsockoptBytes(level: number, option: number, buflen: number): Uint8Array {
    this.#open();
    return getOptionBytes(this.fd, level, option, buflen);
  }

  getsockopt(level: number, option: number): number {
    this.#open();
    const value = getOption(this.fd, level, option);
    if (level === SOL_SOCKET && option === 4 /* SO_ERROR */ && value !== 0) {
      this.#connecting = false;
    }
    return value;
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#queue !== null) {
      // The kernel keeps sending after close(); so do we, then close.
      this.#closeAfterQueue = true;
    } else {
      this.#release();
    }
    this.readiness.notify();
  }

  async detach(): Promise<DetachedHandle> {
    this.#open();
    if (this.#connecting || this.#queue !== null) {
      // Wait for the connection (or sendAll's rest): writable then.
      await waitReady(this.readiness, WRITE);
      this.#open();
      if (this.#connecting) {
        const code = takeError(this.fd);
        this.#connecting = false;
        if (code !== 0) throw osError(code, "connect");
        this.#connected = true;
      }
      if (this.#queueError !== null) throw this.#queueError;
    }
    let handle: DetachedHandle;
    if (this.type === SOCK_DGRAM) {
      this.#autoBind();
      this.#handOver();
      handle = {
        kind: "datagram",
        handle: new NativeDatagramHandle(this.fd, this.family),
        remoteAddr: this.#remote,
      };
    } else if (
      this.#listening || getOption(this.fd, SOL_SOCKET, SO_ACCEPTCONN)
    ) {
      this.#handOver();
      handle = {
        kind: "listener",
        handle: new NativeListenerHandle(this.fd, this.family),
        backlog: this.#backlog,
      };
    } else {
      // Connected? getpeername says (throws NotConnected otherwise).
      const remote = peerName(this.fd, this.#ip, this.#unix);
      this.#handOver();
      handle = {
        kind: "stream",
        handle: new NativeStreamHandle(this.fd, this.family, remote),
      };
    }
    return handle;
  }

  onPoll(events: number): void {
    if (
      this.#queue !== null &&
      (events & (EPOLLOUT | EPOLLERR | EPOLLHUP)) !== 0
    ) {
      this.#flushQueue();
    }
    if (this.#watchMask !== 0 && !this.#released) this.readiness.notify();
  }

  // ---- internals ----

  #open(): void {
    if (this.#closed) throw closedError();
  }

  #requireFamily(family: number): void {
    if (this.family !== family) {
      throw new TypeError(
        family === AF_UNIX
          ? "A { path } address needs an AF_UNIX socket"
          : "A { hostname, port } address needs an AF_INET or AF_INET6 socket",
      );
    }
  }

  /**
   * An IP literal of this socket's family for `hostname` (names resolved,
   * the address checked against `--deny-net` for `port`).
   */
  #resolve(hostname: string, port: number): string {
    if (this.family === AF_UNIX) {
      throw new TypeError("An AF_UNIX socket takes a { path } address");
    }
    const [resolved] = resolveSync(hostname, this.family);
    checkResolved([resolved], port);
    return resolved.address;
  }

  #poll(): number {
    const revents = pollNow(this.fd);
    let mask = readinessMask(revents);
    if (this.#queue !== null && (revents & (POLLERR | POLLHUP)) === 0) {
      mask &= ~WRITE;
    }
    return mask;
  }

  #setInterest(mask: number): void {
    this.#watchMask = mask;
    if (this.#released || this.#detached) return;
    let events = epollEvents(this.#closed ? 0 : mask);
    if (this.#queue !== null) events |= EPOLLOUT | EPOLLET;
    this.#poller.watch(this, events);
  }

  #flushQueue(): void {
    let queue = this.#queue!;
    while (queue.length > 0) {
      const length = queue.length < MAX_IO ? queue.length : MAX_IO;
      const n = sys.send(this.fd, queue, BigInt(length), SEND_FLAGS);
      if (n >= 0) {
        queue = queue.subarray(n);
        continue;
      }
      const code = errno();
      if (code === EINTR) continue;
      if (code === EAGAIN) {
        this.#queue = queue;
        return;
      }
      this.#queueError = osError(code, "send");
      break;
    }
    this.#queue = null;
    if (this.#shutdownAfterQueue) {
      this.#shutdownAfterQueue = false;
      sys.shutdown(this.fd, SHUT_WR);
    }
    if (this.#closeAfterQueue) {
      this.#release();
      return;
    }
    this.#setInterest(this.#watchMask);
  }

  #checkQueue(): void {
    if (this.#queueError !== null) {
      const error = this.#queueError;
      this.#queueError = null;
      throw error;
    }
    if (this.#queue !== null) {
      throw new Deno.errors.WouldBlock(
        "Resource temporarily unavailable: the rest of sendAll() is still being sent",
      );
    }
  }

  #peerAddress(): Deno.Addr {
    if (this.#peer === null) {
      try {
        this.#peer = peerName(this.fd, this.#ip, this.#unix);
      } catch {
        if (this.family === AF_UNIX) {
          return { transport: this.#unix, path: null as unknown as string };
        }
        return {
          transport: this.#ip,
          hostname: this.family === AF_INET6 ? "::" : "0.0.0.0",
          port: 0,
        };
      }
    }
    return this.#peer;
  }

  /** An unbound UDP socket is bound to a free port (so it can receive). */
  #autoBind(): void {
    if (this.family === AF_UNIX) return;
    const addr = sockName(this.fd, this.#ip, this.#unix) as
      | Deno.NetAddr
      | undefined;
    if (addr !== undefined && addr.port === 0) {
      const any = this.family === AF_INET6 ? "::" : "0.0.0.0";
      checkNet(any, 0);
      bindInet(this.fd, this.family === AF_INET6 ? "::" : "0.0.0.0", 0);
    }
  }

  /** The descriptor goes to a handle: this socket reads as closed. */
  #handOver(): void {
    this.#closed = true;
    this.#detached = true;
    this.#released = true;
    this.#poller.detach(this);
    this.readiness.notify();
  }

  /** Closes the descriptor (once). */
  #release(): void {
    if (this.#released) return;
    this.#released = true;
    this.#poller.detach(this);
    closeFd(this.fd);
  }
}

/** Two connected sockets: socketpair(2), connected when it returns. */
export function nativeSocketPair(
  family: number,
  type: number,
): [NativeSocket, NativeSocket] {
  if (family !== AF_UNIX) {
    throw new Deno.errors.NotSupported(
      "socketpair(2) makes AF_UNIX sockets only (the native backend has no AF_INET pairs)",
    );
  }
  const fds = new Int32Array(new ArrayBuffer(8));
  if (
    sys.socketpair(
      family,
      type | SOCK_NONBLOCK | SOCK_CLOEXEC,
      0,
      new Uint8Array(fds.buffer),
    ) < 0
  ) {
    throw osError(errno(), "socketpair");
  }
  return [
    new NativeSocket(family, type, fds[0], true),
    new NativeSocket(family, type, fds[1], true),
  ];
}

// ---- any descriptor ----

/** Watches a descriptor the backend does not own (a pipe, a terminal, …). */
class FdWatch implements Pollable {
  readonly fd: number;
  pollGen = 0;
  pollEvents = 0;
  readonly readiness: Readiness;
  readonly #poller: Poller;
  #pollable = true;

  constructor(fd: number) {
    this.fd = fd;
    this.#poller = poller();
    this.readiness = new Readiness(
      fd,
      () => readinessMask(pollNow(fd)),
      () => (pollNow(fd) & POLLNVAL) !== 0,
      (mask) => this.#setInterest(mask),
    );
  }

  onPoll(): void {
    this.readiness.notify();
  }

  #setInterest(mask: number): void {
    if (mask === 0) {
      this.#poller.detach(this);
      return;
    }
    if (!this.#pollable) return;
    if (this.pollGen === 0) this.#poller.attach(this);
    try {
      this.#poller.watch(this, epollEvents(mask));
    } catch (error) {
      if (error instanceof Deno.errors.PermissionDenied) {
        // EPERM: a regular file or directory, which poll(2) reports always
        // ready; waiters see that in poll() and need no notification.
        this.#pollable = false;
        this.#poller.detach(this);
        return;
      }
      throw error;
    }
  }
}

/**
 * Watches by descriptor number, kept: asyncio's readers and selectors key
 * on numbers too, and a number's watch stays valid for whatever file has
 * that number (poll(2) is asked by number).
 */
const watches = new Map<number, FdWatch>();

/**
 * The readiness of descriptor `fd`: a native socket's own, or a watch of a
 * descriptor the backend does not own. Throws `BadResource` if `fd` is not
 * open and `Busy` if a transport's handle owns it.
 */
export function readinessOfFd(fd: number): Readiness {
  if (typeof fd !== "number" || !Number.isInteger(fd)) {
    throw new TypeError(`A file descriptor must be an integer, got ${fd}`);
  }
  if (fd < 0 || fd > 0x7fffffff) {
    throw new RangeError(`A file descriptor must be >= 0, got ${fd}`);
  }
  const owner = poller().owner(fd);
  if (owner instanceof NativeSocket) return owner.readiness;
  if (owner instanceof FdWatch) return owner.readiness;
  if (owner !== undefined) {
    throw new Deno.errors.Busy(
      `File descriptor ${fd} is used by a transport or a connection in progress`,
    );
  }
  let watch = watches.get(fd);
  if (watch !== undefined) return watch.readiness;
  if (pollNow(fd) & POLLNVAL) {
    throw new Deno.errors.BadResource(`File descriptor ${fd} is not open`);
  }
  watch = new FdWatch(fd);
  watches.set(fd, watch);
  return watch.readiness;
}
