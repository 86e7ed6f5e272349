// Emulated readiness: Deno has no poll(2), so every aionet Socket keeps its
// own kernel-like buffers (filled and drained by background operations) and
// publishes a Readiness that says, truthfully, whether a recv/accept or a
// send would complete at once. Selectors and the event loop subscribe to it.

/** Bit for "a read would not block" (same value as `EVENT_READ`). */
export const READ = 1;
/** Bit for "a write would not block" (same value as `EVENT_WRITE`). */
export const WRITE = 2;

/**
 * The readiness of one socket: a poll function and change listeners. Each
 * listener says which bits it cares about; a backend whose readiness comes
 * from the kernel (epoll) is told the union through `onInterest`, so it
 * watches only what someone waits for.
 */
export class Readiness {
  #listeners = new Map<() => void, number>();
  #poll: () => number;
  #isClosed: () => boolean;
  #onInterest: ((mask: number) => void) | undefined;
  #interest = 0;
  /** The socket's file descriptor (real or pseudo). */
  readonly fd: number;

  constructor(
    fd: number,
    poll: () => number,
    isClosed: () => boolean,
    onInterest?: (mask: number) => void,
  ) {
    this.fd = fd;
    this.#poll = poll;
    this.#isClosed = isClosed;
    this.#onInterest = onInterest;
  }

  /** The current mask of `READ | WRITE` (0 once closed). */
  poll(): number {
    return this.#isClosed() ? 0 : this.#poll();
  }

  /** Whether the socket was closed (waiters then give up). */
  closed(): boolean {
    return this.#isClosed();
  }

  /** The union of the bits the listeners care about. */
  get interest(): number {
    return this.#interest;
  }

  /**
   * Calls `listener` after every state change that may concern `mask`
   * (default both bits) until unsubscribed.
   */
  subscribe(listener: () => void, mask: number = READ | WRITE): () => void {
    this.#listeners.set(listener, mask);
    this.#updateInterest();
    return () => {
      if (this.#listeners.delete(listener)) this.#updateInterest();
    };
  }

  /** Tells every listener that the state may have changed. */
  notify(): void {
    for (const listener of [...this.#listeners.keys()]) {
      try {
        listener();
      } catch {
        // A listener's failure is its own business.
      }
    }
  }

  #updateInterest(): void {
    let mask = 0;
    for (const bits of this.#listeners.values()) mask |= bits;
    if (mask === this.#interest) return;
    this.#interest = mask;
    this.#onInterest?.(mask);
  }
}

const sources = new WeakMap<object, Readiness>();
const byFd = new Map<number, WeakRef<object>>();

/** Records `readiness` as the readiness of `fileobj`. */
export function setReadiness(fileobj: object, readiness: Readiness): void {
  sources.set(fileobj, readiness);
  byFd.set(readiness.fd, new WeakRef(fileobj));
}

/** Forgets the fd of a closed socket (its number is never reused). */
export function forgetFd(fd: number): void {
  byFd.delete(fd);
}

/** The readiness of `fileobj` (a Socket or its fd number), if it has one. */
export function readinessOf(fileobj: unknown): Readiness | undefined {
  if (typeof fileobj === "number") {
    const target = byFd.get(fileobj)?.deref();
    return target === undefined ? undefined : sources.get(target);
  }
  if (fileobj === null || typeof fileobj !== "object") return undefined;
  return sources.get(fileobj);
}

/**
 * Resolves once `readiness.poll() & mask` is non-zero; rejects with
 * `BadResource` if the socket closes first, or with the signal's reason.
 */
export function waitReady(
  readiness: Readiness,
  mask: number,
  signal?: AbortSignal,
): Promise<void> {
  if (signal?.aborted) return Promise.reject(abortReason(signal));
  if (readiness.poll() & mask) return Promise.resolve();
  const { promise, resolve, reject } = Promise.withResolvers<void>();
  const finish = (error?: unknown) => {
    unsubscribe();
    signal?.removeEventListener("abort", onAbort);
    if (error === undefined) resolve();
    else reject(error);
  };
  const onAbort = () => finish(abortReason(signal!));
  const unsubscribe = readiness.subscribe(() => {
    if (readiness.closed()) {
      finish(new Deno.errors.BadResource("The socket was closed"));
    } else if (readiness.poll() & mask) {
      finish();
    }
  }, mask);
  signal?.addEventListener("abort", onAbort, { once: true });
  if (readiness.closed()) {
    finish(new Deno.errors.BadResource("The socket is closed"));
  }
  return promise;
}

/** The reason an aborted signal rejects with. */
export function abortReason(signal: AbortSignal): unknown {
  return signal.reason ??
    new DOMException("The operation was aborted", "AbortError");
}

/**
 * Resolves after one macrotask turn, so pending I/O completions run first
 * (a microtask would starve them; `setTimeout(0)` costs milliseconds).
 */
export function nextTurn(): Promise<void> {
  return new Promise((resolve) => onNextTurn(resolve));
}

/** Runs `callback` after one macrotask turn (see {@linkcode nextTurn}). */
export function onNextTurn(callback: () => void): void {
  if (immediate !== undefined) {
    immediate(callback);
    return;
  }
  beforeTimers.push(callback);
  if (beforeTimers.length === 1) void loadTimers();
}

// `setImmediate` comes from node:timers, and importing that starts Deno's
// Node compatibility layer: 4-6 MiB of resident memory in every process
// (measured on the echo servers), for calls that are off the hot path
// (task failure reports, loop stop, selector and watch turns). So it is
// loaded at the first turn asked for; callbacks asked for meanwhile run in
// order once it is there.
let immediate: ((callback: () => void) => unknown) | undefined;
const beforeTimers: Array<() => void> = [];

async function loadTimers(): Promise<void> {
  const timers = await import("node:timers");
  immediate = timers.setImmediate;
  for (const callback of beforeTimers.splice(0)) immediate(callback);
}
