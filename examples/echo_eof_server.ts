/**
 * Seed S004-e (seeds/004_0130fc70258334b4.txt), server half: a Protocol
 * echo server that closes the connection when the client half-closes
 * (`eof_received`).
 *
 * The Python it ports, in short:
 *
 * ```python
 * class EchoServerClientProtocol(asyncio.Protocol):
 *     def connection_made(self, transport):
 *         print('Connection from {}'.format(transport.get_extra_info('peername')))
 *         self.transport = transport
 *     def data_received(self, data):
 *         message = data.decode()
 *         print('Data received:{!r}'.format(message))
 *         print('Send:{!r}'.format(message))
 *         self.transport.write(data)
 *     def eof_received(self):
 *         print('Close the client socket')
 *         self.transport.close()
 *
 * server = loop.run_until_complete(
 *     loop.create_server(EchoServerClientProtocol, '127.0.0.1', 8888))
 * print('Serving on {}'.format(server.sockets[0].getsockname()))
 * try:
 *     loop.run_forever()
 * except KeyboardInterrupt:
 *     pass
 * server.close()
 * loop.run_until_complete(server.wait_closed())
 * ```
 *
 * Differences: addresses print as `host:port` (aionet's `Deno.NetAddr`)
 * instead of a Python tuple; `{!r}` is reproduced by a small `repr()`;
 * `loop.run_forever()` until Ctrl+C becomes waiting for SIGINT/SIGTERM.
 * `--port 0` picks a free port and prints it in the ready line.
 *
 * Run: `deno run -A examples/echo_eof_server.ts [--host 127.0.0.1] [--port 8888]`,
 * then `deno run -A examples/echo_eof_client.ts` in another terminal.
 *
 * @module
 */

import { Protocol } from "../protocols.ts";
import { createServer, type Transport } from "../transports.ts";
import { formatAddr, interrupted, repr, serverFlags } from "./_cli.ts";

class EchoServerClientProtocol extends Protocol {
  #transport?: Transport;

  // The connection is made.
  override connectionMade(transport: Transport): void {
    const peername = transport.getExtraInfo("peername");
    console.log(`Connection from ${formatAddr(peername)}`);
    this.#transport = transport;
  }

  // Data arrived: echo it.
  override dataReceived(data: Uint8Array): void {
    const message = new TextDecoder().decode(data);
    console.log(`Data received:${repr(message)}`);
    console.log(`Send:${repr(message)}`);
    this.#transport!.write(data);
  }

  // The client has sent everything (it called writeEof()).
  override eofReceived(): void {
    console.log("Close the client socket");
    this.#transport!.close();
  }
}

async function main(): Promise<void> {
  const { host, port } = serverFlags(8888);
  // Each connection gets a new protocol instance.
  const server = await createServer(() => new EchoServerClientProtocol(), {
    hostname: host,
    port,
  });
  console.log(`Serving on ${formatAddr(server.sockets[0].getSockName())}`);

  // loop.run_forever() until Ctrl+C: wait for SIGINT (or SIGTERM).
  await interrupted();

  // Close the server and wait until it has closed.
  server.close();
  await server.waitClosed();
}

if (import.meta.main) await main();
