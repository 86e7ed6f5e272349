// Backend handles over Deno's promise-based resources: a stream handle over
// anything shaped as a Deno.Conn (TCP, Unix, a TLS layer, a socket's
// replaying connection), a listener handle over a Deno.Listener and a
// datagram handle over a Deno.DatagramConn. The Deno backend makes its
// handles with these; the factories wrap a user's own `sock` in them.
// Nothing here opens a socket (that is _deno_backend.ts).

import type {
  AcceptSink,
  DatagramHandle,
  DatagramSink,
  ListenerHandle,
  ReadSink,
  SocketOptionAccess,
  StreamHandle,
} from "./_backend.ts";
import { nextFd } from "./_fd.ts";
import { describe, notSupported } from "./_validate.ts";
import { toError } from "./_errno.ts";
import {
  addMembership,
  dropMembership,
  setMulticastLoopback,
  setMulticastTtl,
} from "./_multicast.ts";

/** Why Unix datagram sockets bound to a path cannot run on Deno. */
export const UNIX_RECEIVE_UNSUPPORTED =
  "Deno cannot send on a unixpacket socket while a receive is pending (the send fails with Busy: Socket already in use), and a bound endpoint always has a receive pending. An unbound endpoint (remoteAddr: { path } without path) can send";

/** What a stream handle needs of a connection: a Deno.Conn's shape. */
export type ConnLike =
  & Pick<
    Deno.Conn,
    "read" | "write" | "closeWrite" | "close" | "localAddr" | "remoteAddr"
  >
  & {
    /**
     * A connection layered on a transport (TLS): that transport's socket,
     * as its `getExtraInfo("socket")` gives it.
     */
    readonly socketBelow?: SocketBelow;
    /** A layered connection: settles once the transport below is gone. */
    readonly gone?: Promise<void>;
  };

/** The socket under a layered connection (a `TransportSocket`'s shape). */
export interface SocketBelow {
  fileno(): number;
  setsockopt(level: number, option: number, value: number): void;
  getsockopt(level: number, option: number): number;
}

/** A read that completed while reading was stopped, held for the restart. */
type HeldRead =
  | { buffer: Uint8Array; n: number | null }
  | { error: Error };

function closeQuietly(resource: { close(): void }): void {
  try {
    resource.close();
  } catch {
    // Already closed.
  }
}

/** Settles once every op in `ops` has settled. */
function settled(ops: Array<Promise<unknown> | null>): Promise<void> {
  const pending = ops.filter((op) => op !== null);
  if (pending.length === 0) return Promise.resolve();
  return Promise.allSettled(pending).then(() => {});
}

/**
 * A stream handle over a Deno.Conn-shaped connection: one `read()` in
 * flight at a time, into the buffer the sink gives; writes go straight to
 * `conn.write()` (which does not copy: the caller leaves the bytes alone
 * until the promise settles).
 */
export class ConnStreamHandle implements StreamHandle {
  readonly syncReads = false;
  #conn: ConnLike;
  #fd = 0;
  #sink: ReadSink | null = null;
  #reading = false;
  #looping = false;
  #held: HeldRead | null = null;
  #done = false;
  #closed: Promise<void> | null = null;
  #readOp: Promise<unknown> | null = null;
  #writeOp: Promise<unknown> | null = null;
  /** The read loop bound once (started again after a stop). */
  #run = () => void this.#readLoop();

  constructor(conn: ConnLike) {
    this.#conn = conn;
  }

  get fd(): number {
    const below = this.#below();
    return below !== undefined ? below.fileno() : this.#fd ||= nextFd();
  }

  /** The options of the socket underneath a layered connection, else null. */
  get options(): SocketOptionAccess | null {
    const below = this.#below();
    if (below === undefined) return null;
    return {
      set: (level, option, value) => {
        if (typeof value !== "number") {
          throw new TypeError("Only integer options reach a TLS socket");
        }
        below.setsockopt(level, option, value);
      },
      get: (level, option) => below.getsockopt(level, option),
    };
  }

  #below(): SocketBelow | undefined {
    return this.#conn.socketBelow;
  }

  /** The connection (for `getExtraInfo("conn")`). */
  get resource(): Deno.Conn {
    return this.#conn as Deno.Conn;
  }

  localAddr(): Deno.Addr | undefined {
    try {
      return this.#conn.localAddr;
    } catch {
      return undefined;
    }
  }

  remoteAddr(): Deno.Addr | undefined {
    try {
      return this.#conn.remoteAddr;
    } catch {
      return undefined;
    }
  }

  readStart(sink: ReadSink): void {
    if (this.#closed !== null || this.#done) return;
    this.#sink = sink;
    this.#reading = true;
    if (this.#looping) return;
    this.#looping = true;
    if (this.#held === null) this.#readLoop();
    // Held data is delivered on a later microtask, never inside the
    // caller's resumeReading().
    else queueMicrotask(this.#run);
  }

  readStop(): void {
    this.#reading = false;
  }

  write(data: Uint8Array): Promise<number> {
    const op = this.#conn.write(data);
    this.#writeOp = op;
    return op;
  }

  shutdownWrite(): Promise<void> {
    return this.#conn.closeWrite();
  }

  setNoDelay(enabled: boolean): void {
    const conn = this.#conn as Partial<Deno.TcpConn>;
    if (typeof conn.setNoDelay !== "function") return;
    try {
      conn.setNoDelay(enabled);
    } catch {
      // Closed meanwhile.
    }
  }

  setKeepAlive(enabled: boolean): void {
    const conn = this.#conn as Partial<Deno.TcpConn>;
    if (typeof conn.setKeepAlive !== "function") return;
    try {
      conn.setKeepAlive(enabled);
    } catch {
      // Closed meanwhile.
    }
  }

  close(): Promise<void> {
    if (this.#closed !== null) return this.#closed;
    this.#reading = false;
    this.#held = null;
    this.#sink = null;
    closeQuietly(this.#conn);
    // A connection layered on a transport (TLS) is gone only once that
    // transport is.
    const gone = this.#conn.gone ?? null;
    return this.#closed = settled([this.#readOp, this.#writeOp, gone]);
  }

  /** Deno.Conn cannot send a reset: the peer sees a plain close (FIN). */
  abort(): Promise<void> {
    return this.close();
  }

  async #readLoop(): Promise<void> {
    const conn = this.#conn;
    while (this.#reading) {
      const sink = this.#sink!;
      const held = this.#held;
      if (held !== null) {
        this.#held = null;
        if (!this.#deliver(sink, held)) return;
        continue;
      }
      // Deno's read needs its buffer before any data is there.
      const buffer = sink.readBuffer(true);
      let result: HeldRead;
      try {
        const op = conn.read(buffer);
        this.#readOp = op;
        result = { buffer, n: await op };
      } catch (error) {
        result = { error: toError(error) };
      }
      this.#readOp = null;
      if (this.#closed !== null) return;
      if (!this.#reading) {
        // pauseReading() while the read was in flight: hold its outcome.
        this.#held = result;
        break;
      }
      if (!this.#deliver(this.#sink!, result)) return;
    }
    this.#looping = false;
  }

  /** Hands one read's outcome to `sink`; false once reading has ended. */
  #deliver(sink: ReadSink, result: HeldRead): boolean {
    if ("error" in result) {
      this.#done = true;
      this.#looping = false;
      sink.readError(result.error);
      return false;
    }
    if (result.n === null) {
      this.#done = true;
      this.#looping = false;
      sink.readEof();
      return false;
    }
    if (result.n > 0) sink.readDone(result.buffer, result.n);
    return this.#closed === null;
  }
}

/**
 * A listener handle over a Deno.Listener: one `accept()` in flight while
 * accepting; a connection accepted after `acceptStop()` is held.
 */
export class DenoListenerHandle implements ListenerHandle {
  readonly options = null;
  #listener: Deno.Listener;
  #fd = 0;
  #sink: AcceptSink | null = null;
  #accepting = false;
  #looping = false;
  #held: Deno.Conn | null = null;
  #closed: Promise<void> | null = null;
  #acceptOp: Promise<unknown> | null = null;
  readonly addr: Deno.Addr;

  constructor(listener: Deno.Listener) {
    this.#listener = listener;
    this.addr = listener.addr;
  }

  get fd(): number {
    return this.#fd ||= nextFd();
  }

  /** The listener (for `Server.sockets` and `getExtraInfo`). */
  get resource(): Deno.Listener {
    return this.#listener;
  }

  acceptStart(sink: AcceptSink): void {
    if (this.#closed !== null) return;
    this.#sink = sink;
    this.#accepting = true;
    if (this.#looping) return;
    this.#looping = true;
    void this.#acceptLoop();
  }

  acceptStop(): void {
    this.#accepting = false;
  }

  close(): Promise<void> {
    if (this.#closed !== null) return this.#closed;
    this.#accepting = false;
    closeQuietly(this.#listener);
    if (this.#held !== null) closeQuietly(this.#held);
    this.#held = null;
    return this.#closed = settled([this.#acceptOp]);
  }

  async #acceptLoop(): Promise<void> {
    while (this.#accepting) {
      let conn = this.#held;
      this.#held = null;
      if (conn === null) {
        try {
          const op = this.#listener.accept();
          this.#acceptOp = op;
          conn = await op;
        } catch (error) {
          this.#acceptOp = null;
          this.#looping = false;
          if (this.#closed !== null) return;
          this.#accepting = false;
          this.#sink!.acceptError(toError(error));
          return;
        }
        this.#acceptOp = null;
        if (this.#closed !== null) {
          closeQuietly(conn);
          return;
        }
        if (!this.#accepting) {
          this.#held = conn;
          break;
        }
      }
      this.#sink!.accepted(new ConnStreamHandle(conn));
    }
    this.#looping = false;
  }
}

/** Receive errors in a row after which a datagram socket is given up. */
const MAX_RECEIVE_ERRORS = 16;
/** Receive buffer: the largest UDP payload fits. */
const RECEIVE_SIZE = 64 * 1024;

/** Errors that mean the socket itself is gone. */
function isClosedError(error: unknown): boolean {
  return error instanceof Deno.errors.BadResource ||
    error instanceof Deno.errors.Interrupted;
}

/**
 * A datagram handle over a Deno.DatagramConn: one `receive()` in flight
 * while receiving (concurrent receives would resolve out of order), into
 * one reused buffer.
 */
export class DenoDatagramHandle implements DatagramHandle {
  readonly options = null;
  readonly canConnect = false;
  #conn: Deno.DatagramConn;
  #fd = 0;
  #sink: DatagramSink | null = null;
  #receiving = false;
  #looping = false;
  #held: [Uint8Array, Deno.Addr] | null = null;
  #closed: Promise<void> | null = null;
  #receiveOp: Promise<unknown> | null = null;
  #sendOp: Promise<unknown> | null = null;
  #buffer: Uint8Array | null = null;
  readonly addr: Deno.Addr;

  constructor(conn: Deno.DatagramConn) {
    this.#conn = conn;
    this.addr = conn.addr;
  }

  get fd(): number {
    return this.#fd ||= nextFd();
  }

  /** The socket (for `getExtraInfo("conn")`). */
  get resource(): Deno.DatagramConn {
    return this.#conn;
  }

  connect(): void {
    throw new Deno.errors.NotSupported(
      "Deno datagram sockets cannot be connected: the peer is emulated",
    );
  }

  receiveStart(sink: DatagramSink): void {
    if (this.#closed !== null) return;
    this.#sink = sink;
    this.#receiving = true;
    if (this.#looping) return;
    this.#looping = true;
    void this.#receiveLoop();
  }

  receiveStop(): void {
    this.#receiving = false;
  }

  send(data: Uint8Array, addr: Deno.Addr | null): Promise<number> {
    if (addr === null) {
      return Promise.reject(
        new Deno.errors.NotConnected("A datagram needs a destination address"),
      );
    }
    const op = this.#conn.send(data, addr);
    this.#sendOp = op;
    return op;
  }

  addMembership(group: string, iface?: string | number): Promise<void> {
    return addMembership(this.#conn, group, iface);
  }

  dropMembership(group: string, iface?: string | number): Promise<void> {
    return dropMembership(this.#conn, group, iface);
  }

  setMulticastTtl(ttl: number): Promise<void> {
    return setMulticastTtl(this.#conn, ttl);
  }

  setMulticastLoopback(enabled: boolean): Promise<void> {
    return setMulticastLoopback(this.#conn, enabled);
  }

  close(): Promise<void> {
    if (this.#closed !== null) return this.#closed;
    this.#receiving = false;
    this.#held = null;
    closeQuietly(this.#conn);
    return this.#closed = settled([this.#receiveOp, this.#sendOp]);
  }

  async #receiveLoop(): Promise<void> {
    let errors = 0;
    while (this.#receiving) {
      let received = this.#held;
      this.#held = null;
      if (received === null) {
        const buffer = this.#buffer ??= new Uint8Array(RECEIVE_SIZE);
        try {
          const op = this.#conn.receive(buffer);
          this.#receiveOp = op;
          received = await op;
        } catch (error) {
          this.#receiveOp = null;
          if (this.#closed !== null) return;
          const fatal = isClosedError(error) ||
            ++errors >= MAX_RECEIVE_ERRORS;
          if (fatal) {
            this.#receiving = false;
            this.#looping = false;
          }
          this.#sink!.receiveError(toError(error), fatal);
          if (fatal) return;
          continue;
        }
        this.#receiveOp = null;
        errors = 0;
        if (this.#closed !== null) return;
        if (!this.#receiving) {
          // Copy: the buffer is read into again after the restart.
          this.#held = [received[0].slice(), received[1]];
          break;
        }
      }
      this.#sink!.datagram(received[0], received[1]);
    }
    this.#looping = false;
  }
}

/** Throws unless `conn` is a `Deno.DatagramConn` an endpoint can run on. */
export function checkUsableConn(
  conn: unknown,
): asserts conn is Deno.DatagramConn {
  if (
    conn === null || typeof conn !== "object" ||
    typeof (conn as Deno.DatagramConn).receive !== "function" ||
    typeof (conn as Deno.DatagramConn).send !== "function" ||
    typeof (conn as Deno.DatagramConn).addr !== "object"
  ) {
    throw new TypeError(
      `The sock must be a Deno.DatagramConn, got ${describe(conn)}`,
    );
  }
  const addr = (conn as Deno.DatagramConn).addr;
  if (addr.transport === "unixpacket" && addr.path !== null) {
    notSupported(
      "A Unix datagram endpoint bound to a path",
      UNIX_RECEIVE_UNSUPPORTED,
    );
  }
}
