// Future and Task, as asyncio's futures.Future and tasks.Task, with the
// errors they raise. Public through events.ts.

import { callbackName, timedCall } from "./_debug.ts";
import { Handle } from "./_handles.ts";
import { currentLoop, type LoopCore } from "./_loop_core.ts";
import { onNextTurn } from "./_readiness.ts";
import {
  checkFunction,
  checkKnownOptions,
  checkString,
  describe,
} from "./_validate.ts";

/** Raised by `Future.result()` on a cancelled future. */
export class CancelledError extends Error {
  /**
   * Makes the error, with asyncio's default message unless one is given.
   *
   * @example Using `new CancelledError()`
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
   * @example Using `new InvalidStateError()`
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
  #cancelMessage: string | undefined;
  #loop: LoopCore | undefined;

  /**
   * A pending future; `loop` (default: the current loop when one is
   * needed) gets the errors of its done callbacks.
   */
  constructor(loop?: LoopCore) {
    if (
      loop !== undefined &&
      (loop === null || typeof loop !== "object" ||
        typeof loop.callExceptionHandler !== "function")
    ) {
      throw new TypeError(
        `The loop must be an event loop, got ${describe(loop)}`,
      );
    }
    this.#loop = loop;
  }

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
    if (this.#state === "cancelled") {
      throw new CancelledError(this.#cancelMessage);
    }
    if (this.#state === "pending") {
      throw new InvalidStateError("Result is not set.");
    }
    if (this.#hasException) throw this.#exception;
    return this.#result as T;
  }

  /** The exception, or `null`; throws `CancelledError` or `InvalidStateError` as `result()`. */
  exception(): unknown {
    if (this.#state === "cancelled") {
      throw new CancelledError(this.#cancelMessage);
    }
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

  /**
   * The loop the future belongs to (asyncio's `get_loop()`): the one that
   * made it, else the current loop.
   */
  getLoop(): LoopCore {
    return this.#loop ?? currentLoop();
  }

  /**
   * Cancels the future; returns `false` if it was already done. The
   * `CancelledError` that `result()`, `exception()` and `await` then throw
   * carries `message` when given (asyncio's `cancel(msg)`).
   */
  cancel(message?: string): boolean {
    if (message !== undefined) checkString(message, "cancel message");
    if (this.#state !== "pending") return false;
    this.#settle("cancelled", () => {
      this.#cancelMessage = message;
    });
    return true;
  }

  /** Calls `callback(future)` once the future is done (at once if it is). */
  addDoneCallback(callback: (future: Future<T>) => void): void {
    checkFunction(callback, "done callback");
    if (this.#state === "pending") this.#callbacks.push(callback);
    else queueMicrotask(() => this.#call(callback));
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
    for (const callback of callbacks) {
      queueMicrotask(() => this.#call(callback));
    }
  }

  /** Runs a done callback; its error goes to the exception handler. */
  #call(callback: (future: Future<T>) => void): void {
    const loop = this.#loop ?? currentLoop();
    try {
      // A loop callback, as asyncio's call_soon: slow ones are reported.
      timedCall(
        loop,
        () => `<Handle ${callbackName(callback)}>`,
        () => callback(this),
      );
    } catch (exception) {
      loop.callExceptionHandler({
        message: "Exception in callback",
        exception,
        handle: new Handle(loop, callback as () => void, [this]),
        future: this,
      });
    }
  }
}

/**
 * `loop.createTask()`'s work: checks `coroutine` (a promise) and the
 * options (`TypeError` naming an unknown one), and starts the Task.
 */
export function startTask<T>(
  loop: LoopCore,
  coroutine: PromiseLike<T>,
  options: { name?: string } | undefined,
): Task<T> {
  if (
    coroutine === null || typeof coroutine !== "object" &&
      typeof coroutine !== "function" ||
    typeof (coroutine as PromiseLike<T>).then !== "function"
  ) {
    throw new TypeError(
      `A promise (coroutine) is required, got ${describe(coroutine)}`,
    );
  }
  const { name } = checkKnownOptions(options, ["name"]);
  return new Task(loop, coroutine, name);
}

/**
 * asyncio's `Task`: a {@linkcode Future} that follows a promise (what
 * `loop.createTask(coroutine)` returns). It can be awaited, and used as a
 * `Promise` (`then`, `catch`, `finally`). An exception that nobody
 * retrieves (by awaiting the task or calling `result()`/`exception()`) goes
 * to the loop's exception handler, as asyncio's "Task exception was never
 * retrieved". `cancel()` makes the task (and whoever awaits it) finish with
 * `CancelledError`; JavaScript cannot interrupt the promise itself, whose
 * outcome is then ignored.
 *
 * @example Run two coroutines concurrently
 * ```ts
 * import { getEventLoop } from "@aionet/aionet/events";
 *
 * const loop = getEventLoop();
 * const sleep = (ms: number, value: string) =>
 *   new Promise<string>((resolve) => setTimeout(() => resolve(value), ms));
 * const a = loop.createTask(sleep(20, "a"));
 * const b = loop.createTask(sleep(10, "b"));
 * console.log(await Promise.all([a, b])); // ["a", "b"]
 * ```
 */
export class Task<T = unknown> extends Future<T> implements Promise<T> {
  #retrieved = false;
  #name: string;
  static #count = 0;

  /** Made by `loop.createTask()`. */
  constructor(loop: LoopCore, coroutine: PromiseLike<T>, name?: string) {
    super(loop);
    this.#name = name === undefined ? `Task-${++Task.#count}` : checkName(name);
    coroutine.then(
      (value) => {
        if (!this.done()) super.setResult(value);
      },
      (exception) => {
        if (this.done()) return;
        if (exception instanceof CancelledError) {
          // Ended by a cancellation it did not catch: cancelled, as asyncio.
          super.cancel(exception.message);
          return;
        }
        super.setException(exception);
        onNextTurn(() => {
          if (this.#retrieved) return;
          loop.callExceptionHandler({
            message: "Task exception was never retrieved",
            exception,
            future: this,
            task: this,
          });
        });
      },
    );
  }

  /** The task's name (`Task-1`, ... unless given). */
  getName(): string {
    return this.#name;
  }

  /** Renames the task. */
  setName(name: string): void {
    this.#name = checkName(name);
  }

  /**
   * The result, as {@linkcode Future.result}; marks the exception as
   * retrieved once the task is done (asking a pending task does not).
   */
  override result(): T {
    if (this.done()) this.#retrieved = true;
    return super.result();
  }

  /** The exception, as {@linkcode Future.exception}; marks it as retrieved once done. */
  override exception(): unknown {
    if (this.done()) this.#retrieved = true;
    return super.exception();
  }

  /** Not supported: a task's result comes from its coroutine (as asyncio). */
  override setResult(_value: T): void {
    throw new Deno.errors.NotSupported(
      "A Task's result comes from its coroutine: setResult() is not supported",
    );
  }

  /** Not supported: a task's exception comes from its coroutine. */
  override setException(_exception: unknown): void {
    throw new Deno.errors.NotSupported(
      "A Task's exception comes from its coroutine: setException() is not supported",
    );
  }

  /** Makes the task awaitable (retrieves its outcome). */
  override then<R1 = T, R2 = never>(
    onFulfilled?: ((value: T) => R1 | PromiseLike<R1>) | null,
    onRejected?: ((reason: unknown) => R2 | PromiseLike<R2>) | null,
  ): Promise<R1 | R2> {
    this.#retrieved = true;
    return super.then(onFulfilled, onRejected);
  }

  /** As `Promise.prototype.catch`. */
  catch<R = never>(
    onRejected?: ((reason: unknown) => R | PromiseLike<R>) | null,
  ): Promise<T | R> {
    return this.then(undefined, onRejected);
  }

  /** As `Promise.prototype.finally`. */
  finally(onFinally?: (() => void) | null): Promise<T> {
    return this.then(
      (value) => {
        onFinally?.();
        return value;
      },
      (reason) => {
        onFinally?.();
        throw reason;
      },
    );
  }

  /** `"Task"`, for `Object.prototype.toString`. */
  get [Symbol.toStringTag](): string {
    return "Task";
  }
}

function checkName(name: unknown): string {
  return checkString(name, "task name");
}
