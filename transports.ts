/**
 * Transports, as Python's `asyncio.transports`, and the functions that make
 * them: {@linkcode createConnection}, {@linkcode createServer},
 * {@linkcode createUnixConnection}, {@linkcode createUnixServer}.
 *
 * A transport owns a connection and calls its protocol's callbacks; the
 * protocol writes through the transport. Writes never block and never lose
 * data; small writes are coalesced; write flow control and read pausing
 * work as in asyncio.
 *
 * Permissions: `--allow-net` (TCP), `--allow-read --allow-write` for Unix
 * socket paths.
 *
 * @example Echo server and client
 * ```ts
 * import { createConnection, createServer, type Transport } from "@aionet/aionet/transports";
 * import { Protocol } from "@aionet/aionet/protocols";
 *
 * class Echo extends Protocol {
 *   #t?: Transport;
 *   override connectionMade(t: Transport) { this.#t = t; }
 *   override dataReceived(data: Uint8Array) { this.#t!.write(data); }
 * }
 * await using server = await createServer(() => new Echo(), { hostname: "127.0.0.1", port: 0 });
 * const { port } = server.addrs[0] as Deno.NetAddr;
 *
 * const { promise, resolve } = Promise.withResolvers<string>();
 * class Client extends Protocol {
 *   override dataReceived(data: Uint8Array) { resolve(new TextDecoder().decode(data)); }
 * }
 * const [transport] = await createConnection(() => new Client(), { hostname: "127.0.0.1", port });
 * transport.write(new TextEncoder().encode("ping"));
 * console.log(await promise); // "ping"
 * transport.close();
 * ```
 *
 * @module
 */

import type { BaseProtocol } from "./protocols.ts";
import { getEventLoop } from "./events.ts";
import { Protocol } from "./protocols.ts";
import {
  StreamTransport,
  type StreamTransportOptions,
} from "./_stream_transport.ts";
import { type AcceptedConn, Server } from "./_server.ts";
import type { Socket } from "./sockets.ts";
import { adoptConn, adoptListener } from "./_adopt_socket.ts";
import {
  type ClientTlsSettings,
  clientTlsSettings,
  type ServerTlsSettings,
  serverTlsSettings,
  startTlsSettings,
  upgradeTransport,
} from "./_tls.ts";
import type {
  StartTlsOptions,
  TlsClientOptions,
  TlsServerOptions,
} from "./_tls_options.ts";
import {
  checkFunction,
  checkHostname,
  checkNumber,
  checkOptions,
  checkPort,
  checkSignal,
  checkString,
  describe,
  hostnameError,
  notSupported,
  requireUnstableNet,
} from "./_validate.ts";

export {
  StreamTransport,
  type StreamTransportOptions,
} from "./_stream_transport.ts";
export { Server } from "./_server.ts";
export type {
  ClientCertMode,
  StartTlsOptions,
  TlsClientOptions,
  TlsKeyPair,
  TlsServerOptions,
  TlsVersion,
} from "./_tls_options.ts";
export type { SslObject, TlsCipher, TlsPeerCertificate } from "./_tls_info.ts";
export { TransportSocket } from "./_transport_socket.ts";
export {
  createDatagramEndpoint,
  type CreateDatagramEndpointOptions,
  DatagramConnTransport,
  type DatagramConnTransportOptions,
} from "./_datagram.ts";

/**
 * What every transport has.
 *
 * @example Inspect a transport
 * ```ts
 * import type { BaseTransport } from "@aionet/aionet/transports";
 *
 * function describe(t: BaseTransport) {
 *   return `${JSON.stringify(t.getExtraInfo("peername"))} closing=${t.isClosing()}`;
 * }
 * ```
 */
export interface BaseTransport {
  /**
   * Information about the transport by name: `"peername"`, `"sockname"`,
   * `"socket"`, `"conn"`, and on TLS `"alpnProtocol"`, `"peercert"`,
   * `"cipher"`, `"sslObject"`; `fallback` for others.
   */
  getExtraInfo(name: string, fallback?: unknown): unknown;
  /** Whether the transport is closing or closed. */
  isClosing(): boolean;
  /** Closes the transport (after flushing what it buffered). */
  close(): void;
  /** Replaces the protocol. */
  setProtocol(protocol: BaseProtocol): void;
  /** The current protocol. */
  getProtocol(): BaseProtocol;
}

/**
 * The read side of a stream transport.
 *
 * @example Back-pressure on reading
 * ```ts
 * import type { ReadTransport } from "@aionet/aionet/transports";
 *
 * function throttle(t: ReadTransport, busy: boolean) {
 *   if (busy) t.pauseReading();
 *   else t.resumeReading();
 * }
 * ```
 */
export interface ReadTransport extends BaseTransport {
  /** Whether the transport is reading. */
  isReading(): boolean;
  /** No `dataReceived` until `resumeReading()`, even for a read in flight. */
  pauseReading(): void;
  /** Resumes reading. */
  resumeReading(): void;
}

/**
 * The write side of a stream transport.
 *
 * @example Write and half-close
 * ```ts
 * import type { WriteTransport } from "@aionet/aionet/transports";
 *
 * function finish(t: WriteTransport, last: Uint8Array) {
 *   t.write(last);
 *   if (t.canWriteEof()) t.writeEof();
 *   else t.close();
 * }
 * ```
 */
export interface WriteTransport extends BaseTransport {
  /** Queues bytes; never blocks, never loses data. */
  write(data: Uint8Array): void;
  /** Queues each chunk in order. */
  writeLines(list: Iterable<Uint8Array>): void;
  /** Half-closes once the buffer has drained. */
  writeEof(): void;
  /** Whether `writeEof()` is possible. */
  canWriteEof(): boolean;
  /** Closes now, discarding the buffer. */
  abort(): void;
  /** Sets the flow-control marks (default high 64 KiB, low high/4). */
  setWriteBufferLimits(limits?: { high?: number; low?: number }): void;
  /** Bytes buffered and not yet written. */
  getWriteBufferSize(): number;
  /** The flow-control marks as `[low, high]`. */
  getWriteBufferLimits(): [low: number, high: number];
}

/**
 * A bidirectional stream transport (TCP, Unix, TLS).
 *
 * @example Write from a protocol
 * ```ts
 * import type { Transport } from "@aionet/aionet/transports";
 * import { Protocol } from "@aionet/aionet/protocols";
 *
 * class Greeter extends Protocol {
 *   override connectionMade(t: Transport) {
 *     t.write(new TextEncoder().encode("hello\n"));
 *   }
 * }
 * ```
 */
export interface Transport extends ReadTransport, WriteTransport {}

/** Where a datagram goes: a host and port, or a Unix socket path. */
export type DatagramAddress = { hostname?: string; port: number } | {
  path: string;
};

/**
 * A datagram transport (UDP or Unix datagrams).
 *
 * @example Answer a datagram
 * ```ts
 * import type { DatagramTransport } from "@aionet/aionet/transports";
 *
 * function reply(t: DatagramTransport, addr: Deno.NetAddr) {
 *   t.sendTo(new TextEncoder().encode("pong"), addr);
 * }
 * ```
 */
export interface DatagramTransport extends BaseTransport {
  /** Sends one datagram to `addr` (or to the endpoint's `remoteAddr`). */
  sendTo(data: Uint8Array, addr?: DatagramAddress): void;
  /** Closes now, discarding queued datagrams. */
  abort(): void;
  /** Bytes queued and not yet sent. */
  getWriteBufferSize(): number;
}

/**
 * A child process seen as a transport.
 *
 * @example Stop a child
 * ```ts
 * import type { SubprocessTransport } from "@aionet/aionet/transports";
 *
 * function stop(t: SubprocessTransport) {
 *   if (t.getReturnCode() === null) t.terminate();
 * }
 * ```
 */
export interface SubprocessTransport extends BaseTransport {
  /** The child's process id. */
  getPid(): number;
  /** The exit code, minus the signal number, or `null` while running. */
  getReturnCode(): number | null;
  /** The transport of the child's stdin (0), stdout (1) or stderr (2). */
  getPipeTransport(fd: 0 | 1 | 2): Transport | null;
  /** Sends a signal to the child. */
  sendSignal(signal: Deno.Signal): void;
  /** Sends SIGTERM. */
  terminate(): void;
  /** Sends SIGKILL. */
  kill(): void;
}

/** Options of {@linkcode createConnection}. */
export interface CreateConnectionOptions {
  /** Host to connect to. Default `"127.0.0.1"`. */
  hostname?: string;
  /** Port to connect to (required unless `sock` is given). */
  port?: number;
  /** TLS: `true` for defaults or client options. */
  tls?: boolean | TlsClientOptions;
  /** Local address to bind: Deno cannot, so it throws `NotSupported`. */
  localAddr?: { hostname?: string; port?: number };
  /** Happy Eyeballs (RFC 8305) attempt delay in ms. */
  happyEyeballsDelay?: number;
  /** asyncio's `interleave`: Deno orders addresses itself (`NotSupported`). */
  interleave?: number;
  /**
   * An already connected `Deno.Conn`, or a connected aionet `Socket`
   * (bytes it already received included), to wrap instead of connecting.
   */
  sock?: Deno.Conn | Socket;
  /** Aborts the connection attempt. */
  signal?: AbortSignal;
}

/** Options of {@linkcode createServer}. */
export interface CreateServerOptions {
  /** Host or hosts to listen on. Default: Deno's (`"0.0.0.0"`). */
  hostname?: string | string[];
  /** Port; `0` picks a free one (read it from `server.addrs`). */
  port?: number;
  /** Listen backlog (default 100, as asyncio). */
  backlog?: number;
  /** `SO_REUSEPORT` (Linux): needs `--unstable-net`. */
  reusePort?: boolean;
  /** TLS server options. */
  tls?: TlsServerOptions;
  /** Accept at once (default `true`); `false` binds only. */
  startServing?: boolean;
  /** Enable TCP keep-alive on accepted connections. */
  keepAlive?: boolean;
  /** An existing `Deno.Listener`, or a listening aionet `Socket`, to serve. */
  sock?: Deno.Listener | Socket;
  /** Closes the server when aborted. */
  signal?: AbortSignal;
}

/** Options of {@linkcode createUnixConnection}. */
export interface CreateUnixConnectionOptions {
  /** Socket path (a leading `"\0"` names an abstract socket, Linux). */
  path?: string;
  /** TLS over the Unix socket. */
  tls?: boolean | TlsClientOptions;
  /** An already connected Unix `Deno.Conn` or aionet `Socket`. */
  sock?: Deno.Conn | Socket;
  /** Aborts the connection attempt. */
  signal?: AbortSignal;
}

/** Options of {@linkcode createUnixServer}. */
export interface CreateUnixServerOptions {
  /** Socket path (a leading `"\0"` names an abstract socket, Linux). */
  path?: string;
  /** Listen backlog: Deno does not expose it for Unix sockets (accepted, unused). */
  backlog?: number;
  /** Accept at once (default `true`). */
  startServing?: boolean;
  /** Remove the socket file when the server closes (default `true`; `false` is `NotSupported`). */
  cleanupSocket?: boolean;
  /** An existing Unix `Deno.Listener` or listening aionet `Socket`. */
  sock?: Deno.Listener | Socket;
  /** TLS server options. */
  tls?: TlsServerOptions;
  /** Closes the server when aborted. */
  signal?: AbortSignal;
}

function abortReason(signal: AbortSignal): unknown {
  return signal.reason ??
    new DOMException("The operation was aborted", "AbortError");
}

function closeQuietly(resource: { close(): void }): void {
  try {
    resource.close();
  } catch {
    // Already closed.
  }
}

/** Wraps `conn` in a transport for a new protocol; closes `conn` on failure. */
function startTransport<P extends BaseProtocol>(
  conn: Deno.Conn,
  protocolFactory: () => P,
  signal: AbortSignal | undefined,
  options: StreamTransportOptions = {},
): [StreamTransport, P] {
  if (signal?.aborted) {
    closeQuietly(conn);
    throw abortReason(signal);
  }
  if ("setNoDelay" in conn && conn.remoteAddr.transport === "tcp") {
    (conn as Deno.TcpConn).setNoDelay(true);
  }
  let protocol: P;
  try {
    protocol = protocolFactory();
  } catch (error) {
    closeQuietly(conn);
    throw error;
  }
  const transport = new StreamTransport(conn, protocol, {
    loop: getEventLoop(),
    ...options,
  });
  return [transport, protocol];
}

/** A plaintext transport that only carries TLS records for an upgrade. */
function rawTransport(conn: Deno.Conn): StreamTransport {
  if ("setNoDelay" in conn && conn.remoteAddr.transport === "tcp") {
    (conn as Deno.TcpConn).setNoDelay(true);
  }
  return new StreamTransport(conn, new Protocol(), { loop: getEventLoop() });
}

/** Runs client TLS over `conn` and wraps the result for a new protocol. */
async function startTlsTransport<P extends BaseProtocol>(
  conn: Deno.Conn,
  protocolFactory: () => P,
  signal: AbortSignal | undefined,
  settings: ClientTlsSettings,
): Promise<[StreamTransport, P]> {
  const { conn: secured, extra } = await upgradeTransport(rawTransport(conn), {
    serverSide: false,
    client: settings,
    signal,
  });
  return startTransport(secured, protocolFactory, signal, {
    canWriteEof: false,
    extra,
  });
}

/** The server-side accept step for TLS over any connection (node:tls). */
function upgradeOnAccept(
  settings: ServerTlsSettings,
): (conn: Deno.Conn) => Promise<AcceptedConn> {
  return (conn) =>
    upgradeTransport(rawTransport(conn), {
      serverSide: true,
      server: settings,
    });
}

/**
 * Opens a TCP connection and wraps it in a transport for a new protocol
 * (asyncio's `loop.create_connection`). Resolves after `connectionMade`.
 *
 * Refused connections reject with `Deno.errors.ConnectionRefused`; an
 * aborted `signal` rejects with its reason.
 *
 * @example Send a line and close
 * ```ts ignore
 * import { createConnection } from "@aionet/aionet/transports";
 * import { Protocol } from "@aionet/aionet/protocols";
 *
 * const [transport] = await createConnection(() => new Protocol(), {
 *   hostname: "127.0.0.1",
 *   port: 8888,
 * });
 * transport.write(new TextEncoder().encode("hello\n"));
 * transport.close();
 * ```
 */
export async function createConnection<P extends BaseProtocol>(
  protocolFactory: () => P,
  options: CreateConnectionOptions,
): Promise<[StreamTransport, P]> {
  checkFunction(protocolFactory, "protocol factory");
  const {
    hostname,
    port,
    tls,
    localAddr,
    happyEyeballsDelay,
    interleave,
    sock: givenSock,
    signal,
  } = checkOptions(options);
  checkSignal(signal);
  const tlsSettings = clientTlsSettings(tls);
  if (localAddr !== undefined) {
    notSupported(
      "localAddr",
      "Deno.connect cannot bind a local address before connecting",
    );
  }
  if (interleave !== undefined) {
    notSupported(
      "interleave",
      "Deno.connect orders the addresses itself; use happyEyeballsDelay",
    );
  }
  if (signal?.aborted) throw abortReason(signal);
  if (givenSock !== undefined) {
    if (hostname !== undefined || port !== undefined) {
      throw new TypeError("The hostname and port cannot be given with sock");
    }
    const sock = await adoptConn(givenSock);
    checkConn(sock);
    if (tlsSettings === null) {
      return startTransport(sock, protocolFactory, signal);
    }
    return startTlsTransport(sock, protocolFactory, signal, tlsSettings);
  }
  const connectOptions: Deno.ConnectOptions = {
    hostname: hostname === undefined ? "127.0.0.1" : checkHostname(hostname),
    port: checkPort(port),
    transport: "tcp",
  };
  if (happyEyeballsDelay !== undefined) {
    connectOptions.autoSelectFamily = true;
    connectOptions.autoSelectFamilyAttemptDelay = checkNumber(
      happyEyeballsDelay,
      "happyEyeballsDelay",
    );
  }
  if (signal !== undefined) connectOptions.signal = signal;
  let conn: Deno.TcpConn;
  try {
    conn = await Deno.connect(connectOptions);
  } catch (error) {
    if (signal?.aborted) throw abortReason(signal);
    throw hostnameError(error, connectOptions.hostname!);
  }
  if (tlsSettings === null) {
    return startTransport(conn, protocolFactory, signal);
  }
  return startTlsTransport(conn, protocolFactory, signal, {
    ...tlsSettings,
    serverName: tlsSettings.serverName ?? connectOptions.hostname,
  });
}

function checkConn(sock: unknown): void {
  if (
    sock === null || typeof sock !== "object" ||
    typeof (sock as Deno.Conn).read !== "function" ||
    typeof (sock as Deno.Conn).write !== "function"
  ) {
    throw new TypeError(`The sock must be a Deno.Conn, got ${describe(sock)}`);
  }
}

function checkListener(sock: unknown): Deno.Listener {
  if (
    sock === null || typeof sock !== "object" ||
    typeof (sock as Deno.Listener).accept !== "function"
  ) {
    throw new TypeError(
      `The sock must be a Deno.Listener, got ${describe(sock)}`,
    );
  }
  return sock as Deno.Listener;
}

function checkBacklog(backlog: unknown): number {
  const value = checkNumber(backlog, "backlog", 0);
  if (!Number.isInteger(value)) {
    throw new RangeError(`The backlog must be an integer, got ${value}`);
  }
  return value;
}

/**
 * Listens on TCP and serves each connection with a new protocol (asyncio's
 * `loop.create_server`). With `startServing: false` it binds at once but
 * accepts nothing until `startServing()` or `serveForever()`.
 *
 * @example A server that greets and closes
 * ```ts
 * import { createServer, type Transport } from "@aionet/aionet/transports";
 * import { Protocol } from "@aionet/aionet/protocols";
 *
 * class Hello extends Protocol {
 *   override connectionMade(t: Transport) {
 *     t.write(new TextEncoder().encode("hello\n"));
 *     t.close();
 *   }
 * }
 * await using server = await createServer(() => new Hello(), {
 *   hostname: "127.0.0.1",
 *   port: 0,
 * });
 * console.log((server.addrs[0] as Deno.NetAddr).port > 0); // true
 * ```
 */
export async function createServer(
  protocolFactory: () => BaseProtocol,
  options?: CreateServerOptions,
): Promise<Server> {
  checkFunction(protocolFactory, "protocol factory");
  const sock = await adoptListener(checkOptions(options).sock);
  return serve(protocolFactory, { ...options, sock });
}

function serve(
  protocolFactory: () => BaseProtocol,
  options: CreateServerOptions & { sock?: Deno.Listener },
): Server {
  const {
    hostname,
    port = 0,
    backlog = 100,
    reusePort,
    tls,
    startServing = true,
    keepAlive,
    sock,
    signal,
  } = checkOptions(options);
  checkSignal(signal);
  const tlsSettings = serverTlsSettings(tls);
  if (signal?.aborted) throw abortReason(signal);
  let listeners: Deno.Listener[];
  let accept: ((conn: Deno.Conn) => Promise<AcceptedConn>) | undefined;
  if (sock !== undefined) {
    if (hostname !== undefined || options?.port !== undefined) {
      throw new TypeError("The hostname and port cannot be given with sock");
    }
    listeners = [checkListener(sock)];
  } else {
    checkPort(port);
    const tcpBacklog = checkBacklog(backlog);
    if (reusePort) requireUnstableNet("reusePort");
    const hostnames = hostname === undefined
      ? [undefined]
      : Array.isArray(hostname)
      ? hostname
      : [hostname];
    if (hostnames.length === 0) {
      throw new RangeError("The hostname list must not be empty");
    }
    for (const h of hostnames) if (h !== undefined) checkHostname(h);
    listeners = [];
    try {
      for (const h of hostnames) {
        const listenOptions: Deno.TcpListenOptions & { reusePort?: boolean } = {
          port,
          tcpBacklog,
        };
        if (h !== undefined) listenOptions.hostname = h;
        if (reusePort) listenOptions.reusePort = true;
        try {
          listeners.push(Deno.listen(listenOptions));
        } catch (error) {
          throw hostnameError(error, h ?? "0.0.0.0");
        }
      }
    } catch (error) {
      listeners.forEach(closeQuietly);
      throw error;
    }
  }
  if (tlsSettings !== null) accept = upgradeOnAccept(tlsSettings);
  const server = new Server({
    loop: getEventLoop(),
    listeners,
    protocolFactory,
    keepAlive: keepAlive ?? false,
    accept,
    canWriteEof: tlsSettings === null,
    signal,
  });
  if (startServing) server.startServing();
  return server;
}

/**
 * Connects to a Unix stream socket (asyncio's
 * `loop.create_unix_connection`). Needs `--allow-read --allow-write`.
 *
 * @example Using `createUnixConnection`
 * ```ts ignore
 * import { createUnixConnection } from "@aionet/aionet/transports";
 * import { Protocol } from "@aionet/aionet/protocols";
 *
 * const [transport] = await createUnixConnection(() => new Protocol(), {
 *   path: "/tmp/echo.sock",
 * });
 * transport.close();
 * ```
 */
export async function createUnixConnection<P extends BaseProtocol>(
  protocolFactory: () => P,
  options: CreateUnixConnectionOptions,
): Promise<[StreamTransport, P]> {
  checkFunction(protocolFactory, "protocol factory");
  const { path, tls, sock: givenSock, signal } = checkOptions(options);
  checkSignal(signal);
  const tlsSettings = clientTlsSettings(tls);
  if (tlsSettings !== null && tlsSettings.serverName === undefined) {
    throw new TypeError("TLS over a Unix socket needs tls.serverName");
  }
  if (signal?.aborted) throw abortReason(signal);
  let conn: Deno.Conn;
  if (givenSock !== undefined) {
    if (path !== undefined) {
      throw new TypeError("The path cannot be given with sock");
    }
    const sock = await adoptConn(givenSock);
    checkConn(sock);
    conn = sock;
  } else {
    checkPath(path);
    conn = await connectUnix(path!, signal);
  }
  if (tlsSettings === null) {
    return startTransport(conn, protocolFactory, signal);
  }
  return startTlsTransport(conn, protocolFactory, signal, tlsSettings);
}

async function connectUnix(
  path: string,
  signal: AbortSignal | undefined,
): Promise<Deno.Conn> {
  const connecting = Deno.connect({ transport: "unix", path });
  if (signal === undefined) return await connecting;
  const { promise: aborted, reject } = Promise.withResolvers<never>();
  const onAbort = () => reject(abortReason(signal));
  signal.addEventListener("abort", onAbort, { once: true });
  try {
    return await Promise.race([connecting, aborted]);
  } catch (error) {
    connecting.then(closeQuietly, () => {});
    throw error;
  } finally {
    signal.removeEventListener("abort", onAbort);
  }
}

function checkPath(path: unknown): string {
  checkString(path, "path");
  if ((path as string).length === 0) {
    throw new RangeError("The path must not be empty");
  }
  return path as string;
}

/** Removes a stale socket file at `path`; never deletes anything else. */
function removeStaleSocket(path: string): void {
  if (path.startsWith("\0")) return;
  let info: Deno.FileInfo;
  try {
    info = Deno.lstatSync(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return;
    throw error;
  }
  if (info.isSocket !== true) {
    throw new Deno.errors.AddrInUse(
      `Cannot listen on ${path}: the path exists and is not a socket`,
    );
  }
  Deno.removeSync(path);
}

/**
 * Listens on a Unix stream socket (asyncio's `loop.create_unix_server`). A
 * stale socket file at `path` is removed first; a path that exists and is
 * not a socket is never deleted (`AddrInUse`). The socket file is removed
 * when the server closes. Needs `--allow-read --allow-write`.
 *
 * @example Using `createUnixServer`
 * ```ts
 * import { createUnixServer } from "@aionet/aionet/transports";
 * import { Protocol } from "@aionet/aionet/protocols";
 *
 * const dir = await Deno.makeTempDir();
 * await using server = await createUnixServer(() => new Protocol(), {
 *   path: `${dir}/echo.sock`,
 * });
 * console.log(server.addrs[0]);
 * ```
 */
export async function createUnixServer(
  protocolFactory: () => BaseProtocol,
  options: CreateUnixServerOptions,
): Promise<Server> {
  checkFunction(protocolFactory, "protocol factory");
  const {
    path,
    backlog,
    startServing = true,
    cleanupSocket = true,
    tls,
    signal,
  } = checkOptions(options);
  const sock = await adoptListener(checkOptions(options).sock);
  checkSignal(signal);
  const tlsSettings = serverTlsSettings(tls);
  if (backlog !== undefined) checkBacklog(backlog);
  if (cleanupSocket === false) {
    notSupported(
      "cleanupSocket: false",
      "Deno removes the socket file when a Unix listener closes",
    );
  }
  if (signal?.aborted) throw abortReason(signal);
  let listener: Deno.Listener;
  if (sock !== undefined) {
    if (path !== undefined) {
      throw new TypeError("The path cannot be given with sock");
    }
    listener = checkListener(sock);
  } else {
    checkPath(path);
    removeStaleSocket(path!);
    listener = Deno.listen({ transport: "unix", path: path! });
  }
  const server = new Server({
    loop: getEventLoop(),
    listeners: [listener],
    protocolFactory,
    accept: tlsSettings === null ? undefined : upgradeOnAccept(tlsSettings),
    canWriteEof: tlsSettings === null,
    signal,
  });
  if (startServing) server.startServing();
  return server;
}

/**
 * Upgrades a live stream transport to TLS (asyncio's `loop.start_tls`),
 * client or server side, and returns the new transport; `protocol` receives
 * the decrypted data from then on (its `connectionMade` is not called
 * again). The old transport must not be used afterwards.
 *
 * TLS runs over the existing transport (node:tls over the transport's
 * bytes), so the upgrade works while a read is pending, on TCP and Unix
 * sockets. Certificates are always verified on the client side; on the
 * server side `clientCert`/`clientCaCerts` ask for and check the client's
 * (a refused client rejects the call). Every option is checked, an option
 * of the other side is a `TypeError`. `signal` aborts the handshake: the
 * call rejects with its reason and the transport is closed, as a failed
 * handshake closes it.
 *
 * @example STARTTLS on the client side
 * ```ts ignore
 * import { createConnection, startTls } from "@aionet/aionet/transports";
 * import { Protocol } from "@aionet/aionet/protocols";
 *
 * const protocol = new Protocol();
 * const [plain] = await createConnection(() => protocol, { hostname: "127.0.0.1", port: 2525 });
 * // ... plaintext exchange that agrees on STARTTLS ...
 * const secure = await startTls(plain, protocol, { serverName: "localhost" });
 * secure.write(new TextEncoder().encode("EHLO me\r\n"));
 * ```
 */
export async function startTls(
  transport: Transport,
  protocol: BaseProtocol,
  options?: StartTlsOptions,
): Promise<StreamTransport> {
  if (!(transport instanceof StreamTransport)) {
    throw new TypeError(
      `startTls() needs a stream transport made by aionet, got ${
        describe(transport)
      }`,
    );
  }
  if (protocol === null || typeof protocol !== "object") {
    throw new TypeError(
      `The protocol must be an object, got ${describe(protocol)}`,
    );
  }
  const upgrade = startTlsSettings(options);
  if (transport.isClosing()) {
    throw new Deno.errors.BadResource("Cannot start TLS on a closed transport");
  }
  const { conn, extra } = await upgradeTransport(transport, upgrade);
  return new StreamTransport(conn, protocol, {
    loop: getEventLoop(),
    canWriteEof: false,
    extra,
    callConnectionMade: false,
  });
}
