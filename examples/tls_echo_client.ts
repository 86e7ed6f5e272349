/**
 * aionet example: the Streams echo client of seed S001-c
 * (`examples/streams_echo_client.ts`) over TLS — asyncio's
 * `open_connection(host, port, ssl=context, server_hostname=name)` becomes
 * `openConnection({ hostname, port, tls: { caCerts, serverName } })`.
 *
 * The Python equivalent:
 *
 * ```python
 * context = ssl.create_default_context(cafile=ca)
 * reader, writer = await asyncio.open_connection(
 *     '127.0.0.1', 8443, ssl=context, server_hostname='localhost')
 * ```
 *
 * The server's certificate is always checked: `--ca` (default: the test
 * certificate in `tests/fixtures/`) is trusted in addition to the system's
 * roots, and the name checked is `--server-name` (default `localhost`). A
 * certificate that does not match makes `openConnection` itself reject: the
 * client then prints `TLS connection failed: …` on stderr and exits with 1.
 *
 * Run against `examples/tls_echo_server.ts`:
 * `deno run -A examples/tls_echo_client.ts [--host 127.0.0.1] [--port 8443]
 * [--ca tests/fixtures/tls_cert.pem] [--server-name localhost] [--message …]`.
 * It prints:
 *
 * ```text
 * TLS established with localhost (ALPN: aionet-echo)
 * Send: 'Hello World!'
 * Received: 'Hello World!'
 * Close the connection
 * ```
 *
 * @module
 */

import {
  openConnection,
  type StreamReader,
  type StreamWriter,
} from "../streams.ts";
import { FIXTURE_CERT_PATH, readPem } from "./_tls_fixture.ts";
import { clientFlags, repr } from "./_cli.ts";

interface Flags {
  host: string;
  port: number;
  ca: string;
  serverName: string;
  message: string;
}

function parseFlags(): Flags {
  const flags = clientFlags(8443, {
    ca: { type: "string", default: FIXTURE_CERT_PATH },
    "server-name": { type: "string", default: "localhost" },
    message: { type: "string", default: "Hello World!" },
  });
  return {
    host: flags.host,
    port: flags.port,
    ca: readPem(flags.ca, "CA certificate"),
    serverName: flags["server-name"],
    message: flags.message,
  };
}

async function tlsEchoClient(flags: Flags): Promise<void> {
  let reader: StreamReader;
  let writer: StreamWriter;
  try {
    [reader, writer] = await openConnection({
      hostname: flags.host,
      port: flags.port,
      tls: {
        caCerts: [flags.ca],
        serverName: flags.serverName,
        alpnProtocols: ["aionet-echo"],
      },
    });
  } catch (error) {
    // A bad certificate or name rejects the call itself, as in asyncio.
    const name = error instanceof Error ? error.name : "Error";
    const message = error instanceof Error ? error.message : String(error);
    console.error(`TLS connection failed: ${name}: ${message}`);
    Deno.exit(1);
  }
  const alpn = writer.getExtraInfo("alpnProtocol");
  console.log(
    `TLS established with ${flags.serverName} (ALPN: ${alpn ?? "none"})`,
  );

  console.log(`Send: ${repr(flags.message)}`);
  writer.write(new TextEncoder().encode(flags.message));
  await writer.drain();

  const data = await reader.read(100);
  console.log(`Received: ${repr(new TextDecoder().decode(data))}`);

  console.log("Close the connection");
  writer.close();
  await writer.waitClosed();
}

if (import.meta.main) await tlsEchoClient(parseFlags());
