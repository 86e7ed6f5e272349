// Handle and TimerHandle, as asyncio's events.Handle/TimerHandle: what
// callSoon, callLater and callAt return. A handle reports its callback's
// errors to the loop it belongs to. Public through events.ts.

import type { LoopCore } from "./_loop_core.ts";
import { callbackName, debugActive, reportSlow } from "./_debug.ts";

/**
 * A scheduled callback that can be cancelled (`loop.callSoon` returns one).
 *
 * @example Cancel before it runs
 * ```ts
 * import { getEventLoop } from "@aionet/aionet/events";
 *
 * const handle = getEventLoop().callSoon(() => console.log("never"));
 * handle.cancel();
 * ```
 */
export class Handle {
  #cancelled = false;
  #callback: ((...args: unknown[]) => unknown) | null;
  #args: unknown[];
  #loop: LoopCore;

  /** Made by the loop; not meant to be constructed by users. */
  constructor(
    loop: LoopCore,
    callback: (...args: unknown[]) => unknown,
    args: unknown[],
  ) {
    this.#loop = loop;
    this.#callback = callback;
    this.#args = args;
  }

  /** Prevents the callback from running, if it has not run yet. */
  cancel(): void {
    this.#cancelled = true;
    this.#callback = null;
    this.#args = [];
  }

  /** Whether `cancel()` was called. */
  cancelled(): boolean {
    return this.#cancelled;
  }

  /** Runs the callback now (the loop calls this); errors go to the handler. */
  run(): void {
    const callback = this.#callback;
    if (callback === null) return;
    this.#callback = null;
    const start = debugActive ? performance.now() : 0;
    try {
      const result = callback(...this.#args);
      if (result instanceof Promise) {
        result.catch((exception) => this.#report(exception));
      }
    } catch (exception) {
      this.#report(exception);
    }
    if (debugActive) {
      const kind = this instanceof TimerHandle ? "TimerHandle" : "Handle";
      reportSlow(this.#loop, start, `<${kind} ${callbackName(callback)}>`);
    }
  }

  #report(exception: unknown): void {
    this.#loop.callExceptionHandler({
      message: "Exception in callback",
      exception,
      handle: this,
    });
  }
}

let onTimerCancel: (handle: TimerHandle, hook: (() => void) | null) => void;

/** Sets what cancelling `handle` also does (the loop frees its timer). */
export function setTimerCancelHook(
  handle: TimerHandle,
  hook: (() => void) | null,
): void {
  onTimerCancel(handle, hook);
}

/**
 * A callback scheduled for a time (`loop.callLater`/`callAt` return one).
 * Timers run in the order of their time; timers due at the same time run
 * in the order they were scheduled.
 *
 * @example When will it run?
 * ```ts
 * import { getEventLoop } from "@aionet/aionet/events";
 *
 * const loop = getEventLoop();
 * const timer = loop.callLater(1000, () => {});
 * console.log(timer.when() - loop.time()); // about 1000
 * timer.cancel();
 * ```
 */
export class TimerHandle extends Handle {
  #when: number;
  #cancelHook: (() => void) | null = null;

  static {
    onTimerCancel = (handle, hook) => handle.#cancelHook = hook;
  }

  /** Made by the loop (`callLater`/`callAt`); not meant to be constructed by users. */
  constructor(
    loop: LoopCore,
    when: number,
    callback: (...args: unknown[]) => unknown,
    args: unknown[],
  ) {
    super(loop, callback, args);
    this.#when = when;
  }

  /** The loop time (ms) at which the callback is due. */
  when(): number {
    return this.#when;
  }

  /** Prevents the callback from running and frees its timer. */
  override cancel(): void {
    const alreadyCancelled = this.cancelled();
    super.cancel();
    const hook = this.#cancelHook;
    this.#cancelHook = null;
    if (!alreadyCancelled && hook !== null) hook();
  }
}
