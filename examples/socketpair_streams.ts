/**
 * Seed S004-j (seeds/004_0130fc70258334b4.txt): a stream reader on one end
 * of a `socketpair()`, data sent from the other end with `call_soon`.
 *
 * The Python it ports:
 *
 * ```python
 * @asyncio.coroutine
 * def wait_for_data(loop):
 *     rsock, wsock = socketpair()
 *     reader, writer = yield from asyncio.open_connection(sock=rsock, loop=loop)
 *     loop.call_soon(wsock.send, 'This is a test.'.encode())
 *     data = yield from reader.read(100)
 *     print("Received:", data.decode())
 *     writer.close()
 *     wsock.close()
 *
 * loop = asyncio.get_event_loop()
 * loop.run_until_complete(wait_for_data(loop))
 * loop.close()
 * ```
 *
 * `openConnection({ sock: rsock })` takes the aionet `Socket` over (bytes
 * it already received included), as the seed does, on either backend.
 *
 * Run: `deno run -A examples/socketpair_streams.ts`
 *
 * @module
 */

import { type EventLoop, getEventLoop } from "../events.ts";
import { socketpair } from "../sockets.ts";
import { openConnection } from "../streams.ts";

async function waitForData(loop: EventLoop): Promise<void> {
  // Create a pair of connected sockets.
  const [rsock, wsock] = socketpair();
  // Register the socket that waits for data.
  const [reader, writer] = await openConnection({ sock: rsock });
  // Simulate the reception of data from the network.
  loop.callSoon(() => wsock.send(new TextEncoder().encode("This is a test.")));
  // Wait for the data.
  const data = await reader.read(100);
  console.log("Received:", new TextDecoder().decode(data));
  writer.close();
  await writer.waitClosed();
  wsock.close();
}

const loop = getEventLoop();
await loop.runUntilComplete(waitForData(loop));
loop.close();
