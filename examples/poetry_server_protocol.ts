/**
 * Seed S002-f (seeds/002_6b9579778871f933.txt), server half: the poetry
 * server as an asyncio `Protocol`. Each `b'poems'` request gets the next
 * `--num-bytes` bytes of the poem; at the end of the poem it half-closes
 * with `write_eof()`.
 *
 * The Python it ports, in short:
 *
 * ```python
 * class PoetryServeProtocol(asyncio.Protocol):
 *     def __init__(self, inputf, num_bytes): ...
 *     def connection_made(self, transport):
 *         self.transport = transport
 *         print(self.transport)
 *     def data_received(self, data):
 *         if data == b'poems':
 *             poem = self.inputf.read(self.num_bytes)
 *             if poem:
 *                 self.transport.write(poem)
 *             else:
 *                 self.transport.write_eof()
 * inputf = open(poetry_file, 'rb')
 * eventloop = asyncio.get_event_loop()
 * print(iface, port)
 * coro = eventloop.create_server(lambda: PoetryServeProtocol(inputf, num_bytes), iface, port)
 * server = eventloop.run_until_complete(coro)
 * print(server)
 * try:
 *     eventloop.run_forever()
 * finally:
 *     eventloop.close()
 * ```
 *
 * As in the seed, every connection reads from the one open poem file, so
 * the poem is shared out among the clients. Differences: the transport and
 * server print as short descriptions, followed by the seed's ready line
 * `Serving POEM on port PORT.`; Ctrl+C stops the loop through
 * `loop.addSignalHandler`.
 *
 * Run: `deno run -A examples/poetry_server_protocol.ts [--port 0]
 * [--iface 127.0.0.1] [--num-bytes 20] [poem.txt]`
 *
 * @module
 */

import { getEventLoop } from "../events.ts";
import { Protocol } from "../protocols.ts";
import type { Transport } from "../transports.ts";
import { addrTuple } from "./_cli.ts";
import { parseServerArgs } from "./_poetry.ts";

const POEMS = new TextEncoder().encode("poems");

function isPoems(data: Uint8Array): boolean {
  return data.length === POEMS.length && data.every((b, i) => b === POEMS[i]);
}

class PoetryServeProtocol extends Protocol {
  #inputf: Deno.FsFile;
  #numBytes: number;
  #transport?: Transport;

  constructor(inputf: Deno.FsFile, numBytes: number) {
    super();
    this.#inputf = inputf;
    this.#numBytes = numBytes;
  }

  override connectionMade(transport: Transport): void {
    this.#transport = transport;
    const peer = transport.getExtraInfo("peername") as Deno.Addr;
    console.log(`<Transport peername=${addrTuple(peer)}>`);
  }

  override dataReceived(data: Uint8Array): void {
    if (isPoems(data)) {
      const buffer = new Uint8Array(this.#numBytes);
      const n = this.#inputf.readSync(buffer);
      if (n !== null && n > 0) this.#transport!.write(buffer.subarray(0, n));
      else this.#transport!.writeEof();
    }
  }
}

async function main(): Promise<void> {
  const { poetryFile, numBytes, port, iface } = parseServerArgs();
  using inputf = Deno.openSync(poetryFile, { read: true });
  const eventloop = getEventLoop();
  const server = await eventloop.runUntilComplete(
    eventloop.createServer(() => new PoetryServeProtocol(inputf, numBytes), {
      hostname: iface,
      port,
    }),
  );
  const addr = server.addrs[0] as Deno.NetAddr;
  console.log(`<Server sockets=${addrTuple(addr)}>`);
  console.log(`Serving ${poetryFile} on port ${addr.port}.`);
  eventloop.addSignalHandler("SIGINT", () => eventloop.stop());
  eventloop.addSignalHandler("SIGTERM", () => eventloop.stop());
  try {
    await eventloop.runForever();
  } finally {
    server.close();
    server.abortClients();
    await server.waitClosed();
    eventloop.close();
  }
}

if (import.meta.main) await main();
