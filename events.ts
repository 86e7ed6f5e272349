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
  type AddrInfo,
  getAddrInfo,
  type GetAddrInfoOptions,
  getNameInfo,
} from "./_addrinfo.ts";
import type { Socket, SocketAddress } from "./_socket.ts";
import * as streamFactories from "./_stream_factories.ts";
import type {
  CreateConnectionOptions,
  CreateServerOptions,
  CreateUnixConnectionOptions,
  CreateUnixServerOptions,
} from "./_stream_factories.ts";
import type { StartTlsOptions } from "./_tls_options.ts";
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
  callLogged,
  type ExceptionContext,
  logException,
  type LoopCore,
  setLoopProvider,
} from "./_loop_core.ts";
import { Handle, TimerHandle } from "./_handles.ts";
import { Future, startTask, type Task } from "./_futures.ts";
import { TimerQueue } from "./_timer_queue.ts";
import { ReadyQueue } from "./_ready_queue.ts";
import { ReadinessWatches } from "./_loop_watches.ts";
import { SignalHandlers } from "./_signals.ts";
import { RunState } from "./_run_state.ts";
import * as sockOps from "./_sock_ops.ts";
import type { SendfileTransport, SockOptions } from "./_sock_ops.ts";
import {
  checkFunction,
  checkNumber,
  checkObject,
  describe,
} from "./_validate.ts";
import { activateDebug, debugRequested } from "./_debug.ts";

export { Handle, TimerHandle } from "./_handles.ts";
export { CancelledError, Future, InvalidStateError, Task } from "./_futures.ts";
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

export type { SendfileTransport, SockOptions } from "./_sock_ops.ts";

/**
 * The asyncio-shaped event loop. There is one per program; get it with
 * {@linkcode getEventLoop}.
 *
 * Callbacks scheduled with `callSoon` run in batches, as asyncio's ready
 * queue: what a callback schedules runs a turn later, after due timers and
 * I/O, so nothing starves them; timers run in order of their time; reader and writer callbacks are level-triggered:
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
  #slowCallbackDuration = 100;
  #closed = false;
  #run = new RunState();
  #timers = new TimerQueue();
  #ready = new ReadyQueue(() => this.#timers.takeDue());
  #watches = new ReadinessWatches(this);
  #signals = new SignalHandlers();

  /**
   * A new loop (`getEventLoop()` makes the program's). It starts in debug
   * mode when the environment has `AIONET_DEBUG=1`.
   */
  constructor() {
    if (debugRequested()) this.setDebug(true);
  }

  /** The loop's clock in milliseconds (monotonic, as `performance.now()`). */
  time(): number {
    return performance.now();
  }

  // ---- scheduling ----

  /**
   * Runs `callback(...args)` soon, in the order of the calls: in a
   * microtask (not `setTimeout(0)`, which costs milliseconds), or, when
   * scheduled by a callback of the running batch, in the next one, after
   * the timers due and pending I/O (as asyncio's loop turns). Errors go to
   * the exception handler.
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
    this.#ready.push(handle);
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
    this.#timers.add(handle);
    return handle;
  }

  /** A new pending {@linkcode Future}. */
  createFuture<T = unknown>(): Future<T> {
    return new Future<T>(this);
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
    return startTask(this, coroutine, options);
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
    if (future instanceof Future && future.getLoop() !== this) {
      throw new TypeError("The future belongs to a different event loop");
    }
    return await this.#run.runUntilComplete(future);
  }

  /**
   * Runs until `stop()` is called: the returned promise resolves then, as
   * asyncio's `run_forever()` returns. The loop keeps the program alive
   * meanwhile. If `stop()` was called before, it returns after one turn.
   */
  runForever(): Promise<void> {
    try {
      this.#checkOpen();
    } catch (error) {
      return Promise.reject(error);
    }
    return this.#run.runForever();
  }

  /**
   * Stops the loop: `runForever()` resolves (and `runUntilComplete()`
   * rejects if its future is not done) after the callbacks already due have
   * run. Called while the loop is not running, the next `runForever()`
   * returns after one turn.
   */
  stop(): void {
    this.#run.stop();
  }

  /** Whether `runForever()` or `runUntilComplete()` is active. */
  isRunning(): boolean {
    return this.#run.running;
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
    if (this.#run.running) {
      throw new Deno.errors.Busy("Cannot close a running event loop");
    }
    if (this.#closed) return;
    this.#closed = true;
    this.#ready.clear();
    this.#timers.clear();
    this.#watches.clear();
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
    this.#checkOpen();
    this.#watches.add(fileobj, "reader", callback, args);
  }

  /** Stops calling the reader of `fileobj`; `false` if it had none. */
  removeReader(fileobj: Socket | number): boolean {
    return !this.#closed && this.#watches.remove(fileobj, "reader");
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
    this.#checkOpen();
    this.#watches.add(fileobj, "writer", callback, args);
  }

  /** Stops calling the writer of `fileobj`; `false` if it had none. */
  removeWriter(fileobj: Socket | number): boolean {
    return !this.#closed && this.#watches.remove(fileobj, "writer");
  }

  // ---- low-level socket operations ----
  /** Receives up to `n` bytes, waiting until some arrive (empty at EOF). */
  sockRecv(
    sock: Socket,
    n: number,
    options?: SockOptions,
  ): Promise<Uint8Array> {
    return sockOps.sockRecv(sock, n, options);
  }

  /** Receives into `buffer`, waiting until some bytes arrive; returns the count. */
  sockRecvInto(
    sock: Socket,
    buffer: Uint8Array,
    options?: SockOptions,
  ): Promise<number> {
    return sockOps.sockRecvInto(sock, buffer, options);
  }

  /** Receives a datagram (up to `n` bytes) and its sender: `[data, address]`. */
  sockRecvFrom(
    sock: Socket,
    n: number,
    options?: SockOptions,
  ): Promise<[Uint8Array, Deno.Addr]> {
    return sockOps.sockRecvFrom(sock, n, options);
  }

  /** Receives into `buffer` (at most `nbytes`, default all of it): `[count, address]`. */
  sockRecvFromInto(
    sock: Socket,
    buffer: Uint8Array,
    nbytes = 0,
    options?: SockOptions,
  ): Promise<[number, Deno.Addr]> {
    return sockOps.sockRecvFromInto(sock, buffer, nbytes, options);
  }

  /**
   * Sends all of `data`, waiting for room in the send buffer as needed. The
   * bytes are copied at the call; once it resolves they are in the send
   * buffer, so a `close()` right after loses nothing.
   */
  sockSendAll(
    sock: Socket,
    data: Uint8Array,
    options?: SockOptions,
  ): Promise<void> {
    return sockOps.sockSendAll(sock, data, options);
  }

  /** Sends one datagram to `address`, waiting for room; returns its length. */
  sockSendTo(
    sock: Socket,
    data: Uint8Array,
    address: SocketAddress,
    options?: SockOptions,
  ): Promise<number> {
    return sockOps.sockSendTo(sock, data, address, options);
  }

  /**
   * Connects `sock` to `address` and waits for the outcome: resolves once
   * connected, rejects with the error (e.g. `Deno.errors.ConnectionRefused`).
   */
  sockConnect(
    sock: Socket,
    address: SocketAddress,
    options?: SockOptions,
  ): Promise<void> {
    return sockOps.sockConnect(sock, address, options);
  }

  /** Waits for a connection on listening `sock`: `[socket, address]`. */
  sockAccept(
    sock: Socket,
    options?: SockOptions,
  ): Promise<[Socket, Deno.Addr]> {
    return sockOps.sockAccept(sock, options);
  }

  /**
   * Sends `file` (from `offset`, `count` bytes or to its end) over stream
   * socket `sock`; returns the bytes sent. asyncio's fallback: read a chunk,
   * send it, repeat (Deno has no `sendfile(2)`). The file position ends
   * after the last byte sent.
   */
  sockSendfile(
    sock: Socket,
    file: Deno.FsFile,
    offset = 0,
    count: number | null = null,
    options?: SockOptions,
  ): Promise<number> {
    return sockOps.sockSendfile(sock, file, offset, count, options);
  }

  /**
   * Sends `file` over a stream transport; returns the bytes sent. asyncio's
   * fallback: reading pauses, chunks are written with flow control
   * (waiting while the transport has paused writing), then the protocol
   * and reading are restored.
   */
  sendfile(
    transport: SendfileTransport,
    file: Deno.FsFile,
    offset = 0,
    count: number | null = null,
  ): Promise<number> {
    return sockOps.sendfile(transport, file, offset, count);
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
    checkFunction(callback, "callback");
    this.#signals.add(signal, () => {
      if (!this.#closed) this.callSoon(callback, ...args);
    });
  }

  /** Removes the handler of `signal`; `false` if there was none. */
  removeSignalHandler(signal: Deno.Signal | number): boolean {
    return this.#signals.remove(signal);
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

  /**
   * Whether debug mode is on (asyncio's `get_debug()`). A new loop starts
   * in debug mode when the environment has `AIONET_DEBUG=1` (and the
   * program may read it: `--allow-env=AIONET_DEBUG`).
   */
  getDebug(): boolean {
    return this.#debug;
  }

  /**
   * Turns debug mode on or off (asyncio's `set_debug()`). In debug mode a
   * callback of the loop or a protocol callback that runs for
   * `slowCallbackDuration` ms or longer is reported with `console.warn`,
   * naming it and its duration; transports, servers and sockets that are
   * collected without having been closed are reported
   * (`ResourceWarning: unclosed …`). Objects made while debug mode was off
   * are not watched. With debug mode off on every loop, none of this costs
   * anything.
   *
   * @example Warn about callbacks that block the loop
   * ```ts
   * import { getEventLoop } from "@aionet/aionet/events";
   *
   * const loop = getEventLoop();
   * loop.setDebug(true);
   * loop.slowCallbackDuration = 50;
   * loop.callSoon(function busy() {
   *   const end = performance.now() + 60;
   *   while (performance.now() < end);
   * }); // warns: Executing <Handle busy> took 60.0 ms
   * loop.setDebug(false);
   * ```
   */
  setDebug(enabled: boolean): void {
    if (typeof enabled !== "boolean") {
      throw new TypeError(
        `The debug flag must be a boolean, got ${describe(enabled)}`,
      );
    }
    if (enabled !== this.#debug) activateDebug(enabled);
    this.#debug = enabled;
  }

  /**
   * In debug mode, callbacks that run this long (ms) or longer are
   * reported (asyncio's `slow_callback_duration`, there in seconds).
   * Default 100.
   */
  get slowCallbackDuration(): number {
    return this.#slowCallbackDuration;
  }

  set slowCallbackDuration(ms: number) {
    this.#slowCallbackDuration = checkNumber(ms, "slowCallbackDuration");
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
    checkObject(context, "context");
    const handler = this.#handler;
    const fallback = (c: ExceptionContext) =>
      callLogged(() => this.defaultExceptionHandler(c), c);
    if (handler === null) return fallback(context);
    try {
      handler(this, context);
    } catch (exception) {
      const message = "Unhandled error in exception handler";
      fallback({ message, exception, context });
    }
  }

  // ---- internals ----

  #checkOpen(): void {
    if (this.#closed) {
      throw new Deno.errors.BadResource("The event loop is closed");
    }
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
