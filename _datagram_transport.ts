// The datagram transport (UDP and Unix datagrams) over a backend datagram
// handle: the receive sink, the send queue with flow control, the emulated
// peer of a `remoteAddr` where the backend cannot connect. Public through
// transports.ts.

import { checkUnixPath } from "./_unix_path.ts";
import type { BaseProtocol } from "./protocols.ts";
import type { DatagramHandle, DatagramSink } from "./_backend.ts";
import { checkUsableConn, DenoDatagramHandle } from "./_conn_handles.ts";
import { currentLoop, type LoopCore } from "./_loop_core.ts";
import { reportError } from "./_transport_common.ts";
import type { DatagramAddress, DatagramTransport } from "./_transport_types.ts";
import { socketView } from "./_transport_socket.ts";
import { type FlowControlled, WriteFlow } from "./_write_flow.ts";
import { toError } from "./_errno.ts";
import {
  debugActive,
  protocolCallback,
  reportSlow,
  type UnclosedState,
  watchUnclosed,
} from "./_debug.ts";
import { canonicalIp, MAX_UDP4_PAYLOAD, MAX_UDP6_PAYLOAD } from "./_ip.ts";
import {
  assertBytes,
  checkKnownOptions,
  checkNumber,
  checkOptions,
  checkPort,
  checkString,
  describe,
} from "./_validate.ts";

let overHandle: (
  handle: DatagramHandle,
  protocol: BaseProtocol,
  options?: DatagramConnTransportOptions,
) => DatagramConnTransport;

/** A datagram transport over a backend handle (internal: the factories). */
export function datagramTransportOverHandle(
  handle: DatagramHandle,
  protocol: BaseProtocol,
  options?: DatagramConnTransportOptions,
): DatagramConnTransport {
  return overHandle(handle, protocol, options);
}

/** Errors that mean the socket itself is gone. */
function isClosedError(error: unknown): boolean {
  return error instanceof Deno.errors.BadResource ||
    error instanceof Deno.errors.Interrupted;
}

/** Whether `addr` is an unbound Unix datagram socket (nothing can reach it). */
function isUnbound(addr: Deno.Addr): boolean {
  return addr.transport === "unixpacket" && !(addr as Deno.UnixAddr).path;
}

/** Options of the {@linkcode DatagramConnTransport} constructor. */
export interface DatagramConnTransportOptions {
  /**
   * The peer, already resolved (an IP literal, or a Unix path): the default
   * target of `sendTo`; datagrams from elsewhere are dropped.
   */
  remoteAddr?: DatagramAddress;
  /**
   * The host name `remoteAddr` was resolved from, if any: `sendTo()` then
   * accepts `{ hostname: remoteHostname, port }` as the remote too.
   */
  remoteHostname?: string;
  /** The loop whose exception handler gets protocol errors. */
  loop?: LoopCore;
  /** Extra values for `getExtraInfo()`, by name (e.g. `socket`). */
  extra?: Record<string, unknown>;
  /**
   * Whether the endpoint connects to `remoteAddr` (default `true`): datagrams
   * from elsewhere are dropped, ICMP errors come back where the backend
   * can, and `"peername"` is the remote. `false` keeps `remoteAddr` as the
   * default target only, as asyncio does with `allow_broadcast`.
   */
  connect?: boolean;
}

/**
 * What each queued datagram adds to the write buffer size beyond its data,
 * as CPython 3.13 counts (so a flood of empty datagrams pauses too).
 */
const DATAGRAM_HEADER = 8;

interface QueuedDatagram {
  data: Uint8Array;
  addr: Deno.Addr;
}

type ProtocolMethod =
  | "connectionMade"
  | "connectionLost"
  | "datagramReceived"
  | "errorReceived"
  | "pauseWriting"
  | "resumeWriting";

export function isUnixAddress(addr: object): addr is { path: string } {
  return "path" in addr;
}

/**
 * A datagram transport over a `Deno.DatagramConn` (UDP, or a send-only Unix
 * datagram socket): what {@linkcode createDatagramEndpoint} hands to
 * protocols.
 *
 * One receive loop per socket delivers each datagram whole to
 * `datagramReceived(data, addr)`; sends are queued and go out in order, one
 * at a time, with write flow control (`pauseWriting` above the high-water
 * mark, `resumeWriting` at the low one). Send errors go to `errorReceived`.
 * With a `remoteAddr` the endpoint behaves as a connected socket:
 * `sendTo(data)` goes there and datagrams from other peers are dropped.
 * Constructing one over a `Deno.DatagramConn` starts it: `connectionMade` is
 * called at once, receiving starts when it returns. The transport owns the
 * connection and closes it.
 *
 * Multicast: {@linkcode DatagramConnTransport.addMembership},
 * `dropMembership`, `setMulticastTtl`, `setMulticastLoopback`.
 *
 * @example Wrap a socket you already have
 * ```ts
 * import { DatagramConnTransport } from "@aionet/aionet/transports";
 * import { DatagramProtocol } from "@aionet/aionet/protocols";
 *
 * const conn = Deno.listenDatagram({ hostname: "127.0.0.1", port: 0, transport: "udp" });
 * const transport = new DatagramConnTransport(conn, new DatagramProtocol());
 * console.log(transport.getExtraInfo("sockname"));
 * transport.close();
 * ```
 */
export class DatagramConnTransport implements DatagramTransport {
  static #pendingHandle: DatagramHandle | null = null;
  #handle: DatagramHandle;
  #protocol: BaseProtocol;
  #loop: LoopCore;
  /** Debug mode's record of whether this transport was closed. */
  #unclosed: UnclosedState | null = null;
  #extra: Record<string, unknown>;
  #unix: boolean;
  #v6: boolean;
  #remote: Deno.Addr | null = null;
  #connected = true;
  #remoteHost: string | null = null;

  // Lifecycle.
  #closing = false;
  #closedByUser = false;
  #lost = false;
  #lostError: Error | null = null;

  // Receiving: the handle calls the sink.
  #sink: DatagramSink = {
    datagram: (data, addr) => this.#datagram(data, addr),
    receiveError: (error, fatal) => this.#receiveError(error, fatal),
  };

  // Sending: one send in flight; #queue[#head] is the one being sent.
  #queue: QueuedDatagram[] = [];
  #head = 0;
  #bufferSize = 0;
  #sending = false;
  #flow = new WriteFlow((message, exception) =>
    this.#report(message, exception)
  );
  /** What #flow calls: the protocol's callbacks, if it has them. */
  #writeCallbacks: FlowControlled = {
    pauseWriting: () => this.#call("pauseWriting"),
    resumeWriting: () => this.#call("resumeWriting"),
  };

  static {
    overHandle = (handle, protocol, options) => {
      DatagramConnTransport.#pendingHandle = handle;
      try {
        return new DatagramConnTransport(
          null as unknown as Deno.DatagramConn,
          protocol,
          options,
        );
      } finally {
        DatagramConnTransport.#pendingHandle = null;
      }
    };
  }

  /** Starts a transport over `conn` for `protocol` (see the class docs). */
  constructor(
    conn: Deno.DatagramConn,
    protocol: BaseProtocol,
    options?: DatagramConnTransportOptions,
  ) {
    const { remoteAddr, remoteHostname, loop, extra = {}, connect } =
      checkKnownOptions(
        options,
        ["remoteAddr", "remoteHostname", "loop", "extra", "connect"],
      );
    this.#connected = checkBoolean(connect, "connect option") ?? true;
    let handle = DatagramConnTransport.#pendingHandle;
    DatagramConnTransport.#pendingHandle = null;
    if (handle === null) {
      checkUsableConn(conn);
      handle = new DenoDatagramHandle(conn);
    }
    const addr = handle.addr;
    this.#unix = addr.transport === "unixpacket";
    this.#v6 = !this.#unix && (addr as Deno.NetAddr).hostname.includes(":");
    if (remoteAddr !== undefined) {
      this.#setRemote(remoteAddr);
      if (remoteHostname !== undefined) {
        this.#remoteHost = checkString(remoteHostname, "remoteHostname");
      }
    }
    this.#handle = handle;
    if (this.#remote !== null && this.#connected && handle.canConnect) {
      // A kernel-connected socket: ICMP errors come back, other peers are
      // filtered by the kernel.
      try {
        handle.connect(this.#remote);
      } catch (error) {
        void handle.close();
        throw error;
      }
    }
    this.#protocol = protocol;
    this.#loop = loop ?? currentLoop();
    this.#unclosed = watchUnclosed(this.#loop, this, "datagram transport");
    this.#extra = extra;
    try {
      this.#call("connectionMade", this);
    } catch (error) {
      this.#fatal(error, "Exception in protocol.connectionMade()");
      return;
    }
    // An unbound Unix socket has no address: nothing can reach it.
    if (!this.#closing && !(this.#unix && isUnbound(addr))) {
      handle.receiveStart(this.#sink);
    }
  }

  // ---- BaseTransport ----

  /**
   * Information about the endpoint: `"sockname"` (the local `Deno.Addr`),
   * `"peername"` (the `remoteAddr`, or `fallback` without one), `"socket"`
   * (a socket view with `getSockName`, `getPeerName`, `fileno`), `"conn"`
   * (the `Deno.DatagramConn`); `fallback` for an unknown name.
   */
  getExtraInfo(name: string, fallback?: unknown): unknown {
    if (Object.hasOwn(this.#extra, name)) return this.#extra[name];
    switch (name) {
      case "sockname":
        return this.#handle.addr;
      case "peername":
        return (this.#connected ? this.#remote : null) ?? fallback;
      case "socket": {
        const handle = this.#handle;
        return socketView({
          fd: handle.fd,
          options: handle.options,
          localAddr: () => handle.addr,
          remoteAddr: () =>
            (this.#connected ? this.#remote : null) ?? undefined,
          closed: () => this.#lost,
        });
      }
      case "conn":
        return this.#handle.resource ?? fallback;
    }
    return fallback;
  }

  /** Whether the transport is closing or closed. */
  isClosing(): boolean {
    return this.#closing;
  }

  /**
   * Stops receiving at once, sends the datagrams still queued, then closes
   * the socket; `connectionLost(null)` follows.
   */
  close(): void {
    if (this.#closing) return;
    this.#closing = true;
    this.#closedByUser = true;
    if (!this.#sending) this.#finish(null);
  }

  /** Closes now, discarding queued datagrams; `connectionLost(null)` follows. */
  abort(): void {
    this.#closedByUser = true;
    this.#finish(null);
  }

  /** Replaces the protocol that receives the callbacks. */
  setProtocol(protocol: BaseProtocol): void {
    this.#protocol = protocol;
  }

  /** The protocol that receives the callbacks. */
  getProtocol(): BaseProtocol {
    return this.#protocol;
  }

  // ---- DatagramTransport ----

  /**
   * Queues one datagram for `addr`, or for the endpoint's `remoteAddr` when
   * `addr` is left out. Never blocks; datagrams go out in order, whole. The
   * bytes are copied: later changes to `data` change nothing sent.
   *
   * Throws `TypeError` for a non-`Uint8Array`, a malformed address, or no
   * address on an endpoint without `remoteAddr`; `RangeError` for an
   * address other than the `remoteAddr` (asyncio's `ValueError`) or a
   * datagram larger than UDP allows (65507 bytes over IPv4, 65527 over
   * IPv6); `Deno.errors.BadResource` after `close()`. Failures of the send
   * itself go to the protocol's `errorReceived`.
   */
  sendTo(data: Uint8Array, addr?: DatagramAddress): void {
    assertBytes(data);
    this.#checkOpen();
    const target = this.#target(addr);
    if (!this.#unix) {
      const limit = this.#isV6Target(target as Deno.NetAddr)
        ? MAX_UDP6_PAYLOAD
        : MAX_UDP4_PAYLOAD;
      if (data.length > limit) {
        throw new RangeError(
          `A UDP datagram over IPv${
            limit === MAX_UDP4_PAYLOAD ? 4 : 6
          } carries at most ${limit} bytes, got ${data.length}`,
        );
      }
    }
    this.#queue.push({ data: data.slice(), addr: target });
    this.#bufferSize += data.length + DATAGRAM_HEADER;
    if (!this.#sending) {
      this.#sending = true;
      this.#flush();
    }
    this.#maybePauseProtocol();
  }

  /**
   * Bytes queued (including the datagram being sent) and not yet sent, plus
   * 8 per datagram for its header, as CPython 3.13 counts.
   */
  getWriteBufferSize(): number {
    return this.#bufferSize;
  }

  /**
   * Sets the write flow-control marks: `pauseWriting()` when the queued
   * bytes rise above `high`, `resumeWriting()` when they fall to `low` or
   * below. Defaults: high 64 KiB, low high/4.
   */
  setWriteBufferLimits(limits?: { high?: number; low?: number }): void {
    // Stricter than the stream transports: finite numbers only.
    // (Unknown keys are refused by the flow's own check.)
    const { high, low } = checkOptions(limits, "limits");
    if (high !== undefined) checkNumber(high, "high mark");
    if (low !== undefined) checkNumber(low, "low mark");
    this.#flow.setLimits(limits);
    this.#maybePauseProtocol();
    this.#maybeResumeProtocol();
  }

  /** The flow-control marks as `[low, high]`. */
  getWriteBufferLimits(): [low: number, high: number] {
    return this.#flow.limits;
  }

  // ---- Multicast ----

  /**
   * Joins a multicast group (`IP_ADD_MEMBERSHIP`) on the interface with the
   * given IPv4 address (default `"0.0.0.0"`: the kernel picks one by the
   * route to the group), or for an IPv6 group the interface index (default
   * 0). Rejects with `AddrInUse` if already a member there.
   */
  addMembership(group: string, iface?: string | number): Promise<void> {
    return this.#multicast(() => this.#handle.addMembership(group, iface));
  }

  /** Leaves a multicast group (`IP_DROP_MEMBERSHIP`); `AddrNotAvailable` if not a member. */
  dropMembership(group: string, iface?: string | number): Promise<void> {
    return this.#multicast(() => this.#handle.dropMembership(group, iface));
  }

  /** Sets `IP_MULTICAST_TTL` (0–255; Linux's default is 1). */
  setMulticastTtl(ttl: number): Promise<void> {
    return this.#multicast(() => this.#handle.setMulticastTtl(ttl));
  }

  /**
   * Sets `IP_MULTICAST_LOOP`: whether this host's own members get the
   * multicast datagrams this endpoint sends. On by default, as on Linux.
   */
  setMulticastLoopback(enabled: boolean): Promise<void> {
    return this.#multicast(() => this.#handle.setMulticastLoopback(enabled));
  }

  // ---- internals ----

  async #multicast(operation: () => Promise<void>): Promise<void> {
    this.#checkOpen();
    await operation();
  }

  #checkOpen(): void {
    if (!this.#closing) return;
    throw new Deno.errors.BadResource(
      this.#closedByUser
        ? "Cannot use a closed datagram transport"
        : "Cannot use the datagram transport: it was closed after an error",
      { cause: this.#lostError ?? undefined },
    );
  }

  #setRemote(remoteAddr: DatagramAddress): void {
    if (remoteAddr === null || typeof remoteAddr !== "object") {
      throw new TypeError(
        `The remoteAddr must be an object, got ${describe(remoteAddr)}`,
      );
    }
    if (this.#unix) {
      if (!isUnixAddress(remoteAddr)) {
        throw new TypeError(
          "The remoteAddr of a Unix datagram endpoint must be { path }",
        );
      }
      this.#remote = {
        transport: "unixpacket",
        path: checkUnixPath(remoteAddr.path),
      };
      return;
    }
    if (isUnixAddress(remoteAddr)) {
      throw new TypeError(
        "The remoteAddr of a UDP endpoint must be { hostname, port }",
      );
    }
    const port = checkDestinationPort(remoteAddr.port, "remoteAddr port");
    const hostname = remoteAddr.hostname === undefined
      ? "127.0.0.1"
      : checkString(remoteAddr.hostname, "remoteAddr hostname");
    const ip = canonicalIp(hostname);
    if (ip === null) {
      throw new TypeError(
        `The remoteAddr hostname must be an IP address here (createDatagramEndpoint resolves names), got "${hostname}"`,
      );
    }
    this.#remote = { transport: "udp", hostname: ip, port };
    this.#remoteHost = hostname;
  }

  /** The Deno address to send to, checked against `remoteAddr`. */
  #target(addr: DatagramAddress | undefined): Deno.Addr {
    const remote = this.#remote;
    if (addr === undefined || addr === null) {
      if (remote === null) {
        throw new TypeError(
          "sendTo() needs an address: this endpoint has no remoteAddr",
        );
      }
      return remote;
    }
    if (typeof addr !== "object") {
      throw new TypeError(
        `The address must be an object, got ${describe(addr)}`,
      );
    }
    let target: Deno.Addr;
    if (this.#unix) {
      if (!isUnixAddress(addr)) {
        throw new TypeError(
          "The address of a Unix datagram must be { path }",
        );
      }
      target = { transport: "unixpacket", path: checkUnixPath(addr.path) };
    } else {
      if (isUnixAddress(addr)) {
        throw new TypeError(
          "The address of a UDP datagram must be { hostname, port }",
        );
      }
      const port = checkDestinationPort(addr.port, "port");
      const hostname = addr.hostname === undefined
        ? "127.0.0.1"
        : checkString(addr.hostname, "hostname");
      if (hostname.length === 0) {
        throw new TypeError("The hostname must not be empty");
      }
      target = { transport: "udp", hostname, port };
    }
    if (remote !== null && !this.#isRemote(target)) {
      throw new RangeError(
        `Invalid address: this endpoint sends only to its remoteAddr ${
          formatAddr(remote)
        } (leave the address out), got ${formatAddr(target)}`,
      );
    }
    return remote ?? target;
  }

  #isRemote(addr: Deno.Addr): boolean {
    const remote = this.#remote!;
    if (remote.transport === "unixpacket") {
      return (addr as Deno.UnixAddr).path === remote.path;
    }
    const { hostname, port } = addr as Deno.NetAddr;
    const net = remote as Deno.NetAddr;
    return port === net.port &&
      (hostname === this.#remoteHost ||
        canonicalIp(hostname) === net.hostname);
  }

  #isV6Target(addr: Deno.NetAddr): boolean {
    const ip = canonicalIp(addr.hostname);
    return ip === null ? this.#v6 : ip.includes(":");
  }

  /** Whether a received datagram's sender passes the remoteAddr filter. */
  #accepts(addr: Deno.Addr): boolean {
    const remote = this.#remote;
    if (remote === null || !this.#connected) return true;
    if (remote.transport === "unixpacket") {
      return (addr as Deno.UnixAddr).path === remote.path;
    }
    const { hostname, port } = addr as Deno.NetAddr;
    const net = remote as Deno.NetAddr;
    return port === net.port && canonicalIp(hostname) === net.hostname;
  }

  /** Calls a protocol callback if the protocol has it (duck typing). */
  #call(name: ProtocolMethod, ...args: unknown[]): void {
    const protocol = this.#protocol;
    const method = (protocol as unknown as Record<string, unknown>)[name];
    if (typeof method !== "function") return;
    if (!debugActive) {
      method.apply(protocol, args);
      return;
    }
    const start = performance.now();
    method.apply(protocol, args);
    reportSlow(this.#loop, start, protocolCallback(protocol, name));
  }

  async #flush(): Promise<void> {
    const handle = this.#handle;
    const connected = this.#remote !== null && this.#connected &&
      handle.canConnect;
    while (this.#head < this.#queue.length && !this.#lost) {
      const { data, addr } = this.#queue[this.#head];
      let failure: unknown = null;
      try {
        const sent = handle.send(data, connected ? null : addr);
        if (typeof sent !== "number") await sent;
      } catch (error) {
        failure = error ?? new Error("send failed");
      }
      if (this.#lost) return;
      this.#queue[this.#head++] = undefined as unknown as QueuedDatagram;
      this.#bufferSize -= data.length + DATAGRAM_HEADER;
      if (this.#head > 1024 && this.#head * 2 > this.#queue.length) {
        this.#queue = this.#queue.slice(this.#head);
        this.#head = 0;
      }
      if (failure !== null) {
        if (isClosedError(failure)) {
          this.#fatal(failure, "Fatal write error on datagram transport");
          return;
        }
        try {
          this.#call("errorReceived", toError(failure));
        } catch (error) {
          this.#fatal(error, "Exception in protocol.errorReceived()");
          return;
        }
        if (this.#lost) return;
      }
      this.#maybeResumeProtocol();
    }
    this.#queue = [];
    this.#head = 0;
    this.#sending = false;
    if (this.#closing && !this.#lost) this.#finish(null);
  }

  /** The sink's `datagram`: `data` is a view valid during the call. */
  #datagram(data: Uint8Array, addr: Deno.Addr): void {
    if (this.#closing || !this.#accepts(addr)) return;
    try {
      this.#call("datagramReceived", data.slice(), addr);
    } catch (error) {
      this.#fatal(error, "Exception in protocol.datagramReceived()");
    }
  }

  #receiveError(error: Error, fatal: boolean): void {
    if (this.#closing) return;
    if (fatal) {
      this.#fatal(error, "Fatal read error on datagram transport");
      return;
    }
    try {
      this.#call("errorReceived", error);
    } catch (exception) {
      this.#fatal(exception, "Exception in protocol.errorReceived()");
    }
  }

  #maybePauseProtocol(): void {
    this.#flow.pauseIfAbove(this.#bufferSize, this.#writeCallbacks);
  }

  #maybeResumeProtocol(): void {
    this.#flow.resumeIfBelow(this.#bufferSize, this.#writeCallbacks);
  }

  #report(message: string, exception: unknown): void {
    reportError(this.#loop, this, this.#protocol, message, exception);
  }

  #fatal(error: unknown, message: string): void {
    if (this.#lost) return;
    this.#report(message, error);
    this.#finish(toError(error));
  }

  /** Closes the socket now and calls `connectionLost(exc)` once. */
  #finish(exc: Error | null): void {
    if (this.#lost) return;
    this.#lost = true;
    this.#closing = true;
    if (this.#unclosed !== null) this.#unclosed.closed = true;
    this.#lostError = exc;
    this.#queue = [];
    this.#head = 0;
    this.#bufferSize = 0;
    this.#handle.close().then(() => {
      try {
        this.#call("connectionLost", exc);
      } catch (exception) {
        this.#report("Exception in protocol.connectionLost()", exception);
      }
    });
  }
}

function formatAddr(addr: Deno.Addr): string {
  if (addr.transport === "unixpacket" || addr.transport === "unix") {
    return (addr as Deno.UnixAddr).path ?? "(unbound)";
  }
  const { hostname, port } = addr as Deno.NetAddr;
  return hostname.includes(":")
    ? `[${hostname}]:${port}`
    : `${hostname}:${port}`;
}

/** A port to send to: 1–65535 (port 0 cannot be a destination). */
export function checkDestinationPort(port: unknown, what: string): number {
  checkPort(port, what);
  if (port === 0) {
    throw new RangeError(
      `The ${what} must be from 1 to 65535 for a destination, got 0`,
    );
  }
  return port as number;
}

export function checkBoolean(
  value: unknown,
  what: string,
): boolean | undefined {
  if (value !== undefined && typeof value !== "boolean") {
    throw new TypeError(
      `The ${what} must be a boolean, got ${describe(value)}`,
    );
  }
  return value;
}
