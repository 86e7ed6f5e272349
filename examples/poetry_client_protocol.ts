/**
 * Seed S002-f (seeds/002_6b9579778871f933.txt), client half: the poetry
 * client as an asyncio `Protocol`. It asks with `b'poems'`, writes what
 * comes to `PORT.txt` and asks again, until the server's EOF.
 *
 * The Python it ports, in short:
 *
 * ```python
 * class PoetryClientProtocol(asyncio.Protocol):
 *     def connection_made(self, transport):
 *         print(transport.get_extra_info('peername'))
 *         self.transport = transport
 *         self.transport.write(b'poems')
 *     def data_received(self, data):
 *         if data:
 *             print(data)
 *             print('writing to {}'.format(self.infile.name))
 *             self.infile.write(data)
 *             self.transport.write(b'poems')
 *     def eof_received(self):
 *         print('end of writing')
 *         self.infile.close()
 * for address in addresses:
 *     infile = open(str(port) + '.txt', 'wb')
 *     coro = eventloop.create_connection(lambda: PoetryClientProtocol(infile), host, port)
 *     t, p = eventloop.run_until_complete(coro)
 *     print(t, p)
 * eventloop.run_forever()
 * ```
 *
 * Differences: addresses and bytes print as Python would (`('127.0.0.1',
 * 10000)`, `b'...'`); the transport and protocol print as short
 * descriptions; the loop stops once every connection is closed (the seed
 * runs forever); `--out-dir` says where the files go (default: the current
 * directory).
 *
 * Run: `deno run -A examples/poetry_client_protocol.ts [--out-dir DIR]
 * [host:]port ...`
 *
 * @module
 */

import { getEventLoop } from "../events.ts";
import { Protocol } from "../protocols.ts";
import type { Transport } from "../transports.ts";
import { addrTuple, bytesRepr } from "./_cli.ts";
import { openForWriting, type OutFile, parseClientArgs } from "./_poetry.ts";

const eventloop = getEventLoop();
let open = 0;
let connecting = true;

class PoetryClientProtocol extends Protocol {
  #infile: OutFile;
  #transport?: Transport;

  constructor(infile: OutFile) {
    super();
    this.#infile = infile;
  }

  override connectionMade(transport: Transport): void {
    console.log(addrTuple(transport.getExtraInfo("peername") as Deno.Addr));
    open++;
    this.#transport = transport;
    this.#transport.write(new TextEncoder().encode("poems"));
  }

  override dataReceived(data: Uint8Array): void {
    if (data.length > 0) {
      console.log(bytesRepr(data));
      console.log(`writing to ${this.#infile.name}`);
      this.#infile.file.writeSync(data);
      this.#transport!.write(new TextEncoder().encode("poems"));
    }
  }

  override eofReceived(): void {
    console.log("end of writing");
    this.#infile.file.close();
  }

  override connectionLost(): void {
    if (--open === 0 && !connecting) eventloop.stop();
  }
}

async function main(): Promise<void> {
  const { addresses, outDir } = parseClientArgs();
  for (const { hostname, port } of addresses) {
    const infile = openForWriting(`${outDir}/${port}.txt`);
    const [t, p] = await eventloop.runUntilComplete(
      eventloop.createConnection(
        () => new PoetryClientProtocol(infile),
        { hostname, port },
      ),
    );
    console.log(
      `<Transport peername=${
        addrTuple(t.getExtraInfo("peername") as Deno.Addr)
      }> <${p.constructor.name}>`,
    );
  }
  connecting = false;
  if (open === 0) eventloop.stop();
  try {
    await eventloop.runForever();
  } finally {
    eventloop.close();
  }
}

if (import.meta.main) await main();
