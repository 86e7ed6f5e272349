// StreamReader, as asyncio.streams: a byte buffer fed by a protocol, read by
// coroutines. Public through streams.ts (with its errors, _stream_errors.ts).

import type { ReadTransport } from "./_transport_types.ts";
import {
  assertBytes,
  checkKnownOptions,
  describe,
  signalOption,
} from "./_validate.ts";
import { ByteQueue } from "./_byte_queue.ts";
import { IncompleteReadError, LimitOverrunError } from "./_stream_errors.ts";
import { errorRepr, type InspectFn, transportRepr } from "./_stream_repr.ts";

/** asyncio's default buffer limit: 64 KiB. */
const DEFAULT_LIMIT = 64 * 1024;
/** The most bytes one pull of `StreamReader.readable` takes. */
const READABLE_CHUNK = 64 * 1024;

const EMPTY = new Uint8Array(0);
const NEWLINE = new Uint8Array([0x0a]);
const encoder = new TextEncoder();

/** Options of the {@linkcode StreamReader} constructor. */
export interface StreamReaderOptions {
  /**
   * Buffer limit in bytes (default 64 KiB): the longest line or record
   * `readUntil()`/`readLine()` accept, and half the size at which the
   * reader pauses its transport.
   */
  limit?: number;
}

/** Options of every read of a {@linkcode StreamReader}. */
export interface StreamReadOptions {
  /**
   * Cancels the wait. An aborted read rejects with the signal's reason and
   * consumes nothing: the next read gets every byte.
   */
  signal?: AbortSignal;
}

/**
 * A separator for {@linkcode StreamReader.readUntil}: bytes or a string
 * (UTF-8).
 *
 * @example Separators for CRLF or LF lines
 * ```ts
 * import type { StreamSeparator } from "@aionet/aionet/streams";
 *
 * const lineEnds: StreamSeparator[] = ["\r\n", new Uint8Array([0x0a])];
 * ```
 */
export type StreamSeparator = Uint8Array | string;

interface Waiter {
  /** The read that waits, for `Deno.inspect()`. */
  name: string;
  resolve: () => void;
  reject: (reason: unknown) => void;
}

/** Checks `limit` as asyncio does (`RangeError` for `limit <= 0`). */
export function checkLimit(limit: unknown): number {
  if (limit === undefined) return DEFAULT_LIMIT;
  if (typeof limit !== "number" || Number.isNaN(limit)) {
    throw new TypeError(`The limit must be a number, got ${describe(limit)}`);
  }
  if (limit <= 0 || !Number.isSafeInteger(limit)) {
    throw new RangeError(
      `The limit must be a whole number greater than 0, got ${limit}`,
    );
  }
  return limit;
}

function checkSize(n: unknown, what: string): number {
  if (typeof n !== "number" || Number.isNaN(n)) {
    throw new TypeError(`The ${what} must be a number, got ${describe(n)}`);
  }
  if (!Number.isInteger(n)) {
    throw new RangeError(`The ${what} must be an integer, got ${n}`);
  }
  return n;
}

/**
 * String separators already encoded (a protocol passes the same few again
 * and again; a fresh small array costs more than the search). Bounded;
 * the arrays are only searched for, never handed out.
 */
const encodedSeparators = new Map<string, Uint8Array>();
const MAX_ENCODED_SEPARATORS = 64;

function encodeSeparator(separator: string): Uint8Array {
  let bytes = encodedSeparators.get(separator);
  if (bytes === undefined) {
    bytes = encoder.encode(separator);
    if (encodedSeparators.size >= MAX_ENCODED_SEPARATORS) {
      encodedSeparators.clear();
    }
    encodedSeparators.set(separator, bytes);
  }
  return bytes;
}

function toSeparator(separator: unknown): Uint8Array {
  let bytes: Uint8Array;
  if (typeof separator === "string") bytes = encodeSeparator(separator);
  else if (separator instanceof Uint8Array) bytes = separator;
  else {
    throw new TypeError(
      `The separator must be a Uint8Array or a string, got ${
        describe(separator)
      }`,
    );
  }
  if (bytes.length === 0) {
    throw new RangeError("The separator must be at least one byte long");
  }
  return bytes;
}

/** Separators as bytes, shortest first (stable, so ties keep their order). */
function toSeparators(separator: unknown): Uint8Array[] {
  if (Array.isArray(separator)) {
    if (separator.length === 0) {
      throw new RangeError("The separator list must not be empty");
    }
    const list = separator.map(toSeparator);
    return list.sort((a, b) => a.length - b.length);
  }
  return [toSeparator(separator)];
}

let feedOwned: (reader: StreamReader, data: Uint8Array) => void;
let bufferedSize: (reader: StreamReader) => number;
let swapTransport: (reader: StreamReader, transport: ReadTransport) => void;

/** Bytes buffered and not yet read (internal: the STARTTLS guard). */
export function readerBufferedSize(reader: StreamReader): number {
  return bufferedSize(reader);
}

/** Points the reader's flow control at a new transport (after startTls). */
export function replaceReaderTransport(
  reader: StreamReader,
  transport: ReadTransport,
): void {
  swapTransport(reader, transport);
}

/**
 * Feeds `data` to `reader` without copying it: the caller gives up the
 * array (a transport's `dataReceived` buffer). For the protocol adapter.
 */
export function feedOwnedData(reader: StreamReader, data: Uint8Array): void {
  feedOwned(reader, data);
}

/**
 * Reads bytes from a stream, as asyncio's `StreamReader`: `read`,
 * `readLine`, `readExactly`, `readUntil` and `for await` over lines.
 *
 * A protocol feeds it (`feedData`, `feedEof`, `setException`); usually you
 * get one from `openConnection` or `startServer`, but a reader fed by hand
 * is handy in tests. Every read takes `{ signal }`: an aborted read rejects
 * with the signal's reason and consumes nothing.
 *
 * One consumer at a time: only one read may wait for data at a time (a
 * second one rejects with `Deno.errors.Busy`), and while
 * {@linkcode StreamReader.readable} is in use (locked, or holding data it
 * pulled) every direct read rejects with `Deno.errors.Busy`.
 *
 * When more than 2 × `limit` bytes are buffered the reader pauses its
 * transport, and resumes it once reads bring the buffer down to `limit`.
 *
 * The caller owns what a read returns: nothing else writes to it. Short
 * results (under 4 KiB, a line say) are views of a shared pool buffer, as
 * Node's `Buffer` pool: use the array itself, not its `buffer`, which holds
 * other reads' bytes too.
 *
 * `Deno.inspect(reader)` (and `console.log`) shows the live state as
 * asyncio's `repr()` does: `<StreamReader 12 bytes eof limit=1024
 * waiter=<pending read> exception=… transport=<…> paused>`.
 *
 * @example Lines from a buffer fed by hand
 * ```ts
 * import { StreamReader } from "@aionet/aionet/streams";
 *
 * const reader = new StreamReader();
 * reader.feedData(new TextEncoder().encode("one\ntwo\n"));
 * reader.feedEof();
 * for await (const line of reader) {
 *   console.log(new TextDecoder().decode(line).trimEnd()); // "one", "two"
 * }
 * ```
 */
export class StreamReader {
  #limit: number;
  #buffer = new ByteQueue();
  #eof = false;
  #exception: Error | null = null;
  #transport: ReadTransport | null = null;
  #paused = false;
  #waiter: Waiter | null = null;
  // The Web Streams view (`readable`), made on first use.
  #readable: ReadableStream<Uint8Array<ArrayBuffer>> | null = null;
  #streamController:
    | ReadableStreamDefaultController<Uint8Array<ArrayBuffer>>
    | null = null;
  #streamPulling = false;
  /** The readable closed, errored or was cancelled: direct reads are free. */
  #streamDone = false;

  static {
    feedOwned = (reader, data) => reader.#feed(data, true);
    bufferedSize = (reader) => reader.#buffer.size;
    swapTransport = (reader, transport) => {
      reader.#transport = transport;
    };
  }

  /**
   * Makes an empty reader. `limit` must be a number greater than 0
   * (`TypeError`/`RangeError` otherwise).
   *
   * @example Using `new StreamReader()`
   * ```ts
   * import { StreamReader } from "@aionet/aionet/streams";
   *
   * const reader = new StreamReader({ limit: 1024 });
   * console.log(reader.atEof()); // false
   * ```
   */
  constructor(options?: StreamReaderOptions) {
    this.#limit = checkLimit(checkKnownOptions(options, ["limit"]).limit);
  }

  /** The error set by `setException()` (or the connection's error), or `null`. */
  exception(): Error | null {
    return this.#exception;
  }

  /**
   * Sets the error every later read throws, and rejects a waiting read with
   * it. The protocol calls this when the connection fails.
   */
  setException(exc: Error): void {
    if (!(exc instanceof Error)) {
      throw new TypeError(
        `The exception must be an Error, got ${describe(exc)}`,
      );
    }
    this.#exception = exc;
    const waiter = this.#waiter;
    if (waiter !== null) {
      this.#waiter = null;
      waiter.reject(exc);
    }
  }

  /**
   * Sets the transport the reader pauses and resumes for flow control. Can
   * be set once.
   */
  setTransport(transport: ReadTransport): void {
    if (
      transport === null || typeof transport !== "object" ||
      typeof transport.pauseReading !== "function" ||
      typeof transport.resumeReading !== "function"
    ) {
      throw new TypeError(
        `The transport must be a ReadTransport, got ${describe(transport)}`,
      );
    }
    if (this.#transport !== null) {
      throw new Deno.errors.AlreadyExists("The transport is already set");
    }
    this.#transport = transport;
  }

  /** Marks the end of the stream and wakes a waiting read. */
  feedEof(): void {
    this.#eof = true;
    this.#wakeup();
  }

  /** Whether EOF was fed and every buffered byte was read. */
  atEof(): boolean {
    return this.#eof && this.#buffer.size === 0;
  }

  /**
   * Appends `data` to the buffer (copied) and wakes a waiting read. Throws
   * `TypeError` for anything but a `Uint8Array` and `BadResource` after
   * `feedEof()`.
   */
  feedData(data: Uint8Array): void {
    assertBytes(data);
    this.#feed(data, false);
  }

  /**
   * Reads up to `n` bytes: as soon as at least one byte is buffered, returns
   * what there is (at most `n`). Returns an empty array at EOF and for
   * `n = 0`. A negative `n` (default `-1`) reads everything up to EOF.
   * Not bound by `limit`.
   */
  read(n: number = -1, options?: StreamReadOptions): Promise<Uint8Array> {
    try {
      checkSize(n, "size");
      const signal = signalOption(options);
      signal?.throwIfAborted();
      if (this.#readable !== null) this.#checkStreamIdle("read");
      return this.#read(n, signal, "read");
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /**
   * Reads one line, up to and including `"\n"`. At EOF returns the partial
   * last line (without `"\n"`), or an empty array when nothing is left.
   *
   * A line longer than `limit` throws {@linkcode LimitOverrunError}; as in
   * asyncio, the buffer is then cut through the newline if one was found,
   * or emptied otherwise.
   */
  readLine(options?: StreamReadOptions): Promise<Uint8Array> {
    // A whole line already buffered: no async call (line protocols read
    // many lines out of one chunk).
    if (options === undefined) {
      const line = this.#takeBufferedLine();
      if (line !== null) return Promise.resolve(line);
    }
    return this.#readLine(options);
  }

  /**
   * The first line in the buffer, taken, if it is there whole and within
   * `limit` (what `#readUntil` would return at once); otherwise null and
   * nothing is consumed.
   */
  #takeBufferedLine(): Uint8Array | null {
    if (!this.#takesAtOnce) return null;
    const buffer = this.#buffer;
    const size = buffer.size;
    if (size === 0) return null;
    const to = size <= this.#limit ? size : this.#limit + 1;
    const at = buffer.find(NEWLINE, 0, to);
    if (at === -1) return null;
    return this.#take(at + 1);
  }

  async #readLine(options: StreamReadOptions | undefined): Promise<Uint8Array> {
    const signal = signalOption(options);
    signal?.throwIfAborted();
    if (this.#readable !== null) this.#checkStreamIdle("readLine");
    const newline = [NEWLINE];
    try {
      return await this.#readUntil(newline, signal);
    } catch (error) {
      if (error === this.#exception || error === signal?.reason) throw error;
      if (error instanceof IncompleteReadError) return error.partial;
      if (error instanceof LimitOverrunError) {
        const buffer = this.#buffer;
        const at = error.consumed;
        buffer.drop(
          at < buffer.size && buffer.byteAt(at) === 0x0a ? at + 1 : buffer.size,
        );
        this.#maybeResumeTransport();
      }
      throw error;
    }
  }

  /**
   * Reads exactly `n` bytes. At EOF before `n` bytes, throws
   * {@linkcode IncompleteReadError} with the bytes read (`expected` is `n`).
   * A negative `n` is a `RangeError`. Not bound by `limit`.
   */
  readExactly(n: number, options?: StreamReadOptions): Promise<Uint8Array> {
    // Enough already buffered: no async call (framed protocols read a
    // header and a body out of one chunk).
    if (
      options === undefined && this.#takesAtOnce && Number.isInteger(n) &&
      n > 0 && this.#buffer.size >= n
    ) {
      return Promise.resolve(this.#take(n));
    }
    return this.#readExactly(n, options);
  }

  async #readExactly(
    n: number,
    options: StreamReadOptions | undefined,
  ): Promise<Uint8Array> {
    checkSize(n, "size");
    if (n < 0 || !Number.isSafeInteger(n)) {
      throw new RangeError(
        `The size must be a non-negative safe integer, got ${n}`,
      );
    }
    const signal = signalOption(options);
    signal?.throwIfAborted();
    if (this.#readable !== null) this.#checkStreamIdle("readExactly");
    if (this.#exception !== null) throw this.#exception;
    if (n === 0) return EMPTY;
    const buffer = this.#buffer;
    while (buffer.size < n) {
      if (this.#eof) throw new IncompleteReadError(buffer.take(buffer.size), n);
      await this.#waitForData("readExactly", signal);
    }
    return this.#take(n);
  }

  /**
   * Reads up to and including `separator` (bytes or a UTF-8 string; default
   * `"\n"`). With an array of separators, the match that ends first wins;
   * on a tie, the shorter separator (as asyncio 3.13).
   *
   * At EOF without a separator, throws {@linkcode IncompleteReadError}
   * (`expected` is `null`) with everything that was buffered. When the
   * separator is not found within `limit` bytes, throws
   * {@linkcode LimitOverrunError} and leaves the data in the buffer. An
   * empty separator is a `RangeError`.
   */
  readUntil(
    separator: StreamSeparator | StreamSeparator[] = "\n",
    options?: StreamReadOptions,
  ): Promise<Uint8Array> {
    try {
      const separators = toSeparators(separator);
      const signal = signalOption(options);
      signal?.throwIfAborted();
      if (this.#readable !== null) this.#checkStreamIdle("readUntil");
      return this.#readUntil(separators, signal);
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /**
   * Lines until EOF, as `async for line in reader`: each line ends with
   * `"\n"` except perhaps the last.
   */
  async *[Symbol.asyncIterator](): AsyncGenerator<Uint8Array, void, undefined> {
    for (;;) {
      // A line already buffered is taken without awaiting a promise.
      const line = this.#takeBufferedLine() ?? await this.readLine();
      if (line.length === 0) {
        return;
      }
      yield line;
    }
  }

  /**
   * The reader as a Web `ReadableStream` of byte chunks, to compose with
   * the platform: `pipeThrough(new TextDecoderStream())`,
   * `pipeThrough(new CompressionStream("gzip"))`, `pipeTo(writer.writable)`,
   * a `fetch` or `Response` body. Made on first access; every access
   * returns the same stream.
   *
   * - Backpressure: the stream pulls only when its consumer asks (its
   *   high-water mark is 0), each pull taking what `read(65536)` returns.
   *   A slow consumer leaves the bytes in the reader's buffer, which pauses
   *   the transport above 2 × `limit` as usual.
   * - The chunks are the arrays `read()` returns, not copies. They may be
   *   views into a larger buffer: copy a chunk before transferring its
   *   `ArrayBuffer` (`postMessage` transfer lists, a byte stream's
   *   `enqueue()`).
   * - The stream closes at EOF and errors with the reader's exception.
   * - `cancel(reason)` closes the transport, if the reader has one (the
   *   consumer is gone, as when asyncio code drops a connection); a read
   *   the stream had waiting consumes nothing.
   * - While the stream is locked, pulling, or holding a chunk it pulled,
   *   direct reads (`read`, `readLine`, `readExactly`, `readUntil`,
   *   `for await`) reject with `Deno.errors.Busy`: two consumers would
   *   each get part of the bytes. Once the stream is released with nothing
   *   pulled, closed, errored or cancelled, direct reads work again.
   *
   * @example Decode text as it arrives
   * ```ts
   * import { StreamReader } from "@aionet/aionet/streams";
   *
   * const reader = new StreamReader();
   * reader.feedData(new TextEncoder().encode("héllo "));
   * reader.feedData(new TextEncoder().encode("wörld"));
   * reader.feedEof();
   * let text = "";
   * for await (const part of reader.readable.pipeThrough(new TextDecoderStream())) {
   *   text += part;
   * }
   * console.log(text); // "héllo wörld"
   * ```
   */
  get readable(): ReadableStream<Uint8Array<ArrayBuffer>> {
    return this.#readable ??= this.#makeReadable();
  }

  /**
   * Shows the live state as asyncio's `StreamReader.__repr__`: bytes
   * buffered, `eof`, `limit` (when not the default), the waiting read, the
   * exception, the transport, `paused`; plus `readable` while the Web
   * stream is in use.
   *
   * @example Inspecting the live state
   * ```ts
   * import { StreamReader } from "@aionet/aionet/streams";
   *
   * const reader = new StreamReader({ limit: 1024 });
   * reader.feedData(new Uint8Array(3));
   * reader.feedEof();
   * console.log(Deno.inspect(reader)); // "<StreamReader 3 bytes eof limit=1024>"
   * ```
   */
  [Symbol.for("Deno.customInspect")](
    _inspect?: InspectFn,
    _options?: unknown,
  ): string {
    const info = ["StreamReader"];
    const size = this.#buffer.size;
    if (size > 0) info.push(`${size} bytes`);
    if (this.#eof) info.push("eof");
    if (this.#limit !== DEFAULT_LIMIT) info.push(`limit=${this.#limit}`);
    if (this.#waiter !== null) {
      const name = this.#waiter.name;
      info.push(
        `waiter=<pending ${name === "readable" ? "readable pull" : name}>`,
      );
    }
    if (this.#exception !== null) {
      info.push(`exception=${errorRepr(this.#exception)}`);
    }
    if (this.#transport !== null) {
      info.push(`transport=${transportRepr(this.#transport)}`);
    }
    if (this.#paused) info.push("paused");
    if (this.#readable !== null && this.#streamInUse()) info.push("readable");
    return `<${info.join(" ")}>`;
  }

  // ---- internals ----

  #makeReadable(): ReadableStream<Uint8Array<ArrayBuffer>> {
    // Aborted when the stream is cancelled: wakes a waiting pull.
    const abort = new AbortController();
    return new ReadableStream<Uint8Array<ArrayBuffer>>({
      start: (controller) => {
        this.#streamController = controller;
      },
      pull: async (controller) => {
        this.#streamPulling = true;
        try {
          const chunk = await this.#read(
            READABLE_CHUNK,
            abort.signal,
            "readable",
          );
          if (this.#streamDone) return;
          if (chunk.length > 0) {
            // The buffer holds ArrayBuffer-backed arrays only (feedData
            // copies; transports hand over fresh buffers).
            controller.enqueue(chunk as Uint8Array<ArrayBuffer>);
            return;
          }
          this.#streamDone = true;
          controller.close();
        } catch (error) {
          // Cancelled meanwhile: the stream is gone, nothing to report.
          if (this.#streamDone) return;
          this.#streamDone = true;
          throw error;
        } finally {
          this.#streamPulling = false;
        }
      },
      cancel: (reason) => {
        this.#streamDone = true;
        abort.abort(reason);
        this.#transport?.close();
      },
    }, { highWaterMark: 0 });
  }

  /** Whether the readable may take bytes a direct read would also take. */
  #streamInUse(): boolean {
    if (this.#streamDone) return false;
    const desired = this.#streamController?.desiredSize ?? 0;
    return this.#readable!.locked || this.#streamPulling || desired < 0;
  }

  #checkStreamIdle(name: string): void {
    if (this.#streamInUse()) {
      throw new Deno.errors.Busy(
        `${name}() called while reader.readable is in use: read through the stream, or release its lock before it pulled data`,
      );
    }
  }

  async #read(
    n: number,
    signal: AbortSignal | undefined,
    name: string,
  ): Promise<Uint8Array> {
    if (this.#exception !== null) throw this.#exception;
    if (n === 0) return EMPTY;
    const buffer = this.#buffer;
    if (n < 0) {
      while (!this.#eof) await this.#waitForData(name, signal);
      return this.#take(buffer.size);
    }
    while (buffer.size === 0 && !this.#eof) {
      await this.#waitForData(name, signal);
    }
    return this.#take(Math.min(n, buffer.size));
  }

  async #readUntil(
    separators: Uint8Array[],
    signal: AbortSignal | undefined,
  ): Promise<Uint8Array> {
    signal?.throwIfAborted();
    if (this.#exception !== null) throw this.#exception;
    const buffer = this.#buffer;
    const minLength = separators[0].length;
    const maxLength = separators[separators.length - 1].length;
    // Bytes from the start of the buffer known to hold no separator.
    let offset = 0;
    let matchStart = -1;
    let matchEnd = -1;
    for (;;) {
      const length = buffer.size;
      if (length - offset >= minLength) {
        for (const sep of separators) {
          // Only a match that ends strictly earlier can beat the best one.
          const to = matchEnd === -1 ? length : matchEnd - 1;
          const at = buffer.find(sep, offset, to);
          if (at !== -1) {
            matchStart = at;
            matchEnd = at + sep.length;
          }
        }
        if (matchEnd !== -1) break;
        offset = Math.max(0, length + 1 - maxLength);
        if (offset > this.#limit) {
          throw new LimitOverrunError(
            "Separator is not found, and chunk exceed the limit",
            offset,
          );
        }
      }
      if (this.#eof) {
        throw new IncompleteReadError(buffer.take(length), null);
      }
      await this.#waitForData("readUntil", signal);
    }
    if (matchStart > this.#limit) {
      throw new LimitOverrunError(
        "Separator is found, but chunk is longer than limit",
        matchStart,
      );
    }
    return this.#take(matchEnd);
  }

  #feed(data: Uint8Array, owned: boolean): void {
    if (this.#eof) {
      throw new Deno.errors.BadResource("Cannot feed data after feedEof()");
    }
    if (data.length === 0) return;
    this.#buffer.push(data, owned);
    this.#wakeup();
    const transport = this.#transport;
    if (
      transport !== null && !this.#paused &&
      this.#buffer.size > 2 * this.#limit
    ) {
      transport.pauseReading();
      this.#paused = true;
    }
  }

  #wakeup(): void {
    const waiter = this.#waiter;
    if (waiter !== null) {
      this.#waiter = null;
      waiter.resolve();
    }
  }

  /**
   * No error and no Web stream in use: a read may take what is buffered
   * without the checks and waits of the full path.
   */
  get #takesAtOnce(): boolean {
    return this.#exception === null && this.#readable === null;
  }

  /** Takes `n` buffered bytes; resumes the transport if that made room. */
  #take(n: number): Uint8Array {
    const data = this.#buffer.take(n);
    this.#maybeResumeTransport();
    return data;
  }

  #maybeResumeTransport(): void {
    if (this.#paused && this.#buffer.size <= this.#limit) {
      this.#paused = false;
      this.#transport!.resumeReading();
    }
  }

  /**
   * Waits for `feedData`, `feedEof` or `setException`, or for `signal`.
   * Without a signal it returns the waiter's own promise (no async frame of
   * its own: one microtask less per wait); its errors are thrown at once,
   * which the awaiting caller sees as a rejection all the same.
   */
  #waitForData(
    name: string,
    signal: AbortSignal | undefined,
  ): Promise<void> {
    if (this.#exception !== null) throw this.#exception;
    if (this.#waiter !== null) {
      throw new Deno.errors.Busy(
        `${
          name === "readable" ? "reader.readable pulled" : `${name}() called`
        } while another read is already waiting for incoming data`,
      );
    }
    // Waiting while paused would deadlock (readExactly(n) with n > limit).
    if (this.#paused) {
      this.#paused = false;
      this.#transport!.resumeReading();
    }
    const { promise, resolve, reject } = Promise.withResolvers<void>();
    const waiter: Waiter = { name, resolve, reject };
    this.#waiter = waiter;
    if (signal === undefined) return promise;
    return this.#waitOrAbort(promise, waiter, signal);
  }

  /** The wait of `#waitForData` with a signal that can cancel it. */
  async #waitOrAbort(
    promise: Promise<void>,
    waiter: Waiter,
    signal: AbortSignal,
  ): Promise<void> {
    const reject = waiter.reject;
    const onAbort = () => {
      if (this.#waiter === waiter) this.#waiter = null;
      reject(signal.reason);
    };
    signal.addEventListener("abort", onAbort, { once: true });
    try {
      await promise;
    } finally {
      signal.removeEventListener("abort", onAbort);
    }
    // Woken by data, but aborted before this read could go on: take nothing.
    signal.throwIfAborted();
  }
}
