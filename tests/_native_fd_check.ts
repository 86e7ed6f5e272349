// Test helpers of the native backend. Deno's resource sanitizer cannot see
// descriptors opened through FFI, so `nativeTest` lists /proc/self/fd
// before and after each test and fails on a descriptor that appeared (a
// leak) — after waiting for the poller to settle, and checking that
// nothing is left registered in it (a process with nothing open must be
// able to exit). Also: a raw pipe and socketpair for tests, a one-shot
// event, and the backend made once.

import assert from "node:assert/strict";
import type { Backend, StreamHandle } from "../_backend.ts";
import { createNativeBackend, nativeAvailability } from "../_native_backend.ts";
import { errno, openLibc, osError, sys } from "../_native_libc.ts";
import { poller } from "../_native_poller.ts";
import { activeBackend, install, uninstall } from "../native.ts";

const availability = nativeAvailability();

/**
 * Why the native backend cannot run here (then every native test is
 * skipped, saying so), or `null`.
 */
export const nativeUnavailable: string | null = availability.available
  ? null
  : availability.reason;

/**
 * Runs `fn` with `name` as the backend new objects use (native.ts's
 * `install()`/`uninstall()`), then restores the one before.
 */
export async function withBackend(
  name: "native" | "deno",
  fn: () => Promise<void>,
): Promise<void> {
  const before = activeBackend();
  if (name === "native") install();
  else uninstall();
  try {
    await fn();
  } finally {
    if (before === "native") install();
    else uninstall();
  }
}

/** The native backend (made once; loads libc and the poller). */
export const backend: Backend = nativeUnavailable === null
  ? createNativeBackend()
  : new Proxy({} as Backend, {
    get() {
      throw new Error(`The native backend cannot run: ${nativeUnavailable}`);
    },
  });

/** The open descriptors of this process: fd number → link target. */
export function openFds(): Map<number, string> {
  const fds = new Map<number, string>();
  for (const entry of Deno.readDirSync("/proc/self/fd")) {
    const fd = Number(entry.name);
    try {
      fds.set(fd, Deno.readLinkSync(`/proc/self/fd/${entry.name}`));
    } catch {
      // The directory's own descriptor, closed by now.
    }
  }
  return fds;
}

/** Descriptors in `after` that were not open (as the same thing) in `before`. */
export function newFds(
  before: Map<number, string>,
  after: Map<number, string>,
): string[] {
  const leaks: string[] = [];
  for (const [fd, target] of after) {
    if (before.get(fd) !== target) leaks.push(`fd ${fd} -> ${target}`);
  }
  return leaks;
}

/** Lets Deno finish closing its own resources (a few loop turns, bounded). */
function turns(count: number): Promise<void> {
  return new Promise((resolve) => {
    let left = count;
    const step = () => (--left <= 0 ? resolve() : setTimeout(step, 0));
    setTimeout(step, 0);
  });
}

/**
 * Fails if the native poller still has registrations with interest or a
 * background wait pending (after letting it settle).
 */
export async function assertPollerIdle(): Promise<void> {
  await poller().settled();
  const stats = poller().stats();
  assert.equal(stats.active, 0, "registrations with interest remain");
  assert.ok(
    stats.state !== "parked" && stats.state !== "breathing",
    "a background epoll_wait is still pending",
  );
}

/** Options of {@linkcode nativeTest}. */
export interface NativeTestOptions
  extends Omit<Deno.TestDefinition, "name" | "fn"> {
  /**
   * Await the poller's `settled()` before checking (default true). False
   * for tests of the synchronous close path: then nothing is awaited after
   * the test body unless descriptors look leaked, so the op sanitizer sees
   * exactly what the body left behind.
   */
  settle?: boolean;
}

/**
 * Runs `fn` with the native leak checks: descriptors it opened must be
 * closed by its end, and the poller must be idle (`settle`: see
 * {@linkcode NativeTestOptions}).
 */
export async function withLeakChecks(
  fn: () => void | Promise<void>,
  settle = true,
): Promise<void> {
  const before = openFds();
  await fn();
  if (settle) {
    await assertPollerIdle();
  } else {
    assert.equal(poller().stats().active, 0, "registrations remain");
  }
  let leaks = newFds(before, openFds());
  // Deno may close a peer's descriptor a turn after close() returned.
  for (let i = 0; leaks.length > 0 && i < 5; i++) {
    await turns(2);
    leaks = newFds(before, openFds());
  }
  assert.deepEqual(leaks, [], "descriptors leaked by the test");
}

/**
 * `Deno.test` with the native leak checks: descriptors opened by the test
 * must be closed by its end, and the poller must be idle.
 */
export function nativeTest(
  name: string,
  fn: (t: Deno.TestContext) => void | Promise<void>,
  options: NativeTestOptions = {},
): void {
  const { settle = true, ...definition } = options;
  Deno.test({
    ...definition,
    name: nativeUnavailable === null
      ? name
      : `${name} (skipped: ${nativeUnavailable})`,
    ignore: definition.ignore || nativeUnavailable !== null,
    fn: (t) => withLeakChecks(() => fn(t), settle),
  });
}

/** A raw pipe (non-blocking, close-on-exec): `[readFd, writeFd]`. */
export function rawPipe(): [number, number] {
  openLibc();
  const fds = new Int32Array(new ArrayBuffer(8));
  if (sys.pipe2(new Uint8Array(fds.buffer), 0o4000 | 0o2000000) < 0) {
    throw osError(errno(), "pipe2");
  }
  return [fds[0], fds[1]];
}

/** Closes raw descriptors. */
export function closeRaw(...fds: number[]): void {
  for (const fd of fds) sys.close(fd);
}

/** Writes `data` to a raw descriptor at once; returns the count. */
export function rawWrite(fd: number, data: Uint8Array): number {
  const n = sys.write(fd, data, BigInt(data.length));
  if (n < 0) throw osError(errno(), "write");
  return n;
}

/** Reads from a raw descriptor at once (`null`: would block). */
export function rawRead(fd: number, size = 65536): Uint8Array | null {
  const buffer = new Uint8Array(size);
  const n = sys.read(fd, buffer, BigInt(size));
  if (n < 0) {
    const code = errno();
    if (code === 11) return null;
    throw osError(code, "read");
  }
  return buffer.subarray(0, n);
}

/**
 * Resolves when `check()` holds, testing it whenever `poke()` is called;
 * rejects after `ms` naming `what` (the timer is always cleared).
 */
export class Condition {
  #waiters: Array<{ check: () => boolean; resolve: () => void }> = [];

  /** Re-tests the pending conditions (call after every event). */
  poke(): void {
    this.#waiters = this.#waiters.filter((waiter) => {
      if (!waiter.check()) return true;
      waiter.resolve();
      return false;
    });
  }

  /** Waits until `check()` holds. */
  until(check: () => boolean, what: string, ms = 5000): Promise<void> {
    if (check()) return Promise.resolve();
    const { promise, resolve, reject } = Promise.withResolvers<void>();
    const timer = setTimeout(() => {
      this.#waiters = this.#waiters.filter((w) => w.resolve !== done);
      reject(new Error(`Timed out after ${ms} ms waiting for ${what}`));
    }, ms);
    const done = () => {
      clearTimeout(timer);
      resolve();
    };
    this.#waiters.push({ check, resolve: done });
    return promise;
  }
}

/** A read sink that records what a stream handle delivers. */
export class Collector {
  readonly chunks: Uint8Array[] = [];
  total = 0;
  eof = false;
  error: Error | null = null;
  readonly changed = new Condition();
  readonly #buffer: Uint8Array;

  constructor(bufferSize = 65536) {
    this.#buffer = new Uint8Array(bufferSize);
  }

  readBuffer(): Uint8Array {
    return this.#buffer;
  }

  readDone(buffer: Uint8Array, n: number): void {
    this.chunks.push(buffer.slice(0, n));
    this.total += n;
    this.changed.poke();
  }

  readEof(): void {
    this.eof = true;
    this.changed.poke();
  }

  readError(error: Error): void {
    this.error = error;
    this.changed.poke();
  }

  /** Everything received, joined. */
  bytes(): Uint8Array {
    const out = new Uint8Array(this.total);
    let offset = 0;
    for (const chunk of this.chunks) {
      out.set(chunk, offset);
      offset += chunk.length;
    }
    return out;
  }

  /** Waits until `total` bytes arrived. */
  bytesReceived(total: number, ms?: number): Promise<void> {
    return this.changed.until(
      () => this.total >= total || this.eof || this.error !== null,
      `${total} bytes (have ${this.total})`,
      ms,
    );
  }

  /** Waits for EOF or an error. */
  ended(ms?: number): Promise<void> {
    return this.changed.until(
      () => this.eof || this.error !== null,
      "EOF or an error",
      ms,
    );
  }
}

/** Writes all of `data` through `handle.write` (numbers and promises). */
export async function writeAll(
  handle: { write(data: Uint8Array): number | Promise<number> },
  data: Uint8Array,
): Promise<void> {
  let offset = 0;
  while (offset < data.length) {
    const result = handle.write(data.subarray(offset));
    offset += typeof result === "number" ? result : await result;
  }
}

/** `size` deterministic bytes (xorshift), to check integrity. */
export function pattern(size: number, seed = 1): Uint8Array {
  const out = new Uint8Array(size);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < size; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

/** An accept sink that records accepted handles. */
export class Acceptor {
  readonly handles: StreamHandle[] = [];
  error: Error | null = null;
  readonly changed = new Condition();

  accepted(handle: StreamHandle): void {
    this.handles.push(handle);
    this.changed.poke();
  }

  acceptError(error: Error): void {
    this.error = error;
    this.changed.poke();
  }

  /** Waits until `count` connections were accepted. */
  count(count: number, ms?: number): Promise<void> {
    return this.changed.until(
      () => this.handles.length >= count || this.error !== null,
      `${count} accepted connections (have ${this.handles.length})`,
      ms,
    );
  }
}
