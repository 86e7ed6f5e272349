// The stream connection factories behind transports.ts and the loop's
// methods: createConnection, createServer, their Unix variants and
// startTls, each taking the loop that owns what it makes.

import { canonicalIp } from "./_ip.ts";
import { checkUnixPath, removeStaleSocket } from "./_unix_path.ts";
import type { BaseProtocol } from "./protocols.ts";
import type { LoopCore } from "./_loop_core.ts";
import { Protocol } from "./protocols.ts";
import {
  StreamTransport,
  type StreamTransportOptions,
  transportOverHandle,
} from "./_stream_transport.ts";
import { type AcceptedConn, Server } from "./_server.ts";
import type { Socket } from "./sockets.ts";
import { listenerHandleOf, streamHandleOf } from "./_adopt_socket.ts";
import type { ListenerHandle, StreamHandle } from "./_backend.ts";
import { ConnStreamHandle } from "./_conn_handles.ts";
import { currentBackend } from "./_io.ts";
import { loadNodeTls } from "./_node_tls.ts";
import { abortReason } from "./_readiness.ts";
import type { Transport } from "./_transport_types.ts";
import { callFactory } from "./_transport_common.ts";
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
  checkKnownOptions,
  checkNumber,
  checkPort,
  checkSignal,
  describe,
  notSupported,
} from "./_validate.ts";

/** Options of {@linkcode createConnection}. */
export interface CreateConnectionOptions {
  /** Host to connect to. Default `"127.0.0.1"`. */
  hostname?: string;
  /** Port to connect to (required unless `sock` is given). */
  port?: number;
  /** TLS: `true` for defaults or client options. */
  tls?: boolean | TlsClientOptions;
  /**
   * Local address to bind before connecting (asyncio's `local_addr`): the
   * native backend binds it; the Deno backend cannot (`NotSupported`).
   */
  localAddr?: { hostname?: string; port?: number };
  /** Happy Eyeballs (RFC 8305) attempt delay in ms. */
  happyEyeballsDelay?: number;
  /**
   * asyncio's `interleave` (addresses of one family tried before the
   * other): native backend only; Deno orders addresses itself
   * (`NotSupported`).
   */
  interleave?: number;
  /** `TCP_NODELAY` (default `true`, as asyncio sets it on every connection). */
  noDelay?: boolean;
  /** `SO_KEEPALIVE` TCP keep-alive probes (default `false`). */
  keepAlive?: boolean;
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
  /**
   * Host or hosts to listen on. Default: every interface of both families,
   * as asyncio (`::` and `0.0.0.0` on one port).
   */
  hostname?: string | string[];
  /** Port; `0` picks a free one (read it from `server.addrs`). */
  port?: number;
  /** Listen backlog (default 100, as asyncio). */
  backlog?: number;
  /** `SO_REUSEPORT` (Linux): on the Deno backend needs `--unstable-net`. */
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
  /**
   * Listen backlog (default 100): honoured by the native backend; Deno does
   * not expose it for Unix sockets (checked, then unused there).
   */
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

/** Option names of each factory (anything else is a `TypeError`). */
export const CONNECTION_OPTIONS = [
  "hostname",
  "port",
  "tls",
  "localAddr",
  "happyEyeballsDelay",
  "interleave",
  "noDelay",
  "keepAlive",
  "sock",
  "signal",
] as const;
export const SERVER_OPTIONS = [
  "hostname",
  "port",
  "backlog",
  "reusePort",
  "tls",
  "startServing",
  "keepAlive",
  "sock",
  "signal",
] as const;
export const UNIX_CONNECTION_OPTIONS = [
  "path",
  "tls",
  "sock",
  "signal",
] as const;
export const UNIX_SERVER_OPTIONS = [
  "path",
  "backlog",
  "startServing",
  "cleanupSocket",
  "sock",
  "tls",
  "signal",
] as const;

/** TCP settings a new connection gets (asyncio: TCP_NODELAY always on). */
interface ConnSettings {
  noDelay: boolean;
  keepAlive: boolean;
}

/**
 * Wraps `handle` in a transport for a new protocol; closes `handle` if the
 * signal was aborted meanwhile or the factory throws.
 */
function startTransport<P extends BaseProtocol>(
  loop: LoopCore,
  handle: StreamHandle,
  protocolFactory: () => P,
  signal: AbortSignal | undefined,
  settings: ConnSettings,
  options: StreamTransportOptions = {},
): [StreamTransport, P] {
  if (signal?.aborted) {
    void handle.close();
    throw abortReason(signal);
  }
  handle.setNoDelay(settings.noDelay);
  if (settings.keepAlive) handle.setKeepAlive(true);
  const protocol = callFactory(protocolFactory, handle);
  const transport = transportOverHandle(handle, protocol, {
    loop,
    ...options,
  });
  return [transport, protocol];
}

/** Starts a connected `handle`: plain, or TLS over it when `tls` is set. */
function startConnection<P extends BaseProtocol>(
  loop: LoopCore,
  handle: StreamHandle,
  protocolFactory: () => P,
  signal: AbortSignal | undefined,
  tls: ClientTlsSettings | null,
  settings: ConnSettings,
): Promise<[StreamTransport, P]> {
  if (tls !== null) {
    return startTlsTransport(
      loop,
      handle,
      protocolFactory,
      signal,
      tls,
      settings,
    );
  }
  try {
    return Promise.resolve(
      startTransport(loop, handle, protocolFactory, signal, settings),
    );
  } catch (error) {
    return Promise.reject(error);
  }
}

/** A plaintext transport that only carries TLS records for an upgrade. */
function rawTransport(
  loop: LoopCore,
  handle: StreamHandle,
  settings: ConnSettings,
): StreamTransport {
  handle.setNoDelay(settings.noDelay);
  if (settings.keepAlive) handle.setKeepAlive(true);
  return transportOverHandle(handle, new Protocol(), { loop });
}

/** Runs client TLS over `handle` and wraps the result for a new protocol. */
async function startTlsTransport<P extends BaseProtocol>(
  loop: LoopCore,
  handle: StreamHandle,
  protocolFactory: () => P,
  signal: AbortSignal | undefined,
  settings: ClientTlsSettings,
  connSettings: ConnSettings,
): Promise<[StreamTransport, P]> {
  const { conn: secured, extra } = await upgradeTransport(
    rawTransport(loop, handle, connSettings),
    { serverSide: false, client: settings, signal },
  );
  return startTransport(
    loop,
    new ConnStreamHandle(secured),
    protocolFactory,
    signal,
    { noDelay: false, keepAlive: false },
    { canWriteEof: false, extra },
  );
}

/** The server-side accept step for TLS over any connection (node:tls). */
function upgradeOnAccept(
  loop: LoopCore,
  settings: ServerTlsSettings,
): (handle: StreamHandle, signal: AbortSignal) => Promise<AcceptedConn> {
  return async (handle, signal) => {
    const { conn, extra } = await upgradeTransport(
      transportOverHandle(handle, new Protocol(), { loop }),
      { serverSide: true, server: settings, signal },
    );
    return { handle: new ConnStreamHandle(conn), extra };
  };
}

function checkBooleanOption(value: unknown, name: string): boolean | undefined {
  if (value === undefined || typeof value === "boolean") return value;
  throw new TypeError(
    `The ${name} option must be a boolean, got ${describe(value)}`,
  );
}

function checkLocalAddr(
  localAddr: unknown,
): { hostname?: string; port?: number } | undefined {
  if (localAddr === undefined) return undefined;
  const { hostname, port } = checkKnownOptions(
    localAddr as { hostname?: string; port?: number },
    ["hostname", "port"],
    "localAddr field",
  );
  return {
    hostname: hostname === undefined
      ? undefined
      : checkHostname(hostname, "localAddr hostname"),
    port: port === undefined ? undefined : checkPort(port, "localAddr port"),
  };
}

/** `createConnection` for `loop`. */
export async function createConnection<P extends BaseProtocol>(
  loop: LoopCore,
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
    noDelay = true,
    keepAlive = false,
    sock: givenSock,
    signal,
  } = checkKnownOptions(options, CONNECTION_OPTIONS, "createConnection option");
  checkSignal(signal);
  if (tls !== undefined && tls !== false) await loadNodeTls();
  const tlsSettings = clientTlsSettings(tls);
  const settings: ConnSettings = {
    noDelay: checkBooleanOption(noDelay, "noDelay")!,
    keepAlive: checkBooleanOption(keepAlive, "keepAlive")!,
  };
  const local = checkLocalAddr(localAddr);
  const backend = currentBackend();
  if (local !== undefined && !backend.features.localBind) {
    notSupported(
      "localAddr",
      "Deno.connect cannot bind a local address before connecting (the native backend can: see native.ts)",
    );
  }
  if (interleave !== undefined) {
    checkNumber(interleave, "interleave", 0); // 0: no reordering, as asyncio
    if (!Number.isInteger(interleave)) {
      throw new RangeError(
        `The interleave must be an integer, got ${interleave}`,
      );
    }
    if (!backend.features.interleave) {
      notSupported(
        "interleave",
        "Deno.connect orders the addresses itself; use happyEyeballsDelay",
      );
    }
  }
  if (signal?.aborted) throw abortReason(signal);
  if (givenSock !== undefined) {
    if (hostname !== undefined || port !== undefined) {
      throw new TypeError("The hostname and port cannot be given with sock");
    }
    const handle = await streamHandleOf(givenSock);
    return startConnection(
      loop,
      handle,
      protocolFactory,
      signal,
      tlsSettings,
      settings,
    );
  }
  const host = hostname === undefined ? "127.0.0.1" : checkHostname(hostname);
  const handle = await backend.connectTcp({
    hostname: host,
    port: checkPort(port),
    localAddr: local,
    happyEyeballsDelay: happyEyeballsDelay === undefined
      ? undefined
      : checkNumber(happyEyeballsDelay, "happyEyeballsDelay"),
    interleave,
    signal,
  });
  return startConnection(
    loop,
    handle,
    protocolFactory,
    signal,
    tlsSettings === null
      ? null
      : { ...tlsSettings, serverName: tlsSettings.serverName ?? host },
    settings,
  );
}

function checkBacklog(backlog: unknown): number {
  const value = checkNumber(backlog, "backlog", 0);
  if (!Number.isInteger(value) || value > 2 ** 31 - 1) {
    throw new RangeError(
      `The backlog must be an integer that fits a C int, got ${value}`,
    );
  }
  return value;
}

/**
 * Listens on every interface of both families, as asyncio with no host:
 * on the native backend an IPv6-only `::` socket and a `0.0.0.0` socket on
 * one port. Deno cannot set IPV6_V6ONLY, so there `::` listens on both
 * families when the kernel allows it (`net.ipv6.bindv6only=0`, Linux's
 * default), and `0.0.0.0` is added on the same port when it does not.
 */
function listenEverywhere(
  port: number,
  backlog: number,
  reusePort: boolean,
): ListenerHandle[] {
  const backend = currentBackend();
  const options = { port, backlog, reusePort };
  if (backend.features.realFds) {
    const v4 = backend.listenTcp({ ...options, hostname: "0.0.0.0" });
    const { port: picked } = v4.addr as Deno.NetAddr;
    try {
      const v6 = backend.listenTcp({
        ...options,
        port: picked,
        hostname: "::",
        ipv6Only: true,
      });
      return [v6, v4];
    } catch (error) {
      if (!isNoIpv6(error)) {
        void v4.close();
        throw error;
      }
      return [v4];
    }
  }
  let v6: ListenerHandle;
  try {
    v6 = backend.listenTcp({ ...options, hostname: "::" });
  } catch (error) {
    if (!isNoIpv6(error)) throw error;
    return [backend.listenTcp({ ...options, hostname: "0.0.0.0" })];
  }
  const { port: picked } = v6.addr as Deno.NetAddr;
  try {
    // Succeeds only where `::` took IPv6 alone (bindv6only=1).
    return [
      v6,
      backend.listenTcp({ ...options, port: picked, hostname: "0.0.0.0" }),
    ];
  } catch (error) {
    if (error instanceof Deno.errors.AddrInUse) return [v6];
    void v6.close();
    throw error;
  }
}

/** Whether `error` says this host has no IPv6 to listen on. */
function isNoIpv6(error: unknown): boolean {
  return error instanceof Deno.errors.AddrNotAvailable ||
    (error instanceof Error &&
      /address family not supported|EAFNOSUPPORT|os error 97/i.test(
        error.message,
      ));
}

/** `createServer` for `loop`. */
export async function createServer(
  loop: LoopCore,
  protocolFactory: () => BaseProtocol,
  options?: CreateServerOptions,
): Promise<Server> {
  checkFunction(protocolFactory, "protocol factory");
  const {
    hostname,
    port = 0,
    backlog = 100,
    reusePort = false,
    tls,
    startServing = true,
    keepAlive,
    sock,
    signal,
  } = checkKnownOptions(options, SERVER_OPTIONS, "createServer option");
  // Every argument is checked before a given sock is taken over.
  checkSignal(signal);
  checkBooleanOption(startServing, "startServing");
  if (tls !== undefined) await loadNodeTls();
  const tlsSettings = serverTlsSettings(tls);
  checkBooleanOption(reusePort, "reusePort");
  checkBooleanOption(keepAlive, "keepAlive");
  if (
    sock !== undefined &&
    (hostname !== undefined || options?.port !== undefined)
  ) {
    throw new TypeError("The hostname and port cannot be given with sock");
  }
  if (signal?.aborted) throw abortReason(signal);
  const listeners = sock !== undefined
    ? [await listenerHandleOf(sock)]
    : listenTcp(hostname, port, backlog, reusePort);
  const server = new Server({
    loop,
    listeners,
    protocolFactory,
    keepAlive: keepAlive ?? false,
    accept: tlsSettings === null
      ? undefined
      : upgradeOnAccept(loop, tlsSettings),
    canWriteEof: tlsSettings === null,
    signal,
  });
  if (checkBooleanOption(startServing, "startServing")) server.startServing();
  return server;
}

/** The listeners of `createServer` for `hostname` (one per host). */
function listenTcp(
  hostname: string | string[] | undefined,
  port: unknown,
  backlog: unknown,
  reusePort: boolean,
): ListenerHandle[] {
  checkPort(port);
  const tcpBacklog = checkBacklog(backlog);
  if (hostname === undefined) {
    return listenEverywhere(port as number, tcpBacklog, reusePort);
  }
  const hostnames = Array.isArray(hostname) ? hostname : [hostname];
  if (hostnames.length === 0) {
    throw new RangeError("The hostname list must not be empty");
  }
  for (const h of hostnames) checkHostname(h);
  // The same address twice is one listener, as asyncio's set of addresses.
  const unique = new Map<string, string>();
  for (const h of hostnames) {
    const key = canonicalIp(h) ?? h.toLowerCase();
    if (!unique.has(key)) unique.set(key, h);
  }
  const backend = currentBackend();
  const listeners: ListenerHandle[] = [];
  try {
    for (const h of unique.values()) {
      listeners.push(backend.listenTcp({
        hostname: h,
        port: port as number,
        backlog: tcpBacklog,
        reusePort,
      }));
    }
  } catch (error) {
    for (const listener of listeners) void listener.close();
    throw error;
  }
  return listeners;
}

/** `createUnixConnection` for `loop`. */
export async function createUnixConnection<P extends BaseProtocol>(
  loop: LoopCore,
  protocolFactory: () => P,
  options: CreateUnixConnectionOptions,
): Promise<[StreamTransport, P]> {
  checkFunction(protocolFactory, "protocol factory");
  const { path, tls, sock: givenSock, signal } = checkKnownOptions(
    options,
    UNIX_CONNECTION_OPTIONS,
    "createUnixConnection option",
  );
  checkSignal(signal);
  if (tls !== undefined && tls !== false) await loadNodeTls();
  const tlsSettings = clientTlsSettings(tls);
  if (tlsSettings !== null && tlsSettings.serverName === undefined) {
    throw new TypeError("TLS over a Unix socket needs tls.serverName");
  }
  if (signal?.aborted) throw abortReason(signal);
  let handle: StreamHandle;
  if (givenSock !== undefined) {
    if (path !== undefined) {
      throw new TypeError("The path cannot be given with sock");
    }
    handle = await streamHandleOf(givenSock);
  } else {
    checkUnixPath(path);
    handle = await currentBackend().connectUnix(path!, signal);
  }
  return startConnection(loop, handle, protocolFactory, signal, tlsSettings, {
    noDelay: false,
    keepAlive: false,
  });
}

/** `createUnixServer` for `loop`. */
export async function createUnixServer(
  loop: LoopCore,
  protocolFactory: () => BaseProtocol,
  options: CreateUnixServerOptions,
): Promise<Server> {
  checkFunction(protocolFactory, "protocol factory");
  const {
    path,
    backlog = 100,
    startServing = true,
    cleanupSocket = true,
    tls,
    sock,
    signal,
  } = checkKnownOptions(
    options,
    UNIX_SERVER_OPTIONS,
    "createUnixServer option",
  );
  // Every argument is checked before a given sock is taken over.
  checkSignal(signal);
  checkBooleanOption(startServing, "startServing");
  checkBooleanOption(cleanupSocket, "cleanupSocket");
  if (tls !== undefined) await loadNodeTls();
  const tlsSettings = serverTlsSettings(tls);
  const unixBacklog = checkBacklog(backlog);
  if (checkBooleanOption(cleanupSocket, "cleanupSocket") === false) {
    notSupported(
      "cleanupSocket: false",
      "Deno removes the socket file when a Unix listener closes",
    );
  }
  if (sock !== undefined && path !== undefined) {
    throw new TypeError("The path cannot be given with sock");
  }
  if (sock === undefined) checkUnixPath(path);
  if (signal?.aborted) throw abortReason(signal);
  let listener: ListenerHandle;
  if (sock !== undefined) {
    listener = await listenerHandleOf(sock);
  } else {
    removeStaleSocket(path!);
    listener = currentBackend().listenUnix(path!, unixBacklog);
  }
  const server = new Server({
    loop,
    listeners: [listener],
    protocolFactory,
    accept: tlsSettings === null
      ? undefined
      : upgradeOnAccept(loop, tlsSettings),
    canWriteEof: tlsSettings === null,
    signal,
  });
  if (checkBooleanOption(startServing, "startServing")) server.startServing();
  return server;
}

/** `startTls` for `loop`. */
export async function startTls(
  loop: LoopCore,
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
  await loadNodeTls();
  const upgrade = startTlsSettings(options);
  if (transport.isClosing()) {
    throw new Deno.errors.BadResource("Cannot start TLS on a closed transport");
  }
  const { conn, extra } = await upgradeTransport(transport, upgrade);
  return transportOverHandle(new ConnStreamHandle(conn), protocol, {
    loop,
    canWriteEof: false,
    extra,
    callConnectionMade: false,
  });
}
