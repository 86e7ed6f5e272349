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

import {
  startServer,
  type StreamReader,
  type StreamWriter,
} from "../streams.ts";
import { formatAddr, onInterrupt, repr, serverFlags } from "./_cli.ts";

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
  const { host, port } = serverFlags(8888);
  await using server = await startServer(handleEcho, { hostname: host, port });

  const addrs = server.sockets.map((sock) => formatAddr(sock.getSockName()))
    .join(", ");
  console.log(`Serving on ${addrs}`);

  // Python leaves serve_forever() on KeyboardInterrupt; here Ctrl+C (or
  // SIGTERM) closes the server, which makes serveForever() resolve.
  using _interrupt = onInterrupt(() => server.close());
  await server.serveForever();
  // Leaving the block runs `await server[Symbol.asyncDispose]()`:
  // close() then waitClosed(), as `async with server` does.
}

if (import.meta.main) await main();
