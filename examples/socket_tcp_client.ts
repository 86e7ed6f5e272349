/**
 * Seed S004-a (seeds/004_0130fc70258334b4.txt): a TCP client that connects,
 * sends one message, prints the reply (up to 1024 bytes) and closes.
 *
 * The Python it ports:
 *
 * ```python
 * tcp_client_socket = socket(AF_INET, SOCK_STREAM)
 * server_ip = input("请输入服务器ip:")
 * server_port = int(input("请输入服务器port:"))
 * tcp_client_socket.connect((server_ip, server_port))
 * send_data = input("请输入要发送的数据：")
 * tcp_client_socket.send(send_data.encode("utf8"))
 * recvData = tcp_client_socket.recv(1024)
 * recvContent = recvData.decode('utf8')
 * print(recvContent)
 * tcp_client_socket.close()
 * ```
 *
 * Differences: the server address comes from `--host`/`--port` and the
 * message from `--message` (or a line of stdin, as `input()`); the blocking
 * `connect`/`send`/`recv` are the loop's `sockConnect`/`sockSendAll`/
 * `sockRecv`. With `--exit` it also sends `exit` afterwards, which ends
 * the session of `socket_tcp_server.ts`.
 *
 * Run: `deno run -A examples/socket_tcp_client.ts --port 7788 --message hi`
 *
 * @module
 */

import { getEventLoop } from "../events.ts";
import { AF_INET, SOCK_STREAM, socket } from "../sockets.ts";
import { clientFlags, input } from "./_cli.ts";

async function main(): Promise<void> {
  const { host, port, message, exit } = clientFlags(7788, {
    message: { type: "string" },
    exit: { type: "boolean", default: false },
  });
  const loop = getEventLoop();
  const tcpClientSocket = socket(AF_INET, SOCK_STREAM);
  await loop.sockConnect(tcpClientSocket, { hostname: host, port });
  const sendData = message ?? await input() ?? "";
  await loop.sockSendAll(tcpClientSocket, new TextEncoder().encode(sendData));
  const recvData = await loop.sockRecv(tcpClientSocket, 1024);
  const recvContent = new TextDecoder().decode(recvData);
  console.log(recvContent);
  if (exit) {
    await loop.sockSendAll(tcpClientSocket, new TextEncoder().encode("exit"));
    // The server closes after `exit`: wait for its EOF.
    await loop.sockRecv(tcpClientSocket, 1024);
  }
  tcpClientSocket.close();
  loop.close();
}

if (import.meta.main) await main();
