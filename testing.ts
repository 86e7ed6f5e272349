/**
 * Test your protocols and stream handlers without sockets (what Twisted
 * has as `StringTransport`, `iosim.connect` and `task.Clock`):
 *
 * - {@linkcode createTransportPair}: two connected in-memory transports
 *   with the real transport's semantics — callback order, asynchronous
 *   delivery, write flow control against a bounded in-memory socket
 *   buffer, read pausing, half-close, close/abort, error rules.
 * - {@linkcode createStreamPair} and {@linkcode openMemoryConnection}:
 *   `StreamReader`/`StreamWriter` pairs over such transports, and a
 *   `startServer`-style handler served to an in-memory client.
 * - {@linkcode RecordingTransport}: records what a protocol writes while
 *   the test plays the network.
 * - {@linkcode FakeClock} and {@linkcode withFakeClock}: timers that fire
 *   when the test advances time, for `callLater`-based timeouts.
 *
 * In-memory transports have no socket: `getExtraInfo("socket")` and
 * `"conn"` return the fallback, and `startTls` is not possible on them.
 *
 * @example Unit-test an echo protocol
 * ```ts
 * import { createTransportPair } from "@aionet/aionet/testing";
 * import { Protocol } from "@aionet/aionet/protocols";
 * import type { Transport } from "@aionet/aionet/transports";
 *
 * class Echo extends Protocol {
 *   #t?: Transport;
 *   override connectionMade(t: Transport) { this.#t = t; }
 *   override dataReceived(data: Uint8Array) { this.#t!.write(data); }
 * }
 * class Client extends Protocol {
 *   text = "";
 *   override dataReceived(data: Uint8Array) { this.text += new TextDecoder().decode(data); }
 * }
 *
 * const client = new Client();
 * const [clientSide, serverSide] = createTransportPair(client, new Echo());
 * clientSide.write(new TextEncoder().encode("ping"));
 * await clientSide.flushed(); // the echo server got it…
 * await serverSide.flushed(); // …and its answer arrived
 * console.log(client.text); // "ping"
 * clientSide.close();
 * ```
 *
 * @module
 */

import type { BaseProtocol } from "./protocols.ts";
import { getEventLoop } from "./events.ts";
import { StreamReader, StreamWriter } from "./streams.ts";
import type { ClientConnectedCallback } from "./streams.ts";
import { checkLimit } from "./_stream_reader.ts";
import { StreamReaderProtocol } from "./_stream_protocol.ts";
import {
  createTransportPair as createPair,
  type MemoryTransport,
  PAIR_OPTIONS,
  type TransportPairOptions,
} from "./_memory_transport.ts";
import { checkFunction, checkKnownOptions } from "./_validate.ts";

export type {
  MemoryTransport,
  TransportPairOptions,
} from "./_memory_transport.ts";
export {
  RecordingTransport,
  type RecordingTransportOptions,
} from "./_recording_transport.ts";
export {
  type Clock,
  FakeClock,
  type FakeClockOptions,
  withFakeClock,
} from "./_fake_clock.ts";

/**
 * Connects `protocolA` and `protocolB` through two in-memory transports
 * and returns them as `[a, b]` (Twisted's `iosim.connect`, with aionet's
 * real transport semantics):
 *
 * - `protocolA.connectionMade(a)` then `protocolB.connectionMade(b)` are
 *   called before this returns; data flows only after that.
 * - Bytes written on one side reach the other side's `dataReceived` (or
 *   `getBuffer`/`bufferUpdated`) asynchronously, in microtasks — never
 *   inside `write()`. `write()` copies its bytes.
 * - Write flow control: each direction has an in-memory socket buffer
 *   (`socketBufferSize`, default 64 KiB). While the reader is paused the
 *   writer's bytes pile up in its transport buffer: `pauseWriting()` is
 *   called inside the `write()` that takes `getWriteBufferSize()` above the
 *   high-water mark, `resumeWriting()` once it drains to the low mark.
 * - `writeEof()` sends EOF after the queued bytes: the peer's
 *   `eofReceived()` keeps it half-open if it returns a truthy value, else
 *   the peer closes. `close()` flushes then ends the side, `abort()`
 *   discards its buffer; each side gets exactly one `connectionLost` (the
 *   peer after it got the EOF and closed in turn).
 * - Errors as the real transport: `TypeError` for a non-`Uint8Array`,
 *   `BadResource` after `close()`/`writeEof()`; a protocol callback that
 *   throws goes to the loop's exception handler and ends that transport
 *   (`connectionLost(error)`), the peer sees EOF. Data written towards a
 *   side that is gone ends the writer with `BrokenPipe`.
 *
 * The transports are {@linkcode MemoryTransport}s: `await a.flushed()`
 * waits until the peer's protocol got everything `a` wrote, and
 * `a.breakConnection()` simulates a reset. Delivery runs in microtasks, so
 * two protocols that answer each other forever never let timers run.
 *
 * @example Half-close: the server answers after the client's EOF
 * ```ts
 * import { createTransportPair } from "@aionet/aionet/testing";
 * import { Protocol } from "@aionet/aionet/protocols";
 * import type { Transport } from "@aionet/aionet/transports";
 *
 * class Counter extends Protocol {
 *   #t?: Transport;
 *   #n = 0;
 *   override connectionMade(t: Transport) { this.#t = t; }
 *   override dataReceived(data: Uint8Array) { this.#n += data.length; }
 *   override eofReceived() {
 *     this.#t!.write(new TextEncoder().encode(`${this.#n} bytes`));
 *     this.#t!.close();
 *     return true; // keep the transport open to answer
 *   }
 * }
 * class Client extends Protocol {
 *   answer = "";
 *   readonly lost = Promise.withResolvers<void>();
 *   override dataReceived(data: Uint8Array) { this.answer += new TextDecoder().decode(data); }
 *   override connectionLost() { this.lost.resolve(); }
 * }
 * const client = new Client();
 * const [a] = createTransportPair(client, new Counter());
 * a.write(new Uint8Array(10));
 * a.writeEof();
 * await client.lost.promise;
 * console.log(client.answer); // "10 bytes"
 * ```
 */
export function createTransportPair(
  protocolA: BaseProtocol,
  protocolB: BaseProtocol,
  options?: TransportPairOptions,
): [a: MemoryTransport, b: MemoryTransport] {
  return createPair(protocolA, protocolB, options);
}

/**
 * Options of {@linkcode createStreamPair} and
 * {@linkcode openMemoryConnection}: those of
 * {@linkcode createTransportPair} plus the readers' `limit`.
 *
 * @example A small buffer and a tight limit
 * ```ts
 * import { createStreamPair, type StreamPairOptions } from "@aionet/aionet/testing";
 *
 * const options: StreamPairOptions = { limit: 1024, socketBufferSize: 4096 };
 * const [[, a], [, b]] = createStreamPair(options);
 * a.close();
 * b.close();
 * ```
 */
export interface StreamPairOptions extends TransportPairOptions {
  /** Each reader's buffer limit (default 64 KiB), as `openConnection`'s. */
  limit?: number;
}

/**
 * Two connected `[reader, writer]` pairs over in-memory transports, wired
 * with the same stream protocol as `openConnection` and `startServer`:
 * what side A writes, side B reads, and back. `readLine`, `readExactly`,
 * `drain()` (with write flow control against the in-memory socket buffer
 * and the reader's 2 × `limit` pause), `writeEof`, `close`/`waitClosed`
 * all behave as over TCP.
 *
 * @example A line protocol, both ends in one test
 * ```ts
 * import { createStreamPair } from "@aionet/aionet/testing";
 *
 * const [[clientReader, clientWriter], [serverReader, serverWriter]] = createStreamPair();
 * clientWriter.write(new TextEncoder().encode("HELLO\n"));
 * const line = await serverReader.readLine();
 * serverWriter.write(new TextEncoder().encode(`GOT ${new TextDecoder().decode(line)}`));
 * await serverWriter.drain();
 * console.log(new TextDecoder().decode(await clientReader.readLine())); // "GOT HELLO\n"
 * clientWriter.close();
 * serverWriter.close();
 * await clientWriter.waitClosed();
 * await serverWriter.waitClosed();
 * ```
 */
export function createStreamPair(
  options?: StreamPairOptions,
): [a: [StreamReader, StreamWriter], b: [StreamReader, StreamWriter]] {
  const { limit, ...pairOptions } = checkKnownOptions(
    options,
    [...PAIR_OPTIONS, "limit"],
    "createStreamPair option",
  );
  const checked = checkLimit(limit);
  const readerA = new StreamReader({ limit: checked });
  const readerB = new StreamReader({ limit: checked });
  const loop = pairOptions.loop ?? getEventLoop();
  const protocolA = new StreamReaderProtocol(loop, readerA);
  const protocolB = new StreamReaderProtocol(loop, readerB);
  const [a, b] = createPair(protocolA, protocolB, pairOptions);
  return [
    [readerA, new StreamWriter(a, protocolA, { reader: readerA })],
    [readerB, new StreamWriter(b, protocolB, { reader: readerB })],
  ];
}

/**
 * Serves `clientConnected` — a handler as `startServer` takes — to one
 * in-memory client, and returns the client's `[reader, writer]` (an
 * in-memory `openConnection`). The handler gets its own reader and writer
 * at once and runs with `startServer`'s rules: if it throws or rejects,
 * the loop's exception handler gets the error and its connection closes
 * (the client reads EOF).
 *
 * @example Test a streams handler
 * ```ts
 * import { openMemoryConnection } from "@aionet/aionet/testing";
 * import type { StreamReader, StreamWriter } from "@aionet/aionet/streams";
 *
 * async function shout(reader: StreamReader, writer: StreamWriter) {
 *   for await (const line of reader) {
 *     writer.write(new TextEncoder().encode(new TextDecoder().decode(line).toUpperCase()));
 *     await writer.drain();
 *   }
 *   writer.close();
 * }
 *
 * const [reader, writer] = await openMemoryConnection(shout);
 * writer.write(new TextEncoder().encode("hi\n"));
 * console.log(new TextDecoder().decode(await reader.readLine())); // "HI\n"
 * writer.writeEof();
 * console.log((await reader.read()).length); // 0: the handler closed
 * writer.close();
 * await writer.waitClosed();
 * ```
 */
export function openMemoryConnection(
  clientConnected: ClientConnectedCallback,
  options?: StreamPairOptions,
): Promise<[StreamReader, StreamWriter]> {
  try {
    checkFunction(clientConnected, "clientConnected callback");
    const { limit, ...pairOptions } = checkKnownOptions(
      options,
      [...PAIR_OPTIONS, "limit"],
      "openMemoryConnection option",
    );
    const checked = checkLimit(limit);
    const reader = new StreamReader({ limit: checked });
    const loop = pairOptions.loop ?? getEventLoop();
    const protocol = new StreamReaderProtocol(loop, reader);
    const serverProtocol = new StreamReaderProtocol(
      loop,
      new StreamReader({ limit: checked }),
      clientConnected,
    );
    const [transport] = createPair(protocol, serverProtocol, pairOptions);
    return Promise.resolve([
      reader,
      new StreamWriter(transport, protocol, { reader }),
    ]);
  } catch (error) {
    return Promise.reject(error);
  }
}
