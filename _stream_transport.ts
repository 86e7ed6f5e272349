// The stream transport over a backend stream handle (TCP, Unix, TLS): the
// read side as the handle's sink, the write queue with coalescing and flow
// control, and the connection's lifecycle. Public through transports.ts.

import type { BaseProtocol, BufferedProtocol, Protocol } from "./protocols.ts";
import { currentLoop, type LoopCore } from "./_loop_core.ts";
import { assertBytes, checkKnownOptions } from "./_validate.ts";
import type { Transport } from "./_transport_types.ts";
import { socketView } from "./_transport_socket.ts";
import type { ReadSink, StreamHandle } from "./_backend.ts";
import { ConnStreamHandle } from "./_conn_handles.ts";
import {
  callConnectionLost,
  callEofReceived,
  checkChunks,
  extraInfo,
  feedBuffered,
  getProtocolBuffer,
  isBuffered,
  isQuietError,
  reportError,
} from "./_transport_common.ts";
import { toError } from "./_errno.ts";
import { CoalescingBuffer, WriteFlow } from "./_write_flow.ts";
import { copyToPool, POOL_MAX } from "./_byte_pool.ts";
import { ReadFlow } from "./_read_flow.ts";
import {
  debugActive,
  protocolCallback,
  reportSlow,
  timedCall,
  type UnclosedState,
  watchUnclosed,
} from "./_debug.ts";

/** First read buffer of a connection: small, so idle connections stay cheap. */
const FIRST_READ_SIZE = 4 * 1024;
/**
 * Read size of a busy connection (asyncio reads up to 256 KiB as well). A
 * read that fills its buffer makes the next 4x larger (4, 16, 64 KiB); past
 * 64 KiB the connection reads into slabs of this size: each read takes the
 * rest of the slab and hands out exactly the bytes it got, no copy.
 */
const SLAB_SIZE = 256 * 1024;
/** A slab with less room than this left is replaced by a new one. */
const MIN_WINDOW = 64 * 1024;
/**
 * A read into the shared scratch buffer at least this large turns the
 * connection to slab reads; smaller ones are copied out at their size (a
 * connection of medium messages must not take, and hold, a slab apiece).
 */
const SLAB_READ = 32 * 1024;

/**
 * The read buffer of a connection whose backend reads synchronously
 * (native): every read lands here and is copied out at once, so no
 * connection holds memory of its own between reads.
 */
let scratch: Uint8Array | null = null;
/** A read buffer meaning "the protocol has no room now" (see ReadSink). */
const NO_ROOM = new Uint8Array(0);

let peerEofSeen: (transport: StreamTransport) => boolean;
let overHandle: (
  handle: StreamHandle,
  protocol: BaseProtocol,
  options?: StreamTransportOptions,
) => StreamTransport;

/** Whether the peer's EOF has reached `transport` (internal: startTls). */
export function peerClosedWrite(transport: StreamTransport): boolean {
  return peerEofSeen(transport);
}

/** A transport over a backend handle (internal: the factories). */
export function transportOverHandle(
  handle: StreamHandle,
  protocol: BaseProtocol,
  options?: StreamTransportOptions,
): StreamTransport {
  return overHandle(handle, protocol, options);
}

/** Options of {@linkcode StreamTransport}. */
export interface StreamTransportOptions {
  /** The loop whose exception handler gets protocol errors. */
  loop?: LoopCore;
  /** Whether `writeEof()` is possible (false for TLS). Default `true`. */
  canWriteEof?: boolean;
  /** Extra values for `getExtraInfo()`, by name. */
  extra?: Record<string, unknown>;
  /** Called once after `connectionLost` (server bookkeeping). */
  onLost?: (transport: StreamTransport) => void;
  /**
   * Whether to call `connectionMade` (default `true`; `false` when the
   * protocol is already connected, as after `startTls`).
   */
  callConnectionMade?: boolean;
}

/**
 * A stream transport over a `Deno.Conn` (TCP, Unix or TLS): what
 * `createConnection` and `createServer` hand to protocols.
 *
 * It reads with `conn.read()` (4 KiB buffers at first, growing to 256 KiB
 * slabs on a busy connection), keeps one write in flight and coalesces the
 * writes queued meanwhile, and calls the protocol's callbacks in asyncio's
 * order. Constructing one over a connected `Deno.Conn` starts it:
 * `connectionMade` is called at once, reading starts when it returns.
 *
 * @example Wrap a connection you already have
 * ```ts ignore
 * import { Protocol } from "@aionet/aionet/protocols";
 * import { StreamTransport } from "@aionet/aionet/transports";
 *
 * const conn = await Deno.connect({ hostname: "127.0.0.1", port: 8888 });
 * const transport = new StreamTransport(conn, new Protocol());
 * transport.write(new TextEncoder().encode("hello"));
 * transport.close();
 * ```
 */
export class StreamTransport implements Transport {
  static #pendingHandle: StreamHandle | null = null;
  #handle: StreamHandle;
  #protocol: BaseProtocol;
  #loop: LoopCore;
  /** Debug mode's record of whether this transport was closed. */
  #unclosed: UnclosedState | null;
  #extra: Record<string, unknown>;
  #onLost: ((transport: StreamTransport) => void) | undefined;
  #canWriteEof: boolean;

  // Lifecycle.
  #closing = false;
  #closedByUser = false;
  #eofWritten = false;
  #lost = false;
  #lostError: Error | null = null;
  #eofSeen = false;

  static {
    peerEofSeen = (transport) => transport.#eofSeen;
    overHandle = (handle, protocol, options) => {
      StreamTransport.#pendingHandle = handle;
      try {
        return new StreamTransport(
          null as unknown as Deno.Conn,
          protocol,
          options,
        );
      } finally {
        StreamTransport.#pendingHandle = null;
      }
    };
  }

  // Reading: the handle calls the sink; the protocol (and whether it is
  // buffered) that gave the buffer of the read in flight is remembered, as
  // setProtocol() may switch protocols meanwhile.
  #readFlow = new ReadFlow(
    () => this.#closing,
    () => this.#handle.readStop(),
    () => this.#handle.readStart(this.#sink),
  );
  #readBuffer: Uint8Array | null = null;
  #readSize = FIRST_READ_SIZE;
  #slab: Uint8Array | null = null;
  #slabOffset = 0;
  /** The protocol that was current when the read in flight was started. */
  #readProtocol: BaseProtocol | null = null;
  /** Whether the read in flight fills that protocol's own buffer. */
  #readIntoProtocol = false;
  #sink: ReadSink = {
    readBuffer: (ahead) => this.#nextReadBuffer(ahead === true),
    readDone: (buffer, n) => this.#readDone(buffer, n),
    readEof: () => this.#readEof(),
    readError: (error) => this.#readError(error),
  };

  // Writing: bytes accumulate in #pending while one write is in flight.
  #pending = new CoalescingBuffer();
  #inflightRemaining = 0;
  #writing = false;
  /** Whether the handle sends synchronously (`trySend`, native). */
  #sendsAtOnce = false;
  /** `#flush` bound once: write() schedules it without a new closure. */
  #flushTask = () => void this.#flush();
  #flow = new WriteFlow((message, exception) =>
    this.#report(message, exception)
  );

  /** Starts a transport over `conn` for `protocol` (see the class docs). */
  constructor(
    conn: Deno.Conn,
    protocol: BaseProtocol,
    options?: StreamTransportOptions,
  ) {
    const {
      loop,
      canWriteEof = true,
      extra = {},
      onLost,
      callConnectionMade = true,
    } = checkKnownOptions(options, [
      "loop",
      "canWriteEof",
      "extra",
      "onLost",
      "callConnectionMade",
    ]);
    this.#handle = StreamTransport.#pendingHandle ?? new ConnStreamHandle(conn);
    StreamTransport.#pendingHandle = null;
    this.#sendsAtOnce = this.#handle.trySend !== undefined;
    this.#protocol = protocol;
    this.#loop = loop ?? currentLoop();
    this.#unclosed = watchUnclosed(this.#loop, this, "transport");
    this.#extra = extra;
    this.#onLost = onLost;
    this.#canWriteEof = canWriteEof;
    try {
      if (callConnectionMade) {
        timedCall(
          this.#loop,
          () => protocolCallback(protocol, "connectionMade"),
          () => protocol.connectionMade(this),
        );
      }
    } catch (error) {
      this.#fatal(error, "Exception in protocol.connectionMade()");
      return;
    }
    if (!this.#closing && !this.#readFlow.paused) {
      this.#handle.readStart(this.#sink);
    }
  }

  // ---- BaseTransport ----

  /**
   * Information about the connection: `"peername"`, `"sockname"`,
   * `"socket"`, `"conn"`, plus transport-specific names; `fallback` for an
   * unknown name.
   */
  getExtraInfo(name: string, fallback?: unknown): unknown {
    switch (name) {
      case "peername":
        return this.#address("remoteAddr") ?? fallback;
      case "sockname":
        return this.#address("localAddr") ?? fallback;
      case "socket":
        return socketView({
          fd: this.#handle.fd,
          options: this.#handle.options,
          localAddr: () => this.#handle.localAddr(),
          remoteAddr: () => this.#handle.remoteAddr(),
          closed: () => this.#lost,
        });
      case "conn":
        return this.#handle.resource ?? fallback;
    }
    return extraInfo(this.#extra, name, fallback);
  }

  /** Whether the transport is closing or closed. */
  isClosing(): boolean {
    return this.#closing;
  }

  /** Flushes the write buffer, then closes; `connectionLost(null)` follows. */
  close(): void {
    if (this.#closing) return;
    this.#closing = true;
    this.#closedByUser = true;
    this.#handle.readStop();
    if (!this.#writing) this.#finish(null);
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

  /** Stops reading: no `dataReceived` until `resumeReading()`. */
  pauseReading(): void {
    this.#readFlow.pause();
  }

  /** Resumes reading after `pauseReading()`. */
  resumeReading(): void {
    this.#readFlow.resume();
  }

  // ---- WriteTransport ----

  /**
   * Queues `data` for writing; never blocks, never loses data. The bytes are
   * copied, so later changes to `data` change nothing sent.
   */
  write(data: Uint8Array): void {
    assertBytes(data);
    this.#checkWritable();
    if (data.length > 0) this.#send(data);
  }

  /**
   * Writes each chunk of `list` in order, as `write()` of their
   * concatenation would (sent at once where the backend can).
   */
  writeLines(list: Iterable<Uint8Array>): void {
    const chunks = checkChunks(list);
    this.#checkWritable();
    for (const chunk of chunks) {
      if (chunk.length > 0) this.#send(chunk);
      if (this.#lost) return;
    }
  }

  /** Sends what the kernel takes now where it can, and queues the rest. */
  #send(data: Uint8Array): void {
    const length = data.length;
    if (this.#sendsAtOnce && !this.#writing) {
      // Nothing queued on a backend that writes synchronously: send now,
      // as asyncio does, and queue only what the kernel did not take.
      let sent: number;
      try {
        sent = this.#handle.trySend!(data);
      } catch (error) {
        this.#fatal(error, "Fatal write error on transport");
        return;
      }
      if (sent === length) return;
      data = data.subarray(sent);
    }
    this.#enqueue(data);
  }

  /** Half-closes: sends EOF once the write buffer has drained. */
  writeEof(): void {
    if (!this.#canWriteEof) {
      throw new Deno.errors.NotSupported(
        "writeEof() is not supported on this transport (TLS cannot half-close)",
      );
    }
    if (this.#closing || this.#eofWritten) return;
    this.#eofWritten = true;
    if (!this.#writing) this.#shutdownWrite();
  }

  /** Whether `writeEof()` is possible: true for TCP and Unix, false for TLS. */
  canWriteEof(): boolean {
    return this.#canWriteEof;
  }

  /** Closes at once, discarding the write buffer; `connectionLost(null)` follows. */
  abort(): void {
    this.#closedByUser = true;
    this.#finish(null, true);
  }

  /**
   * Sets the write flow-control marks: `pauseWriting()` above `high`,
   * `resumeWriting()` at `low` or below. Defaults: high 64 KiB, low high/4.
   */
  setWriteBufferLimits(limits?: { high?: number; low?: number }): void {
    this.#flow.setLimits(limits);
    this.#maybePauseProtocol();
  }

  /** Bytes queued and not yet accepted by the operating system. */
  getWriteBufferSize(): number {
    return this.#pending.length + this.#inflightRemaining;
  }

  /** The flow-control marks as `[low, high]`. */
  getWriteBufferLimits(): [low: number, high: number] {
    return this.#flow.limits;
  }

  /** Shows the live state in `Deno.inspect()` and `console.log()`. */
  [Symbol.for("Deno.customInspect")](
    inspect: (value: unknown, options?: unknown) => string,
    options: unknown,
  ): string {
    const state = {
      peername: this.#address("remoteAddr"),
      sockname: this.#address("localAddr"),
      reading: this.isReading(),
      readSize: this.#readSize,
      closing: this.#closing,
      lost: this.#lost,
      eofWritten: this.#eofWritten,
      writeBufferSize: this.getWriteBufferSize(),
      writeBufferLimits: this.getWriteBufferLimits(),
      writingPaused: this.#flow.paused,
      protocol: this.#protocol.constructor?.name,
    };
    return `StreamTransport ${inspect(state, options)}`;
  }

  // ---- internals ----

  #address(key: "remoteAddr" | "localAddr"): Deno.Addr | undefined {
    return this.#handle[key]();
  }

  /** Copies `data` into the write buffer; the flush runs in a microtask. */
  #enqueue(data: Uint8Array): void {
    this.#pending.append(data);
    if (!this.#writing) {
      this.#writing = true;
      queueMicrotask(this.#flushTask);
    }
    this.#maybePauseProtocol();
  }

  #checkWritable(): void {
    if (this.#eofWritten && !this.#lost) {
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

  async #flush(): Promise<void> {
    const handle = this.#handle;
    try {
      while (this.#pending.length > 0 && !this.#lost) {
        const buffer = this.#pending.take();
        const length = buffer.length;
        this.#inflightRemaining = length;
        let offset = 0;
        while (offset < length) {
          const written = handle.write(
            offset === 0 ? buffer : buffer.subarray(offset),
          );
          offset += typeof written === "number" ? written : await written;
          if (this.#lost) return;
          this.#inflightRemaining = length - offset;
          this.#maybeResumeProtocol();
        }
        this.#pending.recycle(buffer);
      }
    } catch (error) {
      this.#inflightRemaining = 0;
      if (!this.#lost) this.#fatal(error, "Fatal write error on transport");
      return;
    }
    this.#writing = false;
    if (this.#lost) return;
    if (this.#closing) this.#finish(null);
    else if (this.#eofWritten) this.#shutdownWrite();
  }

  #shutdownWrite(): void {
    this.#handle.shutdownWrite().catch((error) => {
      if (!this.#lost) this.#fatal(error, "Fatal error on writeEof()");
    });
  }

  #maybePauseProtocol(): void {
    this.#flow.pauseIfAbove(this.getWriteBufferSize(), this.#protocol);
  }

  #maybeResumeProtocol(): void {
    this.#flow.resumeIfBelow(this.getWriteBufferSize(), this.#protocol);
  }

  /** The sink's `readBuffer`: the protocol's buffer, or one of ours. */
  #nextReadBuffer(ahead: boolean): Uint8Array {
    const protocol = this.#protocol;
    const buffered = isBuffered(protocol);
    this.#readProtocol = protocol;
    this.#readIntoProtocol = buffered;
    if (buffered) {
      try {
        return getProtocolBuffer(protocol as BufferedProtocol, -1);
      } catch (error) {
        if (ahead) {
          // No room (or an error) before any data is there: asyncio asks
          // getBuffer() when data has arrived, so ask again then. A
          // synchronous reader waits for the next readiness; an async one
          // reads into the transport's buffer and feeds the protocol
          // through getBuffer() once the bytes are in (see #readDone).
          if (this.#handle.syncReads) return NO_ROOM;
          this.#readIntoProtocol = false;
          return this.#readBuffer ??= this.#newReadBuffer();
        }
        this.#fatal(error, "Exception in protocol.getBuffer()");
        return new Uint8Array(1);
      }
    }
    // A backend that reads synchronously (native) reads small messages
    // into one shared buffer and copies them out; a busy connection reads
    // into its own slabs, as on any backend.
    if (this.#handle.syncReads && this.#readSize < SLAB_SIZE) {
      return scratch ??= new Uint8Array(SLAB_SIZE);
    }
    return this.#readBuffer ??= this.#newReadBuffer();
  }

  /** The sink's `readDone`: `n` bytes in `buffer`, for the protocol. */
  #readDone(buffer: Uint8Array, n: number): void {
    if (this.#closing) return;
    // setProtocol() may have switched protocols while the read was in
    // flight: deliver in the form the current protocol takes.
    const current = this.#protocol;
    const sameProtocol = current === this.#readProtocol;
    const intoProtocol = this.#readIntoProtocol;
    const currentBuffered = (sameProtocol && intoProtocol) ||
      isBuffered(current);
    const start = debugActive ? performance.now() : 0;
    try {
      if (sameProtocol && intoProtocol) {
        (current as BufferedProtocol).bufferUpdated(n);
      } else if (currentBuffered) {
        feedBuffered(current as BufferedProtocol, buffer.subarray(0, n));
      } else {
        (current as Protocol).dataReceived(
          intoProtocol
            ? buffer.slice(0, n)
            : buffer === scratch
            ? this.#takeScratch(buffer, n)
            : this.#takeRead(buffer, n),
        );
      }
    } catch (error) {
      this.#fatal(
        error,
        `Exception in protocol.${
          currentBuffered ? "bufferUpdated" : "dataReceived"
        }()`,
      );
    }
    if (debugActive) {
      const method = currentBuffered ? "bufferUpdated" : "dataReceived";
      reportSlow(this.#loop, start, protocolCallback(current, method));
    }
  }

  #readEof(): void {
    if (this.#closing) return;
    this.#eofReceived();
  }

  #readError(error: Error): void {
    if (!this.#closing) this.#fatal(error, "Fatal read error on transport");
  }

  /** The buffer for the next read: a new one, or the rest of the slab. */
  #newReadBuffer(): Uint8Array {
    if (this.#readSize < SLAB_SIZE) return new Uint8Array(this.#readSize);
    let slab = this.#slab;
    if (slab === null || SLAB_SIZE - this.#slabOffset < MIN_WINDOW) {
      slab = this.#slab = new Uint8Array(SLAB_SIZE);
      this.#slabOffset = 0;
    }
    return slab.subarray(this.#slabOffset);
  }

  /**
   * The `n` bytes just read into `buffer`, as an array the protocol owns.
   * Small reads are copied into the shared pool and the buffer is read into
   * again (a small read in slab mode goes back to the first read size). In
   * slab mode the bytes are handed out where they are and the next read
   * goes after them. Otherwise a read that filled the buffer takes it whole
   * and the next buffer is 4x larger; a read that fills at least half the
   * buffer takes the buffer itself; others are copied.
   */
  #takeRead(buffer: Uint8Array, n: number): Uint8Array {
    if (n <= POOL_MAX && n < buffer.length) {
      // Traffic turned small: leave the slab (an idle connection would
      // otherwise hold up to a slab with its pending read).
      if (this.#slab !== null) {
        this.#slab = this.#readBuffer = null;
        this.#readSize = FIRST_READ_SIZE;
      }
      return copyToPool(buffer, 0, n);
    }
    if (this.#slab !== null) {
      // Back to back, unaligned: a StreamReader joins adjacent chunks.
      this.#slabOffset += n;
    } else if (n === buffer.length) {
      this.#readSize *= 4;
    } else if (n < buffer.length / 2) {
      return buffer.slice(0, n);
    }
    this.#readBuffer = null;
    return buffer.subarray(0, n);
  }

  /**
   * The `n` bytes just read into the shared scratch buffer, as an array the
   * protocol owns: small reads go to the pool, others are copied out at
   * their size; a read of {@linkcode SLAB_READ} or more also turns the
   * connection to slabs, so the next large reads need no copy (a small
   * read turns it back, see `#takeRead`).
   */
  #takeScratch(buffer: Uint8Array, n: number): Uint8Array {
    if (n <= POOL_MAX) return copyToPool(buffer, 0, n);
    if (n >= SLAB_READ) this.#readSize = SLAB_SIZE;
    return buffer.slice(0, n);
  }

  #eofReceived(): void {
    this.#eofSeen = true;
    let keepOpen = false;
    try {
      const protocol = this.#protocol;
      keepOpen = timedCall(
        this.#loop,
        () => protocolCallback(protocol, "eofReceived"),
        () => callEofReceived(protocol),
      );
    } catch (error) {
      this.#fatal(error, "Exception in protocol.eofReceived()");
      return;
    }
    if (!keepOpen || !this.#canWriteEof) {
      if (this.#closing) return;
      this.#closing = true;
      if (!this.#writing) this.#finish(null);
    }
  }

  #report(message: string, exception: unknown): void {
    reportError(this.#loop, this, this.#protocol, message, exception);
  }

  #fatal(error: unknown, message: string): void {
    if (!isQuietError(error)) this.#report(message, error);
    this.#finish(toError(error));
  }

  /**
   * Closes the connection now (with a reset where the backend can, for
   * `abort()`) and calls `connectionLost(exc)` once nothing is in flight.
   */
  #finish(exc: Error | null, reset = false): void {
    if (this.#lost) return;
    this.#lost = true;
    this.#closing = true;
    if (this.#unclosed !== null) this.#unclosed.closed = true;
    this.#lostError = exc;
    // As asyncio: what was not sent is dropped, so the buffer is empty now.
    this.#pending.clear();
    this.#inflightRemaining = 0;
    this.#readBuffer = null;
    this.#slab = null;
    const closed = reset ? this.#handle.abort() : this.#handle.close();
    closed.then(() => {
      callConnectionLost(this.#loop, this, this.#protocol, exc);
      this.#onLost?.(this);
    });
  }
}
