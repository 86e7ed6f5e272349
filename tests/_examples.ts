// The harness of the tests that run the examples as real programs: every
// example runs as `deno run <permissions> <example> <args>` from the
// repository root (whose deno.json enables --unstable-net).
//
// - `run(args)` runs one to completion: `{ code, stdout, stderr, lines }`;
//   `runLines(args)` also requires exit code 0 and an empty stderr.
// - `start(args)` spawns a long-running one (a server): read its stdout
//   line by line with `next()`, `waitForLine()`, `expect()`, wait for its
//   ready line with `ready()`/`readyPort()`, and `stop()` it with SIGINT
//   (Ctrl+C), which returns its exit code, the lines it printed after and
//   its stderr. `await using` kills and reaps it whatever happened.
//
// Every wait is bounded in time (the timers are cleared), every child is
// awaited and every pipe is released, so the sanitizers stay quiet.

import assert from "node:assert/strict";
import { withTimeout } from "./_helpers.ts";

/** The repository root: the examples run from there. */
export const ROOT: URL = new URL("../", import.meta.url);
/** For a whole run or a ready line: Deno start-up on a busy 2-core machine. */
export const STARTUP_MS = 30_000;
/** For one more line of output, or the exit after a signal. */
export const LINE_MS = 15_000;
/** The usual ready line of a TCP server example, the port captured. */
export const SERVING_ON: RegExp = /^Serving on 127\.0\.0\.1:(\d+)$/;

/** How to start an example. */
export interface StartOptions {
  /** Permission flags for `deno run`; default `["-A"]`. */
  permissions?: string[];
}

/** How to run an example to completion. */
export interface RunOptions extends StartOptions {
  /** Text written to the example's stdin, then closed; default: no stdin. */
  stdin?: string;
  /** Time limit in ms for the whole run; default {@linkcode STARTUP_MS}. */
  timeout?: number;
}

/** What a finished example printed. */
export interface RunOutput {
  /** The exit code. */
  code: number;
  /** Everything printed on stdout. */
  stdout: string;
  /** Everything printed on stderr. */
  stderr: string;
  /** `stdout` split into lines, without the last line end (none if empty). */
  lines: string[];
}

function spawn(
  args: string[],
  options: StartOptions,
  stdin: "null" | "piped" = "null",
): Deno.ChildProcess {
  return new Deno.Command(Deno.execPath(), {
    args: ["run", ...(options.permissions ?? ["-A"]), ...args],
    cwd: ROOT,
    stdin,
    stdout: "piped",
    stderr: "piped",
  }).spawn();
}

/** `text` as lines, without the last line end; `[]` for `""`. */
function splitLines(text: string): string[] {
  if (text === "") return [];
  return (text.endsWith("\n") ? text.slice(0, -1) : text).split("\n");
}

/**
 * Runs an example to completion: `run(["examples/x.ts", "--port", "1"])`.
 * Past `options.timeout` the child is killed and the call rejects.
 */
export async function run(
  args: string[],
  options: RunOptions = {},
): Promise<RunOutput> {
  const child = spawn(
    args,
    options,
    options.stdin === undefined ? "null" : "piped",
  );
  if (options.stdin !== undefined) {
    const writer = child.stdin.getWriter();
    try {
      await writer.write(new TextEncoder().encode(options.stdin));
      await writer.close();
    } catch {
      // It exited without reading it all: its output and code tell.
    }
  }
  const output = child.output();
  let result: Deno.CommandOutput;
  try {
    result = await withTimeout(
      output,
      options.timeout ?? STARTUP_MS,
      args.join(" "),
    );
  } catch (error) {
    child.kill("SIGKILL");
    await output.catch(() => {});
    throw error;
  }
  const stdout = new TextDecoder().decode(result.stdout);
  return {
    code: result.code,
    stdout,
    stderr: new TextDecoder().decode(result.stderr),
    lines: splitLines(stdout),
  };
}

/**
 * {@linkcode run}, requiring exit code 0 and nothing on stderr; returns the
 * stdout lines.
 */
export async function runLines(
  args: string[],
  options: RunOptions = {},
): Promise<string[]> {
  const { code, stderr, lines } = await run(args, options);
  assert.equal(stderr, "", `stderr of ${args.join(" ")}`);
  assert.equal(code, 0, `exit code of ${args.join(" ")}`);
  return lines;
}

/** Text lines of a byte stream, each wait bounded in time. */
export class LineReader {
  /** Every line read so far, in order. */
  readonly seen: string[] = [];
  #reader: ReadableStreamDefaultReader<string>;
  #buffer = "";
  #done = false;
  #pending: Promise<ReadableStreamReadResult<string>> | null = null;

  /** Reads `stream` (a child's stdout), decoded as UTF-8. */
  constructor(stream: ReadableStream<Uint8Array>) {
    this.#reader = stream.pipeThrough(new TextDecoderStream()).getReader();
  }

  /** The next line without its line end, or `null` at the end. */
  async next(what = "a line", ms = LINE_MS): Promise<string | null> {
    for (;;) {
      const end = this.#buffer.indexOf("\n");
      if (end >= 0 || (this.#done && this.#buffer !== "")) {
        const line = end >= 0 ? this.#buffer.slice(0, end) : this.#buffer;
        this.#buffer = end >= 0 ? this.#buffer.slice(end + 1) : "";
        this.seen.push(line);
        return line;
      }
      if (this.#done) return null;
      // A read that timed out stays pending: the next call waits on it.
      this.#pending ??= this.#reader.read();
      const result = await withTimeout(this.#pending, ms, what);
      this.#pending = null;
      if (result.done) this.#done = true;
      else this.#buffer += result.value;
    }
  }

  /** Every line left, until the stream ends. */
  async rest(what = "the last lines"): Promise<string[]> {
    const lines: string[] = [];
    for (;;) {
      const line = await this.next(what);
      if (line === null) return lines;
      lines.push(line);
    }
  }

  /**
   * Reads up to the first line that `pattern` matches (lines before it are
   * passed over, and kept in `seen`); returns the match. Rejects if the
   * stream ends first.
   */
  async waitForLine(
    pattern: RegExp,
    what = `a line matching ${pattern}`,
    ms = LINE_MS,
  ): Promise<RegExpExecArray> {
    for (;;) {
      const line = await this.next(what, ms);
      assert.ok(line !== null, `the output ended before ${what}`);
      const match = pattern.exec(line);
      if (match) return match;
    }
  }

  /** Releases the stream (the child may still be writing). */
  async cancel(): Promise<void> {
    await this.#reader.cancel().catch(() => {});
  }
}

/** A long-running example (a server); see {@linkcode start}. */
export class RunningExample implements AsyncDisposable {
  /** The child process. */
  readonly child: Deno.ChildProcess;
  /** Its stdout, line by line. */
  readonly stdout: LineReader;
  /** Its whole stderr, once it has exited. */
  readonly stderr: Promise<string>;
  #args: string[];

  /** Spawns `deno run <permissions> ...args`; see {@linkcode start}. */
  constructor(args: string[], options: StartOptions = {}) {
    this.#args = args;
    this.child = spawn(args, options);
    this.stdout = new LineReader(this.child.stdout);
    this.stderr = new Response(this.child.stderr).text();
  }

  /** Every stdout line read so far (by any of the methods). */
  get lines(): string[] {
    return this.stdout.seen;
  }

  /** The next stdout line, or `null` at the end. */
  next(what?: string, ms?: number): Promise<string | null> {
    return this.stdout.next(what, ms);
  }

  /** Reads up to the first line `pattern` matches; returns the match. */
  waitForLine(pattern: RegExp, what?: string): Promise<RegExpExecArray> {
    return this.stdout.waitForLine(pattern, what);
  }

  /**
   * Waits for the ready line, given start-up time, and returns its first
   * capture group. The ready line must be the first line printed, unless
   * `skip` lets earlier lines pass (they stay in `lines`).
   */
  async ready(
    pattern: RegExp,
    options: { skip?: boolean } = {},
  ): Promise<string> {
    const what = `the ready line of ${this.#args[0]}`;
    if (options.skip) {
      return (await this.stdout.waitForLine(pattern, what, STARTUP_MS))[1];
    }
    const line = await this.stdout.next(what, STARTUP_MS);
    const match = pattern.exec(line ?? "");
    assert.ok(match, `unexpected ready line: ${line}`);
    return match[1];
  }

  /**
   * {@linkcode ready} for a line that captures a port (by default
   * `Serving on 127.0.0.1:PORT`); returns the port, checked to be > 0.
   */
  async readyPort(
    pattern: RegExp = SERVING_ON,
    options: { skip?: boolean } = {},
  ): Promise<number> {
    const port = Number(await this.ready(pattern, options));
    assert.ok(Number.isInteger(port) && port > 0, `port ${port}`);
    return port;
  }

  /**
   * Checks the next stdout lines against `expected`: a string must be
   * equal, a pattern must match.
   */
  async expect(expected: Array<string | RegExp>): Promise<void> {
    for (const want of expected) {
      const line = await this.stdout.next(`the line ${want}`);
      assert.ok(line !== null, `the output ended before ${want}`);
      if (typeof want === "string") assert.equal(line, want);
      else assert.match(line, want);
    }
  }

  /**
   * Sends `signal` (default SIGINT, Ctrl+C), then reads what is left of
   * stdout and waits for the exit: returns the exit code, the lines printed
   * since the last read, and the whole stderr.
   */
  async stop(
    signal: Deno.Signal = "SIGINT",
  ): Promise<{ code: number; lines: string[]; stderr: string }> {
    try {
      this.child.kill(signal);
    } catch {
      // It has exited already: what it printed tells why.
    }
    const lines = await this.stdout.rest(`the output of ${this.#args[0]}`);
    const status = await withTimeout(
      this.child.status,
      LINE_MS,
      `${this.#args[0]} to exit`,
    );
    return { code: status.code, lines, stderr: await this.stderr };
  }

  /** Kills the child if it still runs, awaits it, releases every pipe. */
  async [Symbol.asyncDispose](): Promise<void> {
    try {
      this.child.kill("SIGKILL");
    } catch {
      // It has exited already.
    }
    await this.child.status;
    await this.stdout.cancel();
    await this.stderr.catch(() => "");
  }
}

/**
 * Spawns a long-running example: `await using server =
 * start(["examples/echo_server.ts", "--port", "0"])`.
 */
export function start(
  args: string[],
  options: StartOptions = {},
): RunningExample {
  return new RunningExample(args, options);
}
