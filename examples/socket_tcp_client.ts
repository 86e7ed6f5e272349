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

import { parseArgs } from "node:util";
import { getEventLoop } from "../events.ts";
import { AF_INET, SOCK_STREAM, socket } from "../sockets.ts";

/** One line of stdin, as Python's `input()`. */
async function input(): Promise<string> {
  const decoder = new TextDecoder();
  let line = "";
  const reader = Deno.stdin.readable.getReader();
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      line += decoder.decode(value, { stream: true });
      if (line.includes("\n")) break;
    }
  } finally {
    reader.releaseLock();
  }
  return line.split("\n")[0].replace(/\r$/, "");
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      host: { type: "string", default: "127.0.0.1" },
      port: { type: "string", default: "7788" },
      message: { type: "string" },
      exit: { type: "boolean", default: false },
    },
  });
  const loop = getEventLoop();
  const tcpClientSocket = socket(AF_INET, SOCK_STREAM);
  await loop.sockConnect(tcpClientSocket, {
    hostname: values.host,
    port: Number(values.port),
  });
  const sendData = values.message ?? await input();
  await loop.sockSendAll(tcpClientSocket, new TextEncoder().encode(sendData));
  const recvData = await loop.sockRecv(tcpClientSocket, 1024);
  const recvContent = new TextDecoder().decode(recvData);
  console.log(recvContent);
  if (values.exit) {
    await loop.sockSendAll(tcpClientSocket, new TextEncoder().encode("exit"));
    // The server closes after `exit`: wait for its EOF.
    await loop.sockRecv(tcpClientSocket, 1024);
  }
  tcpClientSocket.close();
  loop.close();
}

if (import.meta.main) await main();
