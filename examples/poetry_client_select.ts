/**
 * Seed S002-c (seeds/002_6b9579778871f933.txt), client half: downloads
 * poems from several servers at once with a select loop, writing each to
 * `PORT.txt`.
 *
 * The Python it ports, in short:
 *
 * ```python
 * def download_poetry(sock, infile):
 *     bstring = sock.recv(1024)
 *     if not bstring:
 *         sel.unregister(sock); infile.close()
 *         print('end of reading'); return True
 *     print('writing to {}'.format(infile.name))
 *     infile.write(bstring)
 * def connect(address):
 *     sock = socket.socket(); sock.connect(address)
 *     sock.setblocking(False); return sock
 * for sock in map(connect, addresses):
 *     infile = open(str(sock.getpeername()[1]) + '.txt', 'wb')
 *     sel.register(sock, selectors.EVENT_READ,
 *                  data={'callback': download_poetry, 'args': [infile]})
 * while True:
 *     for key, mask in sel.select():
 *         key.data['callback'](key.fileobj, *key.data['args'])
 * ```
 *
 * Differences: the blocking `connect()` is `await loop.sockConnect()`;
 * the loop ends once every download is complete (the seed loops forever);
 * `--out-dir` says where the files go (default: the current directory).
 *
 * Run: `deno run -A examples/poetry_client_select.ts [--out-dir DIR]
 * [host:]port ...`
 *
 * @module
 */

import { getEventLoop } from "../events.ts";
import { DefaultSelector, EVENT_READ } from "../selectors.ts";
import { type Socket, socket } from "../sockets.ts";
import { openForWriting, type OutFile, parseClientArgs } from "./_poetry.ts";

const sel = new DefaultSelector();
const loop = getEventLoop();

interface KeyData {
  callback: (sock: Socket, infile: OutFile) => boolean | void;
  args: [OutFile];
}

/** Downloads a piece of poetry; `true` at the end. */
function downloadPoetry(sock: Socket, infile: OutFile): boolean | void {
  const bstring = sock.recv(1024);
  if (bstring.length === 0) {
    sel.unregister(sock);
    sock.close();
    infile.file.close();
    console.log("end of reading");
    return true;
  }
  console.log(`writing to ${infile.name}`);
  infile.file.writeSync(bstring);
}

/** Connects to the given server and returns a non-blocking socket. */
async function connect(
  address: { hostname: string; port: number },
): Promise<Socket> {
  const sock = socket();
  await loop.sockConnect(sock, address);
  sock.setBlocking(false);
  return sock;
}

async function main(): Promise<void> {
  const { addresses, outDir } = parseClientArgs();
  const sockets = await Promise.all(addresses.map(connect));
  for (const sock of sockets) {
    const { port } = sock.getPeerName() as Deno.NetAddr;
    const infile = openForWriting(`${outDir}/${port}.txt`);
    const data: KeyData = { callback: downloadPoetry, args: [infile] };
    sel.register(sock, EVENT_READ, data);
  }
  let remaining = sockets.length;
  while (remaining > 0) {
    for (const [key] of await sel.select()) {
      const data = key.data as KeyData;
      if (data.callback(key.fileobj as Socket, ...data.args) === true) {
        remaining--;
      }
    }
  }
  sel.close();
  loop.close();
}

if (import.meta.main) await main();
