// The transport interfaces, as Python's asyncio/transports.py: what a
// protocol sees of its transport. No implementation lives here; the only
// import is the protocol types (the transport and protocol interfaces name
// each other, as in asyncio). Public through transports.ts.

import type { BaseProtocol } from "./protocols.ts";

/**
 * What every transport has.
 *
 * @example Inspect a transport
 * ```ts
 * import type { BaseTransport } from "@aionet/aionet/transports";
 *
 * function describe(t: BaseTransport) {
 *   return `${JSON.stringify(t.getExtraInfo("peername"))} closing=${t.isClosing()}`;
 * }
 * ```
 */
export interface BaseTransport {
  /**
   * Information about the transport by name: `"peername"`, `"sockname"`,
   * `"socket"`, `"conn"`, and on TLS `"alpnProtocol"`, `"peercert"`,
   * `"cipher"`, `"sslObject"`; `fallback` for others.
   */
  getExtraInfo(name: string, fallback?: unknown): unknown;
  /** Whether the transport is closing or closed. */
  isClosing(): boolean;
  /** Closes the transport (after flushing what it buffered). */
  close(): void;
  /** Replaces the protocol. */
  setProtocol(protocol: BaseProtocol): void;
  /** The current protocol. */
  getProtocol(): BaseProtocol;
}

/**
 * The read side of a stream transport.
 *
 * @example Back-pressure on reading
 * ```ts
 * import type { ReadTransport } from "@aionet/aionet/transports";
 *
 * function throttle(t: ReadTransport, busy: boolean) {
 *   if (busy) t.pauseReading();
 *   else t.resumeReading();
 * }
 * ```
 */
export interface ReadTransport extends BaseTransport {
  /** Whether the transport is reading. */
  isReading(): boolean;
  /** No `dataReceived` until `resumeReading()`, even for a read in flight. */
  pauseReading(): void;
  /** Resumes reading. */
  resumeReading(): void;
}

/**
 * The write side of a stream transport.
 *
 * @example Write and half-close
 * ```ts
 * import type { WriteTransport } from "@aionet/aionet/transports";
 *
 * function finish(t: WriteTransport, last: Uint8Array) {
 *   t.write(last);
 *   if (t.canWriteEof()) t.writeEof();
 *   else t.close();
 * }
 * ```
 */
export interface WriteTransport extends BaseTransport {
  /** Queues bytes; never blocks, never loses data. */
  write(data: Uint8Array): void;
  /** Queues each chunk in order. */
  writeLines(list: Iterable<Uint8Array>): void;
  /** Half-closes once the buffer has drained. */
  writeEof(): void;
  /** Whether `writeEof()` is possible. */
  canWriteEof(): boolean;
  /** Closes now, discarding the buffer. */
  abort(): void;
  /** Sets the flow-control marks (default high 64 KiB, low high/4). */
  setWriteBufferLimits(limits?: { high?: number; low?: number }): void;
  /** Bytes buffered and not yet written. */
  getWriteBufferSize(): number;
  /** The flow-control marks as `[low, high]`. */
  getWriteBufferLimits(): [low: number, high: number];
}

/**
 * A bidirectional stream transport (TCP, Unix, TLS).
 *
 * @example Write from a protocol
 * ```ts
 * import type { Transport } from "@aionet/aionet/transports";
 * import { Protocol } from "@aionet/aionet/protocols";
 *
 * class Greeter extends Protocol {
 *   override connectionMade(t: Transport) {
 *     t.write(new TextEncoder().encode("hello\n"));
 *   }
 * }
 * ```
 */
export interface Transport extends ReadTransport, WriteTransport {}

/** Where a datagram goes: a host and port, or a Unix socket path. */
export type DatagramAddress = { hostname?: string; port: number } | {
  path: string;
};

/**
 * A datagram transport (UDP or Unix datagrams).
 *
 * @example Answer a datagram
 * ```ts
 * import type { DatagramTransport } from "@aionet/aionet/transports";
 *
 * function reply(t: DatagramTransport, addr: Deno.NetAddr) {
 *   t.sendTo(new TextEncoder().encode("pong"), addr);
 * }
 * ```
 */
export interface DatagramTransport extends BaseTransport {
  /** Sends one datagram to `addr` (or to the endpoint's `remoteAddr`). */
  sendTo(data: Uint8Array, addr?: DatagramAddress): void;
  /** Closes now, discarding queued datagrams. */
  abort(): void;
  /** Bytes queued and not yet sent. */
  getWriteBufferSize(): number;
}

/**
 * A child process seen as a transport.
 *
 * @example Stop a child
 * ```ts
 * import type { SubprocessTransport } from "@aionet/aionet/transports";
 *
 * function stop(t: SubprocessTransport) {
 *   if (t.getReturnCode() === null) t.terminate();
 * }
 * ```
 */
export interface SubprocessTransport extends BaseTransport {
  /** The child's process id. */
  getPid(): number;
  /** The exit code, minus the signal number, or `null` while running. */
  getReturnCode(): number | null;
  /** The transport of the child's stdin (0), stdout (1) or stderr (2). */
  getPipeTransport(fd: 0 | 1 | 2): Transport | null;
  /** Sends a signal to the child. */
  sendSignal(signal: Deno.Signal): void;
  /** Sends SIGTERM. */
  terminate(): void;
  /** Sends SIGKILL. */
  kill(): void;
}
