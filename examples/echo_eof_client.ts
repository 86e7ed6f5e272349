/**
 * Seed S004-e (seeds/004_0130fc70258334b4.txt), client half: a Protocol
 * client that writes several messages, then half-closes with `write_eof`,
 * and stops the loop in `connection_lost`.
 *
 * The Python it ports, in short:
 *
 * ```python
 * class EchoClientProtocol(asyncio.Protocol):
 *     def connection_made(self, transport):
 *         for m in message:
 *             transport.write(m.encode())
 *             print('Data sent: {!r}'.format(m))
 *             time.sleep(1)
 *         transport.write_eof()          # no more data from us
 *     def data_received(self, data):
 *         print('Data received:{!r}'.format(data.decode()))
 *     def connection_lost(self, exc):
 *         print('The server closed the connection')
 *         print('Stop the event loop')
 *         self.loop.stop()
 *
 * message = ['Hello word!', '你好']
 * loop.run_until_complete(loop.create_connection(
 *     lambda: EchoClientProtocol(message, loop), '127.0.0.1', 8888))
 * loop.run_forever()
 * loop.close()
 * ```
 *
 * How it maps:
 * - `self.loop.stop()` in `connection_lost` + `loop.run_forever()` in the
 *   main program: Deno's event loop is never stopped by hand, so the
 *   protocol resolves a future (`loop.createFuture()`) and `main()` awaits
 *   it. Awaiting it is "running the loop until stop()".
 * - `time.sleep(1)` between messages: JavaScript cannot block inside
 *   `connectionMade`, so the messages go out from a task started there.
 *   Each message waits for its echo and then `--delay` milliseconds
 *   (default 1000, the seed's one second) before the next one. Waiting for
 *   the echo keeps one message per `dataReceived` on both sides; the price
 *   is that each `Data received` line comes right after its `Data sent`
 *   line, where the blocking Python printed both sends first.
 * - `{!r}` is reproduced by a small `repr()`.
 *
 * Run against `examples/echo_eof_server.ts`:
 * `deno run -A examples/echo_eof_client.ts [--host 127.0.0.1] [--port 8888] [--delay 1000]`.
 * It prints:
 *
 * ```text
 * Data sent: 'Hello word!'
 * Data received:'Hello word!'
 * Data sent: '你好'
 * Data received:'你好'
 * The server closed the connection
 * Stop the event loop
 * ```
 *
 * @module
 */

import { Protocol } from "../protocols.ts";
import { createConnection, type Transport } from "../transports.ts";
import { type Future, getEventLoop } from "../events.ts";
import { clientFlags, repr, usageError } from "./_cli.ts";

function parseFlags(): { host: string; port: number; delay: number } {
  const { host, port, delay } = clientFlags(8888, {
    delay: { type: "string", default: "1000" },
  });
  const ms = Number(delay);
  if (!Number.isFinite(ms) || ms < 0) {
    usageError("--delay must be a number of milliseconds >= 0");
  }
  return { host, port, delay: ms };
}

class EchoClientProtocol extends Protocol {
  #messages: string[];
  #stopped: Future<void>;
  #delay: number;
  #transport?: Transport;
  #received = 0;
  #echoWaiter: { until: number; resolve: () => void } | null = null;

  constructor(messages: string[], stopped: Future<void>, delay: number) {
    super();
    this.#messages = messages;
    this.#stopped = stopped;
    this.#delay = delay;
  }

  // The connection is made: send the messages, then half-close.
  override connectionMade(transport: Transport): void {
    this.#transport = transport;
    getEventLoop().createTask(this.#sendAll());
  }

  async #sendAll(): Promise<void> {
    const transport = this.#transport!;
    let sent = 0;
    for (const [i, m] of this.#messages.entries()) {
      if (transport.isClosing()) return;
      const bytes = new TextEncoder().encode(m);
      transport.write(bytes);
      console.log(`Data sent: ${repr(m)}`);
      sent += bytes.length;
      await this.#echoed(sent);
      if (i < this.#messages.length - 1 && this.#delay > 0) {
        await new Promise((resolve) => setTimeout(resolve, this.#delay));
      }
    }
    // Every message is sent: tell the server we will send nothing more.
    if (!transport.isClosing()) transport.writeEof();
  }

  /** Resolves once `total` bytes came back (or the connection is gone). */
  #echoed(total: number): Promise<void> {
    if (this.#received >= total || this.#transport!.isClosing()) {
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      this.#echoWaiter = { until: total, resolve };
    });
  }

  #wakeSender(force: boolean): void {
    const waiter = this.#echoWaiter;
    if (waiter !== null && (force || this.#received >= waiter.until)) {
      this.#echoWaiter = null;
      waiter.resolve();
    }
  }

  // Data came back.
  override dataReceived(data: Uint8Array): void {
    console.log(`Data received:${repr(new TextDecoder().decode(data))}`);
    this.#received += data.length;
    this.#wakeSender(false);
  }

  // The connection is closed.
  override connectionLost(_exc: Error | null): void {
    console.log("The server closed the connection");
    console.log("Stop the event loop");
    this.#wakeSender(true);
    this.#stopped.setResult(); // self.loop.stop()
  }
}

async function main(): Promise<void> {
  const { host, port, delay } = parseFlags();
  const loop = getEventLoop();
  const message = ["Hello word!", "你好"];
  // Stands for loop.stop(): the protocol resolves it in connectionLost.
  const stopped = loop.createFuture<void>();
  const [transport] = await createConnection(
    () => new EchoClientProtocol(message, stopped, delay),
    { hostname: host, port },
  );
  // loop.run_forever(): runs until connectionLost "stops the loop".
  try {
    await stopped;
  } finally {
    transport.close();
  }
}

if (import.meta.main) await main();
