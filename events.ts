/**
 * The event loop: scheduling (`callSoon`, `callLater`, `callAt`), futures,
 * and the exception handler that transports report protocol errors to.
 *
 * Deno runs its own event loop; aionet's {@linkcode EventLoop} is a thin
 * asyncio-shaped view over it, so code that says `loop.callSoon(...)` or
 * `loop.createFuture()` ports line for line. Durations are milliseconds.
 *
 * @example Schedule a callback and wait on a future
 * ```ts
 * import { getEventLoop } from "@aionet/aionet/events";
 *
 * const loop = getEventLoop();
 * const done = loop.createFuture<string>();
 * loop.callLater(10, () => done.setResult("tick"));
 * console.log(await done); // "tick"
 * ```
 *
 * @module
 */

/** What a transport or the loop reports to the exception handler. */
export interface ExceptionContext {
  /** What went wrong, in words. */
  message: string;
  /** The error, where there is one. */
  exception?: unknown;
  /** The transport concerned, where known. */
  transport?: unknown;
  /** The protocol concerned, where known. */
  protocol?: unknown;
  /** Further fields, as asyncio allows (`future`, `handle`, `socket`, …). */
  [key: string]: unknown;
}

/**
 * An exception handler, as `loop.set_exception_handler` takes.
 *
 * @example Collect reported errors
 * ```ts
 * import { type ExceptionHandler, getEventLoop } from "@aionet/aionet/events";
 *
 * const seen: unknown[] = [];
 * const handler: ExceptionHandler = (_loop, context) => seen.push(context.exception);
 * getEventLoop().setExceptionHandler(handler);
 * getEventLoop().setExceptionHandler(null);
 * ```
 */
export type ExceptionHandler = (
  loop: EventLoop,
  context: ExceptionContext,
) => void;

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
  #loop: EventLoop;

  /** Made by the loop; not meant to be constructed by users. */
  constructor(
    loop: EventLoop,
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
    try {
      const result = callback(...this.#args);
      if (result instanceof Promise) {
        result.catch((exception) => this.#report(exception));
      }
    } catch (exception) {
      this.#report(exception);
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

/**
 * A callback scheduled for a time (`loop.callLater`/`callAt` return one).
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
  #timerId: ReturnType<typeof setTimeout> | undefined;

  /** Made by the loop; not meant to be constructed by users. */
  constructor(
    loop: EventLoop,
    when: number,
    callback: (...args: unknown[]) => unknown,
    args: unknown[],
  ) {
    super(loop, callback, args);
    this.#when = when;
    this.#timerId = setTimeout(
      () => {
        this.#timerId = undefined;
        this.run();
      },
      Math.max(0, when - loop.time()),
    );
  }

  /** The loop time (ms) at which the callback is due. */
  when(): number {
    return this.#when;
  }

  /** Prevents the callback from running and frees its timer. */
  override cancel(): void {
    if (this.#timerId !== undefined) clearTimeout(this.#timerId);
    this.#timerId = undefined;
    super.cancel();
  }
}

/** Raised by `Future.result()` on a cancelled future. */
export class CancelledError extends Error {
  /**
   * Makes the error, with asyncio's default message unless one is given.
   *
   * @example
   * ```ts
   * import { CancelledError } from "@aionet/aionet/events";
   * const error = new CancelledError();
   * console.log(error.name); // "CancelledError"
   * ```
   */
  constructor(message = "The future was cancelled") {
    super(message);
    this.name = "CancelledError";
  }
}

/** Raised by `Future.result()` before the future is done. */
export class InvalidStateError extends Error {
  /**
   * Makes the error with a message saying which state was wrong.
   *
   * @example
   * ```ts
   * import { InvalidStateError } from "@aionet/aionet/events";
   * console.log(new InvalidStateError("Result is not set.").name);
   * ```
   */
  constructor(message: string) {
    super(message);
    this.name = "InvalidStateError";
  }
}

type FutureState = "pending" | "finished" | "cancelled";

/**
 * asyncio's `Future`: a result that arrives later, set by `setResult` or
 * `setException`, awaitable with `await`. An exception that is never
 * retrieved does not become an unhandled rejection.
 *
 * @example Resolve from a protocol callback
 * ```ts
 * import { getEventLoop } from "@aionet/aionet/events";
 *
 * const lost = getEventLoop().createFuture<boolean>();
 * setTimeout(() => lost.setResult(true), 1);
 * console.log(await lost); // true
 * ```
 */
export class Future<T = unknown> implements PromiseLike<T> {
  #state: FutureState = "pending";
  #result: T | undefined;
  #exception: unknown = undefined;
  #hasException = false;
  #callbacks: Array<(future: Future<T>) => void> = [];

  /** Whether a result, an exception or a cancellation was set. */
  done(): boolean {
    return this.#state !== "pending";
  }

  /** Whether the future was cancelled. */
  cancelled(): boolean {
    return this.#state === "cancelled";
  }

  /** The result; throws the exception, `CancelledError`, or `InvalidStateError` if not done. */
  result(): T {
    if (this.#state === "cancelled") throw new CancelledError();
    if (this.#state === "pending") {
      throw new InvalidStateError("Result is not set.");
    }
    if (this.#hasException) throw this.#exception;
    return this.#result as T;
  }

  /** The exception, or `null`; throws `CancelledError` or `InvalidStateError` as `result()`. */
  exception(): unknown {
    if (this.#state === "cancelled") throw new CancelledError();
    if (this.#state === "pending") {
      throw new InvalidStateError("Exception is not set.");
    }
    return this.#hasException ? this.#exception : null;
  }

  /** Sets the result; throws `InvalidStateError` if already done. */
  setResult(value: T): void {
    this.#settle("finished", () => {
      this.#result = value;
    });
  }

  /** Sets an exception; throws `InvalidStateError` if already done. */
  setException(exception: unknown): void {
    this.#settle("finished", () => {
      this.#exception = exception;
      this.#hasException = true;
    });
  }

  /** Cancels the future; returns `false` if it was already done. */
  cancel(): boolean {
    if (this.#state !== "pending") return false;
    this.#settle("cancelled", () => {});
    return true;
  }

  /** Calls `callback(future)` once the future is done (at once if it is). */
  addDoneCallback(callback: (future: Future<T>) => void): void {
    if (this.#state === "pending") this.#callbacks.push(callback);
    else queueMicrotask(() => callback(this));
  }

  /** Removes a done callback; returns how many were removed. */
  removeDoneCallback(callback: (future: Future<T>) => void): number {
    const before = this.#callbacks.length;
    this.#callbacks = this.#callbacks.filter((c) => c !== callback);
    return before - this.#callbacks.length;
  }

  /** Makes the future awaitable. */
  then<R1 = T, R2 = never>(
    onFulfilled?: ((value: T) => R1 | PromiseLike<R1>) | null,
    onRejected?: ((reason: unknown) => R2 | PromiseLike<R2>) | null,
  ): Promise<R1 | R2> {
    const promise = new Promise<T>((resolve, reject) => {
      this.addDoneCallback((future) => {
        try {
          resolve(future.result());
        } catch (error) {
          reject(error);
        }
      });
    });
    return promise.then(onFulfilled, onRejected);
  }

  #settle(state: FutureState, apply: () => void): void {
    if (this.#state !== "pending") {
      throw new InvalidStateError(`The future is already ${this.#state}.`);
    }
    apply();
    this.#state = state;
    const callbacks = this.#callbacks;
    this.#callbacks = [];
    for (const callback of callbacks) queueMicrotask(() => callback(this));
  }
}

/**
 * The asyncio-shaped event loop. There is one per program; get it with
 * {@linkcode getEventLoop}.
 *
 * @example Report an error the way transports do
 * ```ts
 * import { getEventLoop } from "@aionet/aionet/events";
 *
 * const loop = getEventLoop();
 * loop.setExceptionHandler((_loop, context) => console.log(context.message));
 * loop.callExceptionHandler({ message: "something failed" });
 * loop.setExceptionHandler(null);
 * ```
 */
export class EventLoop {
  #handler: ExceptionHandler | null = null;
  #closed = false;

  /** The loop's clock in milliseconds (monotonic, as `performance.now()`). */
  time(): number {
    return performance.now();
  }

  /**
   * Runs `callback(...args)` soon, in a microtask (not `setTimeout(0)`, which
   * costs milliseconds). Errors go to the exception handler.
   */
  callSoon<A extends unknown[]>(
    callback: (...args: A) => unknown,
    ...args: A
  ): Handle {
    this.#checkOpen();
    const handle = new Handle(
      this,
      callback as (...args: unknown[]) => unknown,
      args,
    );
    queueMicrotask(() => handle.run());
    return handle;
  }

  /** Runs `callback(...args)` after `delay` milliseconds. */
  callLater<A extends unknown[]>(
    delay: number,
    callback: (...args: A) => unknown,
    ...args: A
  ): TimerHandle {
    if (typeof delay !== "number" || Number.isNaN(delay)) {
      throw new TypeError(`The delay must be a number, got ${typeof delay}`);
    }
    return this.callAt(this.time() + delay, callback, ...args);
  }

  /** Runs `callback(...args)` at loop time `when` (milliseconds). */
  callAt<A extends unknown[]>(
    when: number,
    callback: (...args: A) => unknown,
    ...args: A
  ): TimerHandle {
    this.#checkOpen();
    if (typeof when !== "number" || Number.isNaN(when)) {
      throw new TypeError(`The time must be a number, got ${typeof when}`);
    }
    return new TimerHandle(
      this,
      when,
      callback as (...args: unknown[]) => unknown,
      args,
    );
  }

  /** A new pending {@linkcode Future}. */
  createFuture<T = unknown>(): Future<T> {
    return new Future<T>();
  }

  /**
   * Starts `coroutine` (a promise) as a task and returns it; a rejection
   * nobody awaits goes to the exception handler instead of crashing.
   */
  createTask<T>(coroutine: Promise<T>): Promise<T> {
    coroutine.catch((exception) =>
      this.callExceptionHandler({ message: "Task exception", exception })
    );
    return coroutine;
  }

  /** Whether `close()` was called. */
  isClosed(): boolean {
    return this.#closed;
  }

  /** Closes the loop: scheduling afterwards throws `BadResource`. */
  close(): void {
    this.#closed = true;
  }

  /**
   * Sets the exception handler: `handler(loop, context)`. `null` restores
   * the default, which logs to stderr.
   */
  setExceptionHandler(handler: ExceptionHandler | null): void {
    if (handler !== null && typeof handler !== "function") {
      throw new TypeError(
        `The exception handler must be a function or null, got ${typeof handler}`,
      );
    }
    this.#handler = handler;
  }

  /** The exception handler set, or `null` for the default. */
  getExceptionHandler(): ExceptionHandler | null {
    return this.#handler;
  }

  /** Logs `context` to stderr, as asyncio's default handler does. */
  defaultExceptionHandler(context: ExceptionContext): void {
    const { message, exception, ...rest } = context;
    const details = Object.entries(rest)
      .filter(([, value]) => value !== undefined)
      .map(([key, value]) => `${key}: ${Deno.inspect(value, { depth: 1 })}`);
    const lines = [message || "Unhandled exception in event loop", ...details];
    if (exception !== undefined) console.error(lines.join("\n"), exception);
    else console.error(lines.join("\n"));
  }

  /**
   * Reports `context` to the exception handler (or the default one). An
   * error thrown by the handler is logged, never propagated.
   */
  callExceptionHandler(context: ExceptionContext): void {
    const handler = this.#handler;
    if (handler === null) {
      this.defaultExceptionHandler(context);
      return;
    }
    try {
      handler(this, context);
    } catch (exception) {
      this.defaultExceptionHandler({
        message: "Unhandled error in exception handler",
        exception,
        context,
      });
    }
  }

  /** Closes the loop (`using loop = ...`). */
  [Symbol.dispose](): void {
    this.close();
  }

  #checkOpen(): void {
    if (this.#closed) {
      throw new Deno.errors.BadResource("The event loop is closed");
    }
  }
}

let defaultLoop: EventLoop | undefined;

/**
 * The program's event loop (created on first use).
 *
 * @example
 * ```ts
 * import { getEventLoop } from "@aionet/aionet/events";
 * const loop = getEventLoop();
 * console.log(loop.time() >= 0); // true
 * ```
 */
export function getEventLoop(): EventLoop {
  if (defaultLoop === undefined || defaultLoop.isClosed()) {
    defaultLoop = new EventLoop();
  }
  return defaultLoop;
}

/**
 * The running event loop. In Deno a loop is always running, so this is
 * {@linkcode getEventLoop}.
 *
 * @example
 * ```ts
 * import { getEventLoop, getRunningLoop } from "@aionet/aionet/events";
 * console.log(getRunningLoop() === getEventLoop()); // true
 * ```
 */
export function getRunningLoop(): EventLoop {
  return getEventLoop();
}
