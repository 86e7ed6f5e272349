/**
 * Seed S001-c (seeds/001_a67efe0c9151b4f1.txt), client half: the Streams
 * echo client, `asyncio.open_connection`, `drain()`, `close()` and
 * `wait_closed()`.
 *
 * The Python it ports:
 *
 * ```python
 * async def tcp_echo_client(message):
 *     reader, writer = await asyncio.open_connection('127.0.0.1', 8888)
 *     print(f'Send: {message!r}')
 *     writer.write(message.encode())
 *     await writer.drain()
 *     data = await reader.read(100)
 *     print(f'Received: {data.decode()!r}')
 *     print('Close the connection')
 *     writer.close()
 *     await writer.wait_closed()
 *
 * asyncio.run(tcp_echo_client('Hello World!'))
 * ```
 *
 * Run against `examples/streams_echo_server.ts`:
 * `deno run -A examples/streams_echo_client.ts [--host 127.0.0.1] [--port 8888] [--message "Hello World!"]`.
 * It prints:
 *
 * ```text
 * Send: 'Hello World!'
 * Received: 'Hello World!'
 * Close the connection
 * ```
 *
 * @module
 */

import { openConnection } from "../streams.ts";
import { clientFlags, repr } from "./_cli.ts";

async function tcpEchoClient(
  message: string,
  host: string,
  port: number,
): Promise<void> {
  const [reader, writer] = await openConnection({ hostname: host, port });

  console.log(`Send: ${repr(message)}`);
  writer.write(new TextEncoder().encode(message));
  await writer.drain();

  const data = await reader.read(100);
  console.log(`Received: ${repr(new TextDecoder().decode(data))}`);

  console.log("Close the connection");
  writer.close();
  await writer.waitClosed();
}

if (import.meta.main) {
  const { host, port, message } = clientFlags(8888, {
    message: { type: "string", default: "Hello World!" },
  });
  await tcpEchoClient(message, host, port);
}
