/**
 * Seed S004-b (seeds/004_0130fc70258334b4.txt): a TCP server that answers
 * every message with "thank you !" until the client sends `exit`, one
 * thread per client in the seed, one task per client here.
 *
 * The Python it ports, in short:
 *
 * ```python
 * tcp_server_socket = socket(AF_INET, SOCK_STREAM)
 * tcp_server_socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, True)
 * tcp_server_socket.bind(('', 7788))
 * tcp_server_socket.listen(128)
 * while True:
 *     client_socket, clientAddr = tcp_server_socket.accept()
 *     t = threading.Thread(target=tcplink, args=(client_socket, clientAddr))
 *     t.start()
 *
 * def tcplink(client_socket, clientAddr):
 *     print('Accept new connection from %s:%s...' % clientAddr)
 *     while True:
 *         recv_data = client_socket.recv(1024)
 *         print('接收到的数据为:', recv_data.decode('utf8'))
 *         if recv_data == 'exit' or not recv_data:
 *             break
 *         client_socket.send("thank you !".encode('utf8'))
 *     client_socket.close()
 * ```
 *
 * Differences: threads become `loop.createTask()` tasks over the loop's
 * `sock*` functions; the seed's indentation slips (it closes the client
 * after the first reply, and compares bytes with `'exit'`) are fixed as
 * intended; it listens on `--host` (default 127.0.0.1) and prints a ready
 * line (`Serving on 127.0.0.1:PORT`); Ctrl+C stops it.
 *
 * Run: `deno run -A examples/socket_tcp_server.ts [--port 7788]`, then
 * `deno run -A examples/socket_tcp_client.ts --port 7788`.
 *
 * @module
 */

import { getEventLoop } from "../events.ts";
import {
  AF_INET,
  SO_REUSEADDR,
  SOCK_STREAM,
  type Socket,
  socket,
  SOL_SOCKET,
} from "../sockets.ts";
import { serverFlags } from "./_cli.ts";

const loop = getEventLoop();
const clients = new Set<Socket>();

async function tcplink(clientSocket: Socket, clientAddr: Deno.Addr) {
  const { hostname, port } = clientAddr as Deno.NetAddr;
  console.log(`Accept new connection from ${hostname}:${port}...`);
  clients.add(clientSocket);
  try {
    for (;;) {
      const recvData = await loop.sockRecv(clientSocket, 1024);
      const text = new TextDecoder().decode(recvData);
      console.log("Received:", text);
      if (text === "exit" || recvData.length === 0) break;
      await loop.sockSendAll(
        clientSocket,
        new TextEncoder().encode("thank you !"),
      );
    }
  } catch (error) {
    if (!(error instanceof Deno.errors.BadResource)) console.error(`${error}`);
  } finally {
    clientSocket.close();
    clients.delete(clientSocket);
  }
}

async function main(): Promise<void> {
  const { host, port } = serverFlags(7788);
  const tcpServerSocket = socket(AF_INET, SOCK_STREAM);
  tcpServerSocket.setsockopt(SOL_SOCKET, SO_REUSEADDR, true);
  tcpServerSocket.bind({ hostname: host, port });
  tcpServerSocket.listen(128);
  const bound = tcpServerSocket.getSockName() as Deno.NetAddr;
  console.log(`Serving on ${bound.hostname}:${bound.port}`);
  loop.addSignalHandler("SIGINT", () => tcpServerSocket.close());
  loop.addSignalHandler("SIGTERM", () => tcpServerSocket.close());
  for (;;) {
    let clientSocket: Socket;
    let clientAddr: Deno.Addr;
    try {
      [clientSocket, clientAddr] = await loop.sockAccept(tcpServerSocket);
    } catch (error) {
      if (error instanceof Deno.errors.BadResource) break; // Ctrl+C
      throw error;
    }
    loop.createTask(tcplink(clientSocket, clientAddr));
  }
  for (const client of clients) client.close();
  loop.close();
}

if (import.meta.main) await main();
