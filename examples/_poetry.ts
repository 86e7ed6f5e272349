// Shared by the slow-poetry examples of seed S002 (002_6b9579778871f933.txt):
// the command lines of the servers and clients, the output files of the
// clients, and the small formatting helpers the Python prints rely on.
// (Python-style `repr()` and address tuples are in `_cli.ts`.)

import { parseCommandLine, parsePort, usageError } from "./_cli.ts";

/** The poem shipped with the examples (public domain). */
export const DEFAULT_POEM = new URL("./data/ozymandias.txt", import.meta.url)
  .pathname;

/** A server's options: `--port`, `--iface`, `--delay`, `--num-bytes`, the poem. */
export interface ServerArgs {
  port: number;
  iface: string;
  /** Seconds between two sends. */
  delay: number;
  numBytes: number;
  poetryFile: string;
}

/**
 * Parses a poetry server's command line:
 * `[--port N] [--iface HOST] [--delay SECONDS] [--num-bytes N] [poetry-file]`.
 */
export function parseServerArgs(): ServerArgs {
  const { values, positionals } = parseCommandLine({
    port: { type: "string", short: "p", default: "0" },
    iface: { type: "string", default: "127.0.0.1" },
    delay: { type: "string", default: "0.1" },
    "num-bytes": { type: "string", default: "20" },
  });
  const port = parsePort(values.port);
  const delay = Number(values.delay);
  if (!Number.isFinite(delay) || delay < 0) usageError("--delay must be >= 0");
  const numBytes = Number(values["num-bytes"]);
  if (!Number.isInteger(numBytes) || numBytes < 1) {
    usageError("--num-bytes must be a positive integer");
  }
  const poetryFile = positionals[0] ?? DEFAULT_POEM;
  try {
    Deno.statSync(poetryFile);
  } catch {
    usageError(`No such file: ${poetryFile}`);
  }
  return { port, iface: values.iface, delay, numBytes, poetryFile };
}

/** A client's options: `[host:]port ...` and `--out-dir` for the files. */
export interface ClientArgs {
  addresses: Array<{ hostname: string; port: number }>;
  outDir: string;
}

/** Parses `[--out-dir DIR] [host:]port ...` as the seed's clients do. */
export function parseClientArgs(): ClientArgs {
  const { values, positionals } = parseCommandLine({
    "out-dir": { type: "string", default: "." },
  });
  if (positionals.length === 0) {
    usageError("usage: [--out-dir DIR] [hostname:]port ...");
  }
  const addresses = positionals.map((address) => {
    let hostname = "127.0.0.1";
    let port = address;
    if (address.includes(":")) {
      [hostname, port] = [
        address.slice(0, address.lastIndexOf(":")),
        address.slice(address.lastIndexOf(":") + 1),
      ];
    }
    if (!/^\d+$/.test(port)) usageError("Ports must be integers.");
    return { hostname: hostname || "127.0.0.1", port: Number(port) };
  });
  return { addresses, outDir: values["out-dir"] };
}

/** `host:port`, as the seed's `format_address`. */
export function formatAddress(address: { hostname?: string; port: number }) {
  return `${address.hostname || "127.0.0.1"}:${address.port}`;
}

/** A file open for writing, with its name (as a Python file's `.name`). */
export interface OutFile {
  name: string;
  file: Deno.FsFile;
}

/** Python's `open(name, 'wb')`: creates or truncates `name`. */
export function openForWriting(name: string): OutFile {
  const file = Deno.openSync(name, {
    write: true,
    create: true,
    truncate: true,
  });
  return { name, file };
}

/** Milliseconds as Python prints a `timedelta`: `0:00:01.234567`. */
export function timedelta(ms: number): string {
  const micros = Math.round(ms * 1000);
  const seconds = Math.floor(micros / 1_000_000);
  const rest = String(micros % 1_000_000).padStart(6, "0");
  const h = Math.floor(seconds / 3600);
  const m = String(Math.floor(seconds / 60) % 60).padStart(2, "0");
  const s = String(seconds % 60).padStart(2, "0");
  return `${h}:${m}:${s}.${rest}`;
}

/** Waits `seconds` (the seeds' `time.sleep(delay)` pacing). */
export function sleep(seconds: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, seconds * 1000));
}
