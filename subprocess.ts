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

import type { BaseProtocol } from "./protocols.ts";
import type { SubprocessProtocol } from "./protocols.ts";
import type {
  ReadTransport,
  SubprocessTransport,
  Transport,
  WriteTransport,
} from "./transports.ts";
import { StreamReader } from "./_stream_reader.ts";
import { FlowControlProtocol, StreamWriter } from "./_stream_writer.ts";
import { ChildProcessTransport } from "./_subprocess_transport.ts";
import { ReadPipeTransport, WritePipeTransport } from "./_pipe_transports.ts";
import {
  assertBytes,
  checkFunction,
  checkOptions,
  checkString,
  describe,
  notSupported,
} from "./_validate.ts";

/** `"pipe"`: connect the stream to the parent (asyncio's `PIPE`). */
export const PIPE = "pipe";
/** `"null"`: connect the stream to `/dev/null` (asyncio's `DEVNULL`). */
export const DEVNULL = "null";
/**
 * asyncio's `STDOUT` (stderr into stdout). Deno cannot merge the two
 * streams: passing it as `stderr` throws `NotSupported`.
 */
export const STDOUT = "stdout";

/** How a standard stream of the child is connected. */
export type StdioOption = "pipe" | "inherit" | "null";

/** Options of {@linkcode createSubprocessExec} and {@linkcode createSubprocessShell}. */
export interface SubprocessOptions {
  /** The child's stdin: `"pipe"`, `"inherit"` (default) or `"null"`. */
  stdin?: StdioOption;
  /** The child's stdout: `"pipe"`, `"inherit"` (default) or `"null"`. */
  stdout?: StdioOption;
  /**
   * The child's stderr: `"pipe"`, `"inherit"` (default) or `"null"`
   * (`"stdout"`, asyncio's `STDOUT`, throws `NotSupported`).
   */
  stderr?: StdioOption;
  /** Buffer limit of the `stdout`/`stderr` readers (default 64 KiB). */
  limit?: number;
  /** The child's working directory. */
  cwd?: string | URL;
  /** The child's whole environment (replaces the parent's, as asyncio). */
  env?: Record<string, string>;
}

/** Options of {@linkcode subprocessExec}: stdio defaults to `"pipe"`, as asyncio's loop method. */
export type SubprocessTransportOptions = Omit<SubprocessOptions, "limit">;

const STDIO = ["pipe", "inherit", "null"];

interface Spawned {
  child: Deno.ChildProcess;
  piped: { stdin: boolean; stdout: boolean; stderr: boolean };
}

function checkStdio(value: unknown, name: string, fallback: StdioOption) {
  if (value === undefined) return fallback;
  if (typeof value === "number") {
    notSupported(
      `A file descriptor number as ${name}`,
      'Deno.Command takes only "piped", "inherit" or "null"',
    );
  }
  if (name === "stderr" && value === STDOUT) {
    notSupported(
      'stderr: "stdout" (asyncio\'s STDOUT)',
      "Deno.Command cannot send stderr into the stdout pipe; pipe both or use sh -c '... 2>&1'",
    );
  }
  if (typeof value !== "string" || !STDIO.includes(value)) {
    throw new TypeError(
      `The ${name} option must be "pipe", "inherit" or "null", got ${
        describe(value)
      }`,
    );
  }
  return value as StdioOption;
}

function spawn(
  program: string | URL,
  args: readonly string[],
  options: SubprocessOptions | undefined,
  fallback: StdioOption,
): Spawned {
  if (typeof program !== "string" && !(program instanceof URL)) {
    throw new TypeError(
      `The program must be a string or URL, got ${describe(program)}`,
    );
  }
  if (!Array.isArray(args) || args.some((a) => typeof a !== "string")) {
    throw new TypeError(
      `The args must be an array of strings, got ${describe(args)}`,
    );
  }
  const o = checkOptions(options) as SubprocessOptions & {
    passFds?: unknown;
  };
  if (o.passFds !== undefined) {
    notSupported(
      "passFds (asyncio's pass_fds)",
      "Deno.Command cannot pass extra file descriptors to a child",
    );
  }
  const stdin = checkStdio(o.stdin, "stdin", fallback);
  const stdout = checkStdio(o.stdout, "stdout", fallback);
  const stderr = checkStdio(o.stderr, "stderr", fallback);
  if (
    o.cwd !== undefined && typeof o.cwd !== "string" &&
    !(o.cwd instanceof URL)
  ) {
    throw new TypeError(
      `The cwd must be a string or URL, got ${describe(o.cwd)}`,
    );
  }
  if (o.env !== undefined) {
    if (o.env === null || typeof o.env !== "object") {
      throw new TypeError(`The env must be an object, got ${describe(o.env)}`);
    }
    for (const [key, value] of Object.entries(o.env)) {
      if (typeof value !== "string") {
        throw new TypeError(
          `The env value of ${key} must be a string, got ${describe(value)}`,
        );
      }
    }
  }
  const deno = (s: StdioOption) => s === "pipe" ? "piped" : s;
  const child = new Deno.Command(program, {
    args: [...args],
    cwd: o.cwd,
    env: o.env,
    clearEnv: o.env !== undefined,
    stdin: deno(stdin),
    stdout: deno(stdout),
    stderr: deno(stderr),
  }).spawn();
  return {
    child,
    piped: {
      stdin: stdin === "pipe",
      stdout: stdout === "pipe",
      stderr: stderr === "pipe",
    },
  };
}

function checkLimit(limit: unknown): number | undefined {
  if (limit === undefined) return undefined;
  if (typeof limit !== "number" || Number.isNaN(limit)) {
    throw new TypeError(`The limit must be a number, got ${describe(limit)}`);
  }
  if (limit <= 0) {
    throw new RangeError(`The limit must be greater than 0, got ${limit}`);
  }
  return limit;
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
  try {
    checkFunction(protocolFactory, "protocol factory");
    const { child, piped } = spawn(program, args, options, "pipe");
    const protocol = protocolFactory();
    const transport = new ChildProcessTransport(child, protocol, piped);
    return Promise.resolve([transport, protocol]);
  } catch (error) {
    return Promise.reject(error);
  }
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
  try {
    checkString(cmd, "command");
    return subprocessExec(protocolFactory, "/bin/sh", ["-c", cmd], options);
  } catch (error) {
    return Promise.reject(error);
  }
}

/** The SubprocessProtocol behind a Process: feeds its readers, drains its writer. */
class SubprocessStreamProtocol extends FlowControlProtocol {
  #limit: number | undefined;
  stdin: StreamWriter | null = null;
  stdout: StreamReader | null = null;
  stderr: StreamReader | null = null;

  constructor(limit: number | undefined) {
    super();
    this.#limit = limit;
  }

  override connectionMade(base: Transport | SubprocessTransport): void {
    const transport = base as SubprocessTransport;
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

  processExited(): void {}
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
    if (input !== undefined) assertBytes(input, "input");
    const [, stdout, stderr] = await Promise.all([
      this.#feedStdin(input),
      this.#readAll(1),
      this.#readAll(2),
    ]);
    await this.wait();
    return [stdout, stderr];
  }

  /** Sends `signal` to the child (nothing once it has exited). */
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

function createProcess(
  program: string | URL,
  args: readonly string[],
  options: SubprocessOptions | undefined,
): Process {
  const limit = checkLimit(checkOptions(options).limit);
  const { child, piped } = spawn(program, args, options, "inherit");
  const protocol = new SubprocessStreamProtocol(limit);
  const transport = new ChildProcessTransport(child, protocol, piped);
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
  try {
    return Promise.resolve(createProcess(program, args, options));
  } catch (error) {
    return Promise.reject(error);
  }
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
    return Promise.resolve(createProcess("/bin/sh", ["-c", cmd], options));
  } catch (error) {
    return Promise.reject(error);
  }
}

function readableOf(pipe: unknown): ReadableStream<Uint8Array> {
  if (pipe instanceof ReadableStream) return pipe;
  if (pipe !== null && typeof pipe === "object" && "readable" in pipe) {
    const readable = (pipe as { readable: unknown }).readable;
    if (readable instanceof ReadableStream) return readable;
  }
  throw new TypeError(
    `The pipe must be a ReadableStream or have a readable stream, got ${
      describe(pipe)
    }`,
  );
}

function writableOf(pipe: unknown): WritableStream<Uint8Array> {
  if (pipe instanceof WritableStream) return pipe;
  if (pipe !== null && typeof pipe === "object" && "writable" in pipe) {
    const writable = (pipe as { writable: unknown }).writable;
    if (writable instanceof WritableStream) return writable;
  }
  throw new TypeError(
    `The pipe must be a WritableStream or have a writable stream, got ${
      describe(pipe)
    }`,
  );
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
  try {
    checkFunction(protocolFactory, "protocol factory");
    const stream = readableOf(pipe);
    const protocol = protocolFactory();
    return Promise.resolve([new ReadPipeTransport(stream, protocol), protocol]);
  } catch (error) {
    return Promise.reject(error);
  }
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
  try {
    checkFunction(protocolFactory, "protocol factory");
    const stream = writableOf(pipe);
    const protocol = protocolFactory();
    return Promise.resolve([
      new WritePipeTransport(stream, protocol),
      protocol,
    ]);
  } catch (error) {
    return Promise.reject(error);
  }
}
