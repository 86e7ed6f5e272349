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
import type { Server } from "./_server.ts";
import type { StreamTransport } from "./_stream_transport.ts";
import type { Transport } from "./_transport_types.ts";
import type {
  CreateConnectionOptions,
  CreateServerOptions,
  CreateUnixConnectionOptions,
  CreateUnixServerOptions,
} from "./_stream_factories.ts";
import type { StartTlsOptions } from "./_tls_options.ts";
import type {
  CreateDatagramEndpointOptions,
  DatagramConnTransport,
} from "./_datagram.ts";

export type {
  BaseTransport,
  DatagramAddress,
  DatagramTransport,
  ReadTransport,
  SubprocessTransport,
  Transport,
  WriteTransport,
} from "./_transport_types.ts";
export {
  StreamTransport,
  type StreamTransportOptions,
} from "./_stream_transport.ts";
export { Server } from "./_server.ts";
export { TransportSocket } from "./_transport_socket.ts";
export {
  type CreateDatagramEndpointOptions,
  DatagramConnTransport,
  type DatagramConnTransportOptions,
} from "./_datagram.ts";
export type {
  CreateConnectionOptions,
  CreateServerOptions,
  CreateUnixConnectionOptions,
  CreateUnixServerOptions,
} from "./_stream_factories.ts";
export type {
  ClientCertMode,
  StartTlsOptions,
  TlsClientOptions,
  TlsKeyPair,
  TlsServerOptions,
  TlsVersion,
} from "./_tls_options.ts";
export type { SslObject, TlsCipher, TlsPeerCertificate } from "./_tls_info.ts";

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
export function createConnection<P extends BaseProtocol>(
  protocolFactory: () => P,
  options: CreateConnectionOptions,
): Promise<[StreamTransport, P]> {
  return getEventLoop().createConnection(protocolFactory, options);
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
export function createServer(
  protocolFactory: () => BaseProtocol,
  options?: CreateServerOptions,
): Promise<Server> {
  return getEventLoop().createServer(protocolFactory, options);
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
export function createUnixConnection<P extends BaseProtocol>(
  protocolFactory: () => P,
  options: CreateUnixConnectionOptions,
): Promise<[StreamTransport, P]> {
  return getEventLoop().createUnixConnection(protocolFactory, options);
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
export function createUnixServer(
  protocolFactory: () => BaseProtocol,
  options: CreateUnixServerOptions,
): Promise<Server> {
  return getEventLoop().createUnixServer(protocolFactory, options);
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
export function startTls(
  transport: Transport,
  protocol: BaseProtocol,
  options?: StartTlsOptions,
): Promise<StreamTransport> {
  return getEventLoop().startTls(transport, protocol, options);
}

/**
 * Creates a datagram endpoint (asyncio's `loop.create_datagram_endpoint`):
 * a UDP socket bound to `localAddr` (or, with `remoteAddr` only, to an
 * ephemeral port), or the given `sock`, wrapped in a
 * {@linkcode DatagramConnTransport} for a new protocol. Resolves after
 * `connectionMade`.
 *
 * Needs Deno's `--unstable-net` flag (or `"unstable": ["net"]` in
 * deno.json); without it this rejects with `NotSupported` naming the flag.
 * Permissions: `--allow-net`; Unix paths also `--allow-read --allow-write`.
 *
 * Unix datagrams: `remoteAddr: { path }` without `path` gives a send-only
 * endpoint (an unbound socket cannot be reached). Binding a `path` is
 * `NotSupported` on Deno 2.9: a `unixpacket` socket cannot send while a
 * receive is pending.
 *
 * @example UDP echo server and client
 * ```ts
 * import { createDatagramEndpoint, type DatagramTransport } from "@aionet/aionet/transports";
 * import { DatagramProtocol } from "@aionet/aionet/protocols";
 *
 * class Echo extends DatagramProtocol {
 *   #t?: DatagramTransport;
 *   override connectionMade(t: DatagramTransport) { this.#t = t; }
 *   override datagramReceived(data: Uint8Array, addr: Deno.Addr) {
 *     this.#t!.sendTo(data, addr as Deno.NetAddr);
 *   }
 * }
 * const [server] = await createDatagramEndpoint(() => new Echo(), {
 *   localAddr: { hostname: "127.0.0.1", port: 0 },
 * });
 * const { port } = server.getExtraInfo("sockname") as Deno.NetAddr;
 *
 * const { promise, resolve } = Promise.withResolvers<string>();
 * class Client extends DatagramProtocol {
 *   override datagramReceived(data: Uint8Array) {
 *     resolve(new TextDecoder().decode(data));
 *   }
 * }
 * const [client] = await createDatagramEndpoint(() => new Client(), {
 *   remoteAddr: { hostname: "127.0.0.1", port },
 * });
 * client.sendTo(new TextEncoder().encode("ping"));
 * console.log(await promise); // "ping"
 * client.close();
 * server.close();
 * ```
 */
export function createDatagramEndpoint<P extends BaseProtocol>(
  protocolFactory: () => P,
  options?: CreateDatagramEndpointOptions,
): Promise<[DatagramConnTransport, P]> {
  return getEventLoop().createDatagramEndpoint(protocolFactory, options);
}
