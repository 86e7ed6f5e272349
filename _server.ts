// The Server returned by createServer/createUnixServer/startServer: accepts
// on backend listener handles, the set of live transports, and the
// lifecycle. Public through transports.ts.

import type { BaseProtocol } from "./protocols.ts";
import type { LoopCore } from "./_loop_core.ts";
import type { AcceptSink, ListenerHandle, StreamHandle } from "./_backend.ts";
import {
  type StreamTransport,
  transportOverHandle,
} from "./_stream_transport.ts";
import { socketView, type TransportSocket } from "./_transport_socket.ts";
import { checkKnownOptions, checkNumber } from "./_validate.ts";
import { type UnclosedState, watchUnclosed } from "./_debug.ts";

/** Pause after an accept error (EMFILE and the like), as asyncio does. */
const ACCEPT_RETRY_DELAY = 100;

/** A connection ready to serve, with its extra transport information. */
export interface AcceptedConn {
  handle: StreamHandle;
  extra?: Record<string, unknown>;
}

/** Internal options of {@linkcode Server}. */
export interface ServerInit {
  loop: LoopCore;
  listeners: ListenerHandle[];
  protocolFactory: () => BaseProtocol;
  keepAlive?: boolean;
  /**
   * Prepares an accepted connection (TLS handshake) before it is served;
   * `signal` aborts it (closeClients/abortClients).
   */
  accept?: (handle: StreamHandle, signal: AbortSignal) => Promise<AcceptedConn>;
  /** Extra transport options for accepted connections. */
  canWriteEof?: boolean;
  signal?: AbortSignal;
}

/**
 * A listening server, as asyncio's `Server`: made by `createServer`,
 * `createUnixServer` and `startServer`.
 *
 * `close()` stops listening and leaves live connections alone;
 * `waitClosed()` resolves once the server is closed and every connection it
 * accepted has ended. `await using` closes and waits.
 *
 * @example Serve until closed
 * ```ts
 * import { createServer } from "@aionet/aionet/transports";
 * import { Protocol } from "@aionet/aionet/protocols";
 *
 * const server = await createServer(() => new Protocol(), {
 *   hostname: "127.0.0.1",
 *   port: 0,
 *   startServing: false,
 * });
 * console.log(server.addrs[0]);
 * const forever = server.serveForever();
 * server.close();
 * await forever;
 * await server.waitClosed();
 * ```
 */
export class Server {
  #loop: LoopCore;
  #listeners: ListenerHandle[];
  #protocolFactory: () => BaseProtocol;
  #keepAlive: boolean;
  #accept:
    | ((handle: StreamHandle, signal: AbortSignal) => Promise<AcceptedConn>)
    | undefined;
  #canWriteEof: boolean;
  #serving = false;
  #closed = false;
  #listenersClosed: Promise<void>[] = [];
  #handshakes = new Map<Promise<unknown>, AbortController>();
  #transports = new Set<StreamTransport>();
  #idleWaiters: Array<() => void> = [];
  #closeWaiters: Array<() => void> = [];
  #retryTimers = new Set<ReturnType<typeof setTimeout>>();
  #serveForeverRunning = false;
  #signal: AbortSignal | undefined;
  #onAbort = () => this.close();
  #sockets: TransportSocket[];
  #addrs: Deno.Addr[];
  /** Debug mode's record of whether this server was closed. */
  #unclosed: UnclosedState | null;

  /** Made by `createServer` and friends; not meant to be constructed by users. */
  constructor(init: ServerInit) {
    this.#loop = init.loop;
    this.#unclosed = watchUnclosed(init.loop, this, "server");
    this.#listeners = init.listeners;
    this.#protocolFactory = init.protocolFactory;
    this.#keepAlive = init.keepAlive ?? false;
    this.#accept = init.accept;
    this.#canWriteEof = init.canWriteEof ?? true;
    this.#sockets = this.#listeners.map((l) =>
      socketView({
        fd: l.fd,
        options: l.options,
        localAddr: () => l.addr,
        remoteAddr: () => undefined,
        closed: () => this.#closed,
      })
    );
    this.#addrs = this.#listeners.map((l) => l.addr);
    this.#signal = init.signal;
    this.#signal?.addEventListener("abort", this.#onAbort, { once: true });
  }

  /** The listening sockets, each with `getSockName()`. */
  get sockets(): readonly TransportSocket[] {
    return this.#closed ? [] : this.#sockets;
  }

  /** The listening addresses (port 0 resolved to the port picked). */
  get addrs(): Deno.Addr[] {
    return [...this.#addrs];
  }

  /** Whether the server is accepting connections. */
  isServing(): boolean {
    return this.#serving && !this.#closed;
  }

  /** Starts accepting connections (no-op if already serving). */
  startServing(): void {
    if (this.#closed) {
      throw new Deno.errors.BadResource("The server is closed");
    }
    if (this.#serving) return;
    this.#serving = true;
    for (const listener of this.#listeners) {
      listener.acceptStart(this.#sinkOf(listener));
    }
  }

  /**
   * Starts serving if needed and resolves once the server is closed. Only
   * one `serveForever()` may run at a time.
   */
  serveForever(): Promise<void> {
    if (this.#serveForeverRunning) {
      return Promise.reject(
        new Deno.errors.Busy("serveForever() is already running"),
      );
    }
    if (this.#closed) {
      return Promise.reject(
        new Deno.errors.BadResource("The server is closed"),
      );
    }
    this.#serveForeverRunning = true;
    this.startServing();
    // As asyncio 3.12+: close() ends it, once every connection has ended
    // too (it awaits waitClosed()).
    return new Promise<void>((resolve) => {
      this.#closeWaiters.push(() => {
        this.#serveForeverRunning = false;
        resolve(this.waitClosed());
      });
    });
  }

  /** Stops listening. Live connections go on; see `closeClients()`. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#unclosed !== null) this.#unclosed.closed = true;
    this.#serving = false;
    this.#signal?.removeEventListener("abort", this.#onAbort);
    this.#listenersClosed = this.#listeners.map((l) => l.close());
    for (const timer of this.#retryTimers) clearTimeout(timer);
    this.#retryTimers.clear();
    for (const wake of this.#closeWaiters.splice(0)) wake();
    this.#checkIdle();
  }

  /**
   * Closes every live connection (each flushes its buffer first); one still
   * in its TLS handshake is aborted.
   */
  closeClients(): void {
    this.#abortHandshakes();
    for (const transport of [...this.#transports]) transport.close();
  }

  /** Aborts every live connection at once (buffers are discarded). */
  abortClients(): void {
    this.#abortHandshakes();
    for (const transport of [...this.#transports]) transport.abort();
  }

  #abortHandshakes(): void {
    for (const controller of this.#handshakes.values()) controller.abort();
  }

  /**
   * Resolves once the server is closed and every connection it accepted has
   * ended.
   */
  async waitClosed(): Promise<void> {
    if (
      !this.#closed || this.#transports.size > 0 || this.#handshakes.size > 0
    ) {
      await new Promise<void>((resolve) => this.#idleWaiters.push(resolve));
    }
    await Promise.all(this.#listenersClosed);
  }

  /**
   * Graceful shutdown: stops accepting, waits up to `timeout` ms (default
   * 30 000) for the live connections to end by themselves, then aborts the
   * ones still open and waits for them to go. Resolves to `true` when every
   * connection ended before the deadline, `false` when some were aborted.
   */
  async shutdown(options?: { timeout?: number }): Promise<boolean> {
    const given = checkKnownOptions(options, ["timeout"]).timeout;
    const timeout = checkNumber(
      given === undefined ? 30_000 : given,
      "timeout",
    );
    if (timeout > 2 ** 31 - 1) {
      throw new RangeError(
        `The timeout must be at most ${2 ** 31 - 1} ms, got ${timeout}`,
      );
    }
    this.close();
    let timer: ReturnType<typeof setTimeout> | undefined;
    const deadline = new Promise<false>((resolve) => {
      timer = setTimeout(() => resolve(false), timeout);
    });
    try {
      const graceful = await Promise.race([
        this.waitClosed().then(() => true as const),
        deadline,
      ]);
      if (graceful) return true;
    } finally {
      clearTimeout(timer);
    }
    this.abortClients();
    await this.waitClosed();
    return false;
  }

  /** `await using server = ...`: `close()` then `waitClosed()`. */
  async [Symbol.asyncDispose](): Promise<void> {
    this.close();
    await this.waitClosed();
  }

  /** Shows the live state in `Deno.inspect()` and `console.log()`. */
  [Symbol.for("Deno.customInspect")](
    inspect: (value: unknown, options?: unknown) => string,
    options: unknown,
  ): string {
    const state = {
      addrs: this.#addrs,
      serving: this.isServing(),
      closed: this.#closed,
      connections: this.#transports.size,
      handshaking: this.#handshakes.size,
    };
    return `Server ${inspect(state, options)}`;
  }

  /** The accept sink of one listener: serve, or pause after an error. */
  #sinkOf(listener: ListenerHandle): AcceptSink {
    return {
      accepted: (handle) => {
        if (this.#closed) {
          void handle.close();
          return;
        }
        this.#attach(handle);
      },
      acceptError: (error) => {
        if (this.#closed || error instanceof Deno.errors.BadResource) return;
        this.#loop.callExceptionHandler({
          message: "Error accepting a connection",
          exception: error,
          server: this,
        });
        void this.#retryPause().then(() => {
          if (!this.#closed) listener.acceptStart(this.#sinkOf(listener));
        });
      },
    };
  }

  #retryPause(): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.#retryTimers.delete(timer);
        resolve();
      }, ACCEPT_RETRY_DELAY);
      this.#retryTimers.add(timer);
      // close() clears the timer; resolve then too.
      this.#closeWaiters.push(resolve);
    });
  }

  #attach(handle: StreamHandle): void {
    // asyncio sets TCP_NODELAY on every TCP transport, accepted ones too.
    handle.setNoDelay(true);
    if (this.#keepAlive) handle.setKeepAlive(true);
    if (this.#accept === undefined) {
      this.#start(handle);
      return;
    }
    const controller = new AbortController();
    const pending = Promise.resolve()
      .then(() => this.#accept!(handle, controller.signal))
      .then(
        (accepted) => this.#start(accepted.handle, accepted.extra),
        (error) => {
          void handle.close();
          // Aborted by closeClients()/abortClients(): asked for, not an error.
          if (controller.signal.aborted) return;
          this.#loop.callExceptionHandler({
            message: "Error while setting up an accepted connection",
            exception: error,
            server: this,
          });
        },
      )
      .finally(() => {
        this.#handshakes.delete(pending);
        this.#checkIdle();
      });
    this.#handshakes.set(pending, controller);
  }

  #start(handle: StreamHandle, extra?: Record<string, unknown>): void {
    let protocol: BaseProtocol;
    try {
      protocol = this.#protocolFactory();
    } catch (error) {
      void handle.close();
      this.#loop.callExceptionHandler({
        message: "Exception in the protocol factory",
        exception: error,
        server: this,
      });
      return;
    }
    const transport = transportOverHandle(handle, protocol, {
      loop: this.#loop,
      canWriteEof: this.#canWriteEof,
      extra,
      onLost: (t) => {
        this.#transports.delete(t);
        this.#checkIdle();
      },
    });
    // connectionLost (and so onLost) always runs later than this.
    this.#transports.add(transport);
  }

  #checkIdle(): void {
    if (
      !this.#closed || this.#transports.size > 0 || this.#handshakes.size > 0
    ) {
      return;
    }
    for (const wake of this.#idleWaiters.splice(0)) wake();
  }
}
