/**
 * Seed S004-g (seeds/004_0130fc70258334b4.txt): a protocol reads from one
 * end of a `socketpair()` while the other end sends, then the loop stops.
 *
 * The Python it ports:
 *
 * ```python
 * class MyProtocol(asyncio.Protocol):
 *     def connection_made(self, transport):
 *         self.transport = transport
 *     def data_received(self, data):
 *         print("Received:", data.encode())
 *         self.transport.close()
 *     def connection_lost(self, exc):
 *         loop.stop()
 *
 * rsock, wsock = socketpair()
 * loop = asyncio.get_event_loop()
 * connect_coro = loop.create_connection(MyProtocol, sock=rsock)
 * transport, protocol = loop.run_until_complete(connect_coro)
 * loop.call_soon(wsock.send, 'hello world.'.encode())
 * loop.run_forever()
 * rsock.close()
 * wsock.close()
 * loop.close()
 * ```
 *
 * `loop.createConnection(MyProtocol, { sock: rsock })` takes the aionet
 * `Socket` over (bytes it already received included). Differences: the
 * seed's `data.encode()` is a slip for `data.decode()`; `rsock.close()`
 * after the transport closed it does nothing, as in Python.
 *
 * Run: `deno run -A examples/socketpair_protocol.ts`
 *
 * @module
 */

import { getEventLoop } from "../events.ts";
import { Protocol } from "../protocols.ts";
import { socketpair } from "../sockets.ts";
import type { Transport } from "../transports.ts";

const loop = getEventLoop();

class MyProtocol extends Protocol {
  transport?: Transport;

  override connectionMade(transport: Transport): void {
    this.transport = transport;
  }

  override dataReceived(data: Uint8Array): void {
    // Receive the data, then close the transport.
    console.log("Received:", new TextDecoder().decode(data));
    this.transport!.close();
  }

  override connectionLost(): void {
    // The socket was closed: stop the event loop.
    loop.stop();
  }
}

// A pair of connected sockets.
const [rsock, wsock] = socketpair();
// Register the socket that waits for data.
const connectCoro = loop.createConnection(() => new MyProtocol(), {
  sock: rsock,
});
const [_transport, _protocol] = await loop.runUntilComplete(connectCoro);
// Write into the other socket of the pair.
loop.callSoon(() => wsock.send(new TextEncoder().encode("hello world.")));
// Run the event loop.
await loop.runForever();
rsock.close();
wsock.close();
loop.close();
