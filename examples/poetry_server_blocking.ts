/**
 * Seed S002-b (seeds/002_6b9579778871f933.txt): the Slow Poetry Server,
 * "blocking edition". It serves one client at a time, sending the poem
 * `--num-bytes` bytes every `--delay` seconds.
 *
 * The Python it ports, in short:
 *
 * ```python
 * sock = socket.socket()
 * sock.bind((iface, port or 0))
 * sock.listen(5)
 * print('Serving %s on port %s.' % (poetry_file, sock.getsockname()[1]))
 * while True:
 *     sock, addr = listen_socket.accept()
 *     print('Somebody at %s wants poetry!' % (addr,))
 *     # send_poetry: read num_bytes, print('Sending %d bytes'), sendall,
 *     # time.sleep(delay); at the end print('sending complete')
 * ```
 *
 * JavaScript cannot block, so the blocking calls become the event loop's
 * `sock*` functions: `accept()` is `await loop.sockAccept(sock)`,
 * `sendall()` is `await loop.sockSendAll(sock, data)`, `time.sleep()` is an
 * awaited timer. The program still serves one client at a time, as the
 * blocking original does.
 *
 * Run: `deno run -A examples/poetry_server_blocking.ts [--port 0]
 * [--iface 127.0.0.1] [--delay 0.1] [--num-bytes 20] [poem.txt]`, then
 * `deno run -A examples/poetry_client_blocking.ts PORT`. Ctrl+C stops it.
 *
 * @module
 */

import { getEventLoop } from "../events.ts";
import { type Socket, socket } from "../sockets.ts";
import { addrTuple } from "./_cli.ts";
import { parseServerArgs, sleep } from "./_poetry.ts";

const loop = getEventLoop();

/** Sends some poetry slowly down the socket; `"end"` or `"error"`. */
async function sendPoetry(
  sock: Socket,
  poetryFile: string,
  numBytes: number,
  delay: number,
): Promise<"end" | "error"> {
  using inputf = await Deno.open(poetryFile, { read: true });
  const buffer = new Uint8Array(numBytes);
  for (;;) {
    const n = await inputf.read(buffer);
    if (n === null) {
      sock.close();
      return "end";
    }
    console.log(`Sending ${n} bytes`);
    try {
      await loop.sockSendAll(sock, buffer.subarray(0, n));
    } catch {
      sock.close();
      return "error";
    }
    await sleep(delay);
  }
}

async function serve(
  listenSocket: Socket,
  poetryFile: string,
  numBytes: number,
  delay: number,
): Promise<void> {
  for (;;) {
    let sock: Socket;
    let addr: Deno.Addr;
    try {
      [sock, addr] = await loop.sockAccept(listenSocket);
    } catch (error) {
      if (error instanceof Deno.errors.BadResource) return; // Ctrl+C
      throw error;
    }
    console.log(`Somebody at ${addrTuple(addr)} wants poetry!`);
    const result = await sendPoetry(sock, poetryFile, numBytes, delay);
    if (result === "end") console.log("sending complete");
    else console.log("error, sending stopped");
  }
}

async function main(): Promise<void> {
  const { poetryFile, port, iface, numBytes, delay } = parseServerArgs();
  const sock = socket();
  sock.bind({ hostname: iface, port });
  sock.listen(5);
  const { port: bound } = sock.getSockName() as Deno.NetAddr;
  console.log(`Serving ${poetryFile} on port ${bound}.`);
  // Ctrl+C: closing the listening socket ends the pending sockAccept.
  loop.addSignalHandler("SIGINT", () => sock.close());
  loop.addSignalHandler("SIGTERM", () => sock.close());
  await serve(sock, poetryFile, numBytes, delay);
  sock.close();
  loop.close();
}

if (import.meta.main) await main();
