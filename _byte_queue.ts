// The StreamReader's buffer: a queue of chunks, read from the front.
//
// Chunks are kept as they arrive (no concatenation on feed); small chunks
// are packed into a shared store so that data fed a byte at a time does not
// become a chunk per byte, and a chunk that continues the last one in memory
// (consecutive reads into one slab) lengthens it. A read that fits in the
// first chunk gets a view of it (no copy), or a copy in the shared pool when
// it is short; only a read that spans chunks copies, and only what it
// returns. Bytes are never written twice, so views handed out stay valid.

import { copyToPool, POOL_MAX, poolSpace } from "./_byte_pool.ts";

const EMPTY = new Uint8Array(0);
/** Chunks shorter than this are packed into a shared store. */
const SMALL = 512;
/** Size of a store for small chunks. */
const STORE_SIZE = 4096;
/**
 * A result this short is copied out of a larger chunk (not to pin the
 * chunk), into the shared pool (`_byte_pool.ts`).
 */
const COPY_BELOW = 4096;

export class ByteQueue {
  #chunks: Uint8Array[] = [];
  /** Index of the first live chunk in #chunks. */
  #head = 0;
  /** Bytes already consumed from the first live chunk. */
  #offset = 0;
  #size = 0;
  /** Store that small chunks are appended to, and how much of it is used. */
  #store: Uint8Array | null = null;
  #storeUsed = 0;

  /** Bytes buffered. */
  get size(): number {
    return this.#size;
  }

  /**
   * Appends `data`. With `owned`, the queue may keep `data` itself (the
   * caller gives it up); otherwise the bytes are copied.
   */
  push(data: Uint8Array, owned: boolean): void {
    const length = data.length;
    if (length === 0) return;
    this.#size += length;
    if (length < SMALL) {
      this.#pushSmall(data);
      return;
    }
    if (!owned) {
      this.#chunks.push(data.slice());
    } else if (!this.#extendLast(data.buffer, data.byteOffset, length)) {
      this.#chunks.push(data);
    }
  }

  /**
   * Lengthens the last live chunk by `length` bytes if it ends exactly at
   * `byteOffset` of `buffer` (consecutive reads into one slab): a later
   * read over both then gets one view instead of a copy.
   */
  #extendLast(
    buffer: ArrayBufferLike,
    byteOffset: number,
    length: number,
  ): boolean {
    const chunks = this.#chunks;
    if (chunks.length === this.#head) return false;
    const last = chunks[chunks.length - 1];
    if (
      last.buffer !== buffer || last.byteOffset + last.length !== byteOffset
    ) {
      return false;
    }
    chunks[chunks.length - 1] = new Uint8Array(
      buffer,
      last.byteOffset,
      last.length + length,
    );
    return true;
  }

  #pushSmall(data: Uint8Array): void {
    const length = data.length;
    let store = this.#store;
    const chunks = this.#chunks;
    if (store !== null && this.#storeUsed + length <= store.length) {
      store.set(data, this.#storeUsed);
      const at = store.byteOffset + this.#storeUsed;
      if (!this.#extendLast(store.buffer, at, length)) {
        chunks.push(store.subarray(this.#storeUsed, this.#storeUsed + length));
      }
      this.#storeUsed += length;
      return;
    }
    store = this.#store = new Uint8Array(STORE_SIZE);
    store.set(data);
    this.#storeUsed = length;
    chunks.push(store.subarray(0, length));
  }

  /** Removes and returns the first `n` bytes (`0 <= n <= size`). */
  take(n: number): Uint8Array {
    if (n === 0) return EMPTY;
    const chunks = this.#chunks;
    const first = chunks[this.#head];
    const offset = this.#offset;
    const available = first.length - offset;
    if (n <= available) {
      let result: Uint8Array;
      if (n === available) {
        result = offset === 0 ? first : first.subarray(offset);
      } else if (n < COPY_BELOW) {
        result = copyToPool(first, offset, n);
      } else {
        result = first.subarray(offset, offset + n);
      }
      this.#advance(n);
      return result;
    }
    const result = n <= POOL_MAX ? poolSpace(n) : new Uint8Array(n);
    let filled = 0;
    while (filled < n) {
      const chunk = chunks[this.#head];
      const start = this.#offset;
      const count = Math.min(chunk.length - start, n - filled);
      result.set(
        start === 0 && count === chunk.length
          ? chunk
          : chunk.subarray(start, start + count),
        filled,
      );
      filled += count;
      this.#advance(count);
    }
    return result;
  }

  /** Discards the first `n` bytes (`0 <= n <= size`). */
  drop(n: number): void {
    while (n > 0) {
      const available = this.#chunks[this.#head].length - this.#offset;
      const count = Math.min(available, n);
      this.#advance(count);
      n -= count;
    }
  }

  /** Consumes `n` bytes of the first chunk (`n` ≤ what it has left). */
  #advance(n: number): void {
    this.#size -= n;
    this.#offset += n;
    const chunks = this.#chunks;
    if (this.#offset < chunks[this.#head].length) return;
    this.#offset = 0;
    this.#head++;
    if (this.#head === chunks.length) {
      chunks.length = 0;
      this.#head = 0;
    } else if (this.#head >= 64 && 2 * this.#head >= chunks.length) {
      chunks.splice(0, this.#head);
      this.#head = 0;
    }
  }

  /** The byte at `index` (`0 <= index < size`). */
  byteAt(index: number): number {
    const [ci, at] = this.#locate(index);
    return this.#chunks[ci][at];
  }

  /**
   * Position of the first occurrence of `sep` lying wholly inside
   * `[from, to)`, or -1. Native `indexOf` finds the first byte within each
   * chunk; the rest is compared only where the first byte matched.
   */
  find(sep: Uint8Array, from: number, to: number): number {
    const m = sep.length;
    const last = to - m;
    if (from > last) return -1;
    const chunks = this.#chunks;
    const firstByte = sep[0];
    let [ci, at] = this.#locate(from);
    // Logical position of chunks[ci][0].
    let base = from - at;
    let i = from;
    while (i <= last) {
      const chunk = chunks[ci];
      const j = chunk.indexOf(firstByte, i - base);
      if (j === -1 || base + j > last) {
        base += chunk.length;
        ci++;
        if (base > last || ci === chunks.length) return -1;
        i = base;
        continue;
      }
      if (m === 1 || this.#matches(sep, ci, j)) return base + j;
      i = base + j + 1;
    }
    return -1;
  }

  /** Whether `sep` starts at `chunks[ci][at]` (its first byte matched). */
  #matches(sep: Uint8Array, ci: number, at: number): boolean {
    const chunks = this.#chunks;
    let chunk = chunks[ci];
    for (let k = 1; k < sep.length; k++) {
      at++;
      if (at === chunk.length) {
        chunk = chunks[++ci];
        at = 0;
      }
      if (chunk[at] !== sep[k]) return false;
    }
    return true;
  }

  /** Chunk index and offset in it of logical position `index` (< size). */
  #locate(index: number): [number, number] {
    const chunks = this.#chunks;
    if (2 * index < this.#size) {
      let ci = this.#head;
      let at = index + this.#offset;
      while (at >= chunks[ci].length) {
        at -= chunks[ci].length;
        ci++;
      }
      return [ci, at];
    }
    // Near the end (readUntil scans resume there): walk back from the tail.
    let ci = chunks.length - 1;
    let start = this.#size - chunks[ci].length;
    while (start > index) {
      ci--;
      start -= chunks[ci].length;
    }
    // The head chunk's consumed bytes sit before logical position 0.
    return [ci, index - start];
  }
}
