// The I/O backend seam: everything aionet's transports, servers, datagram
// endpoints and sockets ask of the operating system, as one small set of
// interfaces. Two implementations plug in here: the Deno-ops backend (the
// default, _deno_backend.ts) and the native epoll backend
// (_native_backend.ts); _io.ts says which one new objects use. This module
// holds types only.
//
// The shape follows what a readiness-driven loop (epoll, kqueue) does best
// and what Deno's promise ops can still do: the transport hands the backend
// a sink and the backend calls it ("read when readable into this buffer"),
// rather than the transport holding one pending promise per read.

import type { Readiness } from "./_readiness.ts";

// ---- streams ----

/**
 * Where a stream handle delivers what it reads. The handle calls
 * `readBuffer()` right before each read and then exactly one of
 * `readDone`, `readEof` or `readError` for it. Sink methods never throw
 * (the transport catches its protocol's errors itself) and may call
 * `readStop()` or `close()` on the handle; the handle checks its state
 * after every call.
 */
export interface ReadSink {
  /**
   * The buffer the next read fills (a protocol's `getBuffer()`, a slab, …).
   * `ahead`: asked before the data is known to be there (a Deno read, or a
   * native read after one that filled its buffer); then an empty buffer
   * means "no room now": a synchronous reader stops until the next
   * readiness (asyncio asks `get_buffer()` once per readiness).
   */
  readBuffer(ahead?: boolean): Uint8Array;
  /** `n` > 0 bytes were read into the start of `buffer`. */
  readDone(buffer: Uint8Array, n: number): void;
  /** The peer shut down its sending side (EOF); no more reads follow. */
  readEof(): void;
  /** Reading failed; no more reads follow. */
  readError(error: Error): void;
}

/**
 * A connected stream socket (TCP or Unix; or a TLS layer over one).
 *
 * Reading: after `readStart(sink)` the handle reads until `readStop()`,
 * EOF, an error or `close()`. `readStop()` guarantees no sink call until
 * the next `readStart()`: data of a read already in flight is held and
 * delivered first on restart (asyncio's `pause_reading()` contract).
 *
 * Writing: `write(data)` writes a prefix of `data` and returns its length,
 * at once (a number) or later (a promise); the caller keeps one write at a
 * time and must not touch `data` until a returned promise settles (the
 * kernel or Deno may still be copying from it). A write that fails throws
 * or rejects with the error.
 */
export interface StreamHandle {
  /** The OS descriptor (native) or a process-unique pseudo descriptor. */
  readonly fd: number;
  /**
   * Whether reads complete synchronously inside the sink calls (native):
   * then the buffer of a read may be reused as soon as `readDone` returns,
   * so one hot scratch buffer can serve every connection.
   */
  readonly syncReads: boolean;
  /** The Deno resource underneath (`getExtraInfo("conn")`), if there is one. */
  readonly resource: Deno.Conn | null;
  /** The local address; `undefined` once it cannot be known (closed). */
  localAddr(): Deno.Addr | undefined;
  /** The peer's address; `undefined` once it cannot be known (closed). */
  remoteAddr(): Deno.Addr | undefined;
  /** Starts (or resumes) delivering reads to `sink`. */
  readStart(sink: ReadSink): void;
  /** Stops reading; a read in flight is held for the next `readStart()`. */
  readStop(): void;
  /** Writes a prefix of `data`; see the interface docs. */
  write(data: Uint8Array): number | Promise<number>;
  /**
   * Where the backend writes synchronously (native): sends what the kernel
   * takes now and returns that length, 0 when it would block or a write is
   * in flight. Never keeps `data` (the caller may change it right after),
   * so a transport can send from the caller's array without copying it,
   * as asyncio's `write()` tries `send()` at once. Absent on backends
   * whose writes are asynchronous.
   */
  trySend?(data: Uint8Array): number;
  /** Sends EOF (shutdown of the write side); call once writes are done. */
  shutdownWrite(): Promise<void>;
  /** `TCP_NODELAY` (TCP only; a no-op elsewhere). */
  setNoDelay(enabled: boolean): void;
  /** `SO_KEEPALIVE` (TCP only; a no-op elsewhere). */
  setKeepAlive(enabled: boolean): void;
  /** Socket options by number, where the backend has real sockets. */
  readonly options: SocketOptionAccess | null;
  /**
   * Closes (FIN; buffered data already given to the OS is still sent). The
   * promise resolves once no operation of the handle is in flight any more.
   * Closing twice is harmless.
   */
  close(): Promise<void>;
  /**
   * Closes with a reset (`SO_LINGER` 0: the peer sees ECONNRESET) where the
   * backend can; otherwise as `close()`. See `Backend.features.reset`.
   */
  abort(): Promise<void>;
}

// ---- listeners ----

/** Where a listener delivers accepted connections. Methods never throw. */
export interface AcceptSink {
  /** A new connection; the sink owns (and must close) the handle. */
  accepted(handle: StreamHandle): void;
  /**
   * Accepting failed (EMFILE, …). The listener stops accepting until the
   * next `acceptStart()` (the server retries after a pause, as asyncio).
   */
  acceptError(error: Error): void;
}

/** A listening stream socket. */
export interface ListenerHandle {
  /** The OS descriptor (native) or a pseudo descriptor. */
  readonly fd: number;
  /** The Deno resource underneath, if there is one. */
  readonly resource: Deno.Listener | null;
  /** The listening address (port 0 resolved). */
  readonly addr: Deno.Addr;
  /** Starts (or resumes) delivering connections to `sink`. */
  acceptStart(sink: AcceptSink): void;
  /** Stops accepting; a connection accepted meanwhile is held, not lost. */
  acceptStop(): void;
  /** Socket options by number, where the backend has real sockets. */
  readonly options: SocketOptionAccess | null;
  /**
   * Stops listening; held connections are closed. Resolves once no
   * operation is in flight.
   */
  close(): Promise<void>;
}

// ---- datagrams ----

/** Where a datagram handle delivers what it receives. Methods never throw. */
export interface DatagramSink {
  /**
   * One datagram from `addr`. `data` is a view valid only during the call
   * (the handle reuses its receive buffer): copy what you keep.
   */
  datagram(data: Uint8Array, addr: Deno.Addr): void;
  /**
   * An error for the socket: with `fatal` false a per-datagram error
   * (e.g. ICMP port unreachable on a connected socket, reported as
   * `Deno.errors.ConnectionRefused`); receiving goes on. With `fatal` true
   * the socket is unusable.
   */
  receiveError(error: Error, fatal: boolean): void;
}

/** A datagram socket (UDP or Unix datagrams). */
export interface DatagramHandle {
  /** The OS descriptor (native) or a pseudo descriptor. */
  readonly fd: number;
  /** The Deno resource underneath, if there is one. */
  readonly resource: Deno.DatagramConn | null;
  /** The local address. */
  readonly addr: Deno.Addr;
  /**
   * Whether `connect()` makes a kernel-connected socket (native): the
   * kernel then filters datagrams from other peers and reports ICMP
   * errors; otherwise the transport emulates the peer.
   */
  readonly canConnect: boolean;
  /** Connects to `addr` (only when `canConnect`). */
  connect(addr: Deno.Addr): void;
  /** Starts (or resumes) delivering datagrams to `sink`. */
  receiveStart(sink: DatagramSink): void;
  /** Stops receiving; a datagram received meanwhile is held. */
  receiveStop(): void;
  /**
   * Sends one datagram to `addr` (`null`: the connected peer); resolves or
   * returns its length. The caller keeps one send at a time and leaves
   * `data` untouched until a returned promise settles.
   */
  send(data: Uint8Array, addr: Deno.Addr | null): number | Promise<number>;
  /** Joins a multicast group (`iface`: an interface address or index). */
  addMembership(group: string, iface?: string | number): Promise<void>;
  /** Leaves a multicast group. */
  dropMembership(group: string, iface?: string | number): Promise<void>;
  /** `IP_MULTICAST_TTL` / `IPV6_MULTICAST_HOPS`. */
  setMulticastTtl(ttl: number): Promise<void>;
  /** `IP_MULTICAST_LOOP` / `IPV6_MULTICAST_LOOP`. */
  setMulticastLoopback(enabled: boolean): Promise<void>;
  /** Socket options by number, where the backend has real sockets. */
  readonly options: SocketOptionAccess | null;
  /** Closes; resolves once no operation is in flight. */
  close(): Promise<void>;
}

/** `setsockopt`/`getsockopt` by number, for backends with real sockets. */
export interface SocketOptionAccess {
  /** Sets an integer option (or raw bytes, e.g. `ip_mreq`). */
  set(level: number, option: number, value: number | Uint8Array): void;
  /** Reads an integer option. */
  get(level: number, option: number): number;
}

// ---- what the factories ask for ----

/** A local address to bind before connecting (asyncio's `local_addr`). */
export interface LocalAddress {
  hostname?: string;
  port?: number;
}

/** Options of {@linkcode Backend.connectTcp}, already checked. */
export interface ConnectTcpOptions {
  hostname: string;
  port: number;
  /** Bind here first (needs `features.localBind`). */
  localAddr?: LocalAddress;
  /** Happy Eyeballs attempt delay in ms (RFC 8305). */
  happyEyeballsDelay?: number;
  /** How many addresses of one family to try before the other (needs `features.interleave`). */
  interleave?: number;
  signal?: AbortSignal;
}

/** Options of {@linkcode Backend.listenTcp}, already checked. */
export interface ListenTcpOptions {
  /** Host to bind; `undefined` is the IPv4 wildcard `0.0.0.0`. */
  hostname?: string;
  port: number;
  backlog: number;
  reusePort: boolean;
  /** For an IPv6 wildcard: accept IPv6 only (`IPV6_V6ONLY`). */
  ipv6Only?: boolean;
}

/** Options of {@linkcode Backend.bindUdp}, already checked. */
export interface BindUdpOptions {
  /** IP literal or name to bind. */
  hostname: string;
  port: number;
  reuseAddress: boolean;
  /** Real `SO_REUSEPORT` where `features.udpReusePort`. */
  reusePort: boolean;
  /** `SO_BROADCAST`; Deno's sockets always have it on. */
  allowBroadcast: boolean;
  /** `IP_MULTICAST_LOOP` (on by default, as the OS). */
  loopback: boolean;
}

/** What a backend can do beyond the common ground, asked before trying. */
export interface BackendFeatures {
  /** `createConnection({ localAddr })` binds before connecting. */
  localBind: boolean;
  /** asyncio's `interleave` is honoured. */
  interleave: boolean;
  /** `abort()` sends a TCP reset. */
  reset: boolean;
  /** `SO_BROADCAST` can be left off (`allowBroadcast: false` honoured). */
  broadcastOff: boolean;
  /** `SO_REUSEPORT` on UDP sockets. */
  udpReusePort: boolean;
  /** Unix datagram sockets can be bound to a path and receive. */
  unixDatagramBind: boolean;
  /** `fileno()` values are OS descriptors; `addReader` takes any fd. */
  realFds: boolean;
}

/**
 * An I/O backend. Addresses given here are checked by the caller (ports
 * in range, hostnames non-empty); names may still need resolving.
 */
export interface Backend {
  /** `"deno"` or `"native"`. */
  readonly name: string;
  /** What this backend can do. */
  readonly features: BackendFeatures;
  /** Connects over TCP; rejects with the connect error or the signal's reason. */
  connectTcp(options: ConnectTcpOptions): Promise<StreamHandle>;
  /** Connects to a Unix stream socket (a leading `"\0"`: abstract name). */
  connectUnix(path: string, signal?: AbortSignal): Promise<StreamHandle>;
  /** Listens on TCP (throws `AddrInUse` & co. at once). */
  listenTcp(options: ListenTcpOptions): ListenerHandle;
  /** Listens on a Unix stream socket path (the caller removed a stale file). */
  listenUnix(path: string, backlog: number): ListenerHandle;
  /** A bound UDP socket. */
  bindUdp(options: BindUdpOptions): DatagramHandle;
  /**
   * A Unix datagram socket, bound to `path` (needs
   * `features.unixDatagramBind`) or unbound (send-only).
   */
  openUnixDatagram(path?: string): DatagramHandle;
  /** A new non-blocking socket for the sockets module. */
  newSocket(family: number, type: number): SocketImpl;
  /** Two connected sockets (ready for I/O when returned). */
  socketPair(family: number, type: number): [SocketImpl, SocketImpl];
  /**
   * Readiness of a raw descriptor number for selectors and
   * `addReader`/`addWriter` (`undefined` where the backend has no real
   * descriptors: then only aionet sockets can be watched).
   */
  readinessOfFd(fd: number): Readiness | undefined;
}

// ---- the sockets module's implementation side ----

/** An address as sockets take it after checking: IP/name and port, or a path. */
export type SocketAddress =
  | { hostname: string; port: number }
  | { path: string };

/** What a socket hands over to a transport (`sock` options). */
export type DetachedHandle =
  | { kind: "stream"; handle: StreamHandle }
  | { kind: "listener"; handle: ListenerHandle; backlog: number | null }
  | {
    kind: "datagram";
    handle: DatagramHandle;
    /** The peer given to `connect()`, or `null`. */
    remoteAddr: Deno.NetAddr | Deno.UnixAddr | null;
  };

/**
 * The kernel side of one `Socket` (sockets.ts): the `Socket` class checks
 * arguments and states the errors users see; this does the I/O. Every
 * operation is non-blocking: one that would block throws
 * `Deno.errors.WouldBlock`.
 */
export interface SocketImpl {
  /** Family and type, as given. */
  readonly family: number;
  readonly type: number;
  /** `fileno()`: the OS descriptor, or a pseudo descriptor. */
  readonly fd: number;
  /** Whether this is an OS socket (native), not an emulation over Deno resources. */
  readonly osSocket: boolean;
  /** True readiness for selectors and the loop. */
  readonly readiness: Readiness;
  bind(address: SocketAddress): void;
  listen(backlog: number): void;
  accept(): [SocketImpl, Deno.Addr];
  /**
   * Starts connecting, as `connect_ex` for the outcomes that are not
   * failures: 0 when connected at once (datagram sockets), `EINPROGRESS`
   * when the attempt starts, `EALREADY` while it runs, `EISCONN` once
   * connected. A failed attempt throws its error (e.g.
   * `Deno.errors.ConnectionRefused`) and clears it, as the kernel reports
   * a connect error once.
   */
  connect(address: SocketAddress): number;
  /** Up to `n` received bytes and the sender; empty at EOF. */
  recv(n: number): [Uint8Array, Deno.Addr];
  /** Receives into `buffer`; returns the count and the sender (datagrams). */
  recvInto(buffer: Uint8Array): [number, Deno.Addr];
  /** Sends a prefix of `data` (stream) or one datagram; returns the count. */
  send(data: Uint8Array): number;
  /**
   * Queues all of `data` if writable at all, else throws `WouldBlock`
   * (stream sockets; the send buffer may then hold more than its size).
   */
  sendAll(data: Uint8Array): void;
  /** Sends one datagram to `address`. */
  sendTo(data: Uint8Array, address: SocketAddress): number;
  /** `SHUT_RD` (0), `SHUT_WR` (1) or `SHUT_RDWR` (2). */
  shutdown(how: number): void;
  getSockName(): Deno.Addr;
  getPeerName(): Deno.Addr;
  setsockopt(level: number, option: number, value: number | Uint8Array): void;
  getsockopt(level: number, option: number): number;
  /** The option's first `buflen` bytes, where the backend has real sockets. */
  getsockoptBytes?(level: number, option: number, buflen: number): Uint8Array;
  /** Closes; queued bytes are still sent, as the kernel does. */
  close(): void;
  /** Whether it was closed or detached. */
  readonly closed: boolean;
  /**
   * Hands the socket over to a transport without losing a byte; the
   * socket then behaves as closed. Waits for a connection in progress.
   */
  detach(): Promise<DetachedHandle>;
}
