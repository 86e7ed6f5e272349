/**
 * Child processes, as Python's `asyncio.subprocess`:
 * {@linkcode createSubprocessExec} and {@linkcode createSubprocessShell}
 * start a child and give a {@linkcode Process} whose `stdin` is a
 * `StreamWriter` and whose `stdout`/`stderr` are `StreamReader`s;
 * {@linkcode subprocessExec} and {@linkcode subprocessShell} are the
 * transport/protocol flavour (`loop.subprocess_exec`), with a
 * `SubprocessProtocol`. {@linkcode connectReadPipe} and
 * {@linkcode connectWritePipe} wrap any Web stream (`Deno.stdin`,
 * `Deno.stdout`, a `Deno.FsFile`, a child's pipe) in a pipe transport.
 *
 * Built on `Deno.Command(...).spawn()`. What Deno cannot do throws
 * `Deno.errors.NotSupported`: merging stderr into stdout (asyncio's
 * `STDOUT`), passing file descriptors (`pass_fds`) or file-descriptor
 * numbers as stdio.
 *
 * Permissions: `--allow-run` (and `--allow-read` for `cwd`).
 *
 * @example Run a command and collect its output
 * ```ts
 * import { createSubprocessExec } from "@aionet/aionet/subprocess";
 *
 * const proc = await createSubprocessExec("echo", ["hello"], { stdout: "pipe" });
 * const [stdout] = await proc.communicate();
 * console.log(new TextDecoder().decode(stdout!)); // "hello\n"
 * console.log(proc.returncode); // 0
 * ```
 *
 * @module
 */

import { checkLimit as checkReaderLimit } from "./_stream_reader.ts";
import type { BaseProtocol, SubprocessProtocol } from "./protocols.ts";
import type {
  ReadTransport,
  SubprocessTransport,
  Transport,
  WriteTransport,
} from "./_transport_types.ts";
import { getEventLoop } from "./events.ts";
import type { LoopCore } from "./_loop_core.ts";
import { StreamReader } from "./_stream_reader.ts";
import { FlowControlProtocol, StreamWriter } from "./_stream_writer.ts";
import { ChildProcessTransport } from "./_subprocess_transport.ts";
import type {
  SubprocessOptions,
  SubprocessTransportOptions,
} from "./_subprocess_spawn.ts";
import { assertBytes, checkOptions, checkString } from "./_validate.ts";

export {
  DEVNULL,
  PIPE,
  type StdioOption,
  STDOUT,
  type SubprocessOptions,
  type SubprocessTransportOptions,
} from "./_subprocess_spawn.ts";

function checkLimit(limit: unknown): number | undefined {
  return limit === undefined ? undefined : checkReaderLimit(limit);
}

/** The SubprocessProtocol behind a Process: feeds its readers, drains its writer. */
class SubprocessStreamProtocol extends FlowControlProtocol {
  #limit: number | undefined;
  stdin: StreamWriter | null = null;
  stdout: StreamReader | null = null;
  stderr: StreamReader | null = null;

  constructor(loop: LoopCore, limit: number | undefined) {
    super(loop);
    this.#limit = limit;
  }

  #transport: SubprocessTransport | null = null;

  override connectionMade(base: Transport | SubprocessTransport): void {
    const transport = base as SubprocessTransport;
    this.#transport = transport;
    for (const fd of [1, 2] as const) {
      const pipe = transport.getPipeTransport(fd);
      if (pipe === null) continue;
      const reader = new StreamReader({ limit: this.#limit });
      reader.setTransport(pipe as ReadTransport);
      if (fd === 1) this.stdout = reader;
      else this.stderr = reader;
    }
    const stdin = transport.getPipeTransport(0);
    if (stdin !== null) this.stdin = new StreamWriter(stdin, this);
  }

  pipeDataReceived(fd: 1 | 2, data: Uint8Array): void {
    (fd === 1 ? this.stdout : this.stderr)?.feedData(data);
  }

  pipeConnectionLost(fd: 0 | 1 | 2, exc: Error | null): void {
    if (fd === 0) {
      // Wakes drain() with the pipe's error; waitClosed() resolves.
      super.connectionLost(exc);
      return;
    }
    const reader = fd === 1 ? this.stdout : this.stderr;
    if (reader === null) return;
    if (exc === null) reader.feedEof();
    else reader.setException(exc);
  }

  /** Every pipe is closed by now: done with the transport, as asyncio. */
  processExited(): void {
    this.#transport?.close();
  }
}

/**
 * A running child process, as asyncio's `asyncio.subprocess.Process`: made
 * by {@linkcode createSubprocessExec} and {@linkcode createSubprocessShell}.
 *
 * Reading `stdout` with `wait()` alone can deadlock once the child fills
 * the pipe (as in asyncio): read the pipes, or use `communicate()`.
 *
 * @example Talk to a child line by line
 * ```ts
 * import { createSubprocessExec } from "@aionet/aionet/subprocess";
 *
 * const proc = await createSubprocessExec("cat", [], { stdin: "pipe", stdout: "pipe" });
 * proc.stdin!.write(new TextEncoder().encode("ping\n"));
 * await proc.stdin!.drain();
 * console.log(new TextDecoder().decode(await proc.stdout!.readLine())); // "ping\n"
 * proc.stdin!.close();
 * await proc.stdout!.read();
 * console.log(await proc.wait()); // 0
 * ```
 */
export class Process {
  #transport: ChildProcessTransport;
  #protocol: SubprocessStreamProtocol;

  /**
   * Made by `createSubprocessExec`/`createSubprocessShell`; not meant to be
   * constructed by users (`TypeError` for anything else).
   *
   * @example Using `new Process()`
   * ```ts
   * import { createSubprocessExec } from "@aionet/aionet/subprocess";
   *
   * const proc = await createSubprocessExec("true", []);
   * console.log(await proc.wait()); // 0
   * ```
   */
  constructor(transport: SubprocessTransport, protocol: BaseProtocol) {
    if (
      !(transport instanceof ChildProcessTransport) ||
      !(protocol instanceof SubprocessStreamProtocol)
    ) {
      throw new TypeError(
        "A Process is made by createSubprocessExec or createSubprocessShell",
      );
    }
    this.#transport = transport;
    this.#protocol = protocol;
  }

  /** The child's process id. */
  get pid(): number {
    return this.#transport.getPid();
  }

  /**
   * The child's stdin, or `null` unless it was `"pipe"`. Once the child has
   * closed it (or exited), `write()` drops the bytes, as asyncio does, and
   * `drain()` rejects: with `ConnectionReset`, or `BrokenPipe` if queued
   * bytes were lost. After your own `close()`, `write()` throws
   * `BadResource`.
   */
  get stdin(): StreamWriter | null {
    return this.#protocol.stdin;
  }

  /** The child's stdout, or `null` unless it was `"pipe"`. */
  get stdout(): StreamReader | null {
    return this.#protocol.stdout;
  }

  /** The child's stderr, or `null` unless it was `"pipe"`. */
  get stderr(): StreamReader | null {
    return this.#protocol.stderr;
  }

  /**
   * The exit code, minus the signal number if a signal killed the child, or
   * `null` while it runs.
   */
  get returncode(): number | null {
    return this.#transport.getReturnCode();
  }

  /** Waits until the child exits and returns its returncode. */
  wait(): Promise<number> {
    return this.#transport.exited;
  }

  /**
   * Sends `input` (if given) to stdin and closes it, while reading stdout
   * and stderr to their end; then waits for the child to exit. Returns
   * `[stdout, stderr]`, `null` for a stream that is not piped. A child
   * that does not read all its input — it closed stdin, or exited, even
   * before the call — is not an error: the rest of the input is dropped
   * and the output and `returncode` are there, as in asyncio (whose
   * `_feed_stdin` ignores `BrokenPipeError` and `ConnectionResetError`).
   * `BadResource` if you closed stdin yourself and pass `input`.
   *
   * @example Input to a child that exits without reading it
   * ```ts
   * import { createSubprocessShell } from "@aionet/aionet/subprocess";
   *
   * const proc = await createSubprocessShell("echo early; exit 3", {
   *   stdin: "pipe",
   *   stdout: "pipe",
   * });
   * await proc.wait();
   * const [out] = await proc.communicate(new Uint8Array(1 << 20));
   * console.log(new TextDecoder().decode(out!), proc.returncode); // "early\n" 3
   * ```
   */
  async communicate(
    input?: Uint8Array,
  ): Promise<[stdout: Uint8Array | null, stderr: Uint8Array | null]> {
    if (input !== undefined) {
      assertBytes(input, "input");
      if (this.stdin === null) {
        throw new TypeError(
          'communicate() was given input, but the process\'s stdin is not a pipe (start it with stdin: "pipe")',
        );
      }
    }
    const [, stdout, stderr] = await Promise.all([
      this.#feedStdin(input),
      this.#readAll(1),
      this.#readAll(2),
    ]);
    await this.wait();
    return [stdout, stderr];
  }

  /**
   * Sends `signal` to the child: nothing once it has exited, `NotFound`
   * (asyncio's ProcessLookupError) once its transport is closed too.
   */
  sendSignal(signal: Deno.Signal): void {
    this.#transport.sendSignal(signal);
  }

  /** Sends SIGTERM. */
  terminate(): void {
    this.#transport.terminate();
  }

  /** Sends SIGKILL. */
  kill(): void {
    this.#transport.kill();
  }

  async #feedStdin(input: Uint8Array | undefined): Promise<void> {
    const stdin = this.stdin;
    if (stdin === null) return;
    try {
      if (input !== undefined) {
        stdin.write(input);
        await stdin.drain();
      }
    } catch (error) {
      if (
        !(error instanceof Deno.errors.BrokenPipe) &&
        !(error instanceof Deno.errors.ConnectionReset)
      ) {
        throw error;
      }
    }
    stdin.close();
  }

  async #readAll(fd: 1 | 2): Promise<Uint8Array | null> {
    const reader = fd === 1 ? this.stdout : this.stderr;
    if (reader === null) return null;
    const data = await reader.read(-1);
    this.#transport.getPipeTransport(fd)?.close();
    return data;
  }
}

async function createProcess(
  program: string | URL,
  args: readonly string[],
  options: SubprocessOptions | undefined,
): Promise<Process> {
  const { limit, ...rest } = checkOptions(options);
  const loop = getEventLoop();
  const protocol = new SubprocessStreamProtocol(loop, checkLimit(limit));
  const [transport] = await loop.subprocessExec(() => protocol, program, args, {
    ...rest,
    stdin: rest.stdin ?? "inherit",
    stdout: rest.stdout ?? "inherit",
    stderr: rest.stderr ?? "inherit",
  });
  return new Process(transport, protocol);
}

/**
 * Starts `program` with `args` (asyncio's `create_subprocess_exec`). Stdio
 * defaults to `"inherit"`; `env` replaces the whole environment. Throws
 * `Deno.errors.NotFound` if the program does not exist.
 *
 * @example Feed input, read the output
 * ```ts
 * import { createSubprocessExec } from "@aionet/aionet/subprocess";
 *
 * const proc = await createSubprocessExec("tr", ["a-z", "A-Z"], { stdin: "pipe", stdout: "pipe" });
 * const [out] = await proc.communicate(new TextEncoder().encode("shout"));
 * console.log(new TextDecoder().decode(out!)); // "SHOUT"
 * ```
 */
export function createSubprocessExec(
  program: string | URL,
  args: readonly string[] = [],
  options?: SubprocessOptions,
): Promise<Process> {
  return createProcess(program, args, options);
}

/**
 * Runs `cmd` with `/bin/sh -c` (asyncio's `create_subprocess_shell`). Quote
 * anything that comes from users: the shell interprets the whole string.
 *
 * @example Both streams and the exit code
 * ```ts
 * import { createSubprocessShell } from "@aionet/aionet/subprocess";
 *
 * const proc = await createSubprocessShell("echo out; echo err >&2; exit 3", {
 *   stdout: "pipe",
 *   stderr: "pipe",
 * });
 * const [out, err] = await proc.communicate();
 * console.log(new TextDecoder().decode(out!), new TextDecoder().decode(err!)); // "out\n" "err\n"
 * console.log(proc.returncode); // 3
 * ```
 */
export function createSubprocessShell(
  cmd: string,
  options?: SubprocessOptions,
): Promise<Process> {
  try {
    checkString(cmd, "command");
    return createProcess("/bin/sh", ["-c", cmd], options);
  } catch (error) {
    return Promise.reject(error);
  }
}

/**
 * Runs `program` with `args` and calls the protocol's callbacks
 * (asyncio's `loop.subprocess_exec`): `connectionMade(transport)`,
 * `pipeDataReceived(fd, data)`, `pipeConnectionLost(fd, exc)` for each
 * pipe, `processExited()`, then `connectionLost(null)`. Stdio defaults to
 * `"pipe"` here, as in asyncio.
 *
 * @example Collect the output of a command
 * ```ts
 * import { subprocessExec } from "@aionet/aionet/subprocess";
 * import { SubprocessProtocol } from "@aionet/aionet/protocols";
 *
 * const { promise, resolve } = Promise.withResolvers<void>();
 * const chunks: Uint8Array[] = [];
 * class Collect extends SubprocessProtocol {
 *   override pipeDataReceived(fd: 1 | 2, data: Uint8Array) { if (fd === 1) chunks.push(data); }
 *   override connectionLost() { resolve(); }
 * }
 * const [transport] = await subprocessExec(() => new Collect(), "echo", ["hi"], { stdin: "null" });
 * await promise;
 * console.log(transport.getReturnCode()); // 0
 * transport.close();
 * ```
 */
export function subprocessExec<P extends SubprocessProtocol>(
  protocolFactory: () => P,
  program: string | URL,
  args: readonly string[] = [],
  options?: SubprocessTransportOptions,
): Promise<[SubprocessTransport, P]> {
  return getEventLoop().subprocessExec(protocolFactory, program, args, options);
}

/**
 * Runs `cmd` with `/bin/sh -c` and calls the protocol's callbacks
 * (asyncio's `loop.subprocess_shell`); see {@linkcode subprocessExec}.
 *
 * @example Using `subprocessShell`
 * ```ts
 * import { subprocessShell } from "@aionet/aionet/subprocess";
 * import { SubprocessProtocol } from "@aionet/aionet/protocols";
 *
 * const { promise, resolve } = Promise.withResolvers<void>();
 * class Done extends SubprocessProtocol {
 *   override connectionLost() { resolve(); }
 * }
 * const [transport] = await subprocessShell(() => new Done(), "exit 3");
 * await promise;
 * console.log(transport.getReturnCode()); // 3
 * transport.close();
 * ```
 */
export function subprocessShell<P extends SubprocessProtocol>(
  protocolFactory: () => P,
  cmd: string,
  options?: SubprocessTransportOptions,
): Promise<[SubprocessTransport, P]> {
  return getEventLoop().subprocessShell(protocolFactory, cmd, options);
}

/**
 * Reads a pipe through a protocol (asyncio's `loop.connect_read_pipe`):
 * `pipe` is a `ReadableStream<Uint8Array>` or has one as `.readable`
 * (`Deno.stdin`, a `Deno.FsFile`, a child's stdout). The protocol gets
 * `connectionMade`, `dataReceived`*, `eofReceived`, `connectionLost`; the
 * transport is a `ReadTransport` (`pauseReading`, `resumeReading`,
 * `close`). Closing the transport cancels the stream (closing its file).
 *
 * @example Read a file through a protocol
 * ```ts
 * import { connectReadPipe } from "@aionet/aionet/subprocess";
 * import { Protocol } from "@aionet/aionet/protocols";
 *
 * const path = await Deno.makeTempFile();
 * await Deno.writeTextFile(path, "data");
 * const { promise, resolve } = Promise.withResolvers<void>();
 * class Print extends Protocol {
 *   override dataReceived(data: Uint8Array) { console.log(data.length); }
 *   override connectionLost() { resolve(); }
 * }
 * await connectReadPipe(() => new Print(), await Deno.open(path));
 * await promise;
 * ```
 */
export function connectReadPipe<P extends BaseProtocol>(
  protocolFactory: () => P,
  pipe:
    | ReadableStream<Uint8Array>
    | { readonly readable: ReadableStream<Uint8Array> },
): Promise<[ReadTransport, P]> {
  return getEventLoop().connectReadPipe(protocolFactory, pipe);
}

/**
 * Writes a pipe through a protocol (asyncio's `loop.connect_write_pipe`):
 * `pipe` is a `WritableStream<Uint8Array>` or has one as `.writable`
 * (`Deno.stdout`, a `Deno.FsFile`, a child's stdin). The transport is a
 * `WriteTransport` with asyncio's flow control (`pauseWriting()` on the
 * protocol above 64 KiB queued); `close()` writes what is queued, then
 * closes the stream; `connectionLost` follows. If a write fails (the
 * reader went away: `connectionLost(BrokenPipe)`), later writes are
 * dropped, as in asyncio; the sixth is reported to the exception handler.
 *
 * @example Write a file through a transport
 * ```ts
 * import { connectWritePipe } from "@aionet/aionet/subprocess";
 * import { BaseProtocol } from "@aionet/aionet/protocols";
 *
 * const path = await Deno.makeTempFile();
 * const { promise, resolve } = Promise.withResolvers<void>();
 * class Done extends BaseProtocol {
 *   override connectionLost() { resolve(); }
 * }
 * const file = await Deno.open(path, { write: true });
 * const [transport] = await connectWritePipe(() => new Done(), file);
 * transport.write(new TextEncoder().encode("hello"));
 * transport.close();
 * await promise;
 * console.log(await Deno.readTextFile(path)); // "hello"
 * ```
 */
export function connectWritePipe<P extends BaseProtocol>(
  protocolFactory: () => P,
  pipe:
    | WritableStream<Uint8Array>
    | { readonly writable: WritableStream<Uint8Array> },
): Promise<[WriteTransport, P]> {
  return getEventLoop().connectWritePipe(protocolFactory, pipe);
}
