/**
 * Seed S001-c (seeds/001_a67efe0c9151b4f1.txt), server half: the Streams
 * echo server, `asyncio.start_server` with a `handle_echo` callback.
 *
 * The Python it ports:
 *
 * ```python
 * async def handle_echo(reader, writer):
 *     data = await reader.read(100)
 *     message = data.decode()
 *     addr = writer.get_extra_info('peername')
 *     print(f"Received {message!r} from {addr!r}")
 *     print(f"Send: {message!r}")
 *     writer.write(data)
 *     await writer.drain()
 *     print("Close the connection")
 *     writer.close()
 *     await writer.wait_closed()
 *
 * async def main():
 *     server = await asyncio.start_server(handle_echo, '127.0.0.1', 8888)
 *     addrs = ', '.join(str(sock.getsockname()) for sock in server.sockets)
 *     print(f'Serving on {addrs}')
 *     async with server:
 *         await server.serve_forever()
 * ```
 *
 * Differences: addresses print as `host:port` (aionet's `Deno.NetAddr`)
 * instead of a Python tuple, so the ready line reads
 * `Serving on 127.0.0.1:8888` (the real port with `--port 0`); Ctrl+C or
 * SIGTERM closes the server, which ends `serveForever()`, and `await using`
 * (asyncio's `async with server`) waits for it to close.
 *
 * Run: `deno run -A examples/streams_echo_server.ts [--host 127.0.0.1] [--port 8888]`,
 * then `deno run -A examples/streams_echo_client.ts` in another terminal.
 *
 * @module
 */

import { parseArgs } from "node:util";
import {
  startServer,
  type StreamReader,
  type StreamWriter,
} from "../streams.ts";

/** `host:port` for a network address, the path for a Unix one. */
function formatAddr(addr: unknown): string {
  const a = addr as { hostname?: string; port?: number; path?: string };
  if (typeof a.path === "string") return a.path;
  const host = a.hostname ?? "?";
  return `${host.includes(":") ? `[${host}]` : host}:${a.port}`;
}

/** A string as Python's `repr()` shows it: `'Hello World!'`. */
function repr(text: string): string {
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

function parseFlags(): { host: string; port: number } {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      host: { type: "string", default: "127.0.0.1" },
      port: { type: "string", default: "8888" },
    },
  });
  const port = Number(values.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    console.error("--port must be an integer from 0 to 65535");
    Deno.exit(2);
  }
  return { host: values.host, port };
}

async function handleEcho(
  reader: StreamReader,
  writer: StreamWriter,
): Promise<void> {
  const data = await reader.read(100);
  const message = new TextDecoder().decode(data);
  const addr = writer.getExtraInfo("peername");

  console.log(`Received ${repr(message)} from ${formatAddr(addr)}`);

  console.log(`Send: ${repr(message)}`);
  writer.write(data);
  await writer.drain();

  console.log("Close the connection");
  writer.close();
  await writer.waitClosed();
}

async function main(): Promise<void> {
  const { host, port } = parseFlags();
  await using server = await startServer(handleEcho, { hostname: host, port });

  const addrs = server.sockets.map((sock) => formatAddr(sock.getSockName()))
    .join(", ");
  console.log(`Serving on ${addrs}`);

  // Python leaves serve_forever() on KeyboardInterrupt; here a signal
  // closes the server, which makes serveForever() resolve.
  const stop = () => server.close();
  const signals: Deno.Signal[] = ["SIGINT", "SIGTERM"];
  for (const signal of signals) Deno.addSignalListener(signal, stop);
  try {
    await server.serveForever();
  } finally {
    for (const signal of signals) Deno.removeSignalListener(signal, stop);
  }
  // Leaving the block runs `await server[Symbol.asyncDispose]()`:
  // close() then waitClosed(), as `async with server` does.
}

if (import.meta.main) await main();
