// The kernel side of a connected stream Socket, emulated over a Deno.Conn: a
// bounded receive buffer filled by one background read (reading stops while
// it is full) and a bounded send buffer drained by one background write.
// Everything the Socket reports as ready is really there.

import { toError } from "./_errno.ts";

/** Default receive buffer (as Linux's default `SO_RCVBUF`, 128 KiB). */
export const DEFAULT_STREAM_RCVBUF = 128 * 1024;
/** Default send buffer (64 KiB). */
export const DEFAULT_STREAM_SNDBUF = 64 * 1024;

const READ_CHUNK = 64 * 1024;

type ReadResult = { data: Uint8Array | null } | { error: unknown };

/** A connected stream with kernel-like buffers. */
export class StreamChannel {
  readonly conn: Deno.Conn;
  #notify: () => void;
  // Receive side.
  #chunks: Uint8Array[] = [];
  #buffered = 0;
  #recvCapacity: number;
  #eof = false;
  #readError: Error | null = null;
  #readShut = false;
  #inflight: Promise<ReadResult> | null = null;
  #resumeRead: (() => void) | null = null;
  // Send side.
  #queue: Uint8Array[] = [];
  #queued = 0;
  #sendCapacity: number;
  #writing = false;
  #writeError: Error | null = null;
  #shutWriteWanted = false;
  #drained: Array<() => void> = [];
  // Life cycle.
  #closing = false;
  #released = false;
  #connClosed = false;

  constructor(
    conn: Deno.Conn,
    notify: () => void,
    capacities: { recv?: number; send?: number } = {},
  ) {
    this.conn = conn;
    this.#notify = notify;
    this.#recvCapacity = capacities.recv ?? DEFAULT_STREAM_RCVBUF;
    this.#sendCapacity = capacities.send ?? DEFAULT_STREAM_SNDBUF;
    this.#readLoop();
  }

  /** Changes the receive buffer size (reading resumes if it grew). */
  setRecvCapacity(bytes: number): void {
    this.#recvCapacity = bytes;
    this.#wakeReader();
  }

  /** Changes the send buffer size. */
  setSendCapacity(bytes: number): void {
    this.#sendCapacity = bytes;
    this.#notify();
  }

  /** Whether `recv` would return at once. */
  readable(): boolean {
    return this.#buffered > 0 || this.#eof || this.#readError !== null ||
      this.#readShut;
  }

  /** Whether `send` would accept at least one byte (or fail at once). */
  writable(): boolean {
    return this.#queued < this.#sendCapacity || this.#writeError !== null ||
      this.#shutWriteWanted;
  }

  /** Bytes waiting in the receive buffer. */
  get buffered(): number {
    return this.#buffered;
  }

  /** Bytes waiting in the send buffer. */
  get queued(): number {
    return this.#queued;
  }

  /** Up to `n` buffered bytes; empty at EOF; throws `WouldBlock` if none. */
  recv(n: number): Uint8Array {
    if (n === 0) return new Uint8Array(0);
    if (this.#readShut) return new Uint8Array(0);
    if (this.#buffered > 0) return this.#take(n);
    if (this.#readError !== null) {
      // Reported once, as the kernel does; EOF afterwards.
      const error = this.#readError;
      this.#readError = null;
      this.#eof = true;
      throw error;
    }
    if (this.#eof) return new Uint8Array(0);
    throw new Deno.errors.WouldBlock(
      "Resource temporarily unavailable: no data received yet",
    );
  }

  /** Queues up to the free space of `data`; returns how much was taken. */
  send(data: Uint8Array, all = false): number {
    if (this.#writeError !== null) throw this.#writeError;
    if (this.#shutWriteWanted) {
      throw new Deno.errors.BrokenPipe(
        "Broken pipe: the socket was shut down for writing",
      );
    }
    const space = this.#sendCapacity - this.#queued;
    if (space <= 0) {
      throw new Deno.errors.WouldBlock(
        "Resource temporarily unavailable: the send buffer is full",
      );
    }
    if (data.length === 0) return 0;
    const n = all ? data.length : Math.min(space, data.length);
    this.#queue.push(data.slice(0, n));
    this.#queued += n;
    this.#startWriting();
    return n;
  }

  /** `shutdown(SHUT_RD)`: reads return EOF from now on. */
  shutdownRead(): void {
    this.#readShut = true;
    this.#chunks = [];
    this.#buffered = 0;
    this.#wakeReader();
    this.#notify();
  }

  /** `shutdown(SHUT_WR)`: sends FIN once the send buffer has drained. */
  shutdownWrite(): void {
    if (this.#shutWriteWanted) return;
    this.#shutWriteWanted = true;
    this.#afterDrain();
    this.#notify();
  }

  /** Closes; bytes already queued are still sent (as the kernel does). */
  close(): void {
    if (this.#closing) return;
    this.#closing = true;
    this.#chunks = [];
    this.#buffered = 0;
    this.#wakeReader();
    if (!this.#writing || this.#writeError !== null) this.#closeConn();
  }

  /**
   * Gives up the connection: the returned `Deno.Conn` first replays the
   * bytes this channel buffered (and the read it has in flight), and its
   * writes wait until the bytes already queued here are written.
   */
  release(): Deno.Conn {
    this.#released = true;
    const replay = new Replay(this);
    this.#wakeReader();
    return replay.conn;
  }

  /** For {@linkcode release}: the state to replay. */
  takeState(): {
    chunks: Uint8Array[];
    eof: boolean;
    error: Error | null;
    inflight: Promise<ReadResult> | null;
  } {
    const state = {
      chunks: this.#chunks,
      eof: this.#eof,
      error: this.#readError,
      inflight: this.#inflight,
    };
    this.#chunks = [];
    this.#buffered = 0;
    return state;
  }

  /** Resolves once the send buffer is empty (or a write failed). */
  drained(): Promise<Error | null> {
    if (!this.#writing && this.#queue.length === 0) {
      return Promise.resolve(this.#writeError);
    }
    return new Promise((resolve) =>
      this.#drained.push(() => resolve(this.#writeError))
    );
  }

  #take(n: number): Uint8Array {
    let out: Uint8Array;
    const first = this.#chunks[0];
    if (first.length >= n) {
      out = first.subarray(0, n);
      if (first.length === n) this.#chunks.shift();
      else this.#chunks[0] = first.subarray(n);
    } else {
      const size = Math.min(n, this.#buffered);
      out = new Uint8Array(size);
      let offset = 0;
      while (offset < size) {
        const chunk = this.#chunks[0];
        const part = Math.min(chunk.length, size - offset);
        out.set(chunk.subarray(0, part), offset);
        offset += part;
        if (part === chunk.length) this.#chunks.shift();
        else this.#chunks[0] = chunk.subarray(part);
      }
    }
    this.#buffered -= out.length;
    this.#wakeReader();
    return out;
  }

  #wakeReader(): void {
    const resume = this.#resumeRead;
    if (resume !== null) {
      this.#resumeRead = null;
      resume();
    }
  }

  #stopped(): boolean {
    return this.#closing || this.#released;
  }

  async #readLoop(): Promise<void> {
    const scratch = new Uint8Array(READ_CHUNK);
    while (!this.#stopped() && !this.#eof && this.#readError === null) {
      const space = this.#recvCapacity - this.#buffered;
      if (space <= 0) {
        await new Promise<void>((resolve) => this.#resumeRead = resolve);
        continue;
      }
      const buffer = space >= scratch.length
        ? scratch
        : scratch.subarray(0, space);
      const inflight: Promise<ReadResult> = this.conn.read(buffer).then(
        (n) => ({ data: n === null ? null : buffer.slice(0, n) }),
        (error) => ({ error }),
      );
      this.#inflight = inflight;
      const result = await inflight;
      if (this.#released) return; // The new owner replays `inflight`.
      this.#inflight = null;
      if (this.#closing) return;
      if ("error" in result) {
        this.#readError = toError(result.error);
      } else if (result.data === null) {
        this.#eof = true;
      } else if (!this.#readShut && result.data.length > 0) {
        this.#chunks.push(result.data);
        this.#buffered += result.data.length;
      }
      this.#notify();
    }
  }

  #startWriting(): void {
    if (this.#writing) return;
    this.#writing = true;
    this.#writeLoop();
  }

  async #writeLoop(): Promise<void> {
    try {
      while (this.#queue.length > 0) {
        this.#coalesce();
        const chunk = this.#queue[0];
        const n = await this.conn.write(chunk);
        this.#queued -= n;
        if (n < chunk.length) this.#queue[0] = chunk.subarray(n);
        else this.#queue.shift();
        if (!this.#closing) this.#notify();
      }
    } catch (error) {
      this.#writeError = toError(error);
      this.#queue = [];
      this.#queued = 0;
      if (!this.#closing) this.#notify();
    }
    this.#writing = false;
    this.#afterDrain();
  }

  #coalesce(): void {
    const queue = this.#queue;
    if (queue.length < 2 || queue[0].length >= READ_CHUNK) return;
    let size = 0;
    let count = 0;
    while (count < queue.length && size + queue[count].length <= READ_CHUNK) {
      size += queue[count].length;
      count++;
    }
    if (count < 2) return;
    const joined = new Uint8Array(size);
    let offset = 0;
    for (const chunk of queue.splice(0, count)) {
      joined.set(chunk, offset);
      offset += chunk.length;
    }
    queue.unshift(joined);
  }

  #afterDrain(): void {
    if (this.#writing) return;
    for (const resolve of this.#drained.splice(0)) resolve();
    if (this.#closing) {
      this.#closeConn();
      return;
    }
    if (this.#shutWriteWanted && !this.#released && !this.#connClosed) {
      this.conn.closeWrite().catch(() => {});
    }
  }

  #closeConn(): void {
    if (this.#connClosed) return;
    this.#connClosed = true;
    try {
      this.conn.close();
    } catch {
      // Already closed.
    }
  }
}

/** The `Deno.Conn` that {@linkcode StreamChannel.release} hands over. */
class Replay {
  readonly conn: Deno.Conn;
  #channel: StreamChannel;
  #raw: Deno.Conn;
  #pending: Uint8Array[] | null = null;
  #eof = false;
  #error: Error | null = null;
  #inflight: Promise<ReadResult> | null = null;

  constructor(channel: StreamChannel) {
    this.#channel = channel;
    this.#raw = channel.conn;
    const state = channel.takeState();
    this.#pending = state.chunks;
    this.#eof = state.eof;
    this.#error = state.error;
    this.#inflight = state.inflight;
    const raw = this.#raw;
    // deno-lint-ignore no-this-alias
    const self = this;
    let readable: ReadableStream<Uint8Array<ArrayBuffer>> | undefined;
    let writable: WritableStream<Uint8Array> | undefined;
    const conn = {
      get localAddr() {
        return raw.localAddr;
      },
      get remoteAddr() {
        return raw.remoteAddr;
      },
      read: (p: Uint8Array) => self.#read(p),
      write: (p: Uint8Array) => self.#write(p),
      closeWrite: async () => {
        await channel.drained();
        await raw.closeWrite();
      },
      close: () => raw.close(),
      ref: () => raw.ref(),
      unref: () => raw.unref(),
      setNoDelay: (noDelay?: boolean) =>
        (raw as Partial<Deno.TcpConn>).setNoDelay?.(noDelay),
      setKeepAlive: (keepAlive?: boolean) =>
        (raw as Partial<Deno.TcpConn>).setKeepAlive?.(keepAlive),
      get readable() {
        readable ??= new ReadableStream<Uint8Array<ArrayBuffer>>({
          pull: async (controller) => {
            const buffer = new Uint8Array(READ_CHUNK);
            const n = await self.#read(buffer);
            if (n === null) {
              controller.close();
              raw.close();
            } else controller.enqueue(buffer.slice(0, n));
          },
        });
        return readable;
      },
      get writable() {
        writable ??= new WritableStream<Uint8Array>({
          write: async (chunk) => {
            let offset = 0;
            while (offset < chunk.length) {
              offset += await self.#write(chunk.subarray(offset));
            }
          },
          close: () => raw.close(),
        });
        return writable;
      },
      [Symbol.dispose]: () => raw.close(),
    };
    if (!("setNoDelay" in raw)) {
      delete (conn as Partial<typeof conn>).setNoDelay;
      delete (conn as Partial<typeof conn>).setKeepAlive;
    }
    this.conn = conn as unknown as Deno.Conn;
  }

  async #read(p: Uint8Array): Promise<number | null> {
    const pending = this.#pending;
    if (pending !== null && pending.length > 0) {
      let offset = 0;
      while (offset < p.length && pending.length > 0) {
        const chunk = pending[0];
        const part = Math.min(chunk.length, p.length - offset);
        p.set(chunk.subarray(0, part), offset);
        offset += part;
        if (part === chunk.length) pending.shift();
        else pending[0] = chunk.subarray(part);
      }
      return offset;
    }
    const inflight = this.#inflight;
    if (inflight !== null) {
      this.#inflight = null;
      const result = await inflight;
      if ("error" in result) throw result.error;
      if (result.data === null) {
        this.#eof = true;
        return null;
      }
      this.#pending = [result.data];
      return this.#read(p);
    }
    if (this.#error !== null) {
      const error = this.#error;
      this.#error = null;
      this.#eof = true;
      throw error;
    }
    if (this.#eof) return null;
    return this.#raw.read(p);
  }

  async #write(p: Uint8Array): Promise<number> {
    const error = await this.#channel.drained();
    if (error !== null) throw error;
    return this.#raw.write(p);
  }
}
