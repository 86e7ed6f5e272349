/**
 * Seed S002-b (seeds/002_6b9579778871f933.txt): the "Get Poetry Now!"
 * client, blocking edition: downloads a poem from each server in turn and
 * says how long each took.
 *
 * The Python it ports, in short:
 *
 * ```python
 * def get_poetry(address):
 *     sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
 *     sock.connect(address)
 *     poem = b''
 *     while True:
 *         data = sock.recv(1024)
 *         if not data:
 *             sock.close()
 *             break
 *         print(data.decode('utf-8'), end='')
 *         poem += data
 *     return poem
 *
 * for i, address in enumerate(addresses):
 *     print('Task %d: get poetry from: %s' % (i + 1, addr_fmt))
 *     poem = get_poetry(address)
 *     print('Task %d: got %d bytes of poetry from %s in %s' % (...))
 * print('Got %d poems in %s' % (len(list(addresses)), elapsed))
 * ```
 *
 * The blocking `connect()`/`recv()` become `await loop.sockConnect()` and
 * `await loop.sockRecv()`; downloads stay sequential. (The seed's last line
 * counts an exhausted `map` and always says 0 poems; this one counts them.)
 *
 * Run: `deno run -A examples/poetry_client_blocking.ts [host:]port ...`
 *
 * @module
 */

import { getEventLoop } from "../events.ts";
import { AF_INET, SOCK_STREAM, socket } from "../sockets.ts";
import { formatAddress, parseClientArgs, timedelta } from "./_poetry.ts";

const loop = getEventLoop();

/** Downloads a piece of poetry from the given address. */
async function getPoetry(
  address: { hostname: string; port: number },
): Promise<Uint8Array> {
  const sock = socket(AF_INET, SOCK_STREAM);
  await loop.sockConnect(sock, address);
  const chunks: Uint8Array[] = [];
  const decoder = new TextDecoder();
  for (;;) {
    const data = await loop.sockRecv(sock, 1024);
    if (data.length === 0) {
      sock.close();
      break;
    }
    await Deno.stdout.write(
      new TextEncoder().encode(decoder.decode(data, { stream: true })),
    );
    chunks.push(data);
  }
  const poem = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let offset = 0;
  for (const chunk of chunks) {
    poem.set(chunk, offset);
    offset += chunk.length;
  }
  return poem;
}

async function main(): Promise<void> {
  const { addresses } = parseClientArgs();
  let elapsed = 0;
  for (const [i, address] of addresses.entries()) {
    const addrFmt = formatAddress(address);
    console.log(`Task ${i + 1}: get poetry from: ${addrFmt}`);
    const start = performance.now();
    const poem = await getPoetry(address);
    const time = performance.now() - start;
    console.log(
      `Task ${i + 1}: got ${poem.length} bytes of poetry from ${addrFmt} in ${
        timedelta(time)
      }`,
    );
    elapsed += time;
  }
  console.log(`Got ${addresses.length} poems in ${timedelta(elapsed)}`);
  loop.close();
}

if (import.meta.main) await main();
