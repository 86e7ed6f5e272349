/**
 * Seed S002-e (seeds/002_6b9579778871f933.txt), client half: downloads
 * poems from several servers at once; the event loop calls
 * `download_poetry` whenever a socket is readable (`add_reader`).
 *
 * The Python it ports, in short:
 *
 * ```python
 * def download_poetry(eventloop, sock, infile):
 *     bstring = sock.recv(1024)
 *     if not bstring:
 *         eventloop.remove_reader(sock); sock.close(); infile.close()
 *         print('end of reading'); return True
 *     print('writing to {}'.format(infile.name))
 *     infile.write(bstring)
 * eventloop = asyncio.get_event_loop()
 * for sock in map(connect, addresses):
 *     infile = open(str(sock.getpeername()[1]) + '.txt', 'wb')
 *     eventloop.add_reader(sock, download_poetry, eventloop, sock, infile)
 * try:
 *     eventloop.run_forever()
 * finally:
 *     eventloop.close()
 * ```
 *
 * Differences: the blocking `connect()` is `await loop.sockConnect()`;
 * the loop stops once every download is complete (the seed runs forever);
 * `--out-dir` says where the files go (default: the current directory).
 *
 * Run: `deno run -A examples/poetry_client_loop.ts [--out-dir DIR]
 * [host:]port ...`
 *
 * @module
 */

import { type EventLoop, getEventLoop } from "../events.ts";
import { type Socket, socket } from "../sockets.ts";
import { openForWriting, type OutFile, parseClientArgs } from "./_poetry.ts";

let remaining = 0;

function downloadPoetry(
  eventloop: EventLoop,
  sock: Socket,
  infile: OutFile,
): void {
  const bstring = sock.recv(1024);
  if (bstring.length === 0) {
    eventloop.removeReader(sock);
    sock.close();
    infile.file.close();
    console.log("end of reading");
    if (--remaining === 0) eventloop.stop();
    return;
  }
  console.log(`writing to ${infile.name}`);
  infile.file.writeSync(bstring);
}

async function main(): Promise<void> {
  const { addresses, outDir } = parseClientArgs();
  const eventloop = getEventLoop();
  const sockets = await Promise.all(addresses.map(async (address) => {
    const sock = socket();
    await eventloop.sockConnect(sock, address);
    sock.setBlocking(false);
    return sock;
  }));
  remaining = sockets.length;
  for (const sock of sockets) {
    const { port } = sock.getPeerName() as Deno.NetAddr;
    const infile = openForWriting(`${outDir}/${port}.txt`);
    eventloop.addReader(sock, downloadPoetry, eventloop, sock, infile);
  }
  try {
    await eventloop.runForever();
  } finally {
    eventloop.close();
  }
}

if (import.meta.main) await main();
