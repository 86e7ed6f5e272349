// The kernel side of a datagram Socket over a Deno.DatagramConn: a bounded
// queue of received datagrams filled by one background receive (receiving
// stops while it is full) and a bounded queue of datagrams to send, sent in
// order by one background send. Multicast memberships live here too.

import { aliasConn } from "./_multicast.ts";
import { toError } from "./_errno.ts";
import { canonicalIp } from "./_ip.ts";
import {
  addMembership,
  dropMembership,
  initMulticast,
  setMulticastLoopback,
  setMulticastTtl,
} from "./_multicast.ts";

/** Default receive buffer (as Linux's default `SO_RCVBUF`, 208 KiB). */
export const DEFAULT_DGRAM_RCVBUF = 212_992;
/** Default send buffer (as Linux's default `SO_SNDBUF`, 208 KiB). */
export const DEFAULT_DGRAM_SNDBUF = 212_992;

type ReceiveResult = { datagram: [Uint8Array, Deno.Addr] } | {
  error: unknown;
};

/** A bound datagram socket with kernel-like queues. */
export class DatagramChannel {
  readonly conn: Deno.DatagramConn;
  #notify: () => void;
  #received: Array<[Uint8Array, Deno.Addr]> = [];
  #receivedBytes = 0;
  #recvCapacity: number;
  #inflight: Promise<ReceiveResult> | null = null;
  #resume: (() => void) | null = null;
  #recvError: Error | null = null;
  #toSend: Array<[Uint8Array, Deno.Addr]> = [];
  #toSendBytes = 0;
  #sendCapacity: number;
  #sending = false;
  #sendError: Error | null = null;
  #drained: Array<() => void> = [];
  #closed = false;
  #released = false;
  #accept: ((addr: Deno.Addr) => boolean) | null = null;
  #groups = new Set<string>();
  #multicast: Promise<void> = Promise.resolve();

  constructor(
    conn: Deno.DatagramConn,
    notify: () => void,
    options: {
      recv?: number;
      send?: number;
      receive?: boolean;
      loopback?: boolean;
    } = {},
  ) {
    this.conn = conn;
    if (options.loopback !== undefined) {
      initMulticast(conn, { loopback: options.loopback });
    }
    this.#notify = notify;
    this.#recvCapacity = options.recv ?? DEFAULT_DGRAM_RCVBUF;
    this.#sendCapacity = options.send ?? DEFAULT_DGRAM_SNDBUF;
    if (options.receive !== false) this.#loop();
  }

  /** Keeps only datagrams whose source passes `accept` (connected UDP). */
  setFilter(accept: ((addr: Deno.Addr) => boolean) | null): void {
    this.#accept = accept;
    if (accept !== null) {
      const kept = this.#received.filter(([, addr]) => accept(addr));
      this.#received = kept;
      this.#receivedBytes = kept.reduce((n, [d]) => n + d.length, 0);
      this.#wake();
    }
  }

  /** Changes the receive buffer size. */
  setRecvCapacity(bytes: number): void {
    this.#recvCapacity = bytes;
    this.#wake();
  }

  /** Changes the send buffer size. */
  setSendCapacity(bytes: number): void {
    this.#sendCapacity = bytes;
    this.#notify();
  }

  /** Whether `recvFrom` would return at once. */
  readable(): boolean {
    return this.#received.length > 0 || this.#recvError !== null;
  }

  /** Whether `sendTo` would accept a datagram (or fail at once). */
  writable(): boolean {
    return this.#toSendBytes < this.#sendCapacity || this.#sendError !== null;
  }

  /** The next datagram, cut to `n` bytes; `WouldBlock` if none. */
  recvFrom(n: number): [Uint8Array, Deno.Addr] {
    const next = this.#received.shift();
    if (next !== undefined) {
      this.#receivedBytes -= next[0].length;
      this.#wake();
      const [data, addr] = next;
      return [data.length > n ? data.subarray(0, n) : data, addr];
    }
    if (this.#recvError !== null) {
      const error = this.#recvError;
      this.#recvError = null;
      this.#wake();
      throw error;
    }
    throw new Deno.errors.WouldBlock(
      "Resource temporarily unavailable: no datagram received yet",
    );
  }

  /** Queues one datagram for `addr`; `WouldBlock` if the queue is full. */
  sendTo(data: Uint8Array, addr: Deno.Addr): number {
    if (this.#sendError !== null) {
      const error = this.#sendError;
      this.#sendError = null;
      throw error;
    }
    if (this.#toSendBytes >= this.#sendCapacity) {
      throw new Deno.errors.WouldBlock(
        "Resource temporarily unavailable: the send buffer is full",
      );
    }
    this.#toSend.push([data.slice(), addr]);
    this.#toSendBytes += data.length;
    if (!this.#sending) {
      this.#sending = true;
      this.#sendLoop();
    }
    return data.length;
  }

  /** The error of a failed background send, taken (`SO_ERROR`). */
  takeError(): Error | null {
    const error = this.#sendError ?? this.#recvError;
    if (error === this.#sendError) this.#sendError = null;
    else this.#recvError = null;
    return error;
  }

  /**
   * Joins an IPv4 multicast group on the interface `iface` (through
   * _multicast.ts). Joining twice throws `AddrInUse` at once; a failure of
   * the join itself shows later as the socket's pending error (`SO_ERROR`).
   */
  join(group: string, iface: string): void {
    const key = `${group}%${iface}`;
    if (this.#groups.has(key)) {
      throw new Deno.errors.AddrInUse(
        `Already a member of ${group} on interface ${iface}`,
      );
    }
    this.#groups.add(key);
    this.#multicastOp(() => addMembership(this.conn, group, iface));
  }

  /** Leaves a group; `AddrNotAvailable` if the socket is not a member. */
  leave(group: string, iface: string): void {
    const key = `${group}%${iface}`;
    if (!this.#groups.delete(key)) {
      throw new Deno.errors.AddrNotAvailable(
        `Not a member of ${group} on interface ${iface}`,
      );
    }
    this.#multicastOp(() => dropMembership(this.conn, group, iface));
  }

  /** `IP_MULTICAST_TTL` (applied in order with the joins). */
  setMulticastTtl(ttl: number): void {
    this.#multicastOp(() => setMulticastTtl(this.conn, ttl));
  }

  /** `IP_MULTICAST_LOOP` (applied in order with the joins). */
  setMulticastLoop(loop: boolean): void {
    this.#multicastOp(() => setMulticastLoopback(this.conn, loop));
  }

  #multicastOp(op: () => Promise<void>): void {
    this.#multicast = this.#multicast.then(op).catch((error) => {
      if (this.#closed || this.#released) return;
      this.#recvError ??= toError(error);
      this.#notify();
    });
  }

  /** Closes; datagrams already queued are still sent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#received = [];
    this.#receivedBytes = 0;
    this.#wake();
    if (!this.#sending) this.#closeConn();
  }

  /**
   * Gives up the socket: the returned `Deno.DatagramConn` first yields the
   * datagrams received here (and the receive in flight), and its sends go
   * after the datagrams queued here.
   */
  release(): Deno.DatagramConn {
    this.#released = true;
    const received = this.#received.splice(0);
    this.#receivedBytes = 0;
    const inflight = this.#inflight;
    let inflightTaken = inflight === null;
    const accept = this.#accept;
    this.#wake();
    const raw = this.conn;
    const receive = async (
      p?: Uint8Array,
    ): Promise<[Uint8Array<ArrayBuffer>, Deno.Addr]> => {
      while (true) {
        let next = received.shift();
        if (next === undefined && !inflightTaken) {
          inflightTaken = true;
          const result = await inflight!;
          if ("error" in result) throw result.error;
          next = result.datagram;
        }
        if (next === undefined) {
          const datagram = await raw.receive(p);
          if (accept !== null && !accept(datagram[1])) continue;
          return datagram;
        }
        if (accept !== null && !accept(next[1])) continue;
        const [data, addr] = next;
        if (p !== undefined) {
          const n = Math.min(p.length, data.length);
          p.set(data.subarray(0, n));
          return [p.subarray(0, n) as Uint8Array<ArrayBuffer>, addr];
        }
        return [data as Uint8Array<ArrayBuffer>, addr];
      }
    };
    const drained = () => this.#drainedPromise();
    const conn = {
      get addr() {
        return raw.addr;
      },
      receive,
      send: async (p: Uint8Array, addr: Deno.Addr) => {
        await drained();
        return raw.send(p, addr);
      },
      joinMulticastV4: (address: string, iface: string) =>
        raw.joinMulticastV4(address, iface),
      joinMulticastV6: (address: string, iface: number) =>
        raw.joinMulticastV6(address, iface),
      close: () => raw.close(),
      async *[Symbol.asyncIterator]() {
        while (true) {
          try {
            yield await receive();
          } catch (error) {
            if (error instanceof Deno.errors.BadResource) return;
            throw error;
          }
        }
      },
    };
    aliasConn(conn, raw);
    return conn as unknown as Deno.DatagramConn;
  }

  #drainedPromise(): Promise<void> {
    if (!this.#sending) return Promise.resolve();
    return new Promise((resolve) => this.#drained.push(resolve));
  }

  #wake(): void {
    const resume = this.#resume;
    if (resume !== null) {
      this.#resume = null;
      resume();
    }
  }

  async #loop(): Promise<void> {
    const scratch = new Uint8Array(65_536);
    while (!this.#closed && !this.#released) {
      if (
        this.#receivedBytes >= this.#recvCapacity || this.#recvError !== null
      ) {
        await new Promise<void>((resolve) => this.#resume = resolve);
        continue;
      }
      const inflight: Promise<ReceiveResult> = this.conn.receive(scratch).then(
        ([data, addr]) => ({ datagram: [data.slice(), addr] }),
        (error) => ({ error }),
      );
      this.#inflight = inflight;
      const result = await inflight;
      if (this.#released) return; // The new owner takes `inflight`.
      this.#inflight = null;
      if (this.#closed) return;
      if ("error" in result) {
        this.#recvError = toError(result.error);
      } else {
        const [data, addr] = result.datagram;
        if (this.#accept !== null && !this.#accept(addr)) continue;
        this.#received.push([data, addr]);
        this.#receivedBytes += data.length;
      }
      this.#notify();
    }
  }

  async #sendLoop(): Promise<void> {
    while (this.#toSend.length > 0) {
      const [data, addr] = this.#toSend[0];
      try {
        await this.conn.send(data, addr);
      } catch (error) {
        if (this.#closed && error instanceof Deno.errors.BadResource) break;
        this.#sendError = toError(error);
      }
      this.#toSend.shift();
      this.#toSendBytes -= data.length;
      if (!this.#closed) this.#notify();
    }
    this.#sending = false;
    for (const resolve of this.#drained.splice(0)) resolve();
    if (this.#closed) this.#closeConn();
  }

  #closeConn(): void {
    try {
      this.conn.close();
    } catch {
      // Already closed.
    }
  }
}

/**
 * What a connected datagram socket takes: datagrams from `remote` only
 * (an IP literal, or a Unix path).
 */
export function peerFilter(remote: Deno.Addr): (addr: Deno.Addr) => boolean {
  if (!("hostname" in remote)) {
    const path = "path" in remote ? remote.path : null;
    return (addr) => "path" in addr && addr.path === path;
  }
  // connect() made the peer an IP literal.
  const wanted = canonicalIp(remote.hostname);
  return (addr) =>
    "hostname" in addr && addr.port === remote.port &&
    canonicalIp(addr.hostname) === wanted;
}
