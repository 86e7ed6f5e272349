// Spawning a child for the subprocess transports (asyncio's
// loop.subprocess_exec/subprocess_shell): the stdio options checked and
// mapped onto Deno.Command, and the transport started for the loop.

import type { SubprocessProtocol } from "./protocols.ts";
import type { LoopCore } from "./_loop_core.ts";
import type { SubprocessTransport } from "./_transport_types.ts";
import { ChildProcessTransport } from "./_subprocess_transport.ts";
import {
  checkFunction,
  checkKnownOptions,
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

/** The options a child takes (`Process`'s `limit` is taken off before). */
const SPAWN_OPTIONS = [
  "stdin",
  "stdout",
  "stderr",
  "cwd",
  "env",
  "passFds",
] as const;

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

export function spawn(
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
  const o = checkKnownOptions(
    options as SubprocessOptions & { passFds?: unknown },
    SPAWN_OPTIONS,
    "subprocess option",
  );
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
    if (o.env === null || typeof o.env !== "object" || Array.isArray(o.env)) {
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

/** `subprocessExec` for `loop`. */
export function subprocessExec<P extends SubprocessProtocol>(
  loop: LoopCore,
  protocolFactory: () => P,
  program: string | URL,
  args: readonly string[] = [],
  options?: SubprocessTransportOptions,
): Promise<[SubprocessTransport, P]> {
  try {
    checkFunction(protocolFactory, "protocol factory");
    // The protocol first, as asyncio: a factory that throws starts no child.
    const protocol = protocolFactory();
    const { child, piped } = spawn(program, args, options, "pipe");
    const transport = new ChildProcessTransport(child, protocol, piped, loop);
    return Promise.resolve([transport, protocol]);
  } catch (error) {
    return Promise.reject(error);
  }
}

/** `subprocessShell` for `loop`. */
export function subprocessShell<P extends SubprocessProtocol>(
  loop: LoopCore,
  protocolFactory: () => P,
  cmd: string,
  options?: SubprocessTransportOptions,
): Promise<[SubprocessTransport, P]> {
  try {
    checkString(cmd, "command");
    return subprocessExec(
      loop,
      protocolFactory,
      "/bin/sh",
      ["-c", cmd],
      options,
    );
  } catch (error) {
    return Promise.reject(error);
  }
}
