/**
 * Seed S001-b (seeds/001_a67efe0c9151b4f1.txt), server half: the
 * Transports & Protocols echo server.
 *
 * The Python it ports, in short:
 *
 * ```python
 * class EchoServerProtocol(asyncio.Protocol):
 *     def connection_made(self, transport):
 *         print("Connection from {0}".format(transport.get_extra_info("peername")))
 *         self.transport = transport
 *     def data_received(self, data):
 *         message = data.decode()
 *         print("Data received: {0}".format(message))
 *         print("Send: {0}".format(message))
 *         self.transport.write(data)
 *         print("Close the client socket")
 *         self.transport.close()
 *
 * server = await loop.create_server(lambda: EchoServerProtocol(),
 *                                   "127.0.0.1", 8888, start_serving=False)
 * async with server:
 *     await server.serve_forever()
 * ```
 *
 * Differences: addresses print as `host:port` (aionet's `Deno.NetAddr`)
 * instead of a Python tuple; the server prints a ready line
 * (`Serving on 127.0.0.1:8888`, with the real port when `--port 0`); Ctrl+C
 * or SIGTERM closes the server, which ends `serveForever()` and lets
 * `await using` (asyncio's `async with server`) wait for it to close.
 *
 * Run: `deno run -A examples/echo_server.ts [--host 127.0.0.1] [--port 8888]`,
 * then `deno run -A examples/echo_client.ts` in another terminal.
 *
 * @module
 */

import { Protocol } from "../protocols.ts";
import { createServer, type Transport } from "../transports.ts";
import { formatAddr, onInterrupt, serverFlags } from "./_cli.ts";

class EchoServerProtocol extends Protocol {
  #transport?: Transport;

  override connectionMade(transport: Transport): void {
    const peername = transport.getExtraInfo("peername");
    console.log(`Connection from ${formatAddr(peername)}`);
    this.#transport = transport;
  }

  override dataReceived(data: Uint8Array): void {
    const message = new TextDecoder().decode(data);
    console.log(`Data received: ${message}`);
    console.log(`Send: ${message}`);
    this.#transport!.write(data);
    console.log("Close the client socket");
    this.#transport!.close();
  }
}

async function main(): Promise<void> {
  const { host, port } = serverFlags(8888);
  // start_serving=False: bound now (so the address is known), accepting
  // nothing until serveForever().
  await using server = await createServer(() => new EchoServerProtocol(), {
    hostname: host,
    port,
    startServing: false,
  });
  console.log(`Serving on ${server.addrs.map(formatAddr).join(", ")}`);

  // Python leaves serve_forever() on KeyboardInterrupt; here Ctrl+C (or
  // SIGTERM) closes the server, which makes serveForever() resolve.
  using _interrupt = onInterrupt(() => server.close());
  await server.serveForever();
  // Leaving the block runs `await server[Symbol.asyncDispose]()`:
  // close() then waitClosed(), as `async with server` does.
}

if (import.meta.main) await main();
