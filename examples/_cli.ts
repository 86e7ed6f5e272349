/**
 * Plumbing shared by the examples, kept out of them so that each example
 * reads as a port of its seed: command-line flags (`--host`/`--port` and
 * friends, with the usage errors that exit with status 2), Ctrl+C and
 * SIGTERM wiring (Python's `KeyboardInterrupt`), lines of standard input
 * (Python's `input()`), and printing values the way Python prints them
 * (`repr()` of a str or bytes, an address tuple, `host:port`).
 *
 * @module
 */

import { parseArgs, type ParseArgsOptionsConfig } from "node:util";

// ---- Flags ----

/** What `parseArgs` returns for the flags `T`. */
export type FlagValues<T extends ParseArgsOptionsConfig> = ReturnType<
  typeof parseArgs<{ args: string[]; options: T }>
>["values"];

/** The flags `T` with `--host` and a numeric `--port`. */
export type HostPortValues<T extends ParseArgsOptionsConfig> =
  & Omit<FlagValues<T>, "host" | "port">
  & { host: string; port: number };

/**
 * Prints `message` on stderr and exits with status 2, the usual status of a
 * command-line mistake.
 *
 * @example
 * ```ts ignore
 * if (path === "") usageError("--path must not be empty");
 * ```
 */
export function usageError(message: string): never {
  console.error(message);
  Deno.exit(2);
}

/**
 * Parses `Deno.args` with `node:util`'s `parseArgs` (strict: an unknown
 * flag is a usage error).
 *
 * @example
 * ```ts ignore
 * const { file } = parseFlags({ file: { type: "string" } });
 * ```
 */
export function parseFlags<T extends ParseArgsOptionsConfig>(
  options: T,
): FlagValues<T> {
  try {
    return parseArgs({ args: Deno.args, options }).values;
  } catch (error) {
    usageError(error instanceof Error ? error.message : String(error));
  }
}

/**
 * Like {@linkcode parseFlags}, and also takes positional arguments.
 *
 * @example
 * ```ts ignore
 * const { values, positionals } = parseCommandLine({
 *   "out-dir": { type: "string", default: "." },
 * });
 * ```
 */
export function parseCommandLine<T extends ParseArgsOptionsConfig>(
  options: T,
): { values: FlagValues<T>; positionals: string[] } {
  try {
    const { values, positionals } = parseArgs({
      args: Deno.args,
      options,
      allowPositionals: true,
    });
    return { values: values as FlagValues<T>, positionals };
  } catch (error) {
    usageError(error instanceof Error ? error.message : String(error));
  }
}

/**
 * `--port` as a number. A server may take 0 (the system picks a free port);
 * a client needs `min: 1`. Anything else is a usage error.
 *
 * @example
 * ```ts ignore
 * const port = parsePort(values.port); // 0 to 65535
 * ```
 */
export function parsePort(value: string, min: 0 | 1 = 0): number {
  const port = Number(value);
  if (!Number.isInteger(port) || port < min || port > 65535) {
    usageError(`--port must be an integer from ${min} to 65535`);
  }
  return port;
}

function hostPortFlags<T extends ParseArgsOptionsConfig>(
  port: number,
  min: 0 | 1,
  options?: T,
): HostPortValues<T> {
  const values = parseFlags({
    ...options,
    host: { type: "string", default: "127.0.0.1" },
    port: { type: "string", default: String(port) },
  }) as Record<string, unknown>;
  return {
    ...values,
    host: values.host as string,
    port: parsePort(values.port as string, min),
  } as HostPortValues<T>;
}

/**
 * A server's flags: `--host` (default `127.0.0.1`), `--port` (default
 * `port`; 0 picks a free port) and `options`.
 *
 * @example
 * ```ts ignore
 * const { host, port } = serverFlags(8888);
 * ```
 */
export function serverFlags<
  T extends ParseArgsOptionsConfig = Record<never, never>,
>(port: number, options?: T): HostPortValues<T> {
  return hostPortFlags(port, 0, options);
}

/**
 * A client's flags: `--host` (default `127.0.0.1`), `--port` (default
 * `port`; 1 to 65535) and `options`.
 *
 * @example
 * ```ts ignore
 * const { host, port, message } = clientFlags(8888, {
 *   message: { type: "string", default: "Hello World!" },
 * });
 * ```
 */
export function clientFlags<
  T extends ParseArgsOptionsConfig = Record<never, never>,
>(port: number, options?: T): HostPortValues<T> {
  return hostPortFlags(port, 1, options);
}

// ---- Ctrl+C ----

const STOP_SIGNALS: readonly Deno.Signal[] = ["SIGINT", "SIGTERM"];

/**
 * Calls `callback` on Ctrl+C (SIGINT) or SIGTERM until disposed. Where
 * Python leaves `serve_forever()` or `run_forever()` with a
 * `KeyboardInterrupt`, an example closes its server from here.
 *
 * @example
 * ```ts ignore
 * using _interrupt = onInterrupt(() => server.close());
 * await server.serveForever();
 * ```
 */
export function onInterrupt(callback: () => void): Disposable {
  const listener = () => callback();
  for (const signal of STOP_SIGNALS) Deno.addSignalListener(signal, listener);
  return {
    [Symbol.dispose]() {
      for (const signal of STOP_SIGNALS) {
        Deno.removeSignalListener(signal, listener);
      }
    },
  };
}

/**
 * Resolves at the first Ctrl+C (SIGINT) or SIGTERM: Python's
 * `loop.run_forever()` until `KeyboardInterrupt`.
 *
 * @example
 * ```ts ignore
 * await interrupted();
 * server.close();
 * ```
 */
export async function interrupted(): Promise<void> {
  const { promise, resolve } = Promise.withResolvers<void>();
  using _interrupt = onInterrupt(resolve);
  await promise;
}

// ---- Standard input ----

/**
 * The lines of standard input as they come, without their line ends. It
 * reads only when asked for the next line, so a program that stops asking
 * is not held open by a pending read.
 *
 * @example
 * ```ts ignore
 * for await (const line of stdinLines()) console.log(line);
 * ```
 */
export async function* stdinLines(): AsyncGenerator<string> {
  const decoder = new TextDecoder();
  const buffer = new Uint8Array(4096);
  let pending = "";
  while (true) {
    const n = await Deno.stdin.read(buffer);
    if (n === null) break;
    pending += decoder.decode(buffer.subarray(0, n), { stream: true });
    let end: number;
    while ((end = pending.indexOf("\n")) >= 0) {
      yield pending.slice(0, end).replace(/\r$/, "");
      pending = pending.slice(end + 1);
    }
  }
  if (pending !== "") yield pending;
}

let stdin: AsyncGenerator<string> | undefined;

/**
 * Python's `input()`: the next line of standard input, or `null` at its
 * end (where Python raises `EOFError`).
 *
 * @example
 * ```ts ignore
 * const message = await input() ?? "quit";
 * ```
 */
export async function input(): Promise<string | null> {
  stdin ??= stdinLines();
  const next = await stdin.next();
  return next.done ? null : next.value;
}

// ---- Printing as Python does ----

/**
 * A string as Python's `repr()` shows it: `'Hello'`, or `"it's"` when it
 * holds a single quote and no double one; backslashes, the quote and
 * control characters escaped.
 *
 * @example
 * ```ts ignore
 * repr("it's me"); // "\"it's me\""
 * ```
 */
export function repr(text: string): string {
  const quote = text.includes("'") && !text.includes('"') ? '"' : "'";
  let out = quote;
  for (const ch of text) {
    const code = ch.codePointAt(0)!;
    if (ch === "\\" || ch === quote) out += `\\${ch}`;
    else if (ch === "\n") out += "\\n";
    else if (ch === "\r") out += "\\r";
    else if (ch === "\t") out += "\\t";
    else if (code < 0x20 || code === 0x7f) {
      out += `\\x${code.toString(16).padStart(2, "0")}`;
    } else out += ch;
  }
  return out + quote;
}

/**
 * Bytes as Python's `repr(bytes)` shows them: `b'abc\n'`, printable ASCII
 * as is, other bytes as `\xNN`.
 *
 * @example
 * ```ts ignore
 * bytesRepr(new TextEncoder().encode("Hi\n")); // "b'Hi\\n'"
 * ```
 */
export function bytesRepr(data: Uint8Array): string {
  const quote = data.includes(0x27) && !data.includes(0x22) ? '"' : "'";
  let out = `b${quote}`;
  for (const byte of data) {
    const ch = String.fromCharCode(byte);
    if (ch === "\\" || ch === quote) out += `\\${ch}`;
    else if (ch === "\n") out += "\\n";
    else if (ch === "\r") out += "\\r";
    else if (ch === "\t") out += "\\t";
    else if (byte >= 0x20 && byte < 0x7f) out += ch;
    else out += `\\x${byte.toString(16).padStart(2, "0")}`;
  }
  return out + quote;
}

/**
 * An address as `host:port` (`[::1]:port` for IPv6), or the path of a Unix
 * socket.
 *
 * @example
 * ```ts ignore
 * console.log(`Serving on ${formatAddr(server.sockets[0].getSockName())}`);
 * ```
 */
export function formatAddr(addr: unknown): string {
  const a = addr as { hostname?: string; port?: number; path?: string };
  if (typeof a.path === "string") return a.path;
  const host = a.hostname ?? "?";
  return `${host.includes(":") ? `[${host}]` : host}:${a.port}`;
}

/**
 * An address as Python prints an address tuple: `('127.0.0.1', 5555)`; a
 * Unix socket as its quoted path.
 *
 * @example
 * ```ts ignore
 * console.log("connected to client: ", addrTuple(addr));
 * ```
 */
export function addrTuple(addr: Deno.Addr): string {
  if ("path" in addr) return `'${addr.path ?? ""}'`;
  if ("hostname" in addr) return `('${addr.hostname}', ${addr.port})`;
  return String(addr);
}
