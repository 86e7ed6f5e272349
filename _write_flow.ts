// Write-side pieces shared by every transport: asyncio's write flow control
// (the high/low marks and the pauseWriting/resumeWriting calls) and the
// coalescing buffer that owns queued bytes.

import type { BaseProtocol } from "./protocols.ts";
import { checkKnownOptions } from "./_validate.ts";

/** The part of a protocol that write flow control calls. */
export type FlowControlled = Pick<
  BaseProtocol,
  "pauseWriting" | "resumeWriting"
>;

/** asyncio's default write high-water mark (64 KiB); low is high / 4. */
export const DEFAULT_HIGH_WATER = 64 * 1024;

/** The keys of `setWriteBufferLimits()`'s argument. */
const LIMIT_KEYS = ["high", "low"] as const;
/** Write buffers up to this size are kept for reuse after a flush. */
const KEEP_BUFFER = 256 * 1024;
/** Smallest buffer allocated for queued bytes. */
const MIN_BUFFER = 4 * 1024;

/**
 * Write flow control as asyncio's transports have it: `pauseWriting()` once
 * the buffered size rises above `high`, `resumeWriting()` once it falls to
 * `low` or below. A protocol callback that throws is reported, not raised.
 */
export class WriteFlow {
  #high = DEFAULT_HIGH_WATER;
  #low = DEFAULT_HIGH_WATER / 4;
  #paused = false;
  #report: (message: string, exception: unknown) => void;

  constructor(report: (message: string, exception: unknown) => void) {
    this.#report = report;
  }

  /** Whether the protocol was told to pause writing. */
  get paused(): boolean {
    return this.#paused;
  }

  /** The marks as `[low, high]`. */
  get limits(): [low: number, high: number] {
    return [this.#low, this.#high];
  }

  /**
   * Sets the marks as `set_write_buffer_limits` does: high defaults to
   * 64 KiB (or 4 × low), low to high / 4; `TypeError` for non-numbers,
   * `RangeError` unless high ≥ low ≥ 0.
   */
  setLimits(limits: { high?: number; low?: number } | undefined): void {
    let { high, low } = checkKnownOptions(limits, LIMIT_KEYS, "limits");
    for (const [name, value] of [["high", high], ["low", low]] as const) {
      if (value !== undefined && typeof value !== "number") {
        throw new TypeError(`The ${name} mark must be a number`);
      }
      if (value !== undefined && !Number.isSafeInteger(value)) {
        throw new RangeError(
          `The ${name} mark must be a whole number of bytes, got ${value}`,
        );
      }
    }
    if (high === undefined) {
      high = low === undefined ? DEFAULT_HIGH_WATER : 4 * low;
    }
    if (low === undefined) low = Math.floor(high / 4);
    if (!(high >= low && low >= 0)) {
      throw new RangeError(
        `The high mark (${high}) must be >= the low mark (${low}) >= 0`,
      );
    }
    this.#high = high;
    this.#low = low;
  }

  /** Calls `protocol.pauseWriting()` if `size` is above high and not paused. */
  pauseIfAbove(size: number, protocol: FlowControlled): void {
    if (this.#paused || size <= this.#high) return;
    this.#paused = true;
    try {
      protocol.pauseWriting();
    } catch (exception) {
      this.#report("protocol.pauseWriting() failed", exception);
    }
  }

  /** Calls `protocol.resumeWriting()` if paused and `size` is at low or below. */
  resumeIfBelow(size: number, protocol: FlowControlled): void {
    if (!this.#paused || size > this.#low) return;
    this.#paused = false;
    try {
      protocol.resumeWriting();
    } catch (exception) {
      this.#report("protocol.resumeWriting() failed", exception);
    }
  }
}

/**
 * Queued bytes, copied in as they are written and taken out all at once:
 * small writes coalesce into one buffer, and the buffer of the last flush is
 * reused, so steady traffic allocates nothing.
 */
export class CoalescingBuffer {
  #buffer: Uint8Array | null = null;
  #length = 0;
  #spare: Uint8Array | null = null;

  /** Bytes queued. */
  get length(): number {
    return this.#length;
  }

  /** Copies `data` in after what is queued. */
  append(data: Uint8Array): void {
    const needed = this.#length + data.length;
    let buffer = this.#buffer;
    if (buffer === null || buffer.length < needed) {
      const spare = this.#spare;
      if (buffer === null && spare !== null && spare.length >= needed) {
        buffer = spare;
        this.#spare = null;
      } else {
        const grown = new Uint8Array(
          Math.max(needed, 2 * (buffer?.length ?? 0), MIN_BUFFER),
        );
        if (buffer !== null) grown.set(buffer.subarray(0, this.#length));
        buffer = grown;
      }
      this.#buffer = buffer;
    }
    buffer.set(data, this.#length);
    this.#length = needed;
  }

  /**
   * Takes every queued byte out: a view the caller owns until it hands the
   * buffer back with {@linkcode CoalescingBuffer.recycle}.
   */
  take(): Uint8Array {
    const buffer = this.#buffer!;
    const length = this.#length;
    this.#buffer = null;
    this.#length = 0;
    return length === buffer.length ? buffer : buffer.subarray(0, length);
  }

  /** Gives a taken buffer back for reuse once its bytes are written. */
  recycle(view: Uint8Array): void {
    const buffer =
      view.byteOffset === 0 && view.buffer.byteLength <= KEEP_BUFFER
        ? new Uint8Array(view.buffer)
        : null;
    if (buffer !== null) this.#spare = buffer;
  }

  /** Drops everything queued and the spare buffer. */
  clear(): void {
    this.#buffer = null;
    this.#length = 0;
    this.#spare = null;
  }
}
