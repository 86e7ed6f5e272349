/**
 * aionet example: the Transports & Protocols echo client of seed S001-b
 * (`examples/echo_client.ts`), over a Unix stream socket instead of TCP
 * (asyncio's `loop.create_unix_connection`). It sends a message, prints the
 * echo and waits on an `onConLost` future until the server closes.
 *
 * The Python equivalent:
 *
 * ```python
 * on_con_lost = loop.create_future()
 * transport, protocol = await loop.create_unix_connection(
 *     lambda: EchoClientProtocol('Hello World!', on_con_lost), path)
 * try:
 *     await on_con_lost
 * finally:
 *     transport.close()
 * ```
 *
 * Run against `examples/unix_echo_server.ts`:
 * `deno run -A examples/unix_echo_client.ts --path /tmp/…/echo.sock [--message "Hello World!"]`.
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

import { parseArgs } from "node:util";
import { Protocol } from "../protocols.ts";
import { createUnixConnection, type Transport } from "../transports.ts";
import { type Future, getRunningLoop } from "../events.ts";

function parseFlags(): { path: string; message: string } {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      path: { type: "string" },
      message: { type: "string", default: "Hello World!" },
    },
  });
  if (!values.path) {
    console.error("--path is required: the server's socket path");
    Deno.exit(2);
  }
  return { path: values.path, message: values.message };
}

class EchoClientProtocol extends Protocol {
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
  const { path, message } = parseFlags();
  const onConLost = getRunningLoop().createFuture<boolean>();
  const [transport] = await createUnixConnection(
    () => new EchoClientProtocol(message, onConLost),
    { path },
  );
  try {
    await onConLost;
  } finally {
    transport.close();
  }
}

if (import.meta.main) await main();
