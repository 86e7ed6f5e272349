/**
 * Seed S004-h (seeds/004_0130fc70258334b4.txt), server half: the chat
 * server that answers from a reply table, built on `asyncio.start_server`.
 *
 * The Python it ports (generator-based coroutines in the seed):
 *
 * ```python
 * message = {
 *     'Hello': 'nihao',
 *     'How are you?': 'Fine, thank you.',
 *     'Did you have breakfast?': 'Yes',
 *     'Bye': 'Bye'
 * }
 *
 * @asyncio.coroutine
 * def handle_echo(reader, writer):
 *     while True:
 *         data = yield from reader.read(100)
 *         message = data.decode()
 *         addr = writer.get_extra_info('peername')
 *         print("Reaceived %r from %r" % (message, addr))
 *         messageReply = message.get(message, 'Sorry')
 *         print("Send: %r" % messageReply)
 *         writer.write(messageReply.encode())
 *         yield from writer.drain()
 *         if messageReply == 'Bye':
 *             break
 *     print("Close the client socket")
 *     writer.close()
 *
 * coro = asyncio.start_server(handle_echo, '10.2.1.2', 8888, loop=loop)
 * server = loop.run_until_complete(coro)
 * print('Serving on {}'.format(server.sockets[0].getsockname()))
 * try:
 *     loop.run_forever()
 * except KeyboardInterrupt:
 *     pass
 * server.close()
 * loop.run_until_complete(server.wait_closed())
 * ```
 *
 * The printed lines are the seed's, its spelling included ("Reaceived").
 * Fixes to the seed's slips: the reply table and the received text have
 * different names (the seed shadows the table), the closing lines belong to
 * the handler, and a client that leaves without "Bye" ends the loop instead
 * of spinning on EOF. Differences: it listens on 127.0.0.1; addresses print
 * as `host:port`; on Ctrl+C or SIGTERM the server stops listening, closes
 * the chats still open and waits for them.
 *
 * Run: `deno run -A examples/chat_server.ts [--host 127.0.0.1] [--port 8888]`,
 * then `deno run -A examples/chat_client.ts` in another terminal.
 *
 * @module
 */

import {
  startServer,
  type StreamReader,
  type StreamWriter,
} from "../streams.ts";
import { formatAddr, interrupted, repr, serverFlags } from "./_cli.ts";

const replies: Record<string, string> = {
  "Hello": "nihao",
  "How are you?": "Fine, thank you.",
  "Did you have breakfast?": "Yes",
  "Bye": "Bye",
};

async function handleEcho(
  reader: StreamReader,
  writer: StreamWriter,
): Promise<void> {
  while (true) {
    const data = await reader.read(100);
    if (data.length === 0) break; // The client left without "Bye".
    const message = new TextDecoder().decode(data);
    const addr = writer.getExtraInfo("peername");
    console.log(`Reaceived ${repr(message)} from ${formatAddr(addr)}`);

    const messageReply = replies[message] ?? "Sorry";
    console.log(`Send: ${repr(messageReply)}`);
    writer.write(new TextEncoder().encode(messageReply));
    await writer.drain();
    if (messageReply === "Bye") break;
  }
  console.log("Close the client socket");
  writer.close();
}

async function main(): Promise<void> {
  const { host, port } = serverFlags(8888);
  const server = await startServer(handleEcho, { hostname: host, port });
  console.log(`Serving on ${formatAddr(server.sockets[0].getSockName())}`);

  // Python's run_forever() ends on Ctrl+C (KeyboardInterrupt).
  await interrupted();

  // Close the server.
  server.close();
  server.closeClients();
  await server.waitClosed();
}

if (import.meta.main) await main();
