/**
 * Seed S002-e (seeds/002_6b9579778871f933.txt), server half: the
 * event-driven slow poetry server. The event loop calls `serve` when the
 * listening socket is readable (`add_reader`) and `send_poetry` when a
 * client socket is writable (`add_writer`).
 *
 * The Python it ports, in short:
 *
 * ```python
 * def send_poetry(eventloop, sock, poetry_file, num_bytes, delay, inputf):
 *     bytes = inputf.read(num_bytes)
 *     if not bytes:
 *         eventloop.remove_writer(sock); sock.close(); inputf.close()
 *         print('sending complete'); return True
 *     sock.sendall(bytes)      # (error: 'some error, sending stoped')
 *     time.sleep(delay)
 * def serve(eventloop, listen_socket, poetry_file, num_bytes, delay):
 *     sock, addr = listen_socket.accept()
 *     print('Somebody at %s wants poetry!' % (addr,))
 *     sock.setblocking(False)
 *     inputf = open(poetry_file, 'rb')
 *     eventloop.add_writer(sock, send_poetry, eventloop, sock, ...)
 * eventloop = asyncio.get_event_loop()
 * eventloop.add_reader(sock, serve, eventloop, sock, poetry_file, num_bytes, delay)
 * try:
 *     eventloop.run_forever()
 * finally:
 *     eventloop.close()
 * ```
 *
 * Differences: `time.sleep(delay)` would freeze the loop (it does in the
 * seed); here the writer is removed and put back `delay` seconds later
 * with `loop.callLater`. `run_forever()` is awaited; Ctrl+C calls
 * `loop.stop()` through `loop.addSignalHandler`.
 *
 * Run: `deno run -A examples/poetry_server_loop.ts [--port 0]
 * [--iface 127.0.0.1] [--delay 0.1] [--num-bytes 20] [poem.txt]`
 *
 * @module
 */

import { type EventLoop, getEventLoop } from "../events.ts";
import { type Socket, socket } from "../sockets.ts";
import { addrTuple } from "./_cli.ts";
import { parseServerArgs } from "./_poetry.ts";

const clients = new Set<Socket>();

function sendPoetry(
  eventloop: EventLoop,
  sock: Socket,
  poetryFile: string,
  numBytes: number,
  delay: number,
  inputf: Deno.FsFile,
): void {
  const buffer = new Uint8Array(numBytes);
  const n = inputf.readSync(buffer);
  if (n === null) {
    eventloop.removeWriter(sock);
    sock.close();
    inputf.close();
    clients.delete(sock);
    console.log("sending complete");
    return;
  }
  try {
    sock.sendAll(buffer.subarray(0, n));
  } catch {
    eventloop.removeWriter(sock);
    sock.close();
    inputf.close();
    clients.delete(sock);
    console.log("some error, sending stopped");
    return;
  }
  // time.sleep(delay), without freezing the loop: rest, then write again.
  eventloop.removeWriter(sock);
  eventloop.callLater(delay * 1000, () => {
    if (sock.fileno() === -1) return;
    eventloop.addWriter(
      sock,
      sendPoetry,
      eventloop,
      sock,
      poetryFile,
      numBytes,
      delay,
      inputf,
    );
  });
}

function serve(
  eventloop: EventLoop,
  listenSocket: Socket,
  poetryFile: string,
  numBytes: number,
  delay: number,
): void {
  const [sock, addr] = listenSocket.accept();
  console.log(`Somebody at ${addrTuple(addr)} wants poetry!`);
  sock.setBlocking(false);
  clients.add(sock);
  const inputf = Deno.openSync(poetryFile, { read: true });
  eventloop.addWriter(
    sock,
    sendPoetry,
    eventloop,
    sock,
    poetryFile,
    numBytes,
    delay,
    inputf,
  );
}

async function main(): Promise<void> {
  const { poetryFile, port, iface, numBytes, delay } = parseServerArgs();
  const sock = socket();
  sock.bind({ hostname: iface, port });
  sock.listen(100);
  sock.setBlocking(false);
  const { port: bound } = sock.getSockName() as Deno.NetAddr;
  console.log(`Serving ${poetryFile} on port ${bound}.`);

  const eventloop = getEventLoop();
  eventloop.addReader(
    sock,
    serve,
    eventloop,
    sock,
    poetryFile,
    numBytes,
    delay,
  );
  eventloop.addSignalHandler("SIGINT", () => eventloop.stop());
  eventloop.addSignalHandler("SIGTERM", () => eventloop.stop());
  try {
    await eventloop.runForever();
  } finally {
    eventloop.close();
  }
  for (const client of clients) client.close();
  sock.close();
}

if (import.meta.main) await main();
