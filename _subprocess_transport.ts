// The transport of a child process (asyncio's BaseSubprocessTransport) over
// Deno.ChildProcess: one pipe transport per piped stdio stream, callbacks
// forwarded to the SubprocessProtocol with the pipe's fd, the exit status
// turned into asyncio's returncode. Public through subprocess.ts.

import {
  protocolCallback,
  timedCall,
  type UnclosedState,
  watchUnclosed,
} from "./_debug.ts";
import { reportError } from "./_transport_common.ts";
import type { BaseProtocol, SubprocessProtocol } from "./protocols.ts";
import { currentLoop, type LoopCore } from "./_loop_core.ts";
import type { SubprocessTransport, Transport } from "./_transport_types.ts";
import {
  ReadPipeTransport,
  timedElsewhere,
  WritePipeTransport,
} from "./_pipe_transports.ts";
import { describe } from "./_validate.ts";

type Fd = 0 | 1 | 2;

/** asyncio's returncode: the exit code, or minus the signal number. */
export function returnCode(status: Deno.CommandStatus): number {
  // Deno reports a death by signal as code 128 + the signal number.
  if (status.signal !== null) return -(status.code - 128);
  return status.code;
}

/**
 * A child process as a transport. Callback order: `connectionMade`, then
 * `pipeDataReceived(fd, data)`*, `pipeConnectionLost(fd, exc)` once per
 * pipe, `processExited()` once the child has exited and its pipes are
 * closed, and last `connectionLost(null)`.
 */
export class ChildProcessTransport implements SubprocessTransport {
  #child: Deno.ChildProcess;
  #protocol: SubprocessProtocol;
  #loop: LoopCore;
  #pid: number;
  #returncode: number | null = null;
  #pipes = new Map<Fd, ReadPipeTransport | WritePipeTransport>();
  #lostPipes = new Set<Fd>();
  #closed = false;
  /** Debug mode's record of whether this transport was closed. */
  #unclosed: UnclosedState | null = null;
  #finished = false;
  #exited = Promise.withResolvers<number>();
  #done = Promise.withResolvers<void>();

  constructor(
    child: Deno.ChildProcess,
    protocol: SubprocessProtocol,
    piped: { stdin: boolean; stdout: boolean; stderr: boolean },
    loop?: LoopCore,
  ) {
    this.#child = child;
    this.#protocol = protocol;
    this.#loop = loop ?? currentLoop();
    this.#unclosed = watchUnclosed(this.#loop, this, "subprocess transport");
    this.#pid = child.pid;
    if (piped.stdin) {
      this.#pipes.set(
        0,
        new WritePipeTransport(child.stdin, {
          connectionMade() {},
          pauseWriting: () => this.#protocol.pauseWriting(),
          resumeWriting: () => this.#protocol.resumeWriting(),
          connectionLost: (exc: Error | null) => this.#pipeLost(0, exc),
        }, { loop: this.#loop }),
      );
    }
    for (const fd of [1, 2] as const) {
      if (!(fd === 1 ? piped.stdout : piped.stderr)) continue;
      const adapter = {
        connectionMade() {},
        pauseWriting() {},
        resumeWriting() {},
        dataReceived: (data: Uint8Array) =>
          this.#timed(
            "pipeDataReceived",
            () => this.#protocol.pipeDataReceived(fd, data),
          ),
        eofReceived() {},
        connectionLost: (exc: Error | null) => this.#pipeLost(fd, exc),
      } as BaseProtocol;
      timedElsewhere.add(adapter);
      this.#pipes.set(
        fd,
        new ReadPipeTransport(fd === 1 ? child.stdout : child.stderr, adapter, {
          loop: this.#loop,
        }),
      );
    }
    child.status.then(
      (status) => this.#processExited(returnCode(status)),
      (error) => {
        this.#report("Cannot get the child's exit status", error);
        this.#processExited(-1);
      },
    );
    try {
      protocol.connectionMade(this);
    } catch (error) {
      this.#report("Exception in protocol.connectionMade()", error);
      this.close();
    }
  }

  /** Resolves with the returncode once the child has exited. */
  get exited(): Promise<number> {
    return this.#exited.promise;
  }

  /** Resolves after `connectionLost` was called. */
  get done(): Promise<void> {
    return this.#done.promise;
  }

  /** `"subprocess"`: the `Deno.ChildProcess`; other names give `fallback`. */
  getExtraInfo(name: string, fallback?: unknown): unknown {
    return name === "subprocess" ? this.#child : fallback;
  }

  /** Whether `close()` was called. */
  isClosing(): boolean {
    return this.#closed;
  }

  /** Closes every pipe and kills the child if it is still running. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#unclosed !== null) this.#unclosed.closed = true;
    // A pipe already lost is left as it is (its writes stay dropped).
    for (const [fd, pipe] of this.#pipes) {
      if (!this.#lostPipes.has(fd)) pipe.close();
    }
    if (this.#returncode === null) this.#signal("SIGKILL");
  }

  /** Replaces the protocol. */
  setProtocol(protocol: BaseProtocol): void {
    this.#protocol = protocol as SubprocessProtocol;
  }

  /** The protocol. */
  getProtocol(): BaseProtocol {
    return this.#protocol;
  }

  /** The child's process id. */
  getPid(): number {
    return this.#pid;
  }

  /** The exit code, minus the signal number, or `null` while running. */
  getReturnCode(): number | null {
    return this.#returncode;
  }

  /**
   * The transport of stdin (0, a write transport), stdout (1) or stderr (2)
   * (read transports), or `null` for a stream that is not piped.
   */
  getPipeTransport(fd: 0 | 1 | 2): Transport | null {
    if (fd !== 0 && fd !== 1 && fd !== 2) {
      throw new TypeError(`The fd must be 0, 1 or 2, got ${describe(fd)}`);
    }
    // A pipe has only one direction: the other half of Transport is absent.
    return (this.#pipes.get(fd) ?? null) as Transport | null;
  }

  /**
   * Sends `signal` to the child: nothing once it has exited, `NotFound`
   * (asyncio's ProcessLookupError) once this transport is closed too.
   */
  sendSignal(signal: Deno.Signal): void {
    if (typeof signal !== "string") {
      throw new TypeError(
        `The signal must be a signal name such as "SIGTERM", got ${
          describe(signal)
        }`,
      );
    }
    this.#signal(signal);
  }

  /** Sends SIGTERM. */
  terminate(): void {
    this.#signal("SIGTERM");
  }

  /** Sends SIGKILL. */
  kill(): void {
    this.#signal("SIGKILL");
  }

  #signal(signal: Deno.Signal): void {
    if (this.#finished) {
      // asyncio's ProcessLookupError: the transport let go of the process.
      throw new Deno.errors.NotFound(
        `Cannot send ${signal}: the process exited and its transport is closed`,
      );
    }
    // Exited, not yet reaped by the transport: nothing, as Popen.
    if (this.#returncode !== null) return;
    try {
      this.#child.kill(signal);
    } catch (error) {
      // The child ended before its status was read: as Popen, do nothing.
      if (error instanceof TypeError && /terminated/.test(error.message)) {
        return;
      }
      throw error;
    }
  }

  #processExited(returncode: number): void {
    this.#returncode = returncode;
    this.#exited.resolve(returncode);
    // The child's end of stdin is gone: end ours if nothing is queued
    // (queued bytes make the write fail with BrokenPipe on their own). It is
    // the child that closed it, not the user: later writes are dropped, as
    // in asyncio, instead of refused.
    const stdin = this.#pipes.get(0) as WritePipeTransport | undefined;
    if (
      stdin !== undefined && !this.#lostPipes.has(0) &&
      stdin.getWriteBufferSize() === 0
    ) {
      stdin.peerClosed();
    }
    this.#tryFinish();
  }

  #pipeLost(fd: Fd, exc: Error | null): void {
    this.#lostPipes.add(fd);
    try {
      this.#timed(
        "pipeConnectionLost",
        () => this.#protocol.pipeConnectionLost(fd, exc),
      );
    } catch (error) {
      this.#report("Exception in protocol.pipeConnectionLost()", error);
    }
    this.#tryFinish();
  }

  #tryFinish(): void {
    if (this.#finished || this.#returncode === null) return;
    if (this.#lostPipes.size < this.#pipes.size) return;
    this.#finished = true;
    try {
      this.#timed("processExited", () => this.#protocol.processExited());
    } catch (error) {
      this.#report("Exception in protocol.processExited()", error);
    }
    queueMicrotask(() => {
      try {
        this.#protocol.connectionLost(null);
      } catch (error) {
        this.#report("Exception in protocol.connectionLost()", error);
      }
      this.#done.resolve();
    });
  }

  /** Calls the protocol's `method`; slow calls are reported in debug mode. */
  #timed(method: string, call: () => void): void {
    timedCall(this.#loop, () => protocolCallback(this.#protocol, method), call);
  }

  #report(message: string, exception: unknown): void {
    reportError(this.#loop, this, this.#protocol, message, exception);
  }
}
