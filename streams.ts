/**
 * Streams, as Python's `asyncio.streams`: {@linkcode openConnection} and
 * {@linkcode startServer} (and their Unix variants) give you a
 * {@linkcode StreamReader} and a {@linkcode StreamWriter} instead of
 * protocol callbacks.
 *
 * Semantics are asyncio's (3.13): `read(n)`, `readLine()`,
 * `readExactly(n)`, `readUntil(separator)` with the buffer `limit`,
 * {@linkcode IncompleteReadError} and {@linkcode LimitOverrunError},
 * `drain()` for write flow control, `close()` + `waitClosed()`. Every read
 * and `drain()` takes `{ signal }`; an aborted read consumes nothing.
 *
 * Web Streams interop: `reader.readable` is a `ReadableStream<Uint8Array>`
 * and `writer.writable` a `WritableStream<Uint8Array>`, both with
 * backpressure wired to the reader's buffer and the transport's write flow
 * control, so `pipeThrough(new CompressionStream("gzip"))`,
 * `pipeTo(writer.writable)` and `fetch` bodies work with asyncio-style
 * connections. {@linkcode wrapConn} turns a `Deno.Conn` you already have
 * into a reader and writer.
 *
 * Permissions: `--allow-net` (TCP), `--allow-read --allow-write` for Unix
 * socket paths.
 *
 * @example Echo server and client
 * ```ts
 * import { openConnection, startServer } from "@aionet/aionet/streams";
 *
 * await using server = await startServer(async (reader, writer) => {
 *   const line = await reader.readLine();
 *   writer.write(line);
 *   await writer.drain();
 *   writer.close();
 * }, { hostname: "127.0.0.1", port: 0 });
 * const { port } = server.addrs[0] as Deno.NetAddr;
 *
 * const [reader, writer] = await openConnection({ hostname: "127.0.0.1", port });
 * writer.write(new TextEncoder().encode("hello\n"));
 * await writer.drain();
 * console.log(new TextDecoder().decode(await reader.readLine())); // "hello\n"
 * writer.close();
 * await writer.waitClosed();
 * ```
 *
 * @module
 */

import type {
  CreateConnectionOptions,
  CreateServerOptions,
  CreateUnixConnectionOptions,
  CreateUnixServerOptions,
  Server,
  Transport,
} from "./transports.ts";
import { type EventLoop, getEventLoop } from "./events.ts";
import { checkLimit, StreamReader } from "./_stream_reader.ts";
import { StreamWriter } from "./_stream_writer.ts";
import {
  type ClientConnectedCallback,
  StreamReaderProtocol,
} from "./_stream_protocol.ts";
import { checkFunction, checkKnownOptions, describe } from "./_validate.ts";
import {
  CONNECTION_OPTIONS,
  SERVER_OPTIONS,
  UNIX_CONNECTION_OPTIONS,
  UNIX_SERVER_OPTIONS,
} from "./_stream_factories.ts";

export { IncompleteReadError, LimitOverrunError } from "./_stream_errors.ts";
export {
  StreamReader,
  type StreamReaderOptions,
  type StreamReadOptions,
  type StreamSeparator,
} from "./_stream_reader.ts";
export {
  type DrainOptions,
  StreamWriter,
  type StreamWriterOptions,
} from "./_stream_writer.ts";
export type { ClientConnectedCallback } from "./_stream_protocol.ts";

/** Options of {@linkcode openConnection}: `createConnection`'s plus `limit`. */
export interface OpenConnectionOptions extends CreateConnectionOptions {
  /** The reader's buffer limit (default 64 KiB). */
  limit?: number;
}

/** Options of {@linkcode startServer}: `createServer`'s plus `limit`. */
export interface StartServerOptions extends CreateServerOptions {
  /** Each reader's buffer limit (default 64 KiB). */
  limit?: number;
}

/** Options of {@linkcode openUnixConnection}: `createUnixConnection`'s plus `limit`. */
export interface OpenUnixConnectionOptions extends CreateUnixConnectionOptions {
  /** The reader's buffer limit (default 64 KiB). */
  limit?: number;
}

/** Options of {@linkcode startUnixServer}: `createUnixServer`'s plus `limit`. */
export interface StartUnixServerOptions extends CreateUnixServerOptions {
  /** Each reader's buffer limit (default 64 KiB). */
  limit?: number;
}

/**
 * Opens a TCP connection and returns its reader and writer (asyncio's
 * `open_connection`). Takes every option of `createConnection` plus
 * `limit`; `hostname` defaults to `"127.0.0.1"`.
 *
 * @example Ask and read the answer
 * ```ts ignore
 * import { openConnection } from "@aionet/aionet/streams";
 *
 * const [reader, writer] = await openConnection({ hostname: "127.0.0.1", port: 8888 });
 * writer.write(new TextEncoder().encode("PING\r\n"));
 * await writer.drain();
 * console.log(await reader.readUntil("\r\n"));
 * writer.close();
 * await writer.waitClosed();
 * ```
 */
export async function openConnection(
  options: OpenConnectionOptions,
): Promise<[StreamReader, StreamWriter]> {
  const { limit, ...rest } = checkKnownOptions(
    options,
    [...CONNECTION_OPTIONS, "limit"],
    "openConnection option",
  );
  const loop = getEventLoop();
  return await openStreams(
    loop,
    limit,
    (factory) => loop.createConnection(factory, rest),
  );
}

/** Options of {@linkcode wrapConn}. */
export interface WrapConnOptions {
  /** The reader's buffer limit (default 64 KiB). */
  limit?: number;
  /**
   * Whether this end is the server: the default side of
   * `writer.startTls()` (default `false`; pass `true` for connections
   * from `Deno.listen`).
   */
  serverSide?: boolean;
}

/**
 * Wraps a connected `Deno.Conn` (TCP, Unix or TLS, from `Deno.connect`,
 * `Deno.listen`, `Deno.connectTls`…) in a transport and returns its reader
 * and writer, as `openConnection` would for a new connection. The
 * connection then belongs to the transport: close it with
 * `writer.close()`. Same as `openConnection({ sock: conn, limit })`, plus
 * `serverSide`. A bad argument throws before the connection is taken.
 *
 * TCP connections get `TCP_NODELAY`, as asyncio's.
 *
 * @example Streams over a connection accepted with Deno.listen
 * ```ts
 * import { wrapConn } from "@aionet/aionet/streams";
 *
 * using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
 * const client = await Deno.connect({ hostname: "127.0.0.1", port: listener.addr.port });
 * const [reader, writer] = await wrapConn(await listener.accept(), {
 *   serverSide: true,
 * });
 * await client.write(new TextEncoder().encode("hello\n"));
 * console.log(new TextDecoder().decode(await reader.readLine())); // "hello\n"
 * client.close();
 * writer.close();
 * await writer.waitClosed();
 * ```
 */
export async function wrapConn(
  conn: Deno.Conn,
  options?: WrapConnOptions,
): Promise<[StreamReader, StreamWriter]> {
  if (
    conn === null || typeof conn !== "object" ||
    typeof (conn as Deno.Conn).read !== "function" ||
    typeof (conn as Deno.Conn).write !== "function" ||
    typeof (conn as Deno.Conn).close !== "function"
  ) {
    throw new TypeError(`The conn must be a Deno.Conn, got ${describe(conn)}`);
  }
  const { limit, serverSide = false } = checkKnownOptions(
    options,
    ["limit", "serverSide"],
    "wrapConn option",
  );
  if (typeof serverSide !== "boolean") {
    throw new TypeError(
      `The serverSide option must be a boolean, got ${describe(serverSide)}`,
    );
  }
  const loop = getEventLoop();
  return await openStreams(
    loop,
    limit,
    (factory) => loop.createConnection(factory, { sock: conn }),
    serverSide,
  );
}

/**
 * Listens on TCP and calls `clientConnected(reader, writer)` for each
 * connection (asyncio's `start_server`). Returns the `Server`. If the
 * callback throws or its promise rejects, the loop's exception handler gets
 * the error and that connection is closed; the server goes on.
 *
 * @example A line echo server
 * ```ts
 * import { startServer } from "@aionet/aionet/streams";
 *
 * await using server = await startServer(async (reader, writer) => {
 *   for await (const line of reader) {
 *     writer.write(line);
 *     await writer.drain();
 *   }
 *   writer.close();
 * }, { hostname: "127.0.0.1", port: 0 });
 * console.log((server.addrs[0] as Deno.NetAddr).port > 0); // true
 * ```
 */
export function startServer(
  clientConnected: ClientConnectedCallback,
  options?: StartServerOptions,
): Promise<Server> {
  try {
    const { limit, ...rest } = checkKnownOptions(
      options,
      [...SERVER_OPTIONS, "limit"],
      "startServer option",
    );
    const loop = getEventLoop();
    return loop.createServer(
      serverProtocols(loop, clientConnected, limit),
      rest,
    );
  } catch (error) {
    return Promise.reject(error);
  }
}

/**
 * Connects to a Unix stream socket and returns its reader and writer
 * (asyncio's `open_unix_connection`).
 *
 * @example Using `openUnixConnection`
 * ```ts ignore
 * import { openUnixConnection } from "@aionet/aionet/streams";
 *
 * const [reader, writer] = await openUnixConnection({ path: "/tmp/echo.sock" });
 * writer.write(new TextEncoder().encode("hi\n"));
 * console.log(await reader.readLine());
 * writer.close();
 * await writer.waitClosed();
 * ```
 */
export async function openUnixConnection(
  options: OpenUnixConnectionOptions,
): Promise<[StreamReader, StreamWriter]> {
  const { limit, ...rest } = checkKnownOptions(
    options,
    [...UNIX_CONNECTION_OPTIONS, "limit"],
    "openUnixConnection option",
  );
  const loop = getEventLoop();
  return await openStreams(
    loop,
    limit,
    (factory) => loop.createUnixConnection(factory, rest),
  );
}

/**
 * Listens on a Unix stream socket and calls `clientConnected(reader,
 * writer)` for each connection (asyncio's `start_unix_server`).
 *
 * @example Using `startUnixServer`
 * ```ts
 * import { startUnixServer } from "@aionet/aionet/streams";
 *
 * const dir = await Deno.makeTempDir();
 * await using server = await startUnixServer(async (reader, writer) => {
 *   writer.write(await reader.readLine());
 *   writer.close();
 * }, { path: `${dir}/echo.sock` });
 * console.log(server.addrs[0]);
 * ```
 */
export function startUnixServer(
  clientConnected: ClientConnectedCallback,
  options: StartUnixServerOptions,
): Promise<Server> {
  try {
    const { limit, ...rest } = checkKnownOptions(
      options,
      [...UNIX_SERVER_OPTIONS, "limit"],
      "startUnixServer option",
    );
    const loop = getEventLoop();
    return loop.createUnixServer(
      serverProtocols(loop, clientConnected, limit),
      rest,
    );
  } catch (error) {
    return Promise.reject(error);
  }
}

/**
 * Makes a connection through `connect` with a stream protocol and returns
 * its reader and writer: the body shared by `openConnection`,
 * `openUnixConnection` and `wrapConn`.
 */
async function openStreams(
  loop: EventLoop,
  limit: number | undefined,
  connect: (
    factory: () => StreamReaderProtocol,
  ) => Promise<[Transport, StreamReaderProtocol]>,
  serverSide = false,
): Promise<[StreamReader, StreamWriter]> {
  const reader = new StreamReader({ limit });
  const protocol = new StreamReaderProtocol(loop, reader);
  protocol.serverSide = serverSide;
  const [transport] = await connect(() => protocol);
  return [reader, new StreamWriter(transport, protocol, { reader })];
}

/** The protocol factory of `startServer`/`startUnixServer`. */
function serverProtocols(
  loop: EventLoop,
  clientConnected: ClientConnectedCallback,
  limit: number | undefined,
): () => StreamReaderProtocol {
  checkFunction(clientConnected, "clientConnected callback");
  const checked = checkLimit(limit);
  return () =>
    new StreamReaderProtocol(
      loop,
      new StreamReader({ limit: checked }),
      clientConnected,
    );
}
