/**
 * aionet example: the Transports & Protocols echo server of seed S001-b
 * (`examples/echo_server.ts`), over a Unix stream socket instead of TCP
 * (asyncio's `loop.create_unix_server`).
 *
 * The Python equivalent:
 *
 * ```python
 * server = await loop.create_unix_server(lambda: EchoServerProtocol(),
 *                                        path, start_serving=False)
 * async with server:
 *     await server.serve_forever()
 * ```
 *
 * The server listens on `--path`; without it, on `echo.sock` in a new
 * temporary directory (removed again on exit). It prints a ready line
 * (`Serving on /tmp/…/echo.sock`), echoes the first data of each client,
 * then closes that connection. A stale socket file left by a killed server
 * is replaced; the socket file is removed when the server closes. Ctrl+C or
 * SIGTERM closes the server.
 *
 * Run: `deno run -A examples/unix_echo_server.ts [--path /tmp/echo.sock]`,
 * then `deno run -A examples/unix_echo_client.ts --path <the same path>`.
 *
 * @module
 */

import { Protocol } from "../protocols.ts";
import { createUnixServer, type Transport } from "../transports.ts";
import { onInterrupt, parseFlags, usageError } from "./_cli.ts";

class EchoServerProtocol extends Protocol {
  #transport?: Transport;

  override connectionMade(transport: Transport): void {
    // A Unix client is usually unnamed: its peername has an empty path, so
    // show the socket it came in on.
    const sockname = transport.getExtraInfo("sockname") as Deno.UnixAddr;
    console.log(`Connection on ${sockname.path}`);
    this.#transport = transport;
  }

  override dataReceived(data: Uint8Array): void {
    const message = new TextDecoder().decode(data);
    console.log(`Data received: ${message}`);
    console.log(`Send: ${message}`);
    this.#transport!.write(data);
    console.log("Close the client socket");
    this.#transport!.close();
  }
}

async function serve(path: string): Promise<void> {
  // start_serving=False: bound now, accepting nothing until serveForever().
  await using server = await createUnixServer(() => new EchoServerProtocol(), {
    path,
    startServing: false,
  });
  const addr = server.addrs[0] as Deno.UnixAddr;
  console.log(`Serving on ${addr.path}`);

  using _interrupt = onInterrupt(() => server.close());
  await server.serveForever();
  // Leaving the block closes the server and waits for it (`async with`);
  // the listener removes its socket file.
}

async function main(): Promise<void> {
  const { path } = parseFlags({ path: { type: "string" } });
  if (path === "") usageError("--path must not be empty");
  if (path !== undefined) return await serve(path);
  const dir = await Deno.makeTempDir({ prefix: "aionet-unix-echo-" });
  try {
    await serve(`${dir}/echo.sock`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

if (import.meta.main) await main();
