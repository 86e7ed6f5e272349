// StreamWriter and the write flow control it waits on (asyncio's
// FlowControlMixin). Public through streams.ts; FlowControlProtocol is
// internal (subprocess pipes reuse it).

import type { BaseProtocol } from "./protocols.ts";
import { Protocol } from "./protocols.ts";
import type { Transport } from "./_transport_types.ts";
import { currentLoop, type LoopCore } from "./_loop_core.ts";
import { startTls } from "./_stream_factories.ts";
import type { StartTlsOptions } from "./_tls_options.ts";
import {
  readerBufferedSize,
  replaceReaderTransport,
  type StreamReader,
} from "./_stream_reader.ts";
import { type InspectFn, transportRepr } from "./_stream_repr.ts";
import {
  assertBytes,
  checkKnownOptions,
  describe,
  signalOption,
} from "./_validate.ts";

interface DrainWaiter {
  resolve: () => void;
  reject: (reason: unknown) => void;
}

/**
 * A protocol with asyncio's write flow control: it records
 * `pauseWriting`/`resumeWriting` and the connection's end, so that
 * {@linkcode StreamWriter.drain} can wait. Subclasses that override
 * `pauseWriting`, `resumeWriting` or `connectionLost` must call `super`.
 */
export class FlowControlProtocol extends Protocol {
  /** Whether this end is the server (decides the TLS role of startTls). */
  serverSide = false;
  /** The loop the connection belongs to (errors are reported to it). */
  readonly loop: LoopCore;
  #paused = false;
  #lost = false;
  #lostError: Error | null = null;
  #waiters = new Set<DrainWaiter>();
  #closed = Promise.withResolvers<void>();

  constructor(loop: LoopCore = currentLoop()) {
    super();
    this.loop = loop;
    // waitClosed() may never be called: a connection error is not unhandled.
    this.#closed.promise.catch(() => {});
  }

  /** Writing is paused until `resumeWriting()`. */
  override pauseWriting(): void {
    this.#paused = true;
  }

  /** Wakes every `drain()` waiting for the buffer to go down. */
  override resumeWriting(): void {
    this.#paused = false;
    for (const waiter of this.#waiters) waiter.resolve();
    this.#waiters.clear();
  }

  /**
   * Rejects every waiting `drain()` (with `exc`, or `ConnectionReset` for a
   * clean close) and settles `closed`.
   */
  override connectionLost(exc: Error | null): void {
    if (this.#lost) return;
    this.#lost = true;
    this.#lostError = exc;
    const error = exc ?? connectionLostError();
    for (const waiter of this.#waiters) waiter.reject(error);
    this.#waiters.clear();
    if (exc === null) this.#closed.resolve();
    else this.#closed.reject(exc);
  }

  /** Whether `connectionLost` was called. */
  get lost(): boolean {
    return this.#lost;
  }

  /** Neither paused nor lost: a drain has nothing to wait for. */
  get flowing(): boolean {
    return !this.#paused && !this.#lost;
  }

  /** Resolves when the connection is closed; rejects with its error. */
  get closed(): Promise<void> {
    return this.#closed.promise;
  }

  /**
   * Resolves at once unless writing is paused; then when it resumes.
   * Rejects once the connection is lost (its error, or `ConnectionReset`).
   */
  drainHelper(signal?: AbortSignal): Promise<void> {
    if (this.#lost) {
      return Promise.reject(this.#lostError ?? connectionLostError());
    }
    if (!this.#paused) return Promise.resolve();
    const { promise, resolve, reject } = Promise.withResolvers<void>();
    const waiter = { resolve, reject };
    this.#waiters.add(waiter);
    if (signal === undefined) return promise;
    const onAbort = () => {
      this.#waiters.delete(waiter);
      reject(signal.reason);
    };
    signal.addEventListener("abort", onAbort, { once: true });
    return promise.finally(() => signal.removeEventListener("abort", onAbort));
  }
}

/** What `drain()` returns when there is nothing to wait for. */
const RESOLVED: Promise<void> = Promise.resolve();

function connectionLostError(): Error {
  return new Deno.errors.ConnectionReset("Connection lost");
}

/** Options of the {@linkcode StreamWriter} constructor. */
export interface StreamWriterOptions {
  /** The reader of the same connection: `drain()` throws its exception. */
  reader?: StreamReader | null;
}

/** Options of {@linkcode StreamWriter.drain}. */
export interface DrainOptions {
  /** Cancels the wait; the drain rejects with the signal's reason. */
  signal?: AbortSignal;
}

/**
 * Writes to a stream, as asyncio's `StreamWriter`: a thin layer over a
 * transport that adds `drain()` (wait while the transport's buffer is above
 * its high-water mark) and `waitClosed()`.
 *
 * You get one from `openConnection` or `startServer`. `await using` closes
 * the connection and waits until it is closed. {@linkcode StreamWriter.writable}
 * is the same writer as a Web `WritableStream`. `Deno.inspect(writer)`
 * shows `<StreamWriter transport=<…> reader=<StreamReader …>>`, as
 * asyncio's `repr()`.
 *
 * @example Write, drain, close
 * ```ts ignore
 * import { openConnection } from "@aionet/aionet/streams";
 *
 * const [reader, writer] = await openConnection({ hostname: "127.0.0.1", port: 8888 });
 * writer.write(new TextEncoder().encode("hello\n"));
 * await writer.drain();
 * writer.close();
 * await writer.waitClosed();
 * ```
 */
export class StreamWriter {
  #transport: Transport;
  #protocol: FlowControlProtocol;
  #reader: StreamReader | null;
  #closeCalled = false;
  #writable: WritableStream<Uint8Array> | null = null;

  /**
   * Made by `openConnection`, `startServer` and their Unix variants:
   * `protocol` must be the transport's stream protocol (`TypeError`
   * otherwise). Not meant to be constructed by users.
   *
   * @example Using `new StreamWriter()`
   * ```ts ignore
   * import { openConnection } from "@aionet/aionet/streams";
   *
   * const [, writer] = await openConnection({ port: 8888 });
   * console.log(writer.transport.getWriteBufferSize());
   * ```
   */
  constructor(
    transport: Transport,
    protocol: BaseProtocol,
    options?: StreamWriterOptions,
  ) {
    if (
      transport === null || typeof transport !== "object" ||
      typeof transport.write !== "function"
    ) {
      throw new TypeError(
        `The transport must be a Transport, got ${describe(transport)}`,
      );
    }
    if (!(protocol instanceof FlowControlProtocol)) {
      throw new TypeError(
        "The protocol must be the stream protocol made by openConnection or startServer",
      );
    }
    this.#transport = transport;
    this.#protocol = protocol;
    this.#reader = checkKnownOptions(options, ["reader"]).reader ?? null;
  }

  /** The underlying transport. */
  get transport(): Transport {
    return this.#transport;
  }

  /**
   * Queues `data` for sending; never blocks. `TypeError` for anything but a
   * `Uint8Array`; `BadResource` after `close()` or `writeEof()`; the
   * connection's error once it is lost. Follow with `await drain()`.
   */
  write(data: Uint8Array): void {
    assertBytes(data);
    this.#transport.write(data);
  }

  /** Queues each chunk of `list` in order, as one write. */
  writeLines(list: Iterable<Uint8Array>): void {
    this.#transport.writeLines(list);
  }

  /** Half-closes: sends EOF after the queued bytes; reading goes on. */
  writeEof(): void {
    this.#transport.writeEof();
  }

  /** Whether `writeEof()` is possible (TCP and Unix: yes; TLS: no). */
  canWriteEof(): boolean {
    return this.#transport.canWriteEof();
  }

  /** Closes the connection once the queued bytes are sent. */
  close(): void {
    this.#closeCalled = true;
    this.#transport.close();
  }

  /** Whether the connection is closing or closed. */
  isClosing(): boolean {
    return this.#transport.isClosing();
  }

  /**
   * Resolves once the connection is closed (after `close()`, or when the
   * peer ends it); rejects with the connection's error if it failed.
   */
  waitClosed(): Promise<void> {
    return this.#protocol.closed;
  }

  /** Transport information: `"peername"`, `"sockname"`, `"socket"`, `"conn"`… */
  getExtraInfo(name: string, fallback?: unknown): unknown {
    return this.#transport.getExtraInfo(name, fallback);
  }

  /**
   * Upgrades the connection to TLS in place (asyncio's
   * `StreamWriter.start_tls`): the writer and its reader go on over TLS.
   * The side defaults to the connection's role (server for `startServer`
   * connections). Throws `Deno.errors.InvalidData` while unread plaintext is
   * buffered in the reader: bytes sent before the handshake must not be
   * taken as protected (STARTTLS injection, CVE-2021-23222 class).
   *
   * @example STARTTLS on the client side
   * ```ts ignore
   * import { openConnection } from "@aionet/aionet/streams";
   *
   * const [reader, writer] = await openConnection({ hostname: "127.0.0.1", port: 2525 });
   * await reader.readLine(); // "220 ready"
   * writer.write(new TextEncoder().encode("STARTTLS\r\n"));
   * await reader.readLine(); // "220 go ahead"
   * await writer.startTls({ serverName: "localhost" });
   * ```
   */
  async startTls(options?: StartTlsOptions): Promise<void> {
    this.#refusePlaintext();
    await this.drain();
    this.#refusePlaintext();
    const serverSide = options?.serverSide ?? this.#protocol.serverSide;
    const secure = await startTls(
      this.#protocol.loop,
      this.#transport,
      this.#protocol,
      {
        ...options,
        serverSide,
      },
    );
    this.#transport = secure;
    if (this.#reader !== null) replaceReaderTransport(this.#reader, secure);
  }

  #refusePlaintext(): void {
    const buffered = this.#reader === null
      ? 0
      : readerBufferedSize(this.#reader);
    if (buffered > 0) {
      throw new Deno.errors.InvalidData(
        `Cannot start TLS: ${buffered} bytes of unread plaintext are buffered (possible STARTTLS injection)`,
      );
    }
  }

  /**
   * Waits until it is fine to write again: resolves at once unless the
   * transport's buffer is above its high-water mark, then when it drains.
   * Rejects with the connection's error once the connection is lost (or
   * `Deno.errors.ConnectionReset` if it closed cleanly): it never resolves
   * on a dead connection. `signal` cancels the wait.
   */
  drain(options?: DrainOptions): Promise<void> {
    // The usual case, nothing to wait for: resolved at once, without an
    // async call per write (an echo loop drains after every write).
    if (
      options === undefined && this.#protocol.flowing &&
      !this.#transport.isClosing() &&
      (this.#reader === null || this.#reader.exception() === null)
    ) {
      return RESOLVED;
    }
    return this.#drain(options);
  }

  async #drain(options: DrainOptions | undefined): Promise<void> {
    const signal = signalOption(options);
    signal?.throwIfAborted();
    const exc = this.#reader?.exception() ?? null;
    if (exc !== null) throw exc;
    const protocol = this.#protocol;
    if (this.#transport.isClosing() && !protocol.lost) {
      if (this.#closeCalled) {
        // As asyncio, where connectionLost runs within the drain's one
        // yield once nothing is left to send: the connection is lost
        // (though this backend may report it a little later).
        if (this.#transport.getWriteBufferSize() === 0) {
          throw connectionLostError();
        }
        await undefined;
      } else {
        // Closing on its own: the connection is going away. Wait for it.
        await waitOrAbort(protocol.closed.catch(() => {}), signal);
      }
    }
    await protocol.drainHelper(signal);
  }

  /**
   * The writer as a Web `WritableStream` of `Uint8Array` chunks, to compose
   * with the platform: `readable.pipeTo(writer.writable)`, a `fetch`
   * response body, `TextEncoderStream`, `CompressionStream`… Made on first
   * access; every access returns the same stream.
   *
   * - `write(chunk)` is `writer.write(chunk)` then `await writer.drain()`,
   *   so the transport's write flow control is the stream's backpressure
   *   (`ready` waits while the transport's buffer is above its high-water
   *   mark). The bytes are copied at once: the chunk may be reused. A chunk
   *   that is not a `Uint8Array` errors the stream with a `TypeError`.
   * - `close()` sends EOF with `writeEof()` when `canWriteEof()` is true
   *   (TCP, Unix): the connection stays open for reading, so the answer can
   *   still be read; call `writer.close()` (or `await using`) when done. On
   *   TLS (no half-close) it calls `writer.close()` and resolves once the
   *   connection is closed (`waitClosed()`). If the connection is already
   *   closing or lost, it waits for the end and rejects with its error, if
   *   any.
   * - `abort(reason)` aborts the transport: queued bytes are dropped and
   *   the connection closes at once (the peer sees EOF, see `abort()`).
   *
   * @example Send a fetch response body over a connection
   * ```ts ignore
   * import { openConnection } from "@aionet/aionet/streams";
   *
   * const [, writer] = await openConnection({ hostname: "127.0.0.1", port: 8888 });
   * const response = await fetch("http://127.0.0.1:8000/file.txt");
   * await response.body!.pipeTo(writer.writable); // ends with writeEof()
   * writer.close();
   * await writer.waitClosed();
   * ```
   */
  get writable(): WritableStream<Uint8Array> {
    return this.#writable ??= new WritableStream<Uint8Array>({
      write: (chunk) => this.#sinkWrite(chunk),
      close: () => this.#sinkClose(),
      abort: () => this.#transport.abort(),
    });
  }

  /**
   * Shows the live state as asyncio's `StreamWriter.__repr__`:
   * `<StreamWriter transport=<…> reader=<StreamReader …>>`.
   *
   * @example Inspecting the live state
   * ```ts ignore
   * import { openConnection } from "@aionet/aionet/streams";
   *
   * const [, writer] = await openConnection({ hostname: "127.0.0.1", port: 8888 });
   * console.log(Deno.inspect(writer));
   * // <StreamWriter transport=<StreamTransport peer=127.0.0.1:8888 read=polling write=<idle bufsize=0>> reader=<StreamReader transport=<…>>>
   * ```
   */
  [Symbol.for("Deno.customInspect")](
    inspect: InspectFn,
    options?: unknown,
  ): string {
    const info = [
      "StreamWriter",
      `transport=${transportRepr(this.#transport)}`,
    ];
    if (this.#reader !== null) {
      info.push(`reader=${inspect(this.#reader, options)}`);
    }
    return `<${info.join(" ")}>`;
  }

  async #sinkWrite(chunk: unknown): Promise<void> {
    assertBytes(chunk, "chunk written to writer.writable");
    this.write(chunk as Uint8Array);
    await this.drain();
  }

  async #sinkClose(): Promise<void> {
    const protocol = this.#protocol;
    if (protocol.lost || this.#transport.isClosing()) {
      // Closing already: wait for the end, rejecting with its error if any.
      await protocol.closed;
      return;
    }
    if (this.#transport.canWriteEof()) {
      this.#transport.writeEof();
      return;
    }
    this.close();
    await protocol.closed;
  }

  /** `await using writer = ...`: `close()`, then waits until closed (errors ignored). */
  async [Symbol.asyncDispose](): Promise<void> {
    this.close();
    await this.#protocol.closed.catch(() => {});
  }
}

async function waitOrAbort(
  promise: Promise<void>,
  signal: AbortSignal | undefined,
): Promise<void> {
  if (signal === undefined) return await promise;
  const { promise: aborted, reject } = Promise.withResolvers<never>();
  const onAbort = () => reject(signal.reason);
  signal.addEventListener("abort", onAbort, { once: true });
  try {
    await Promise.race([promise, aborted]);
  } finally {
    signal.removeEventListener("abort", onAbort);
  }
}
