/**
 * Seed S001-a (seeds/001_a67efe0c9151b4f1.txt), server half: a TCP server
 * on the event loop's low-level socket functions (`sock_accept`,
 * `sock_recv`, `sock_sendall`), one task per client, until the client
 * says `quit`.
 *
 * The Python it ports, in short:
 *
 * ```python
 * async def handle_client(client, addr):
 *     loop = asyncio.get_event_loop()
 *     result = None
 *     while result != "quit":
 *         result = await loop.sock_recv(client, 1024)
 *         result = result.decode()
 *         print("got from {0}: {1}".format(addr, result))
 *         response = "got message"
 *         await loop.sock_sendall(client, response.encode())
 *     client.close()
 *
 * async def run_server():
 *     server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
 *     server.bind(("", port))
 *     server.listen(5)
 *     server.setblocking(False)
 *     loop = asyncio.get_event_loop()
 *     while True:
 *         client, addr = await loop.sock_accept(server)
 *         print("connected to client: ", addr)
 *         loop.create_task(handle_client(client, addr))
 *
 * asyncio.run(run_server())
 * ```
 *
 * Differences: it listens on `--host` (default 127.0.0.1) rather than all
 * interfaces, and prints a ready line (`Serving on 127.0.0.1:PORT`); a
 * client that disconnects without `quit` ends its task (the seed would
 * print empty messages forever); Ctrl+C closes the server socket, which
 * ends the accept loop.
 *
 * Run: `deno run -A examples/sock_server.ts [--port 9006]`, then
 * `deno run -A examples/sock_client.ts --port 9006`.
 *
 * @module
 */

import { getEventLoop } from "../events.ts";
import { AF_INET, SOCK_STREAM, type Socket, socket } from "../sockets.ts";
import { addrTuple, serverFlags } from "./_cli.ts";

const clients = new Set<Socket>();

async function handleClient(client: Socket, addr: Deno.Addr): Promise<void> {
  const loop = getEventLoop();
  clients.add(client);
  try {
    let result: string | null = null;
    while (result !== "quit") {
      const data = await loop.sockRecv(client, 1024);
      if (data.length === 0) break; // The client went away.
      result = new TextDecoder().decode(data);
      console.log(`got from ${addrTuple(addr)}: ${result}`);
      const response = "got message";
      await loop.sockSendAll(client, new TextEncoder().encode(response));
    }
  } catch (error) {
    // Closed by Ctrl+C, or reset by the client.
    if (!(error instanceof Deno.errors.BadResource)) {
      console.error(`client ${addrTuple(addr)}: ${error}`);
    }
  } finally {
    client.close();
    clients.delete(client);
  }
}

async function runServer(host: string, port: number): Promise<void> {
  const server = socket(AF_INET, SOCK_STREAM);
  server.bind({ hostname: host, port });
  server.listen(5);
  server.setBlocking(false);
  const bound = server.getSockName() as Deno.NetAddr;
  console.log(`Serving on ${bound.hostname}:${bound.port}`);

  const loop = getEventLoop();
  loop.addSignalHandler("SIGINT", () => server.close());
  loop.addSignalHandler("SIGTERM", () => server.close());
  for (;;) {
    let client: Socket;
    let addr: Deno.Addr;
    try {
      [client, addr] = await loop.sockAccept(server);
    } catch (error) {
      if (error instanceof Deno.errors.BadResource) break; // Ctrl+C
      throw error;
    }
    console.log("connected to client: ", addrTuple(addr));
    loop.createTask(handleClient(client, addr));
  }
  for (const client of clients) client.close();
  loop.removeSignalHandler("SIGINT");
  loop.removeSignalHandler("SIGTERM");
}

if (import.meta.main) {
  const { host, port } = serverFlags(9006);
  await runServer(host, port);
}
