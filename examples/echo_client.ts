/**
 * Seed S001-b (seeds/001_a67efe0c9151b4f1.txt), client half: the
 * Transports & Protocols echo client that waits on an `on_con_lost` future.
 *
 * The Python it ports, in short:
 *
 * ```python
 * class EchoClientProtocol(asyncio.Protocol):
 *     def connection_made(self, transport):
 *         transport.write(self.message.encode())
 *         print("Data sent: {0}".format(self.message))
 *     def data_received(self, data):
 *         print("Data received: {0}".format(data.decode()))
 *     def connection_lost(self, exc):
 *         print("The server closed the connection")
 *         self.on_con_lost.set_result(True)
 *
 * on_con_lost = loop.create_future()
 * transport, protocol = await loop.create_connection(
 *     lambda: EchoClientProtocol('Hello World!', on_con_lost), '127.0.0.1', 8888)
 * try:
 *     await on_con_lost
 * finally:
 *     transport.close()
 * ```
 *
 * Run against `examples/echo_server.ts`:
 * `deno run -A examples/echo_client.ts [--host 127.0.0.1] [--port 8888]`.
 * It prints:
 *
 * ```text
 * Data sent: Hello World!
 * Data received: Hello World!
 * The server closed the connection
 * ```
 *
 * @module
 */

import { Protocol } from "../protocols.ts";
import { createConnection, type Transport } from "../transports.ts";
import { type Future, getRunningLoop } from "../events.ts";
import { clientFlags } from "./_cli.ts";

/**
 * Sends `message` once connected, prints what comes back, and resolves
 * `onConLost` when the server closes. `unix_echo_client.ts` uses it too.
 */
export class EchoClientProtocol extends Protocol {
  #message: string;
  #onConLost: Future<boolean>;

  constructor(message: string, onConLost: Future<boolean>) {
    super();
    this.#message = message;
    this.#onConLost = onConLost;
  }

  override connectionMade(transport: Transport): void {
    transport.write(new TextEncoder().encode(this.#message));
    console.log(`Data sent: ${this.#message}`);
  }

  override dataReceived(data: Uint8Array): void {
    console.log(`Data received: ${new TextDecoder().decode(data)}`);
  }

  override connectionLost(_exc: Error | null): void {
    console.log("The server closed the connection");
    this.#onConLost.setResult(true);
  }
}

async function main(): Promise<void> {
  const { host, port } = clientFlags(8888);
  const loop = getRunningLoop();
  const onConLost = loop.createFuture<boolean>();
  const message = "Hello World!";
  const [transport] = await createConnection(
    () => new EchoClientProtocol(message, onConLost),
    { hostname: host, port },
  );
  // Wait until the protocol signals that the connection is lost, then close
  // the transport.
  try {
    await onConLost;
  } finally {
    transport.close();
  }
}

if (import.meta.main) await main();
