/**
 * Seed S004-c (seeds/004_0130fc70258334b4.txt): the three UDP programs of
 * the seed, run together on the loopback interface: a bound receiver, a
 * sender, and a sender that waits for the answer with `recvfrom`.
 *
 * The Python it ports, in short:
 *
 * ```python
 * # 1. send
 * udp_socket = socket(AF_INET, SOCK_DGRAM)
 * udp_socket.sendto(send_data.encode('utf-8'), dest_addr)
 * udp_socket.close()
 * # 2. send, then wait for the answer
 * udp_socket.sendto(send_data.encode('utf-8'), dest_addr)
 * recv_data = udp_socket.recvfrom(1024)
 * print(recv_data[0].decode('gbk'))
 * print(recv_data[1])
 * # 3. bound receiver
 * udp_socket.bind(('', 7788))
 * recv_data = udp_socket.recvfrom(1024)
 * print(recv_data[0].decode('gbk'))
 * ```
 *
 * Differences: the receiver binds 127.0.0.1 on `--port` (default 0, a
 * free port) and answers the second sender so that its `recvfrom`
 * returns; the blocking `recvfrom` is `await loop.sockRecvFrom()`; text is
 * UTF-8 (the seed decodes GBK); the messages come from `--message`.
 * Datagram sockets need `--unstable-net` (set in deno.json).
 *
 * Run: `deno run -A --unstable-net examples/socket_udp.ts [--port 0]
 * [--message hello]`
 *
 * @module
 */

import { getEventLoop } from "../events.ts";
import { AF_INET, SOCK_DGRAM, socket } from "../sockets.ts";
import { addrTuple, parseFlags, parsePort } from "./_cli.ts";

async function main(): Promise<void> {
  const values = parseFlags({
    port: { type: "string", default: "0" },
    message: { type: "string", default: "hello" },
  });
  const loop = getEventLoop();
  const encoder = new TextEncoder();
  const decoder = new TextDecoder();

  // 3. The bound receiver.
  const receiver = socket(AF_INET, SOCK_DGRAM);
  receiver.bind({ hostname: "127.0.0.1", port: parsePort(values.port) });
  const destAddr = receiver.getSockName() as Deno.NetAddr;
  console.log(`receiver bound to ${addrTuple(destAddr)}`);

  // 1. Send one datagram and close.
  {
    const udpSocket = socket(AF_INET, SOCK_DGRAM);
    udpSocket.sendTo(encoder.encode(values.message), destAddr);
    udpSocket.close();
  }
  const [data1, from1] = await loop.sockRecvFrom(receiver, 1024);
  console.log(`receiver got: ${decoder.decode(data1)}`);
  console.log(`from a socket at port ${(from1 as Deno.NetAddr).port > 0}`);

  // 2. Send, then wait for the answer with recvfrom.
  const udpSocket = socket(AF_INET, SOCK_DGRAM);
  udpSocket.sendTo(encoder.encode(`${values.message} again`), destAddr);
  const [data2, from2] = await loop.sockRecvFrom(receiver, 1024);
  console.log(`receiver got: ${decoder.decode(data2)}`);
  await loop.sockSendTo(
    receiver,
    encoder.encode("answer"),
    from2 as Deno.NetAddr,
  );
  const recvData = await loop.sockRecvFrom(udpSocket, 1024);
  console.log(decoder.decode(recvData[0]));
  console.log(addrTuple(recvData[1]));
  udpSocket.close();
  receiver.close();
  loop.close();
}

if (import.meta.main) await main();
