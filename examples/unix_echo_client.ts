/**
 * aionet example: the Transports & Protocols echo client of seed S001-b
 * (`examples/echo_client.ts`), over a Unix stream socket instead of TCP
 * (asyncio's `loop.create_unix_connection`). It sends a message, prints the
 * echo and waits on an `onConLost` future until the server closes. The
 * protocol is `EchoClientProtocol` of `echo_client.ts`, unchanged: only the
 * call that connects differs.
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

import { createUnixConnection } from "../transports.ts";
import { getRunningLoop } from "../events.ts";
import { parseFlags, usageError } from "./_cli.ts";
// The protocol is the TCP client's: a transport is a transport.
import { EchoClientProtocol } from "./echo_client.ts";

async function main(): Promise<void> {
  const { path, message } = parseFlags({
    path: { type: "string" },
    message: { type: "string", default: "Hello World!" },
  });
  if (!path) usageError("--path is required: the server's socket path");
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
