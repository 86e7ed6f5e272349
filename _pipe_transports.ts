// Pipe transports over Web Streams (asyncio's _UnixReadPipeTransport and
// _UnixWritePipeTransport): a read pipe feeds a protocol from a
// ReadableStream<Uint8Array>, a write pipe queues bytes into a
// WritableStream<Uint8Array> with one write in flight and asyncio's write
// flow control. Used by connectReadPipe/connectWritePipe and by the
// subprocess transport for the child's stdin, stdout and stderr.

import { protocolCallback, timedCall } from "./_debug.ts";
import type { BaseProtocol, Protocol } from "./protocols.ts";
import { currentLoop, type LoopCore } from "./_loop_core.ts";
import type { ReadTransport, WriteTransport } from "./_transport_types.ts";
import {
  assertBytes,
  checkFunction,
  checkKnownOptions,
  describe,
} from "./_validate.ts";
import { toError } from "./_errno.ts";
import { CoalescingBuffer, WriteFlow } from "./_write_flow.ts";
import {
  callConnectionLost,
  callEofReceived,
  checkChunks,
  extraInfo,
  isQuietError,
  reportError,
} from "./_transport_common.ts";
import { ReadFlow } from "./_read_flow.ts";

/**
 * Protocols whose callbacks time themselves (the subprocess transport's
 * pipe adapters, which report the user's `pipeDataReceived`): not timed
 * again here.
 */
export const timedElsewhere: WeakSet<object> = new WeakSet();

/** Size of a read. */
const READ_SIZE = 64 * 1024;
/**
 * Writes dropped quietly once the reader is gone; the next one is reported
 * (asyncio's constants.LOG_THRESHOLD_FOR_CONNLOST_WRITES).
 */
const QUIET_DROPPED_WRITES = 5;
/** A read at least this large is handed over whole instead of copied. */
const HANDOVER_SIZE = READ_SIZE / 2;

/** Options of the pipe transports. */
export interface PipeTransportOptions {
  /** The loop whose exception handler gets protocol errors. */
  loop?: LoopCore;
  /** Extra values for `getExtraInfo()`, by name. */
  extra?: Record<string, unknown>;
}

/**
 * The read end of a pipe: reads a `ReadableStream<Uint8Array>` and calls
 * `dataReceived`, then `eofReceived` and `connectionLost(null)` at its end.
 * `connectionMade` is called in the constructor; reading starts in a
 * microtask, after the code that made the transport has run.
 */
export class ReadPipeTransport implements ReadTransport {
  #stream: ReadableStream<Uint8Array>;
  #reader:
    | ReadableStreamBYOBReader
    | ReadableStreamDefaultReader<Uint8Array>
    | null = null;
  #protocol: BaseProtocol;
  #loop: LoopCore;
  #extra: Record<string, unknown>;
  #closing = false;
  #lost = false;
  #readFlow = new ReadFlow(
    () => this.#closing,
    () => {},
    () => this.#wake(),
  );
  #wakeReader: (() => void) | null = null;
  #readOp: Promise<unknown> | null = null;

  constructor(
    stream: ReadableStream<Uint8Array>,
    protocol: BaseProtocol,
    options?: PipeTransportOptions,
  ) {
    const { loop, extra = {} } = checkKnownOptions(options, ["loop", "extra"]);
    this.#stream = stream;
    this.#protocol = protocol;
    this.#loop = loop ?? currentLoop();
    this.#extra = extra;
    try {
      this.#reader = stream.getReader({ mode: "byob" });
    } catch {
      this.#reader = stream.getReader();
    }
    try {
      protocol.connectionMade(this);
    } catch (error) {
      this.#fatal(error, "Exception in protocol.connectionMade()");
      return;
    }
    queueMicrotask(() => this.#readLoop());
  }

  /** `"pipe"`: the stream; other names give `fallback`. */
  getExtraInfo(name: string, fallback?: unknown): unknown {
    // The pipe given to connect*Pipe (asyncio's), else the stream.
    if (name === "pipe") return this.#extra.pipe ?? this.#stream;
    return extraInfo(this.#extra, name, fallback);
  }

  /** Whether the transport is closing or closed. */
  isClosing(): boolean {
    return this.#closing;
  }

  /** Stops reading and closes the pipe; `connectionLost(null)` follows. */
  close(): void {
    if (this.#closing) return;
    this.#closing = true;
    this.#wake();
    this.#shutdown(null);
  }

  /** Replaces the protocol. */
  setProtocol(protocol: BaseProtocol): void {
    this.#protocol = protocol;
  }

  /** The protocol. */
  getProtocol(): BaseProtocol {
    return this.#protocol;
  }

  /** Whether the transport is reading (not paused, not closing). */
  isReading(): boolean {
    return this.#readFlow.isReading();
  }

  /** No `dataReceived` until `resumeReading()`, even for a read in flight. */
  pauseReading(): void {
    this.#readFlow.pause();
  }

  /** Resumes reading. */
  resumeReading(): void {
    this.#readFlow.resume();
  }

  #wake(): void {
    const wake = this.#wakeReader;
    if (wake !== null) {
      this.#wakeReader = null;
      wake();
    }
  }

  #waitForResume(): Promise<void> {
    return new Promise((resolve) => {
      this.#wakeReader = resolve;
    });
  }

  async #read(
    buffer: ArrayBuffer | null,
  ): Promise<ReadableStreamReadResult<Uint8Array>> {
    const reader = this.#reader!;
    if (buffer !== null) {
      return await (reader as ReadableStreamBYOBReader).read(
        new Uint8Array(buffer),
      ) as ReadableStreamReadResult<Uint8Array>;
    }
    return await (reader as ReadableStreamDefaultReader<Uint8Array>).read();
  }

  async #readLoop(): Promise<void> {
    const byob = typeof ReadableStreamBYOBReader === "function" &&
      this.#reader instanceof ReadableStreamBYOBReader;
    let buffer: ArrayBuffer | null = byob ? new ArrayBuffer(READ_SIZE) : null;
    while (!this.#closing) {
      if (this.#readFlow.paused) {
        await this.#waitForResume();
        continue;
      }
      let result: ReadableStreamReadResult<Uint8Array>;
      try {
        const op = this.#read(buffer);
        this.#readOp = op;
        result = await op;
      } catch (error) {
        this.#readOp = null;
        if (!this.#closing) this.#fatal(error, "Fatal read error on pipe");
        return;
      } finally {
        this.#readOp = null;
      }
      if (this.#closing) return;
      if (result.done) {
        this.#eof();
        return;
      }
      const value = result.value;
      if (!(value instanceof Uint8Array)) {
        this.#fatal(
          new TypeError("The pipe's stream must yield Uint8Array chunks"),
          "Fatal read error on pipe",
        );
        return;
      }
      if (value.length === 0) {
        if (byob) buffer = value.buffer as ArrayBuffer;
        continue;
      }
      let data: Uint8Array;
      if (!byob || value.length >= HANDOVER_SIZE) {
        data = value;
        if (byob) buffer = new ArrayBuffer(READ_SIZE);
      } else {
        data = value.slice();
        buffer = value.buffer as ArrayBuffer;
      }
      // A read that was in flight when pauseReading() was called: hold it.
      while (this.#readFlow.paused && !this.#closing) {
        await this.#waitForResume();
      }
      if (this.#closing) return;
      try {
        const protocol = this.#protocol as Protocol;
        if (timedElsewhere.has(protocol)) protocol.dataReceived(data);
        else {
          timedCall(
            this.#loop,
            () => protocolCallback(protocol, "dataReceived"),
            () => protocol.dataReceived(data),
          );
        }
      } catch (error) {
        this.#fatal(error, "Exception in protocol.dataReceived()");
        return;
      }
    }
  }

  #eof(): void {
    this.#closing = true;
    try {
      callEofReceived(this.#protocol);
    } catch (error) {
      this.#fatal(error, "Exception in protocol.eofReceived()");
      return;
    }
    this.#shutdown(null);
  }

  #report(message: string, exception: unknown): void {
    reportError(this.#loop, this, this.#protocol, message, exception);
  }

  #fatal(error: unknown, message: string): void {
    const exc = toError(error);
    if (!isQuietError(exc)) this.#report(message, exc);
    this.#closing = true;
    this.#wake();
    this.#shutdown(exc);
  }

  /** Cancels the stream, waits for the read in flight, then connectionLost. */
  #shutdown(exc: Error | null): void {
    if (this.#lost) return;
    this.#lost = true;
    const reader = this.#reader;
    const pending = this.#readOp;
    const cancel = reader === null
      ? Promise.resolve()
      : reader.cancel().catch(() => {});
    Promise.all([cancel, pending?.catch(() => {})]).then(() => {
      try {
        reader?.releaseLock();
      } catch {
        // Already released.
      }
      callConnectionLost(this.#loop, this, this.#protocol, exc);
    });
  }
}

/**
 * The write end of a pipe: queues bytes (copied) into a
 * `WritableStream<Uint8Array>` with one write in flight, coalescing what is
 * written meanwhile, with asyncio's write flow control (`pauseWriting()`
 * above 64 KiB, `resumeWriting()` at 16 KiB). `writeEof()` closes the pipe
 * after the queued bytes, as asyncio's pipes do. A failed write (the
 * reader went away: `BrokenPipe`) ends the transport with that error.
 *
 * Once the pipe has ended other than by `close()`, `writeEof()` or
 * `abort()` — the reader closed it, a write failed, or
 * {@linkcode WritePipeTransport.peerClosed} was called — `write()` drops
 * the bytes, as asyncio's `_UnixWritePipeTransport` does: five such writes
 * pass quietly, the sixth is reported once to the loop's exception handler.
 */
export class WritePipeTransport implements WriteTransport {
  #stream: WritableStream<Uint8Array>;
  #writer: WritableStreamDefaultWriter<Uint8Array>;
  #protocol: BaseProtocol;
  #loop: LoopCore;
  #extra: Record<string, unknown>;
  #closing = false;
  #closedByUser = false;
  #lost = false;
  #dropped = 0;
  #pending = new CoalescingBuffer();
  #inflight = 0;
  #writing = false;
  #flow = new WriteFlow((message, exception) =>
    this.#report(message, exception)
  );

  constructor(
    stream: WritableStream<Uint8Array>,
    protocol: BaseProtocol,
    options?: PipeTransportOptions,
  ) {
    const { loop, extra = {} } = checkKnownOptions(options, ["loop", "extra"]);
    this.#stream = stream;
    this.#writer = stream.getWriter();
    this.#protocol = protocol;
    this.#loop = loop ?? currentLoop();
    this.#extra = extra;
    try {
      protocol.connectionMade(this);
    } catch (error) {
      this.#fatal(error, "Exception in protocol.connectionMade()");
    }
  }

  /** `"pipe"`: the stream; other names give `fallback`. */
  getExtraInfo(name: string, fallback?: unknown): unknown {
    // The pipe given to connect*Pipe (asyncio's), else the stream.
    if (name === "pipe") return this.#extra.pipe ?? this.#stream;
    return extraInfo(this.#extra, name, fallback);
  }

  /** Whether the transport is closing or closed. */
  isClosing(): boolean {
    return this.#closing;
  }

  /**
   * Writes what is queued, then closes the pipe; `connectionLost(null)`
   * follows. Later writes throw `BadResource`, even if the pipe had ended
   * already.
   */
  close(): void {
    this.#closedByUser = true;
    if (this.#closing) return;
    this.#closing = true;
    if (!this.#writing) this.#closeStream();
  }

  /** Replaces the protocol. */
  setProtocol(protocol: BaseProtocol): void {
    this.#protocol = protocol;
  }

  /** The protocol. */
  getProtocol(): BaseProtocol {
    return this.#protocol;
  }

  /**
   * Queues a copy of `data`; never blocks. `TypeError` for anything but a
   * `Uint8Array`; `BadResource` after `close()`, `writeEof()` or `abort()`.
   * Once the reader has closed the pipe (or a write failed), the bytes are
   * dropped, as in asyncio: the protocol is told by `connectionLost` (with
   * `BrokenPipe` if bytes were lost), and a `StreamWriter`'s `drain()`
   * rejects. The sixth dropped write is reported to the exception handler.
   */
  write(data: Uint8Array): void {
    assertBytes(data);
    if (this.#closing) {
      if (this.#closedByUser) {
        throw new Deno.errors.BadResource("Cannot write to a closed pipe");
      }
      this.#drop(data.length);
      return;
    }
    if (data.length === 0) return;
    this.#pending.append(data);
    if (!this.#writing) {
      this.#writing = true;
      queueMicrotask(() => this.#flush());
    }
    this.#maybePauseProtocol();
  }

  /** Queues each chunk of `list` in order. */
  writeLines(list: Iterable<Uint8Array>): void {
    for (const chunk of checkChunks(list)) this.write(chunk);
  }

  /** Closes the pipe once the queued bytes are written (as `close()`). */
  writeEof(): void {
    this.close();
  }

  /** Always `true`: a pipe's end of file is its closing. */
  canWriteEof(): boolean {
    return true;
  }

  /**
   * The reader closed its end (a child process exited): ends the transport
   * as asyncio does when its pipe is closed by the peer — what is queued is
   * still written (a write that fails ends it with `BrokenPipe`), then
   * `connectionLost`; later writes are dropped, not refused.
   */
  peerClosed(): void {
    if (this.#closing) return;
    this.#closing = true;
    if (!this.#writing) this.#closeStream();
  }

  /** Closes now, discarding what is queued; `connectionLost(null)` follows. */
  abort(): void {
    this.#closedByUser = true;
    this.#closing = true;
    // As asyncio: what was not written is dropped, so the buffer is empty.
    this.#pending.clear();
    this.#inflight = 0;
    if (this.#lost) return;
    this.#lost = true;
    this.#writer.abort().catch(() => {}).then(() => this.#connectionLost(null));
  }

  /** Sets the flow-control marks (default high 64 KiB, low high/4). */
  setWriteBufferLimits(limits?: { high?: number; low?: number }): void {
    this.#flow.setLimits(limits);
    this.#maybePauseProtocol();
  }

  /** Bytes queued and not yet written. */
  getWriteBufferSize(): number {
    return this.#pending.length + this.#inflight;
  }

  /** The flow-control marks as `[low, high]`. */
  getWriteBufferLimits(): [low: number, high: number] {
    return this.#flow.limits;
  }

  async #flush(): Promise<void> {
    try {
      while (this.#pending.length > 0 && !this.#lost) {
        const buffer = this.#pending.take();
        this.#inflight = buffer.length;
        // Never recycled: the stream may keep the buffer.
        await this.#writer.write(buffer);
        if (this.#lost) return;
        this.#inflight = 0;
        this.#maybeResumeProtocol();
      }
    } catch (error) {
      this.#inflight = 0;
      if (!this.#lost) this.#fatal(error, "Fatal write error on pipe");
      return;
    }
    this.#writing = false;
    if (!this.#lost && this.#closing) this.#closeStream();
  }

  #closeStream(): void {
    if (this.#lost) return;
    this.#lost = true;
    this.#writer.close().catch(() => {}).then(() => this.#connectionLost(null));
  }

  /** A write after the reader went away: dropped, as asyncio does. */
  #drop(size: number): void {
    if (size === 0) return;
    this.#dropped++;
    if (this.#dropped === QUIET_DROPPED_WRITES + 1) {
      this.#report(
        `Pipe closed by peer or a write failed: ${this.#dropped} writes were dropped`,
        undefined,
      );
    }
  }

  #maybePauseProtocol(): void {
    this.#flow.pauseIfAbove(this.getWriteBufferSize(), this.#protocol);
  }

  #maybeResumeProtocol(): void {
    this.#flow.resumeIfBelow(this.getWriteBufferSize(), this.#protocol);
  }

  #report(message: string, exception: unknown): void {
    reportError(this.#loop, this, this.#protocol, message, exception);
  }

  #fatal(error: unknown, message: string): void {
    const exc = toError(error);
    if (!isQuietError(exc)) this.#report(message, exc);
    this.#closing = true;
    this.#pending.clear();
    if (this.#lost) return;
    this.#lost = true;
    this.#writer.abort(exc).catch(() => {}).then(() =>
      this.#connectionLost(exc)
    );
  }

  #connectionLost(exc: Error | null): void {
    try {
      this.#writer.releaseLock();
    } catch {
      // Already released.
    }
    callConnectionLost(this.#loop, this, this.#protocol, exc);
  }
}

function readableOf(pipe: unknown): ReadableStream<Uint8Array> {
  if (pipe instanceof ReadableStream) return pipe;
  if (pipe !== null && typeof pipe === "object" && "readable" in pipe) {
    const readable = (pipe as { readable: unknown }).readable;
    if (readable instanceof ReadableStream) return readable;
  }
  throw new TypeError(
    `The pipe must be a ReadableStream or have a readable stream, got ${
      describe(pipe)
    }`,
  );
}

function writableOf(pipe: unknown): WritableStream<Uint8Array> {
  if (pipe instanceof WritableStream) return pipe;
  if (pipe !== null && typeof pipe === "object" && "writable" in pipe) {
    const writable = (pipe as { writable: unknown }).writable;
    if (writable instanceof WritableStream) return writable;
  }
  throw new TypeError(
    `The pipe must be a WritableStream or have a writable stream, got ${
      describe(pipe)
    }`,
  );
}

/** `connectReadPipe` for `loop`. */
export function connectReadPipe<P extends BaseProtocol>(
  loop: LoopCore,
  protocolFactory: () => P,
  pipe:
    | ReadableStream<Uint8Array>
    | { readonly readable: ReadableStream<Uint8Array> },
): Promise<[ReadTransport, P]> {
  try {
    checkFunction(protocolFactory, "protocol factory");
    const stream = readableOf(pipe);
    const protocol = protocolFactory();
    return Promise.resolve([
      new ReadPipeTransport(stream, protocol, { loop, extra: { pipe } }),
      protocol,
    ]);
  } catch (error) {
    return Promise.reject(error);
  }
}

/** `connectWritePipe` for `loop`. */
export function connectWritePipe<P extends BaseProtocol>(
  loop: LoopCore,
  protocolFactory: () => P,
  pipe:
    | WritableStream<Uint8Array>
    | { readonly writable: WritableStream<Uint8Array> },
): Promise<[WriteTransport, P]> {
  try {
    checkFunction(protocolFactory, "protocol factory");
    const stream = writableOf(pipe);
    const protocol = protocolFactory();
    return Promise.resolve([
      new WritePipeTransport(stream, protocol, { loop, extra: { pipe } }),
      protocol,
    ]);
  } catch (error) {
    return Promise.reject(error);
  }
}
