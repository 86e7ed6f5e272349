/**
 * The event loop, as asyncio's: scheduling (`callSoon`, `callLater`,
 * `callAt`), futures and tasks, `runUntilComplete`/`runForever`/`stop`,
 * readiness callbacks (`addReader`/`addWriter`), the low-level `sock*`
 * functions, signal handlers, the connection factories as methods, and the
 * exception handler that transports report protocol errors to.
 *
 * Deno runs its own event loop; aionet's {@linkcode EventLoop} is an
 * asyncio-shaped view over it, so code that says `loop.callSoon(...)`,
 * `loop.sockRecv(...)` or `loop.createConnection(...)` ports line for line.
 * JavaScript cannot block, so `runUntilComplete()` and `runForever()`
 * return promises: `await loop.runUntilComplete(main())`. Durations are
 * milliseconds.
 *
 * @example Schedule a callback and wait on a future
 * ```ts
 * import { getEventLoop } from "@aionet/aionet/events";
 *
 * const loop = getEventLoop();
 * const done = loop.createFuture<string>();
 * loop.callLater(10, () => done.setResult("tick"));
 * console.log(await loop.runUntilComplete(done)); // "tick"
 * ```
 *
 * @module
 */

import type { BaseProtocol, SubprocessProtocol } from "./protocols.ts";
import {
  subprocessExec,
  subprocessShell,
  type SubprocessTransportOptions,
} from "./_subprocess_spawn.ts";
import { connectReadPipe, connectWritePipe } from "./_pipe_transports.ts";
import {
  abortReason,
  onNextTurn,
  READ,
  type Readiness,
  readinessOf,
  waitReady,
  WRITE,
} from "./_readiness.ts";
import {
  type AddrInfo,
  getAddrInfo,
  type GetAddrInfoOptions,
  getNameInfo,
  SO_ERROR,
  SOCK_STREAM,
  type Socket,
  type SocketAddress,
  SOL_SOCKET,
} from "./sockets.ts";
import { errorOfErrno } from "./_errno.ts";
import * as streamFactories from "./_stream_factories.ts";
import type {
  CreateConnectionOptions,
  CreateServerOptions,
  CreateUnixConnectionOptions,
  CreateUnixServerOptions,
  StartTlsOptions,
} from "./_stream_factories.ts";
import {
  createDatagramEndpoint,
  type CreateDatagramEndpointOptions,
  type DatagramConnTransport,
} from "./_datagram.ts";
import type { Server } from "./_server.ts";
import type { StreamTransport } from "./_stream_transport.ts";
import type {
  ReadTransport,
  SubprocessTransport,
  Transport,
  WriteTransport,
} from "./_transport_types.ts";
import {
  type ExceptionContext,
  logException,
  type LoopCore,
  setLoopProvider,
} from "./_loop_core.ts";
import {
  assertBytes,
  checkFunction,
  checkSignal,
  describe,
} from "./_validate.ts";

/** The longest delay setTimeout honours (a longer one fires at once). */
const MAX_TIMER_DELAY = 2 ** 31 - 1;

export type { ExceptionContext, LoopCore } from "./_loop_core.ts";

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

let onTimerCancel: (handle: TimerHandle, hook: (() => void) | null) => void;

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
    loop: EventLoop,
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
  constructor(loop: EventLoop, coroutine: PromiseLike<T>, name?: string) {
    super();
    this.#name = name ?? `Task-${++Task.#count}`;
    coroutine.then(
      (value) => {
        if (!this.done()) this.setResult(value);
      },
      (exception) => {
        if (this.done()) return;
        this.setException(exception);
        onNextTurn(() => {
          if (this.#retrieved) return;
          loop.callExceptionHandler({
            message: "Task exception was never retrieved",
            exception,
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
    this.#name = String(name);
  }

  /** The result, as {@linkcode Future.result}; marks the exception as retrieved. */
  override result(): T {
    this.#retrieved = true;
    return super.result();
  }

  /** The exception, as {@linkcode Future.exception}; marks it as retrieved. */
  override exception(): unknown {
    this.#retrieved = true;
    return super.exception();
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

/** What a socket operation of the loop accepts last (aionet extension). */
export interface SockOptions {
  /** Stops waiting: the call rejects with the signal's reason. */
  signal?: AbortSignal;
}

/**
 * What `loop.sendfile` writes to: a stream transport (the write side with
 * flow control, and optionally the read side, which is paused meanwhile).
 *
 * @example Any stream transport fits
 * ```ts
 * import type { SendfileTransport } from "@aionet/aionet/events";
 * import type { Transport } from "@aionet/aionet/transports";
 *
 * export const accept = (t: Transport): SendfileTransport => t;
 * ```
 */
export type SendfileTransport =
  & Pick<
    Transport,
    | "write"
    | "isClosing"
    | "getProtocol"
    | "setProtocol"
    | "getWriteBufferSize"
    | "getWriteBufferLimits"
  >
  & Partial<Pick<Transport, "isReading" | "pauseReading" | "resumeReading">>;

interface Watch {
  readiness: Readiness;
  fileobj: unknown;
  reader: Registration | null;
  writer: Registration | null;
  unsubscribe: () => void;
}

interface Registration {
  callback: (...args: unknown[]) => unknown;
  args: unknown[];
  handle: Handle;
}

interface TimerEntry {
  when: number;
  seq: number;
  handle: TimerHandle;
}

const SIGNALS: Record<number, Deno.Signal> = {
  1: "SIGHUP",
  2: "SIGINT",
  3: "SIGQUIT",
  10: "SIGUSR1",
  12: "SIGUSR2",
  13: "SIGPIPE",
  14: "SIGALRM",
  15: "SIGTERM",
  17: "SIGCHLD",
  18: "SIGCONT",
  28: "SIGWINCH",
};

/** A day: how long the keep-alive timer of a running loop sleeps. */
const KEEP_ALIVE_MS = 86_400_000;

/**
 * The asyncio-shaped event loop. There is one per program; get it with
 * {@linkcode getEventLoop}.
 *
 * Callbacks scheduled with `callSoon` run in microtasks; timers run in
 * order of their time; reader and writer callbacks are level-triggered:
 * they run again on every turn while the socket stays ready, as with
 * asyncio's selector loop. Unlike asyncio, callbacks also run while
 * neither `runForever()` nor `runUntilComplete()` is active: Deno's own
 * loop always runs.
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
 *
 * @example Low-level socket calls
 * ```ts
 * import { getEventLoop } from "@aionet/aionet/events";
 * import { socket } from "@aionet/aionet/sockets";
 *
 * const loop = getEventLoop();
 * using server = socket();
 * server.bind({ hostname: "127.0.0.1", port: 0 });
 * server.listen();
 * const { port } = server.getSockName() as Deno.NetAddr;
 *
 * using client = socket();
 * await loop.sockConnect(client, { hostname: "127.0.0.1", port });
 * const [conn] = await loop.sockAccept(server);
 * await loop.sockSendAll(client, new TextEncoder().encode("hello"));
 * console.log(new TextDecoder().decode(await loop.sockRecv(conn, 1024))); // "hello"
 * conn.close();
 * ```
 */
export class EventLoop implements LoopCore {
  #handler: ExceptionHandler | null = null;
  #debug = false;
  #closed = false;
  #running = false;
  #stopping = false;
  #onStop: (() => void) | null = null;
  #keepAlive: ReturnType<typeof setInterval> | undefined;
  // Timers: a binary heap ordered by (when, seq), one setTimeout armed.
  #timers: TimerEntry[] = [];
  #timerSeq = 0;
  #liveTimers = 0;
  #armed: { id: ReturnType<typeof setTimeout>; when: number } | null = null;
  // Readers and writers.
  #watches = new Map<number, Watch>();
  #dispatchScheduled = false;
  // Signal handlers.
  #signals = new Map<Deno.Signal, () => void>();

  /** The loop's clock in milliseconds (monotonic, as `performance.now()`). */
  time(): number {
    return performance.now();
  }

  // ---- scheduling ----

  /**
   * Runs `callback(...args)` soon, in a microtask (not `setTimeout(0)`, which
   * costs milliseconds), in the order of the calls. Errors go to the
   * exception handler.
   */
  callSoon<A extends unknown[]>(
    callback: (...args: A) => unknown,
    ...args: A
  ): Handle {
    this.#checkOpen();
    checkFunction(callback, "callback");
    const handle = new Handle(
      this,
      callback as (...args: unknown[]) => unknown,
      args,
    );
    queueMicrotask(() => handle.run());
    return handle;
  }

  /** As {@linkcode EventLoop.callSoon} (JavaScript has one thread). */
  callSoonThreadsafe<A extends unknown[]>(
    callback: (...args: A) => unknown,
    ...args: A
  ): Handle {
    return this.callSoon(callback, ...args);
  }

  /** Runs `callback(...args)` after `delay` milliseconds. */
  callLater<A extends unknown[]>(
    delay: number,
    callback: (...args: A) => unknown,
    ...args: A
  ): TimerHandle {
    if (typeof delay !== "number" || Number.isNaN(delay)) {
      throw new TypeError(`The delay must be a number, got ${describe(delay)}`);
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
      throw new TypeError(`The time must be a number, got ${describe(when)}`);
    }
    checkFunction(callback, "callback");
    const handle = new TimerHandle(
      this,
      when,
      callback as (...args: unknown[]) => unknown,
      args,
    );
    const entry = { when, seq: ++this.#timerSeq, handle };
    this.#heapPush(entry);
    this.#liveTimers++;
    onTimerCancel(handle, () => this.#timerCancelled(entry));
    this.#arm();
    return handle;
  }

  /** A new pending {@linkcode Future}. */
  createFuture<T = unknown>(): Future<T> {
    return new Future<T>();
  }

  /**
   * Starts `coroutine` (a promise) as a {@linkcode Task} and returns it. A
   * rejection that nobody retrieves goes to the exception handler instead
   * of crashing the program.
   */
  createTask<T>(
    coroutine: PromiseLike<T>,
    options?: { name?: string },
  ): Task<T> {
    this.#checkOpen();
    if (
      coroutine === null || typeof coroutine !== "object" &&
        typeof coroutine !== "function" ||
      typeof (coroutine as PromiseLike<T>).then !== "function"
    ) {
      throw new TypeError(
        `A promise (coroutine) is required, got ${describe(coroutine)}`,
      );
    }
    return new Task(this, coroutine, options?.name);
  }

  // ---- running ----

  /**
   * Waits for `future` (a promise, a {@linkcode Future} or a task) and
   * returns its result, as asyncio's `run_until_complete` (JavaScript
   * cannot block, so this returns a promise). The loop counts as running
   * meanwhile, and keeps the program alive. Rejects if the loop is already
   * running, is closed, or is stopped before `future` completes.
   */
  async runUntilComplete<T>(future: PromiseLike<T>): Promise<T> {
    this.#checkOpen();
    if (
      future === null ||
      (typeof future !== "object" && typeof future !== "function") ||
      typeof (future as PromiseLike<T>).then !== "function"
    ) {
      throw new TypeError(
        `A promise, Future or Task is required, got ${describe(future)}`,
      );
    }
    this.#enterRunning();
    const stopped = new Promise<never>((_, reject) => {
      this.#onStop = () =>
        reject(new Error("Event loop stopped before Future completed."));
    });
    stopped.catch(() => {});
    try {
      return await Promise.race([future, stopped]);
    } finally {
      this.#leaveRunning();
    }
  }

  /**
   * Runs until `stop()` is called: the returned promise resolves then, as
   * asyncio's `run_forever()` returns. The loop keeps the program alive
   * meanwhile. If `stop()` was called before, it returns after one turn.
   */
  runForever(): Promise<void> {
    try {
      this.#checkOpen();
      this.#enterRunning();
    } catch (error) {
      return Promise.reject(error);
    }
    return new Promise<void>((resolve) => {
      this.#onStop = () => {
        this.#leaveRunning();
        resolve();
      };
    });
  }

  /**
   * Stops the loop: `runForever()` resolves (and `runUntilComplete()`
   * rejects if its future is not done) after the callbacks already due have
   * run. Called while the loop is not running, the next `runForever()`
   * returns after one turn.
   */
  stop(): void {
    if (this.#stopping) return;
    this.#stopping = true;
    if (this.#running) this.#scheduleStop();
  }

  /** Whether `runForever()` or `runUntilComplete()` is active. */
  isRunning(): boolean {
    return this.#running;
  }

  /** Whether `close()` was called. */
  isClosed(): boolean {
    return this.#closed;
  }

  /**
   * Closes the loop: pending timers are cancelled, readers, writers and
   * signal handlers removed; scheduling afterwards throws `BadResource`.
   * Throws `Deno.errors.Busy` while the loop is running. Closing twice does
   * nothing.
   */
  close(): void {
    if (this.#running) {
      throw new Deno.errors.Busy("Cannot close a running event loop");
    }
    if (this.#closed) return;
    this.#closed = true;
    for (const { handle } of this.#timers) {
      onTimerCancel(handle, null);
      handle.cancel();
    }
    this.#timers = [];
    this.#liveTimers = 0;
    if (this.#armed !== null) clearTimeout(this.#armed.id);
    this.#armed = null;
    for (const watch of this.#watches.values()) watch.unsubscribe();
    this.#watches.clear();
    for (const [signal, listener] of this.#signals) {
      Deno.removeSignalListener(signal, listener);
    }
    this.#signals.clear();
  }

  /** Closes the loop (`using loop = ...`). */
  [Symbol.dispose](): void {
    this.close();
  }

  /** Resolves at once: aionet keeps no async generators to finalize. */
  shutdownAsyncgens(): Promise<void> {
    return Promise.resolve();
  }

  // ---- readers and writers ----

  /**
   * Calls `callback(...args)` whenever `fileobj` (an aionet `Socket`) is
   * readable: again on every turn while it stays readable
   * (level-triggered), until `removeReader(fileobj)`. Replaces a reader
   * already set for that socket.
   */
  addReader<A extends unknown[]>(
    fileobj: Socket | number,
    callback: (...args: A) => unknown,
    ...args: A
  ): void {
    this.#addWatch(fileobj, "reader", callback, args);
  }

  /** Stops calling the reader of `fileobj`; `false` if it had none. */
  removeReader(fileobj: Socket | number): boolean {
    return this.#removeWatch(fileobj, "reader");
  }

  /**
   * Calls `callback(...args)` whenever `fileobj` is writable (again on
   * every turn while it stays writable), until `removeWriter(fileobj)`.
   */
  addWriter<A extends unknown[]>(
    fileobj: Socket | number,
    callback: (...args: A) => unknown,
    ...args: A
  ): void {
    this.#addWatch(fileobj, "writer", callback, args);
  }

  /** Stops calling the writer of `fileobj`; `false` if it had none. */
  removeWriter(fileobj: Socket | number): boolean {
    return this.#removeWatch(fileobj, "writer");
  }

  // ---- low-level socket operations ----

  /** Receives up to `n` bytes, waiting until some arrive (empty at EOF). */
  sockRecv(
    sock: Socket,
    n: number,
    options?: SockOptions,
  ): Promise<Uint8Array> {
    return this.#retry(sock, READ, () => sock.recv(n), options);
  }

  /** Receives into `buffer`, waiting until some bytes arrive; returns the count. */
  sockRecvInto(
    sock: Socket,
    buffer: Uint8Array,
    options?: SockOptions,
  ): Promise<number> {
    return this.#retry(sock, READ, () => sock.recvInto(buffer), options);
  }

  /** Receives a datagram (up to `n` bytes) and its sender: `[data, address]`. */
  sockRecvFrom(
    sock: Socket,
    n: number,
    options?: SockOptions,
  ): Promise<[Uint8Array, Deno.Addr]> {
    return this.#retry(sock, READ, () => sock.recvFrom(n), options);
  }

  /** Receives into `buffer` (at most `nbytes`, default all of it): `[count, address]`. */
  sockRecvFromInto(
    sock: Socket,
    buffer: Uint8Array,
    nbytes = 0,
    options?: SockOptions,
  ): Promise<[number, Deno.Addr]> {
    return this.#retry(
      sock,
      READ,
      () => sock.recvFromInto(buffer, nbytes),
      options,
    );
  }

  /**
   * Sends all of `data`, waiting for room in the send buffer as needed. The
   * bytes are copied at the call; once it resolves they are in the send
   * buffer, so a `close()` right after loses nothing.
   */
  async sockSendAll(
    sock: Socket,
    data: Uint8Array,
    options?: SockOptions,
  ): Promise<void> {
    const readiness = this.#socketReadiness(sock);
    assertBytes(data);
    const signal = checkSignal(options?.signal);
    if (signal?.aborted) throw abortReason(signal);
    const bytes = data.slice();
    let offset = 0;
    do {
      try {
        offset += sock.send(bytes.subarray(offset));
        continue;
      } catch (error) {
        if (!(error instanceof Deno.errors.WouldBlock)) throw error;
      }
      await waitReady(readiness, WRITE, signal);
    } while (offset < bytes.length);
  }

  /** Sends one datagram to `address`, waiting for room; returns its length. */
  sockSendTo(
    sock: Socket,
    data: Uint8Array,
    address: SocketAddress,
    options?: SockOptions,
  ): Promise<number> {
    return this.#retry(sock, WRITE, () => sock.sendTo(data, address), options);
  }

  /**
   * Connects `sock` to `address` and waits for the outcome: resolves once
   * connected, rejects with the error (e.g. `Deno.errors.ConnectionRefused`).
   */
  async sockConnect(
    sock: Socket,
    address: SocketAddress,
    options?: SockOptions,
  ): Promise<void> {
    const readiness = this.#socketReadiness(sock);
    const signal = checkSignal(options?.signal);
    if (signal?.aborted) throw abortReason(signal);
    try {
      sock.connect(address);
      return;
    } catch (error) {
      if (!(error instanceof Deno.errors.WouldBlock)) throw error;
    }
    await waitReady(readiness, WRITE, signal);
    const code = sock.getsockopt(SOL_SOCKET, SO_ERROR);
    if (code !== 0) {
      const where = "path" in address
        ? address.path
        : `${address.hostname ?? ""}:${address.port}`;
      throw errorOfErrno(
        code,
        `${errorName(code)} (os error ${code}): connecting to ${where}`,
      );
    }
  }

  /** Waits for a connection on listening `sock`: `[socket, address]`. */
  sockAccept(
    sock: Socket,
    options?: SockOptions,
  ): Promise<[Socket, Deno.Addr]> {
    return this.#retry(sock, READ, () => sock.accept(), options);
  }

  /**
   * Sends `file` (from `offset`, `count` bytes or to its end) over stream
   * socket `sock`; returns the bytes sent. asyncio's fallback: read a chunk,
   * send it, repeat (Deno has no `sendfile(2)`). The file position ends
   * after the last byte sent.
   */
  async sockSendfile(
    sock: Socket,
    file: Deno.FsFile,
    offset = 0,
    count: number | null = null,
    options?: SockOptions,
  ): Promise<number> {
    this.#socketReadiness(sock);
    if (sock.type !== SOCK_STREAM) {
      throw new TypeError("sockSendfile() needs a SOCK_STREAM socket");
    }
    checkFile(file);
    checkSendfileRange(offset, count);
    return await sendFileChunks(
      file,
      offset,
      count,
      (chunk) => this.sockSendAll(sock, chunk, options),
    );
  }

  /**
   * Sends `file` over a stream transport; returns the bytes sent. asyncio's
   * fallback: reading pauses, chunks are written with flow control
   * (waiting while the transport has paused writing), then the protocol
   * and reading are restored.
   */
  async sendfile(
    transport: SendfileTransport,
    file: Deno.FsFile,
    offset = 0,
    count: number | null = null,
  ): Promise<number> {
    if (
      transport === null || typeof transport !== "object" ||
      typeof transport.write !== "function" ||
      typeof transport.setProtocol !== "function"
    ) {
      throw new TypeError(
        `The transport must be a stream transport, got ${describe(transport)}`,
      );
    }
    checkFile(file);
    checkSendfileRange(offset, count);
    if (transport.isClosing()) {
      throw new Deno.errors.BadResource("The transport is closing");
    }
    const fallback = new SendfileFallback(transport);
    try {
      const total = await sendFileChunks(file, offset, count, async (chunk) => {
        await fallback.ready();
        transport.write(chunk);
      });
      await fallback.ready();
      return total;
    } finally {
      fallback.restore();
    }
  }

  // ---- names ----

  /** As {@linkcode getAddrInfo} of sockets.ts (asyncio's `loop.getaddrinfo`). */
  getAddrInfo(
    host: string | null,
    port: number | string | null,
    options?: GetAddrInfoOptions,
  ): Promise<AddrInfo[]> {
    return getAddrInfo(host, port, options);
  }

  /** As {@linkcode getNameInfo} of sockets.ts (asyncio's `loop.getnameinfo`). */
  getNameInfo(
    address: { hostname: string; port: number },
    flags = 0,
  ): Promise<[host: string, service: string]> {
    return getNameInfo(address, flags);
  }

  // ---- signals ----

  /**
   * Calls `callback(...args)` (via `callSoon`) whenever the process gets
   * `signal` (`"SIGINT"`, or its Linux number as Python's `signal.SIGINT`),
   * replacing a handler already set for it. Uses `Deno.addSignalListener`.
   * An unknown signal throws `RangeError`; `SIGKILL`/`SIGSTOP` throw
   * `NotSupported`.
   */
  addSignalHandler<A extends unknown[]>(
    signal: Deno.Signal | number,
    callback: (...args: A) => unknown,
    ...args: A
  ): void {
    this.#checkOpen();
    const name = signalName(signal);
    checkFunction(callback, "callback");
    this.removeSignalHandler(name);
    const listener = () => {
      if (!this.#closed) this.callSoon(callback, ...args);
    };
    try {
      Deno.addSignalListener(name, listener);
    } catch (error) {
      const message = (error as Error).message ?? String(error);
      if (/not allowed/i.test(message)) {
        throw new Deno.errors.NotSupported(
          `The signal ${name} cannot be caught: ${message}`,
        );
      }
      throw new RangeError(`Invalid signal ${name}: ${message}`);
    }
    this.#signals.set(name, listener);
  }

  /** Removes the handler of `signal`; `false` if there was none. */
  removeSignalHandler(signal: Deno.Signal | number): boolean {
    const name = signalName(signal);
    const listener = this.#signals.get(name);
    if (listener === undefined) return false;
    this.#signals.delete(name);
    Deno.removeSignalListener(name, listener);
    return true;
  }

  // ---- connection factories ----

  /**
   * `createConnection` of transports.ts (asyncio's
   * `loop.create_connection`). `sock` may also be a connected aionet
   * `Socket` (a `socketpair()` end, or one connected with `sockConnect`):
   * the transport takes it over, bytes it already received included.
   */
  createConnection<P extends BaseProtocol>(
    protocolFactory: () => P,
    options: CreateConnectionOptions,
  ): Promise<[StreamTransport, P]> {
    return streamFactories.createConnection(this, protocolFactory, options);
  }

  /**
   * `createServer` of transports.ts (asyncio's `loop.create_server`).
   * `sock` may also be a bound or listening aionet `Socket`.
   */
  createServer(
    protocolFactory: () => BaseProtocol,
    options?: CreateServerOptions,
  ): Promise<Server> {
    return streamFactories.createServer(this, protocolFactory, options);
  }

  /** `createUnixConnection` of transports.ts; `sock` may be an aionet `Socket`. */
  createUnixConnection<P extends BaseProtocol>(
    protocolFactory: () => P,
    options: CreateUnixConnectionOptions,
  ): Promise<[StreamTransport, P]> {
    return streamFactories.createUnixConnection(this, protocolFactory, options);
  }

  /** `createUnixServer` of transports.ts; `sock` may be an aionet `Socket`. */
  createUnixServer(
    protocolFactory: () => BaseProtocol,
    options: CreateUnixServerOptions,
  ): Promise<Server> {
    return streamFactories.createUnixServer(this, protocolFactory, options);
  }

  /**
   * `createDatagramEndpoint` of transports.ts (asyncio's
   * `loop.create_datagram_endpoint`). `sock` may also be an aionet datagram
   * `Socket` (e.g. one that joined a multicast group with `setsockopt`); a
   * connected one keeps its peer as the default target.
   */
  createDatagramEndpoint<P extends BaseProtocol>(
    protocolFactory: () => P,
    options?: CreateDatagramEndpointOptions,
  ): Promise<[DatagramConnTransport, P]> {
    return createDatagramEndpoint(this, protocolFactory, options);
  }

  /** `startTls` of transports.ts (asyncio's `loop.start_tls`). */
  startTls(
    transport: Transport,
    protocol: BaseProtocol,
    options?: StartTlsOptions,
  ): Promise<StreamTransport> {
    return streamFactories.startTls(this, transport, protocol, options);
  }

  /**
   * Wraps a readable pipe (`Deno.stdin`, a child's stdout, a
   * `ReadableStream`) in a read transport (asyncio's
   * `loop.connect_read_pipe`).
   */
  connectReadPipe<P extends BaseProtocol>(
    protocolFactory: () => P,
    pipe:
      | ReadableStream<Uint8Array>
      | { readonly readable: ReadableStream<Uint8Array> },
  ): Promise<[ReadTransport, P]> {
    return connectReadPipe(this, protocolFactory, pipe);
  }

  /**
   * Wraps a writable pipe (`Deno.stdout`, a child's stdin, a
   * `WritableStream`) in a write transport (asyncio's
   * `loop.connect_write_pipe`).
   */
  connectWritePipe<P extends BaseProtocol>(
    protocolFactory: () => P,
    pipe:
      | WritableStream<Uint8Array>
      | { readonly writable: WritableStream<Uint8Array> },
  ): Promise<[WriteTransport, P]> {
    return connectWritePipe(this, protocolFactory, pipe);
  }

  /** Runs `program` with `args` under a subprocess protocol (asyncio's `loop.subprocess_exec`). */
  subprocessExec<P extends SubprocessProtocol>(
    protocolFactory: () => P,
    program: string | URL,
    args?: readonly string[],
    options?: SubprocessTransportOptions,
  ): Promise<[SubprocessTransport, P]> {
    return subprocessExec(this, protocolFactory, program, args, options);
  }

  /** Runs `command` through `sh -c` under a subprocess protocol (asyncio's `loop.subprocess_shell`). */
  subprocessShell<P extends SubprocessProtocol>(
    protocolFactory: () => P,
    command: string,
    options?: SubprocessTransportOptions,
  ): Promise<[SubprocessTransport, P]> {
    return subprocessShell(this, protocolFactory, command, options);
  }

  // ---- debug mode ----

  /** Whether debug mode is on. */
  getDebug(): boolean {
    return this.#debug;
  }

  /** Turns debug mode on or off. */
  setDebug(enabled: boolean): void {
    if (typeof enabled !== "boolean") {
      throw new TypeError(
        `The debug flag must be a boolean, got ${describe(enabled)}`,
      );
    }
    this.#debug = enabled;
  }

  // ---- exception handler ----

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
    logException(context);
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

  // ---- internals ----

  #checkOpen(): void {
    if (this.#closed) {
      throw new Deno.errors.BadResource("The event loop is closed");
    }
  }

  #enterRunning(): void {
    if (this.#running) {
      throw new Deno.errors.Busy("This event loop is already running");
    }
    this.#running = true;
    this.#keepAlive = setInterval(() => {}, KEEP_ALIVE_MS);
    if (this.#stopping) this.#scheduleStop();
  }

  #leaveRunning(): void {
    this.#running = false;
    this.#onStop = null;
    clearInterval(this.#keepAlive);
    this.#keepAlive = undefined;
  }

  #scheduleStop(): void {
    onNextTurn(() => {
      if (!this.#stopping) return;
      this.#stopping = false;
      this.#onStop?.();
    });
  }

  // Timers.

  #heapPush(entry: TimerEntry): void {
    const heap = this.#timers;
    heap.push(entry);
    let i = heap.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!before(heap[i], heap[parent])) break;
      [heap[i], heap[parent]] = [heap[parent], heap[i]];
      i = parent;
    }
  }

  #heapPop(): TimerEntry | undefined {
    const heap = this.#timers;
    const top = heap[0];
    const last = heap.pop();
    if (heap.length > 0 && last !== undefined) {
      heap[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let smallest = i;
        if (l < heap.length && before(heap[l], heap[smallest])) smallest = l;
        if (r < heap.length && before(heap[r], heap[smallest])) smallest = r;
        if (smallest === i) break;
        [heap[i], heap[smallest]] = [heap[smallest], heap[i]];
        i = smallest;
      }
    }
    return top;
  }

  #timerCancelled(entry: TimerEntry): void {
    this.#liveTimers--;
    if (this.#liveTimers <= 0) {
      this.#liveTimers = 0;
      this.#timers = [];
    } else if (this.#timers[0] === entry) {
      this.#heapPop();
    }
    this.#arm();
  }

  #arm(): void {
    while (this.#timers.length > 0 && this.#timers[0].handle.cancelled()) {
      this.#heapPop();
    }
    const top = this.#timers[0];
    if (top === undefined) {
      if (this.#armed !== null) clearTimeout(this.#armed.id);
      this.#armed = null;
      return;
    }
    if (this.#armed !== null) {
      if (this.#armed.when <= top.when) return;
      clearTimeout(this.#armed.id);
    }
    // The real clock, not this.time(): a test clock may stand in for time()
    // while real timers wait here (testing.ts's withFakeClock).
    // setTimeout fires at once for delays above 2**31 - 1 ms: wait at most
    // that long, #runTimers() re-arms.
    const delay = Math.min(
      MAX_TIMER_DELAY,
      Math.max(0, top.when - performance.now()),
    );
    this.#armed = {
      id: setTimeout(() => this.#runTimers(), delay),
      when: top.when,
    };
  }

  #runTimers(): void {
    this.#armed = null;
    const now = performance.now();
    const due: TimerHandle[] = [];
    while (this.#timers.length > 0 && this.#timers[0].when <= now) {
      const { handle } = this.#heapPop()!;
      if (handle.cancelled()) continue;
      onTimerCancel(handle, null);
      this.#liveTimers--;
      due.push(handle);
    }
    for (const handle of due) handle.run();
    if (due.length === 0 && this.#timers.length > 0) {
      // Woken a little early: wait at least a millisecond more.
      const top = this.#timers[0];
      if (!top.handle.cancelled()) {
        this.#armed = {
          id: setTimeout(
            () => this.#runTimers(),
            Math.min(MAX_TIMER_DELAY, Math.max(1, top.when - now)),
          ),
          when: top.when,
        };
        return;
      }
    }
    if (this.#armed === null) this.#arm();
  }

  // Readers and writers.

  #socketReadiness(sock: unknown): Readiness {
    const readiness = readinessOf(sock);
    if (readiness === undefined || typeof sock === "number") {
      throw new TypeError(
        `The sock must be an aionet Socket, got ${describe(sock)}`,
      );
    }
    return readiness;
  }

  async #retry<T>(
    sock: Socket,
    mask: number,
    operation: () => T,
    options: SockOptions | undefined,
  ): Promise<T> {
    const readiness = this.#socketReadiness(sock);
    const signal = checkSignal(options?.signal);
    if (signal?.aborted) throw abortReason(signal);
    for (;;) {
      try {
        return operation();
      } catch (error) {
        if (!(error instanceof Deno.errors.WouldBlock)) throw error;
      }
      await waitReady(readiness, mask, signal);
    }
  }

  #addWatch(
    fileobj: unknown,
    kind: "reader" | "writer",
    callback: (...args: never[]) => unknown,
    args: unknown[],
  ): void {
    this.#checkOpen();
    const readiness = readinessOf(fileobj);
    if (readiness === undefined) {
      throw new TypeError(
        `The fileobj must be an aionet Socket (or its fd), got ${
          describe(fileobj)
        }`,
      );
    }
    checkFunction(callback, "callback");
    let watch = this.#watches.get(readiness.fd);
    if (watch === undefined) {
      const created: Watch = {
        readiness,
        fileobj,
        reader: null,
        writer: null,
        unsubscribe: readiness.subscribe(() => this.#scheduleDispatch()),
      };
      watch = created;
      this.#watches.set(readiness.fd, watch);
    }
    const fn = callback as (...args: unknown[]) => unknown;
    const registration: Registration = {
      callback: fn,
      args,
      handle: new Handle(this, fn, args),
    };
    watch[kind]?.handle.cancel();
    watch[kind] = registration;
    this.#scheduleDispatch();
  }

  #removeWatch(fileobj: unknown, kind: "reader" | "writer"): boolean {
    if (this.#closed) return false;
    const readiness = readinessOf(fileobj);
    if (readiness === undefined) {
      if (typeof fileobj === "number" || fileobj instanceof Object) {
        return false;
      }
      throw new TypeError(
        `The fileobj must be an aionet Socket (or its fd), got ${
          describe(fileobj)
        }`,
      );
    }
    const watch = this.#watches.get(readiness.fd);
    const registration = watch?.[kind];
    if (watch === undefined || registration == null) return false;
    registration.handle.cancel();
    watch[kind] = null;
    if (watch.reader === null && watch.writer === null) {
      watch.unsubscribe();
      this.#watches.delete(readiness.fd);
    }
    return true;
  }

  #scheduleDispatch(): void {
    if (this.#dispatchScheduled || this.#watches.size === 0) return;
    this.#dispatchScheduled = true;
    onNextTurn(() => this.#dispatch());
  }

  #dispatch(): void {
    this.#dispatchScheduled = false;
    if (this.#closed) return;
    for (const watch of [...this.#watches.values()]) {
      for (
        const [kind, bit] of [["reader", READ], ["writer", WRITE]] as const
      ) {
        const registration = watch[kind];
        if (registration === null || registration.handle.cancelled()) continue;
        if ((watch.readiness.poll() & bit) === 0) continue;
        this.#runCallback(registration);
      }
    }
    for (const watch of this.#watches.values()) {
      const mask = (watch.reader !== null ? READ : 0) |
        (watch.writer !== null ? WRITE : 0);
      if (watch.readiness.poll() & mask) {
        this.#scheduleDispatch();
        break;
      }
    }
  }

  #runCallback(registration: Registration): void {
    try {
      const result = registration.callback(...registration.args);
      if (result instanceof Promise) {
        result.catch((exception) =>
          this.#reportCallback(exception, registration)
        );
      }
    } catch (exception) {
      this.#reportCallback(exception, registration);
    }
  }

  #reportCallback(exception: unknown, registration: Registration): void {
    this.callExceptionHandler({
      message: "Exception in callback",
      exception,
      handle: registration.handle,
    });
  }
}

function before(a: TimerEntry, b: TimerEntry): boolean {
  return a.when < b.when || (a.when === b.when && a.seq < b.seq);
}

function signalName(signal: unknown): Deno.Signal {
  if (typeof signal === "number") {
    const name = SIGNALS[signal];
    if (name === undefined) {
      throw new RangeError(`Unknown or unsupported signal number ${signal}`);
    }
    return name;
  }
  if (typeof signal !== "string") {
    throw new TypeError(
      `The signal must be a name such as "SIGINT" or a number, got ${
        describe(signal)
      }`,
    );
  }
  return signal as Deno.Signal;
}

function errorName(code: number): string {
  switch (code) {
    case 111:
      return "Connection refused";
    case 110:
      return "Connection timed out";
    case 113:
      return "No route to host";
    case 101:
      return "Network is unreachable";
    case 2:
      return "No such file or directory";
    case 13:
      return "Permission denied";
    default:
      return "Connection failed";
  }
}

function checkFile(file: unknown): void {
  if (
    file === null || typeof file !== "object" ||
    typeof (file as Deno.FsFile).read !== "function" ||
    typeof (file as Deno.FsFile).seek !== "function"
  ) {
    throw new TypeError(
      `The file must be a Deno.FsFile opened for reading, got ${
        describe(file)
      }`,
    );
  }
}

function checkSendfileRange(offset: unknown, count: unknown): void {
  if (typeof offset !== "number" || !Number.isInteger(offset)) {
    throw new TypeError(
      `The offset must be an integer, got ${describe(offset)}`,
    );
  }
  if (offset < 0) {
    throw new RangeError(`The offset must not be negative, got ${offset}`);
  }
  if (count === null || count === undefined) return;
  if (typeof count !== "number" || !Number.isInteger(count)) {
    throw new TypeError(`The count must be an integer, got ${describe(count)}`);
  }
  if (count <= 0) {
    throw new RangeError(`The count must be a positive integer, got ${count}`);
  }
}

/** Reads `file` from `offset` in chunks and hands each to `send`. */
async function sendFileChunks(
  file: Deno.FsFile,
  offset: number,
  count: number | null,
  send: (chunk: Uint8Array) => Promise<void>,
): Promise<number> {
  const buffer = new Uint8Array(64 * 1024);
  let total = 0;
  await file.seek(offset, Deno.SeekMode.Start);
  try {
    while (count === null || total < count) {
      const want = count === null
        ? buffer.length
        : Math.min(buffer.length, count - total);
      const n = await file.read(buffer.subarray(0, want));
      if (n === null || n === 0) break;
      await send(buffer.slice(0, n));
      total += n;
    }
  } finally {
    await file.seek(offset + total, Deno.SeekMode.Start);
  }
  return total;
}

/**
 * asyncio's `_SendfileFallbackProtocol`: stands in for the protocol while
 * `loop.sendfile` writes, to follow `pauseWriting`/`resumeWriting`.
 */
class SendfileFallback {
  #transport: SendfileTransport;
  #protocol: BaseProtocol;
  #wasReading: boolean;
  #paused: boolean;
  #waiters: Array<{ resolve: () => void; reject: (e: unknown) => void }> = [];
  #lost: Error | null = null;
  #restored = false;

  constructor(transport: SendfileTransport) {
    this.#transport = transport;
    this.#protocol = transport.getProtocol();
    this.#wasReading = transport.isReading?.() ?? false;
    const [, high] = transport.getWriteBufferLimits();
    this.#paused = transport.getWriteBufferSize() > high;
    if (this.#wasReading) transport.pauseReading?.();
    // deno-lint-ignore no-this-alias
    const self = this;
    const stand = {
      connectionMade() {},
      pauseWriting() {
        self.#paused = true;
      },
      resumeWriting() {
        self.#paused = false;
        for (const w of self.#waiters.splice(0)) w.resolve();
      },
      dataReceived() {},
      eofReceived() {
        return true;
      },
      connectionLost(exc: Error | null) {
        self.#lost = exc ?? new Deno.errors.ConnectionReset("Connection lost");
        for (const w of self.#waiters.splice(0)) w.reject(self.#lost);
        self.restore();
        self.#protocol.connectionLost(exc);
      },
    };
    transport.setProtocol(stand as unknown as BaseProtocol);
  }

  /** Resolves once writing is not paused; rejects if the connection was lost. */
  ready(): Promise<void> {
    if (this.#lost !== null) return Promise.reject(this.#lost);
    if (this.#transport.isClosing()) {
      return Promise.reject(
        new Deno.errors.BadResource("The transport is closing"),
      );
    }
    if (!this.#paused) return Promise.resolve();
    return new Promise((resolve, reject) =>
      this.#waiters.push({ resolve, reject })
    );
  }

  /** Gives the transport its protocol back and resumes reading. */
  restore(): void {
    if (this.#restored) return;
    this.#restored = true;
    this.#transport.setProtocol(this.#protocol);
    if (this.#lost !== null) return;
    if (this.#wasReading) this.#transport.resumeReading?.();
    if (this.#paused) this.#protocol.pauseWriting();
  }
}

let defaultLoop: EventLoop | undefined;

/**
 * The program's event loop (created on first use, and again after the
 * previous one was closed).
 *
 * @example Using `getEventLoop`
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
 * @example Using `getRunningLoop`
 * ```ts
 * import { getEventLoop, getRunningLoop } from "@aionet/aionet/events";
 * console.log(getRunningLoop() === getEventLoop()); // true
 * ```
 */
export function getRunningLoop(): EventLoop {
  return getEventLoop();
}

setLoopProvider(getEventLoop);
