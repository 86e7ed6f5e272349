/**
 * aionet example: the Streams echo server of seed S001-c
 * (`examples/streams_echo_server.ts`) over TLS — asyncio's
 * `start_server(..., ssl=context)` becomes `startServer(..., { tls: { cert,
 * key } })`. The handler is the same as over TCP: TLS is invisible to it.
 *
 * The Python equivalent:
 *
 * ```python
 * context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
 * context.load_cert_chain(certfile, keyfile)
 * server = await asyncio.start_server(handle_echo, '127.0.0.1', 8443,
 *                                     ssl=context)
 * async with server:
 *     await server.serve_forever()
 * ```
 *
 * `--cert`/`--key` default to the test certificate in `tests/fixtures/`
 * (for `localhost`, `127.0.0.1`, `::1`); the server accepts the ALPN
 * protocol `aionet-echo` when the client offers it. It prints a ready line
 * (`Serving on 127.0.0.1:8443`, with the real port when `--port 0`); Ctrl+C
 * or SIGTERM closes it.
 *
 * Run: `deno run -A examples/tls_echo_server.ts [--host 127.0.0.1]
 * [--port 8443] [--cert tests/fixtures/tls_cert.pem] [--key
 * tests/fixtures/tls_key.pem]`, then `deno run -A examples/tls_echo_client.ts`.
 *
 * @module
 */

import {
  startServer,
  type StreamReader,
  type StreamWriter,
} from "../streams.ts";
import {
  FIXTURE_CERT_PATH,
  FIXTURE_KEY_PATH,
  readPem,
} from "./_tls_fixture.ts";
import { formatAddr, onInterrupt, repr, serverFlags } from "./_cli.ts";

async function handleEcho(
  reader: StreamReader,
  writer: StreamWriter,
): Promise<void> {
  const data = await reader.read(100);
  const message = new TextDecoder().decode(data);
  const addr = writer.getExtraInfo("peername");
  const alpn = writer.getExtraInfo("alpnProtocol");

  console.log(
    `Received ${repr(message)} from ${formatAddr(addr)} over TLS (ALPN: ${
      alpn ?? "none"
    })`,
  );

  console.log(`Send: ${repr(message)}`);
  writer.write(data);
  await writer.drain();

  console.log("Close the connection");
  writer.close();
  await writer.waitClosed();
}

async function main(): Promise<void> {
  const { host, port, cert, key } = serverFlags(8443, {
    cert: { type: "string", default: FIXTURE_CERT_PATH },
    key: { type: "string", default: FIXTURE_KEY_PATH },
  });
  await using server = await startServer(handleEcho, {
    hostname: host,
    port,
    tls: {
      cert: readPem(cert, "certificate"),
      key: readPem(key, "private key"),
      alpnProtocols: ["aionet-echo"],
    },
  });

  const addrs = server.sockets.map((sock) => formatAddr(sock.getSockName()))
    .join(", ");
  console.log(`Serving on ${addrs}`);

  using _interrupt = onInterrupt(() => server.close());
  await server.serveForever();
}

if (import.meta.main) await main();
