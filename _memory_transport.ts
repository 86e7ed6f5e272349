// Two connected in-memory stream transports (testing.ts'
// createTransportPair): the StreamTransport's callback order, write flow
// control, read pausing and error rules, with a bounded in-memory "socket
// buffer" between the two ends instead of a kernel. Public through
// testing.ts. The helpers at the top are shared with the recording
// transport.

import type { BaseProtocol, BufferedProtocol, Protocol } from "./protocols.ts";
import { currentLoop, type LoopCore } from "./_loop_core.ts";
import {
  assertBytes,
  checkKnownOptions,
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
  getProtocolBuffer,
  isBuffered,
  isQuietError,
  reportError,
} from "./_transport_common.ts";

/** Default capacity of each direction's in-memory socket buffer. */
const DEFAULT_SOCKET_BUFFER = 64 * 1024;
/** Default largest chunk handed to one `dataReceived` (StreamTransport's read size). */
const DEFAULT_READ_SIZE = 64 * 1024;

/** Default address of side A (the client, by convention). */
export function defaultAddrA(): Deno.NetAddr {
  return { transport: "tcp", hostname: "127.0.0.1", port: 49152 };
}

/** Default address of side B (the server, by convention). */
export function defaultAddrB(): Deno.NetAddr {
  return { transport: "tcp", hostname: "127.0.0.1", port: 8888 };
}

/** Throws `TypeError` unless `addr` looks like a `Deno.Addr`. */
export function checkAddr(addr: unknown, what: string): Deno.Addr {
  if (
    addr === null || typeof addr !== "object" ||
    typeof (addr as { transport?: unknown }).transport !== "string"
  ) {
    throw new TypeError(
      `The ${what} must be a Deno.Addr, got ${describe(addr)}`,
    );
  }
  return addr as Deno.Addr;
}

/** A size option: a positive integer, or `Infinity` where allowed. */
function checkSize(
  value: unknown,
  what: string,
  fallback: number,
  allowInfinity: boolean,
): number {
  if (value === undefined) return fallback;
  if (typeof value !== "number" || Number.isNaN(value)) {
    throw new TypeError(`The ${what} must be a number, got ${describe(value)}`);
  }
  const ok = value >= 1 &&
    (Number.isInteger(value) || (allowInfinity && value === Infinity));
  if (!ok) {
    throw new RangeError(
      `The ${what} must be an integer of at least 1${
        allowInfinity ? " (or Infinity)" : ""
      }, got ${value}`,
    );
  }
  return value;
}

/**
 * Options of `createTransportPair` (and of `createStreamPair` and
 * `openMemoryConnection`).
 */
export interface TransportPairOptions {
  /** The loop whose exception handler gets protocol errors (default: `getEventLoop()`). */
  loop?: LoopCore;
  /**
   * Side A's own address: its `"sockname"` and B's `"peername"`. Default
   * `{ transport: "tcp", hostname: "127.0.0.1", port: 49152 }`.
   */
  addrA?: Deno.Addr;
  /**
   * Side B's own address: its `"sockname"` and A's `"peername"`. Default
   * `{ transport: "tcp", hostname: "127.0.0.1", port: 8888 }`.
   */
  addrB?: Deno.Addr;
  /**
   * Bytes each direction holds between the writer's transport buffer and
   * the reader's protocol (the kernel's socket buffers, in a real
   * connection). While the reader is paused, up to this many bytes are
   * taken from the writer; the rest stays in the writer's buffer and
   * counts in its `getWriteBufferSize()`. Default 64 KiB; `Infinity` for
   * no limit. As on the Deno backend (whose writes are operations), a
   * write moves into this buffer a microtask later: until then all of it
   * counts in `getWriteBufferSize()`, so a large write pauses the protocol
   * at once (the native backend sends what the kernel takes at the call).
   */
  socketBufferSize?: number;
  /** The largest chunk one `dataReceived` gets. Default 64 KiB. */
  readSize?: number;
  /**
   * Whether `writeEof()` is possible. Default `true`; `false` behaves like
   * a TLS transport (`writeEof()` throws `NotSupported`, an EOF received
   * always closes).
   */
  canWriteEof?: boolean;
}

/**
 * One in-memory transport of a pair made by `createTransportPair`: a full
 * `Transport` plus test helpers.
 *
 * @example Wait until the peer got everything
 * ```ts
 * import { createTransportPair } from "@aionet/aionet/testing";
 * import { Protocol } from "@aionet/aionet/protocols";
 *
 * const chunks: Uint8Array[] = [];
 * class Sink extends Protocol {
 *   override dataReceived(data: Uint8Array) { chunks.push(data); }
 * }
 * const [a, b] = createTransportPair(new Protocol(), new Sink());
 * a.write(new TextEncoder().encode("hello"));
 * await a.flushed();
 * console.log(chunks.length); // 1
 * a.close();
 * await b.flushed();
 * ```
 */
export interface MemoryTransport extends Transport {
  /**
   * Resolves once everything written so far — the bytes and, if
   * `writeEof()`, `close()` or `abort()` was called, the EOF — has been
   * handed to the peer's protocol, or once it never will be (the peer
   * closed or lost the connection). While the peer's reading is paused it
   * waits for `resumeReading()`.
   */
  flushed(): Promise<void>;
  /**
   * Simulates a network failure: both ends lose the connection with
   * `error` (default `Deno.errors.ConnectionReset`) and their buffers are
   * discarded. Errors other than reset/broken-pipe/aborted/unexpected-EOF
   * are reported to the loop's exception handler, as a real read error
   * would be.
   */
  breakConnection(error?: Error): void;
}

/** One direction of the pair: what the writer sent and the reader has not taken. */
interface Channel {
  chunks: Uint8Array[];
  size: number;
  capacity: number;
  eof: boolean;
  /** Bytes handed to the reader's protocol so far. */
  delivered: number;
}

interface FlushWaiter {
  done: () => boolean;
  resolve: () => void;
}

/** Links `a` and `b` (set in the class's static block). */
let link: (
  a: PairTransport,
  b: PairTransport,
  capacity: number,
) => void;
/** Calls `connectionMade` (set in the class's static block). */
let start: (transport: PairTransport) => void;

/** A transport of an in-memory pair (see {@linkcode MemoryTransport}). */
class PairTransport implements MemoryTransport {
  #protocol: BaseProtocol;
  #loop: LoopCore;
  #addr: Deno.Addr;
  #peerAddr: Deno.Addr;
  #canWriteEof: boolean;
  #readSize: number;
  #peer!: PairTransport;
  #out!: Channel;
  #in!: Channel;

  // Lifecycle, as StreamTransport.
  #closing = false;
  #closedByUser = false;
  #eofWritten = false;
  #lost = false;
  #lostError: Error | null = null;

  // Reading.
  #readFlow = new ReadFlow(
    () => this.#closing,
    () => {},
    () => this.#scheduleDeliver(),
  );
  #readDone = false;
  #deliverScheduled = false;

  // Writing: bytes written and not yet taken into the channel.
  #pending: Uint8Array[] = [];
  #pendingLength = 0;
  #written = 0;
  #flushScheduled = false;
  #flow = new WriteFlow((message, exception) =>
    this.#report(message, exception)
  );

  #waiters: FlushWaiter[] = [];

  static {
    link = (a, b, capacity) => {
      const ab: Channel = {
        chunks: [],
        size: 0,
        capacity,
        eof: false,
        delivered: 0,
      };
      const ba: Channel = {
        chunks: [],
        size: 0,
        capacity,
        eof: false,
        delivered: 0,
      };
      a.#peer = b;
      b.#peer = a;
      a.#out = b.#in = ab;
      b.#out = a.#in = ba;
    };
    start = (transport) => transport.#start();
  }

  constructor(
    protocol: BaseProtocol,
    loop: LoopCore,
    addr: Deno.Addr,
    peerAddr: Deno.Addr,
    canWriteEof: boolean,
    readSize: number,
  ) {
    this.#protocol = protocol;
    this.#loop = loop;
    this.#addr = addr;
    this.#peerAddr = peerAddr;
    this.#canWriteEof = canWriteEof;
    this.#readSize = readSize;
  }

  // ---- BaseTransport ----

  getExtraInfo(name: string, fallback?: unknown): unknown {
    switch (name) {
      case "peername":
        return this.#peerAddr;
      case "sockname":
        return this.#addr;
    }
    return fallback;
  }

  isClosing(): boolean {
    return this.#closing;
  }

  close(): void {
    if (this.#closing) return;
    this.#closing = true;
    this.#closedByUser = true;
    if (this.#pendingLength === 0) this.#finish(null);
    this.#changed();
  }

  setProtocol(protocol: BaseProtocol): void {
    this.#protocol = protocol;
  }

  getProtocol(): BaseProtocol {
    return this.#protocol;
  }

  // ---- ReadTransport ----

  isReading(): boolean {
    return this.#readFlow.isReading();
  }

  pauseReading(): void {
    this.#readFlow.pause();
  }

  resumeReading(): void {
    this.#readFlow.resume();
  }

  // ---- WriteTransport ----

  write(data: Uint8Array): void {
    assertBytes(data);
    this.#checkWritable();
    if (data.length === 0) return;
    this.#pending.push(data.slice());
    this.#pendingLength += data.length;
    this.#written += data.length;
    this.#scheduleFlush();
    this.#maybePauseProtocol();
  }

  writeLines(list: Iterable<Uint8Array>): void {
    for (const chunk of checkChunks(list)) this.write(chunk);
  }

  writeEof(): void {
    if (!this.#canWriteEof) {
      throw new Deno.errors.NotSupported(
        "writeEof() is not supported on this transport (TLS cannot half-close)",
      );
    }
    if (this.#closing || this.#eofWritten) return;
    this.#eofWritten = true;
    if (this.#pendingLength === 0) this.#shutdownWrite();
  }

  canWriteEof(): boolean {
    return this.#canWriteEof;
  }

  abort(): void {
    this.#closedByUser = true;
    this.#finish(null);
  }

  setWriteBufferLimits(limits?: { high?: number; low?: number }): void {
    this.#flow.setLimits(limits);
    this.#maybePauseProtocol();
  }

  getWriteBufferSize(): number {
    return this.#pendingLength;
  }

  getWriteBufferLimits(): [low: number, high: number] {
    return this.#flow.limits;
  }

  // ---- test helpers ----

  flushed(): Promise<void> {
    const bytes = this.#written;
    const eof = this.#eofWritten || this.#closedByUser;
    const peer = this.#peer;
    const out = this.#out;
    const done = () =>
      peer.#lost || peer.#closing || peer.#readDone ||
      (!eof && !this.#lost && out.delivered >= bytes);
    if (done()) return Promise.resolve();
    const { promise, resolve } = Promise.withResolvers<void>();
    this.#waiters.push({ done, resolve });
    return promise;
  }

  breakConnection(error?: Error): void {
    if (error !== undefined && !(error instanceof Error)) {
      throw new TypeError(`The error must be an Error, got ${describe(error)}`);
    }
    const exc = error ??
      new Deno.errors.ConnectionReset("Connection reset by peer (simulated)");
    const peer = this.#peer;
    if (!this.#lost) this.#fatal(exc, "Fatal read error on transport");
    if (!peer.#lost) peer.#fatal(exc, "Fatal read error on transport");
  }

  // ---- internals ----

  #start(): void {
    try {
      this.#protocol.connectionMade(this);
    } catch (error) {
      this.#fatal(error, "Exception in protocol.connectionMade()");
    }
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

  #scheduleFlush(): void {
    if (this.#flushScheduled) return;
    this.#flushScheduled = true;
    queueMicrotask(() => this.#flush());
  }

  /** Moves pending bytes into the channel, as far as it has room. */
  #flush(): void {
    this.#flushScheduled = false;
    if (this.#lost || this.#pendingLength === 0) return;
    const peer = this.#peer;
    if (peer.#lost) {
      // Nobody will ever read these bytes: as a write to a closed socket.
      this.#fatal(
        new Deno.errors.BrokenPipe("The peer has closed the connection"),
        "Fatal write error on transport",
      );
      return;
    }
    const out = this.#out;
    let room = out.capacity - out.size;
    let moved = 0;
    while (room > 0 && this.#pending.length > 0) {
      let chunk = this.#pending[0];
      if (chunk.length <= room) {
        this.#pending.shift();
      } else {
        this.#pending[0] = chunk.subarray(room);
        chunk = chunk.subarray(0, room);
      }
      out.chunks.push(chunk);
      out.size += chunk.length;
      this.#pendingLength -= chunk.length;
      room -= chunk.length;
      moved += chunk.length;
    }
    if (moved > 0) peer.#scheduleDeliver();
    this.#maybeResumeProtocol();
    if (this.#lost || this.#pendingLength > 0) return;
    if (this.#closing) this.#finish(null);
    else if (this.#eofWritten) this.#shutdownWrite();
  }

  /** Sends EOF after what is in the channel. */
  #shutdownWrite(): void {
    if (this.#out.eof) return;
    this.#out.eof = true;
    this.#peer.#scheduleDeliver();
  }

  #maybePauseProtocol(): void {
    this.#flow.pauseIfAbove(this.#pendingLength, this.#protocol);
  }

  #maybeResumeProtocol(): void {
    this.#flow.resumeIfBelow(this.#pendingLength, this.#protocol);
  }

  #scheduleDeliver(): void {
    if (this.#deliverScheduled || this.#readDone || this.#lost) return;
    this.#deliverScheduled = true;
    queueMicrotask(() => this.#deliver());
  }

  /** Hands what the channel holds to the protocol until paused or empty. */
  #deliver(): void {
    this.#deliverScheduled = false;
    const input = this.#in;
    while (!this.#closing && !this.#readFlow.paused && !this.#readDone) {
      if (input.size > 0) {
        if (!this.#deliverData(input)) return;
      } else if (input.eof) {
        this.#readDone = true;
        this.#eofReceived();
        this.#changed();
        return;
      } else {
        return;
      }
    }
  }

  /** Delivers one chunk; false if the protocol failed (transport lost). */
  #deliverData(input: Channel): boolean {
    const protocol = this.#protocol;
    const buffered = isBuffered(protocol);
    let n: number;
    if (buffered) {
      let buffer: Uint8Array;
      try {
        buffer = getProtocolBuffer(protocol as BufferedProtocol, -1);
      } catch (error) {
        this.#fatal(error, "Exception in protocol.getBuffer()");
        return false;
      }
      n = Math.min(buffer.length, input.size);
      this.#take(input, n, buffer);
    } else {
      n = Math.min(this.#readSize, input.size);
    }
    const data = buffered ? null : this.#take(input, n, null);
    input.delivered += n;
    const peer = this.#peer;
    if (peer.#pendingLength > 0) peer.#scheduleFlush();
    try {
      if (data === null) (protocol as BufferedProtocol).bufferUpdated(n);
      else (protocol as Protocol).dataReceived(data);
    } catch (error) {
      this.#fatal(
        error,
        `Exception in protocol.${
          buffered ? "bufferUpdated" : "dataReceived"
        }()`,
      );
      return false;
    }
    this.#changed();
    return true;
  }

  /** Removes `n` bytes from the channel, into `target` or a new array. */
  #take(input: Channel, n: number, target: Uint8Array | null): Uint8Array {
    const first = input.chunks[0];
    if (target === null && first.length === n) {
      input.chunks.shift();
      input.size -= n;
      return first;
    }
    const out = target ?? new Uint8Array(n);
    let offset = 0;
    while (offset < n) {
      const chunk = input.chunks[0];
      const count = Math.min(chunk.length, n - offset);
      out.set(chunk.subarray(0, count), offset);
      if (count === chunk.length) input.chunks.shift();
      else input.chunks[0] = chunk.subarray(count);
      offset += count;
    }
    input.size -= n;
    return out;
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
      if (this.#pendingLength === 0) this.#finish(null);
    }
  }

  #report(message: string, exception: unknown): void {
    reportError(this.#loop, this, this.#protocol, message, exception);
  }

  #fatal(error: unknown, message: string): void {
    if (!isQuietError(error)) this.#report(message, error);
    this.#finish(toError(error));
  }

  /** Ends this side now and calls `connectionLost(exc)` once, soon. */
  #finish(exc: Error | null): void {
    if (this.#lost) return;
    this.#lost = true;
    this.#closing = true;
    this.#lostError = exc;
    this.#pending = [];
    this.#pendingLength = 0;
    // The peer reads what was already sent, then EOF (Deno closes with a
    // FIN, never a reset).
    this.#shutdownWrite();
    // What the peer sent and this side never read is gone; a peer still
    // trying to send learns it on its next flush.
    const input = this.#in;
    input.chunks = [];
    input.size = 0;
    const peer = this.#peer;
    if (peer.#pendingLength > 0) peer.#scheduleFlush();
    this.#changed();
    Promise.resolve().then(() => {
      callConnectionLost(this.#loop, this, this.#protocol, exc);
    });
  }

  /** Resolves the `flushed()` waiters of both sides that are done. */
  #changed(): void {
    for (const side of [this, this.#peer]) {
      if (side.#waiters.length === 0) continue;
      side.#waiters = side.#waiters.filter((waiter) => {
        if (!waiter.done()) return true;
        waiter.resolve();
        return false;
      });
    }
  }
}

/** Option names of the in-memory pair (anything else is a `TypeError`). */
export const PAIR_OPTIONS = [
  "loop",
  "addrA",
  "addrB",
  "socketBufferSize",
  "readSize",
  "canWriteEof",
] as const;

/**
 * Makes two connected in-memory transports and starts them: calls
 * `protocolA.connectionMade(a)`, then `protocolB.connectionMade(b)`.
 */
export function createTransportPair(
  protocolA: BaseProtocol,
  protocolB: BaseProtocol,
  options?: TransportPairOptions,
): [a: MemoryTransport, b: MemoryTransport] {
  checkProtocol(protocolA, "protocol A");
  checkProtocol(protocolB, "protocol B");
  const {
    loop,
    addrA = defaultAddrA(),
    addrB = defaultAddrB(),
    socketBufferSize,
    readSize,
    canWriteEof = true,
  } = checkKnownOptions(options, PAIR_OPTIONS);
  checkAddr(addrA, "addrA");
  checkAddr(addrB, "addrB");
  const capacity = checkSize(
    socketBufferSize,
    "socketBufferSize",
    DEFAULT_SOCKET_BUFFER,
    true,
  );
  const chunk = checkSize(readSize, "readSize", DEFAULT_READ_SIZE, false);
  if (typeof canWriteEof !== "boolean") {
    throw new TypeError(
      `The canWriteEof option must be a boolean, got ${describe(canWriteEof)}`,
    );
  }
  const theLoop = loop ?? currentLoop();
  const a = new PairTransport(
    protocolA,
    theLoop,
    addrA,
    addrB,
    canWriteEof,
    chunk,
  );
  const b = new PairTransport(
    protocolB,
    theLoop,
    addrB,
    addrA,
    canWriteEof,
    chunk,
  );
  link(a, b, capacity);
  start(a);
  start(b);
  return [a, b];
}
