// A clock that moves only when told to, for testing timeouts scheduled with
// callLater/callAt (Twisted's task.Clock). Public through testing.ts.

import { setImmediate } from "node:timers";
import { EventLoop, getEventLoop, TimerHandle } from "./events.ts";
import { checkFunction, checkKnownOptions, describe } from "./_validate.ts";

/** The most timers one `advance`/`runAll` runs before it gives up. */
const MAX_TIMERS = 100_000;

/**
 * The part of an event loop that tells time and schedules timers: what
 * {@linkcode FakeClock} and `EventLoop` have in common. Take a `Clock`
 * (defaulting to `getEventLoop()`) where your code needs time, and tests
 * can pass a `FakeClock`.
 *
 * @example Code that takes a clock
 * ```ts
 * import type { Clock } from "@aionet/aionet/testing";
 * import { getEventLoop } from "@aionet/aionet/events";
 *
 * function idleTimer(onIdle: () => void, clock: Clock = getEventLoop()) {
 *   return clock.callLater(30_000, onIdle);
 * }
 * idleTimer(() => {}).cancel();
 * ```
 */
export interface Clock {
  /** The clock's time in milliseconds. */
  time(): number;
  /** Runs `callback(...args)` after `delay` milliseconds. */
  callLater<A extends unknown[]>(
    delay: number,
    callback: (...args: A) => unknown,
    ...args: A
  ): TimerHandle;
  /** Runs `callback(...args)` at clock time `when` (milliseconds). */
  callAt<A extends unknown[]>(
    when: number,
    callback: (...args: A) => unknown,
    ...args: A
  ): TimerHandle;
}

/** Options of {@linkcode FakeClock} and `withFakeClock`. */
export interface FakeClockOptions {
  /** The time the clock starts at, in milliseconds. Default `0`. */
  start?: number;
  /**
   * The loop that timer callbacks report errors to, and that
   * `withFakeClock` installs the clock on. Default: `getEventLoop()`.
   */
  loop?: EventLoop;
}

interface Entry {
  when: number;
  seq: number;
  handle: TimerHandle;
}

function checkTime(value: unknown, what: string): number {
  if (typeof value !== "number" || Number.isNaN(value)) {
    throw new TypeError(`The ${what} must be a number, got ${describe(value)}`);
  }
  return value;
}

function checkDuration(ms: unknown): number {
  checkTime(ms, "duration");
  if ((ms as number) < 0 || !Number.isFinite(ms)) {
    throw new RangeError(
      `The duration must be a finite number of at least 0, got ${ms}`,
    );
  }
  return ms as number;
}

function nextTurn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/**
 * A clock that only moves when the test says so (Twisted's `task.Clock`,
 * sinon's fake timers): `callLater`/`callAt` schedule timers that run when
 * {@linkcode FakeClock.advance} moves time past them, in the order of
 * their time (ties: the order they were scheduled). Each timer runs with
 * `time()` set to its due time, so a timer that reschedules itself runs as
 * often as it would in real time. Timer callbacks run as the loop's: an
 * error (or a rejected promise) goes to the loop's exception handler.
 *
 * Pass it where code takes a {@linkcode Clock}, or
 * {@linkcode FakeClock.install} it on an event loop (or use
 * `withFakeClock`) so that code calling `getEventLoop().callLater(...)`
 * uses it. Only `time`, `callLater` and `callAt` are faked: `setTimeout`
 * and `callSoon` are not.
 *
 * @example Fire a timeout without waiting for it
 * ```ts
 * import { FakeClock } from "@aionet/aionet/testing";
 *
 * const clock = new FakeClock();
 * const fired: string[] = [];
 * clock.callLater(100, () => fired.push("late"));
 * const early = clock.callLater(50, () => fired.push("early"));
 * clock.callLater(10, () => fired.push("first"));
 * early.cancel();
 * clock.advance(99);
 * console.log(fired); // ["first"]
 * clock.advance(1);
 * console.log(fired); // ["first", "late"]
 * ```
 */
export class FakeClock implements Clock {
  #now: number;
  #loop: EventLoop | undefined;
  #timers: Entry[] = [];
  #seq = 0;
  #installedOn: EventLoop | null = null;
  #advancing = false;

  /**
   * A clock at `start` (default 0 ms).
   *
   * @example Using `new FakeClock()`
   * ```ts
   * import { FakeClock } from "@aionet/aionet/testing";
   *
   * const clock = new FakeClock({ start: 1_000 });
   * console.log(clock.time()); // 1000
   * ```
   */
  constructor(options?: FakeClockOptions) {
    const { start = 0, loop } = checkKnownOptions(options, ["start", "loop"]);
    if (loop !== undefined && !(loop instanceof EventLoop)) {
      throw new TypeError(
        `The loop must be an EventLoop, got ${describe(loop)}`,
      );
    }
    checkTime(start, "start time");
    if (!Number.isFinite(start)) {
      throw new RangeError(`The start time must be finite, got ${start}`);
    }
    this.#now = start;
    this.#loop = loop;
  }

  /** The clock's time in milliseconds. */
  time(): number {
    return this.#now;
  }

  /**
   * Schedules `callback(...args)` for `delay` ms from now (a delay of 0 or
   * less runs at the next `advance`, even `advance(0)`).
   */
  callLater<A extends unknown[]>(
    delay: number,
    callback: (...args: A) => unknown,
    ...args: A
  ): TimerHandle {
    checkTime(delay, "delay");
    return this.callAt(this.#now + delay, callback, ...args);
  }

  /** Schedules `callback(...args)` for clock time `when`. */
  callAt<A extends unknown[]>(
    when: number,
    callback: (...args: A) => unknown,
    ...args: A
  ): TimerHandle {
    checkTime(when, "time");
    checkFunction(callback, "callback");
    const handle = new TimerHandle(
      this.#installedOn ?? this.#loop ?? getEventLoop(),
      when,
      callback as (...args: unknown[]) => unknown,
      args,
    );
    const entry = { when, seq: ++this.#seq, handle };
    // Keep the list sorted by (when, seq): insert after every entry due at
    // or before `when`.
    const timers = this.#timers;
    let lo = 0;
    let hi = timers.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (timers[mid].when <= when) lo = mid + 1;
      else hi = mid;
    }
    timers.splice(lo, 0, entry);
    return handle;
  }

  /**
   * The timers not yet run nor cancelled, in the order they will run.
   *
   * @example Using `pendingTimers`
   * ```ts
   * import { FakeClock } from "@aionet/aionet/testing";
   *
   * const clock = new FakeClock();
   * clock.callLater(5, () => {});
   * console.log(clock.pendingTimers().map((t) => t.when())); // [5]
   * ```
   */
  pendingTimers(): TimerHandle[] {
    this.#dropCancelled();
    return this.#timers.map((entry) => entry.handle);
  }

  /**
   * Moves time forward by `ms`, running every timer due meanwhile (and any
   * they schedule within the window) in order. Returns how many ran.
   * Promise callbacks that the timers trigger run only after this returns;
   * use {@linkcode FakeClock.advanceAsync} to let them schedule timers
   * within the window.
   */
  advance(ms: number): number {
    checkDuration(ms);
    this.#enter();
    try {
      const target = this.#now + ms;
      let count = 0;
      for (
        let entry = this.#nextDue(target);
        entry;
        entry = this.#nextDue(target)
      ) {
        this.#run(entry, ++count);
      }
      this.#now = Math.max(this.#now, target);
      return count;
    } finally {
      this.#advancing = false;
    }
  }

  /**
   * As {@linkcode FakeClock.advance}, but lets pending promise callbacks
   * (and other queued tasks) run before each timer and at the end, so that
   * `async` code woken by a timer can schedule the next one in the same
   * window. Returns how many timers ran.
   *
   * @example A retry loop with back-off
   * ```ts
   * import { FakeClock } from "@aionet/aionet/testing";
   *
   * const clock = new FakeClock();
   * const sleep = (ms: number) =>
   *   new Promise<void>((r) => clock.callLater(ms, () => r()));
   * let tries = 0;
   * const retry = (async () => {
   *   for (let delay = 100; tries < 3; delay *= 2) { tries++; await sleep(delay); }
   * })();
   * await clock.advanceAsync(700); // 100 + 200 + 400
   * await retry;
   * console.log(tries, clock.time()); // 3 700
   * ```
   */
  async advanceAsync(ms: number): Promise<number> {
    checkDuration(ms);
    this.#enter();
    try {
      const target = this.#now + ms;
      let count = 0;
      await nextTurn();
      for (;;) {
        const entry = this.#nextDue(target);
        if (entry === undefined) break;
        this.#run(entry, ++count);
        await nextTurn();
      }
      this.#now = Math.max(this.#now, target);
      await nextTurn();
      return count;
    } finally {
      this.#advancing = false;
    }
  }

  /**
   * Runs timers in order, moving time to each, until none is left (timers
   * scheduled meanwhile included). Returns how many ran. Throws after
   * 100 000 timers: a timer that always reschedules itself never ends.
   */
  runAll(): number {
    this.#enter();
    try {
      let count = 0;
      for (
        let entry = this.#nextDue(Infinity);
        entry;
        entry = this.#nextDue(Infinity)
      ) {
        this.#run(entry, ++count);
      }
      return count;
    } finally {
      this.#advancing = false;
    }
  }

  /**
   * Makes `loop.time()`, `loop.callLater()` and `loop.callAt()` use this
   * clock until the returned object is disposed (`using`). Code that calls
   * `getEventLoop().callLater(...)` then schedules on this clock. Timers
   * of this clock still pending at disposal stay on the clock. Install the
   * clock before anything schedules on the loop: timers already on the
   * real loop stay there, and while the clock is installed they may run
   * early or late, because the loop's own timer queue reads `loop.time()`.
   *
   * @example Using `install`
   * ```ts
   * import { FakeClock } from "@aionet/aionet/testing";
   * import { getEventLoop } from "@aionet/aionet/events";
   *
   * const clock = new FakeClock();
   * {
   *   using _installed = clock.install();
   *   let fired = false;
   *   getEventLoop().callLater(60_000, () => fired = true);
   *   clock.advance(60_000);
   *   console.log(fired); // true
   * }
   * ```
   */
  install(loop: EventLoop = getEventLoop()): Disposable {
    if (this.#installedOn !== null) {
      throw new Deno.errors.Busy("This clock is already installed on a loop");
    }
    if (loop === null || typeof loop !== "object") {
      throw new TypeError(
        `The loop must be an EventLoop, got ${describe(loop)}`,
      );
    }
    const target = loop as unknown as Record<string, unknown>;
    const names = ["time", "callLater", "callAt"] as const;
    const saved = names.map((name) =>
      [name, Object.getOwnPropertyDescriptor(target, name)] as const
    );
    const replacements: Record<(typeof names)[number], unknown> = {
      time: () => this.time(),
      callLater: (delay: number, callback: () => unknown, ...args: []) =>
        this.callLater(delay, callback, ...args),
      callAt: (when: number, callback: () => unknown, ...args: []) =>
        this.callAt(when, callback, ...args),
    };
    for (const name of names) {
      Object.defineProperty(target, name, {
        value: replacements[name],
        configurable: true,
        writable: true,
        enumerable: false,
      });
    }
    this.#installedOn = loop;
    let disposed = false;
    return {
      [Symbol.dispose]: () => {
        if (disposed) return;
        disposed = true;
        for (const [name, descriptor] of saved) {
          if (descriptor === undefined) delete target[name];
          else Object.defineProperty(target, name, descriptor);
        }
        this.#installedOn = null;
      },
    };
  }

  #enter(): void {
    if (this.#advancing) {
      throw new Deno.errors.Busy(
        "The clock is already advancing (advance/advanceAsync/runAll called from a timer or concurrently)",
      );
    }
    this.#advancing = true;
  }

  #dropCancelled(): void {
    this.#timers = this.#timers.filter((entry) => !entry.handle.cancelled());
  }

  /** Removes and returns the first live timer due at or before `limit`. */
  #nextDue(limit: number): Entry | undefined {
    const timers = this.#timers;
    while (timers.length > 0 && timers[0].handle.cancelled()) timers.shift();
    if (timers.length === 0 || timers[0].when > limit) return undefined;
    return timers.shift();
  }

  #run(entry: Entry, count: number): void {
    if (count > MAX_TIMERS) {
      throw new Error(
        `More than ${MAX_TIMERS} timers ran in one call: a timer keeps rescheduling itself`,
      );
    }
    this.#now = Math.max(this.#now, entry.when);
    entry.handle.run();
  }
}

/**
 * Runs `fn` with a {@linkcode FakeClock} installed on the event loop
 * (`options.loop`, default `getEventLoop()`): inside, `loop.time()`,
 * `loop.callLater()` and `loop.callAt()` use the fake clock; the real ones
 * are restored when `fn` settles. Returns what `fn` returns.
 *
 * @example Test an idle timeout
 * ```ts
 * import { withFakeClock } from "@aionet/aionet/testing";
 * import { getEventLoop } from "@aionet/aionet/events";
 *
 * await withFakeClock((clock) => {
 *   let timedOut = false;
 *   getEventLoop().callLater(30_000, () => timedOut = true);
 *   clock.advance(29_999);
 *   console.log(timedOut); // false
 *   clock.advance(1);
 *   console.log(timedOut); // true
 * });
 * ```
 */
export async function withFakeClock<T>(
  fn: (clock: FakeClock) => T | Promise<T>,
  options?: FakeClockOptions,
): Promise<T> {
  checkFunction(fn, "function");
  const clock = new FakeClock(options);
  // The constructor checked the options.
  using _installed = clock.install(options?.loop ?? getEventLoop());
  return await fn(clock);
}
