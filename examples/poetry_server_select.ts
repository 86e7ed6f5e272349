/**
 * Seed S002-c (seeds/002_6b9579778871f933.txt), server half: the slow
 * poetry server written as a select loop with `selectors.DefaultSelector`:
 * it serves many clients at once from one loop.
 *
 * The Python it ports, in short:
 *
 * ```python
 * sel = selectors.DefaultSelector()
 * def send_poetry(sock, poetry_file, num_bytes, delay, inputf):
 *     bytes = inputf.read(num_bytes)
 *     if not bytes:
 *         sel.unregister(sock); sock.close(); inputf.close()
 *         print('sending complete'); return True
 *     sock.sendall(bytes)      # (error: 'some error, sending stoped')
 *     time.sleep(delay)
 * def serve(listen_socket, poetry_file, num_bytes, delay):
 *     sock, addr = listen_socket.accept()
 *     print('Somebody at %s wants poetry!' % (addr,))
 *     sock.setblocking(False)
 *     inputf = open(poetry_file, 'rb')
 *     sel.register(sock, selectors.EVENT_WRITE,
 *                  data={'callback': send_poetry, 'args': [...]})
 * sock.listen(100); sock.setblocking(False)
 * sel.register(sock, selectors.EVENT_READ, data={'callback': serve, ...})
 * while True:
 *     for key, mask in sel.select():
 *         key.data['callback'](key.fileobj, *key.data['args'])
 * ```
 *
 * Differences: `select()` is awaited. `time.sleep(delay)` would freeze the
 * whole loop (it does in the seed); here a socket that just sent rests:
 * it is unregistered until its time comes, and `select()` gets a timeout
 * so it wakes for it, the classic select-loop timer. `sendall()` on a
 * non-blocking socket is `Socket.sendAll()`, which never sends part of the
 * data (the socket is writable, so it takes it all). Ctrl+C stops it.
 *
 * Run: `deno run -A examples/poetry_server_select.ts [--port 0]
 * [--iface 127.0.0.1] [--delay 0.1] [--num-bytes 20] [poem.txt]`
 *
 * @module
 */

import { DefaultSelector, EVENT_READ, EVENT_WRITE } from "../selectors.ts";
import { type Socket, socket } from "../sockets.ts";
import { addrTuple, onInterrupt } from "./_cli.ts";
import { parseServerArgs } from "./_poetry.ts";

const sel = new DefaultSelector();

interface KeyData {
  callback: (sock: Socket, ...args: never[]) => void;
  args: unknown[];
}

/** Sockets resting after a send (the seed's `time.sleep(delay)`). */
const resting = new Map<Socket, { until: number; data: KeyData }>();

function sendPoetry(
  sock: Socket,
  _poetryFile: string,
  numBytes: number,
  delay: number,
  inputf: Deno.FsFile,
): void {
  const buffer = new Uint8Array(numBytes);
  const n = inputf.readSync(buffer);
  if (n === null) {
    sel.unregister(sock);
    sock.close();
    inputf.close();
    console.log("sending complete");
    return;
  }
  try {
    sock.sendAll(buffer.subarray(0, n));
  } catch {
    sel.unregister(sock);
    sock.close();
    inputf.close();
    console.log("some error, sending stopped");
    return;
  }
  // time.sleep(delay), without freezing the other clients.
  const data = sel.unregister(sock).data as KeyData;
  resting.set(sock, { until: performance.now() + delay * 1000, data });
}

function serve(
  listenSocket: Socket,
  poetryFile: string,
  numBytes: number,
  delay: number,
): void {
  const [sock, addr] = listenSocket.accept();
  console.log(`Somebody at ${addrTuple(addr)} wants poetry!`);
  sock.setBlocking(false);
  const inputf = Deno.openSync(poetryFile, { read: true });
  sel.register(sock, EVENT_WRITE, {
    callback: sendPoetry,
    args: [poetryFile, numBytes, delay, inputf],
  });
}

async function main(): Promise<void> {
  const { poetryFile, port, iface, numBytes, delay } = parseServerArgs();
  const sock = socket();
  sock.bind({ hostname: iface, port });
  sock.listen(100);
  sock.setBlocking(false);
  const { port: bound } = sock.getSockName() as Deno.NetAddr;
  console.log(`Serving ${poetryFile} on port ${bound}.`);

  sel.register(sock, EVENT_READ, {
    callback: serve,
    args: [poetryFile, numBytes, delay],
  });

  let running = true;
  using _interrupt = onInterrupt(() => running = false); // Ctrl+C
  while (running) {
    // Wake up for the next resting socket, and at least every 100 ms to
    // notice Ctrl+C.
    let timeout = 100;
    for (const { until } of resting.values()) {
      timeout = Math.min(timeout, Math.max(0, until - performance.now()));
    }
    const events = await sel.select(timeout);
    for (const [key] of events) {
      const data = key.data as KeyData;
      (data.callback as (sock: Socket, ...args: unknown[]) => void)(
        key.fileobj as Socket,
        ...data.args,
      );
    }
    const now = performance.now();
    for (const [resting_sock, { until, data }] of resting) {
      if (until > now) continue;
      resting.delete(resting_sock);
      sel.register(resting_sock, EVENT_WRITE, data);
    }
  }
  for (const key of sel.getMap().values()) (key.fileobj as Socket).close();
  for (const resting_sock of resting.keys()) resting_sock.close();
  sel.close();
  sock.close();
}

if (import.meta.main) await main();
