/**
 * Seed S001-a (seeds/001_a67efe0c9151b4f1.txt), client half: connects with
 * `sock_connect`, says hello, then sends each line typed on stdin and
 * prints the reply, until `quit`.
 *
 * The Python it ports, in short:
 *
 * ```python
 * async def request():
 *     loop = asyncio.get_event_loop()
 *     client = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
 *     await loop.sock_connect(client, ("127.0.0.1", 9006))
 *     await loop.sock_sendall(client, "ack from client connect success".encode())
 *     result = await loop.sock_recv(client, 1024)
 *     print(result.decode())
 *     while True:
 *         send_message = input()
 *         await loop.sock_sendall(client, send_message.encode())
 *         if send_message == "quit":
 *             break
 *         receive_message = await loop.sock_recv(client, 1024)
 *         print("got message from server: ", receive_message.decode())
 *     client.close()
 *
 * asyncio.run(request())
 * ```
 *
 * Differences: `input()` reads stdin line by line without blocking the
 * loop; the end of stdin counts as `quit`.
 *
 * Run: `deno run -A examples/sock_client.ts [--host 127.0.0.1]
 * [--port 9006]`, then type lines (`quit` ends).
 *
 * @module
 */

import { getEventLoop } from "../events.ts";
import { AF_INET, SOCK_STREAM, socket } from "../sockets.ts";
import { clientFlags, input } from "./_cli.ts";

async function request(host: string, port: number): Promise<void> {
  const loop = getEventLoop();
  const encoder = new TextEncoder();
  const client = socket(AF_INET, SOCK_STREAM);
  await loop.sockConnect(client, { hostname: host, port });
  await loop.sockSendAll(
    client,
    encoder.encode("ack from client connect success"),
  );
  const result = await loop.sockRecv(client, 1024);
  console.log(new TextDecoder().decode(result));
  for (;;) {
    const sendMessage = await input() ?? "quit";
    await loop.sockSendAll(client, encoder.encode(sendMessage));
    if (sendMessage === "quit") break;
    const receiveMessage = await loop.sockRecv(client, 1024);
    console.log(
      "got message from server: ",
      new TextDecoder().decode(receiveMessage),
    );
  }
  client.close();
}

if (import.meta.main) {
  const { host, port } = clientFlags(9006);
  await request(host, port);
}
