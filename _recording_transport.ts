// A transport that records what the protocol writes and lets a test play
// the network (Twisted's StringTransport). Public through testing.ts.

import type { BaseProtocol, BufferedProtocol, Protocol } from "./protocols.ts";
import { Protocol as PlainProtocol } from "./protocols.ts";
import { currentLoop, type LoopCore } from "./_loop_core.ts";
import {
  assertBytes,
  checkKnownOptions,
  checkOptions,
  checkProtocol,
  describe,
} from "./_validate.ts";
import type { Transport } from "./_transport_types.ts";
import { toError } from "./_errno.ts";
import { WriteFlow } from "./_write_flow.ts";
import { ReadFlow } from "./_read_flow.ts";
import {
  callConnectionLost,
  callEofReceived,
  checkChunks,
  extraInfo,
  feedBuffered,
  isBuffered,
  isQuietError,
  reportError,
} from "./_transport_common.ts";
import { checkAddr, defaultAddrA, defaultAddrB } from "./_memory_transport.ts";

/** Options of the {@linkcode RecordingTransport} constructor. */
export interface RecordingTransportOptions {
  /** The loop whose exception handler gets protocol errors (default: `getEventLoop()`). */
  loop?: LoopCore;
  /** What `getExtraInfo("sockname")` returns. Default `127.0.0.1:8888` (TCP). */
  sockname?: Deno.Addr;
  /** What `getExtraInfo("peername")` returns. Default `127.0.0.1:49152` (TCP). */
  peername?: Deno.Addr;
  /** Further `getExtraInfo()` values, by name. */
  extra?: Record<string, unknown>;
  /**
   * Whether `writeEof()` is possible. Default `true`; `false` behaves like
   * TLS (`writeEof()` throws `NotSupported`, an EOF received always closes).
   */
  canWriteEof?: boolean;
}

const EOF = Symbol("eof");

/**
 * A transport that records everything its protocol writes, for unit tests
 * without a network (Twisted's `StringTransport`). The test plays the
 * network: {@linkcode RecordingTransport.receive} feeds bytes to the
 * protocol, {@linkcode RecordingTransport.receiveEof} half-closes,
 * {@linkcode RecordingTransport.loseConnection} drops the connection, and
 * {@linkcode RecordingTransport.setWriteBufferSize} simulates a slow
 * network to trigger `pauseWriting`/`resumeWriting`.
 *
 * The rules are the real transport's: `connectionMade` is called by the
 * constructor; `write()` copies its bytes and throws `TypeError` for a
 * non-`Uint8Array` and `Deno.errors.BadResource` after `close()` or
 * `writeEof()`; while reading is paused, received data (and EOF) is held
 * and delivered after `resumeReading()`; `close()` and `abort()` lead to
 * exactly one `connectionLost(null)` (in a microtask, never inside the
 * call); a protocol callback that throws goes to the loop's exception
 * handler and ends the connection with that error.
 *
 * The driving helpers (`receive`, `receiveEof`, `loseConnection`) call the
 * protocol synchronously, so a test can check the effect on the next line.
 *
 * @example Test a greeting protocol
 * ```ts
 * import { RecordingTransport } from "@aionet/aionet/testing";
 * import { Protocol } from "@aionet/aionet/protocols";
 * import type { Transport } from "@aionet/aionet/transports";
 *
 * class Greeter extends Protocol {
 *   #t?: Transport;
 *   override connectionMade(t: Transport) { this.#t = t; }
 *   override dataReceived(data: Uint8Array) {
 *     this.#t!.write(new TextEncoder().encode(`hello ${new TextDecoder().decode(data)}`));
 *     this.#t!.close();
 *   }
 * }
 * const transport = new RecordingTransport(new Greeter());
 * transport.receive(new TextEncoder().encode("world"));
 * console.log(transport.text()); // "hello world"
 * console.log(transport.closed); // true
 * ```
 */
export class RecordingTransport implements Transport {
  #protocol: BaseProtocol;
  #loop: LoopCore;
  #sockname: Deno.Addr;
  #peername: Deno.Addr;
  #extra: Record<string, unknown>;
  #canWriteEof: boolean;

  #writes: Uint8Array[] = [];

  // Lifecycle.
  #closing = false;
  #closedByUser = false;
  #aborted = false;
  #eofWritten = false;
  #finished = false;
  #lost = false;
  #lostError: Error | null = null;

  // Reading.
  #readFlow = new ReadFlow(
    () => this.#closing,
    () => {},
    () => this.#drainHeld(),
  );
  #held: Array<Uint8Array | typeof EOF> = [];
  #drainScheduled = false;
  #eofFed = false;

  // Simulated write buffer.
  #bufferSize = 0;
  #flow = new WriteFlow((message, exception) =>
    this.#report(message, exception)
  );

  /**
   * Makes the transport and calls `protocol.connectionMade(this)`. Without
   * a protocol, a no-op `Protocol` is used (handy to test code that only
   * writes to a transport).
   *
   * @example A transport with a fake peer address
   * ```ts
   * import { RecordingTransport } from "@aionet/aionet/testing";
   *
   * const transport = new RecordingTransport(undefined, {
   *   peername: { transport: "tcp", hostname: "192.0.2.7", port: 40000 },
   * });
   * console.log(transport.getExtraInfo("peername"));
   * ```
   */
  constructor(protocol?: BaseProtocol, options?: RecordingTransportOptions) {
    if (protocol !== undefined) checkProtocol(protocol, "protocol");
    const {
      loop,
      sockname = defaultAddrB(),
      peername = defaultAddrA(),
      extra = {},
      canWriteEof = true,
    } = checkKnownOptions(options, [
      "loop",
      "sockname",
      "peername",
      "extra",
      "canWriteEof",
    ]);
    checkAddr(sockname, "sockname");
    checkAddr(peername, "peername");
    checkOptions(extra, "extra");
    if (typeof canWriteEof !== "boolean") {
      throw new TypeError(
        `The canWriteEof option must be a boolean, got ${
          describe(canWriteEof)
        }`,
      );
    }
    this.#protocol = protocol ?? new PlainProtocol();
    this.#loop = loop ?? currentLoop();
    this.#sockname = sockname;
    this.#peername = peername;
    this.#extra = extra;
    this.#canWriteEof = canWriteEof;
    try {
      this.#protocol.connectionMade(this);
    } catch (error) {
      this.#fatal(error, "Exception in protocol.connectionMade()");
    }
  }

  // ---- recording ----

  /** Each chunk passed to `write()` since the last `clear()` (copies). */
  get writes(): Uint8Array[] {
    return [...this.#writes];
  }

  /** All bytes written since the last `clear()`, joined. */
  value(): Uint8Array {
    const out = new Uint8Array(
      this.#writes.reduce((n, chunk) => n + chunk.length, 0),
    );
    let offset = 0;
    for (const chunk of this.#writes) {
      out.set(chunk, offset);
      offset += chunk.length;
    }
    return out;
  }

  /** {@linkcode RecordingTransport.value} decoded as UTF-8. */
  text(): string {
    return new TextDecoder().decode(this.value());
  }

  /** Forgets what was written so far. */
  clear(): void {
    this.#writes = [];
  }

  /** Whether the protocol called `close()` or `abort()`. */
  get closed(): boolean {
    return this.#closedByUser;
  }

  /** Whether the protocol called `abort()`. */
  get aborted(): boolean {
    return this.#aborted;
  }

  /** Whether the protocol called `writeEof()`. */
  get eofWritten(): boolean {
    return this.#eofWritten;
  }

  /** Whether `connectionLost` has been called. */
  get lost(): boolean {
    return this.#lost;
  }

  // ---- playing the network ----

  /**
   * Delivers `data` (copied) to the protocol now, as `dataReceived` or
   * through `getBuffer`/`bufferUpdated`. While reading is paused the data
   * is held and delivered after `resumeReading()`. `BadResource` once the
   * transport is closing or after `receiveEof()`.
   */
  receive(data: Uint8Array): void {
    assertBytes(data);
    this.#checkReceivable();
    if (data.length === 0) return;
    const copy = data.slice();
    if (this.#readFlow.paused || this.#held.length > 0) this.#held.push(copy);
    else this.#deliver(copy);
  }

  /**
   * Delivers EOF: calls `eofReceived()`; unless it returns a truthy value
   * the transport closes (`connectionLost(null)` follows). Held while
   * reading is paused. `BadResource` if the transport is closing or EOF was
   * already received.
   */
  receiveEof(): void {
    this.#checkReceivable();
    this.#eofFed = true;
    if (this.#readFlow.paused || this.#held.length > 0) this.#held.push(EOF);
    else this.#eofReceived();
  }

  /**
   * Simulates the connection dropping: calls `connectionLost(exc)` now
   * (once; a no-op if the connection already ended). An `exc` other than
   * reset/broken-pipe/aborted/unexpected-EOF is also reported to the
   * exception handler, as a real read error is.
   */
  loseConnection(exc: Error | null = null): void {
    if (exc !== null && !(exc instanceof Error)) {
      throw new TypeError(
        `The exception must be an Error or null, got ${describe(exc)}`,
      );
    }
    if (this.#finished) return;
    if (exc !== null && !isQuietError(exc)) {
      this.#report("Fatal read error on transport", exc);
    }
    this.#finish(exc, true);
  }

  /**
   * Sets how many written bytes the simulated network has not taken yet
   * (what `getWriteBufferSize()` returns): above the high-water mark the
   * protocol gets `pauseWriting()`, at the low-water mark or below
   * `resumeWriting()`. While it is above 0, each `write()` adds its bytes
   * to it (the network is stalled), so a write can cross the high-water
   * mark as on a real transport. `0` means everything was sent: a pending
   * `close()` then completes.
   */
  setWriteBufferSize(size: number): void {
    if (typeof size !== "number" || Number.isNaN(size)) {
      throw new TypeError(`The size must be a number, got ${describe(size)}`);
    }
    if (!Number.isInteger(size) || size < 0) {
      throw new RangeError(
        `The size must be an integer of at least 0, got ${size}`,
      );
    }
    if (this.#finished) {
      throw new Deno.errors.BadResource(
        "Cannot set the write buffer size: the connection has ended",
      );
    }
    this.#bufferSize = size;
    this.#maybePauseProtocol();
    this.#maybeResumeProtocol();
    if (size === 0 && this.#closing) this.#finish(null);
  }

  // ---- BaseTransport ----

  /**
   * `"sockname"`, `"peername"` and the `extra` values given to the
   * constructor; `fallback` for other names.
   */
  getExtraInfo(name: string, fallback?: unknown): unknown {
    switch (name) {
      case "peername":
        return this.#peername;
      case "sockname":
        return this.#sockname;
    }
    return extraInfo(this.#extra, name, fallback);
  }

  /** Whether the transport is closing or closed. */
  isClosing(): boolean {
    return this.#closing;
  }

  /**
   * Closes once the simulated write buffer is empty (at once if it is);
   * `connectionLost(null)` follows in a microtask.
   */
  close(): void {
    if (this.#closing) return;
    this.#closing = true;
    this.#closedByUser = true;
    if (this.#bufferSize === 0) this.#finish(null);
  }

  /** Replaces the protocol that receives the callbacks. */
  setProtocol(protocol: BaseProtocol): void {
    this.#protocol = protocol;
  }

  /** The protocol that receives the callbacks. */
  getProtocol(): BaseProtocol {
    return this.#protocol;
  }

  // ---- ReadTransport ----

  /** Whether the transport is reading (not paused, not closing). */
  isReading(): boolean {
    return this.#readFlow.isReading();
  }

  /** Holds received data until `resumeReading()`. */
  pauseReading(): void {
    this.#readFlow.pause();
  }

  /** Resumes reading; held data is delivered in a microtask. */
  resumeReading(): void {
    this.#readFlow.resume();
  }

  #drainHeld(): void {
    if (this.#held.length === 0 || this.#drainScheduled) return;
    this.#drainScheduled = true;
    queueMicrotask(() => {
      this.#drainScheduled = false;
      while (
        this.#held.length > 0 && !this.#readFlow.paused && !this.#closing
      ) {
        const item = this.#held.shift()!;
        if (item === EOF) this.#eofReceived();
        else this.#deliver(item);
      }
    });
  }

  // ---- WriteTransport ----

  /**
   * Records a copy of `data`. `TypeError` for a non-`Uint8Array`;
   * `BadResource` after `close()` or `writeEof()`; once the connection is
   * lost, its error (or `BrokenPipe`).
   */
  write(data: Uint8Array): void {
    assertBytes(data);
    this.#checkWritable();
    if (data.length === 0) return;
    this.#writes.push(data.slice());
    if (this.#bufferSize > 0) {
      this.#bufferSize += data.length;
      this.#maybePauseProtocol();
    }
  }

  /** Records each chunk of `list` in order. */
  writeLines(list: Iterable<Uint8Array>): void {
    for (const chunk of checkChunks(list)) this.write(chunk);
  }

  /** Records that EOF was written (see {@linkcode RecordingTransport.eofWritten}). */
  writeEof(): void {
    if (!this.#canWriteEof) {
      throw new Deno.errors.NotSupported(
        "writeEof() is not supported on this transport (TLS cannot half-close)",
      );
    }
    if (this.#closing || this.#eofWritten) return;
    this.#eofWritten = true;
  }

  /** Whether `writeEof()` is possible (the `canWriteEof` option). */
  canWriteEof(): boolean {
    return this.#canWriteEof;
  }

  /** Closes now, discarding the simulated buffer; `connectionLost(null)` follows. */
  abort(): void {
    this.#closedByUser = true;
    this.#aborted = true;
    this.#finish(null);
  }

  /**
   * Sets the flow-control marks, with the real transport's validation:
   * defaults high 64 KiB, low high/4; `RangeError` unless
   * `high >= low >= 0`.
   */
  setWriteBufferLimits(limits?: { high?: number; low?: number }): void {
    this.#flow.setLimits(limits);
    this.#maybePauseProtocol();
  }

  /** The simulated write buffer size (see `setWriteBufferSize`). */
  getWriteBufferSize(): number {
    return this.#bufferSize;
  }

  /** The flow-control marks as `[low, high]`. */
  getWriteBufferLimits(): [low: number, high: number] {
    return this.#flow.limits;
  }

  // ---- internals ----

  #checkReceivable(): void {
    if (this.#closing) {
      throw new Deno.errors.BadResource(
        "Cannot receive: the transport is closing or closed",
      );
    }
    if (this.#eofFed) {
      throw new Deno.errors.BadResource("Cannot receive after receiveEof()");
    }
  }

  #checkWritable(): void {
    if (this.#eofWritten && !this.#finished) {
      throw new Deno.errors.BadResource("Cannot write after writeEof()");
    }
    if (!this.#closing) return;
    if (this.#lostError !== null) throw this.#lostError;
    if (this.#closedByUser) {
      throw new Deno.errors.BadResource("Cannot write to a closed transport");
    }
    throw new Deno.errors.BrokenPipe(
      "Cannot write: the connection was closed",
    );
  }

  #deliver(data: Uint8Array): void {
    const protocol = this.#protocol;
    const buffered = isBuffered(protocol);
    try {
      if (buffered) feedBuffered(protocol as BufferedProtocol, data);
      else (protocol as Protocol).dataReceived(data);
    } catch (error) {
      this.#fatal(
        error,
        `Exception in protocol.${
          buffered ? "bufferUpdated" : "dataReceived"
        }()`,
      );
    }
  }

  #eofReceived(): void {
    let keepOpen: boolean;
    try {
      keepOpen = callEofReceived(this.#protocol);
    } catch (error) {
      this.#fatal(error, "Exception in protocol.eofReceived()");
      return;
    }
    if (!keepOpen || !this.#canWriteEof) {
      if (this.#closing) return;
      this.#closing = true;
      if (this.#bufferSize === 0) this.#finish(null);
    }
  }

  #maybePauseProtocol(): void {
    this.#flow.pauseIfAbove(this.#bufferSize, this.#protocol);
  }

  #maybeResumeProtocol(): void {
    this.#flow.resumeIfBelow(this.#bufferSize, this.#protocol);
  }

  #report(message: string, exception: unknown): void {
    reportError(this.#loop, this, this.#protocol, message, exception);
  }

  #fatal(error: unknown, message: string): void {
    if (!isQuietError(error)) this.#report(message, error);
    this.#finish(toError(error));
  }

  /** Ends the connection; `connectionLost(exc)` once, now or in a microtask. */
  #finish(exc: Error | null, now = false): void {
    if (this.#finished) return;
    this.#finished = true;
    this.#closing = true;
    this.#lostError = exc;
    this.#bufferSize = 0;
    this.#held = [];
    const notify = () => {
      this.#lost = true;
      callConnectionLost(this.#loop, this, this.#protocol, exc);
    };
    if (now) notify();
    else Promise.resolve().then(notify);
  }
}
