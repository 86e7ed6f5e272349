// One shared pool for small byte arrays that are handed out as owned
// (a small read of the stream transport, a short line a StreamReader
// returns). A fresh ArrayBuffer per small array costs about 0.7 µs in V8
// (bench/RESULTS.md, Run H); a view of a shared 64 KiB buffer costs a
// fifth of that. Node's `Buffer` pool works the same way.
//
// Each view gets bytes no other view ever had: a pool buffer is filled
// from the front and replaced when full, never reused. A view that is
// kept keeps its whole pool buffer alive, and `view.buffer` shows the
// other views' bytes (document this wherever pooled arrays are handed out).

/** Size of each pool buffer. */
const POOL_SIZE = 64 * 1024;
/** The largest request the pool serves (larger ones get their own buffer). */
export const POOL_MAX = 4 * 1024;

let pool = new ArrayBuffer(POOL_SIZE);
let used = 0;

/**
 * `n` fresh bytes (zero, never handed out before) as a view of the pool,
 * for the caller to fill; `n` at most {@linkcode POOL_MAX}. Views are made
 * with the constructor (`subarray()` costs half as much again).
 */
export function poolSpace(n: number): Uint8Array {
  if (POOL_SIZE - used < n) {
    pool = new ArrayBuffer(POOL_SIZE);
    used = 0;
  }
  const view = new Uint8Array(pool, used, n);
  used = (used + n + 7) & ~7;
  return view;
}

/** A pooled copy of `n` bytes of `source` from `start` (`n` ≤ POOL_MAX). */
export function copyToPool(
  source: Uint8Array,
  start: number,
  n: number,
): Uint8Array {
  const view = poolSpace(n);
  view.set(
    start === 0 && n === source.length
      ? source
      : new Uint8Array(source.buffer, source.byteOffset + start, n),
  );
  return view;
}
