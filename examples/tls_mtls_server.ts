/**
 * aionet example: a TLS server that requires client certificates (mutual
 * TLS). Only clients whose certificate chains to `--client-ca` are
 * served; the others are refused during the handshake, before the
 * handler runs. The handler reads who the client is from
 * `getExtraInfo("peercert")` and how the connection is protected from
 * `getExtraInfo("cipher")`.
 *
 * The Python equivalent:
 *
 * ```python
 * context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
 * context.load_cert_chain(certfile, keyfile)
 * context.load_verify_locations(cafile)
 * context.verify_mode = ssl.CERT_REQUIRED
 * server = await asyncio.start_server(handle, '127.0.0.1', 8443,
 *                                     ssl=context)
 * # in handle(): writer.get_extra_info('peercert')['subject']
 * ```
 *
 * Defaults: the test certificates of `tests/fixtures/mtls/` (server
 * `localhost`, the test CA for clients). It prints a ready line (`Serving
 * on 127.0.0.1:8443`, with the real port when `--port 0`), a line per
 * client served and a line per client refused; Ctrl+C or SIGTERM closes
 * it.
 *
 * Run: `deno run -A examples/tls_mtls_server.ts [--host 127.0.0.1]
 * [--port 8443] [--cert server.pem] [--key server.key] [--client-ca
 * ca.pem] [--optional]`, then `deno run -A examples/tls_mtls_client.ts`.
 * With `--optional` (CERT_OPTIONAL) a client without a certificate is
 * served too, as "anonymous"; a bad certificate is still refused.
 *
 * @module
 */

import {
  startServer,
  type StreamReader,
  type StreamWriter,
} from "../streams.ts";
import type { TlsCipher, TlsPeerCertificate } from "../transports.ts";
import { getEventLoop } from "../events.ts";
import { readPem } from "./_tls_fixture.ts";
import { formatAddr, onInterrupt, repr, serverFlags } from "./_cli.ts";

const MTLS = new URL("../tests/fixtures/mtls/", import.meta.url);
const fixture = (file: string) => new URL(file, MTLS).pathname;

async function handleClient(
  reader: StreamReader,
  writer: StreamWriter,
): Promise<void> {
  const peer = writer.getExtraInfo("peercert") as TlsPeerCertificate | null;
  const [cipher, version] = writer.getExtraInfo("cipher") as TlsCipher;
  const name = peer === null ? "anonymous" : String(peer.subject.CN);
  const issuer = peer === null ? "nobody" : String(peer.issuer.CN);
  console.log(
    `Client ${repr(name)} (issued by ${repr(issuer)}) from ${
      formatAddr(writer.getExtraInfo("peername"))
    } over ${version} ${cipher}`,
  );

  const line = new TextDecoder().decode(await reader.readLine()).trimEnd();
  console.log(`Received ${repr(line)} from ${repr(name)}`);
  writer.write(new TextEncoder().encode(`Hello ${name}, you said: ${line}\n`));
  await writer.drain();
  writer.close();
  await writer.waitClosed();
}

async function main(): Promise<void> {
  const { host, port, cert, key, "client-ca": clientCa, optional } =
    serverFlags(8443, {
      cert: { type: "string", default: fixture("server.pem") },
      key: { type: "string", default: fixture("server.key") },
      "client-ca": { type: "string", default: fixture("ca.pem") },
      optional: { type: "boolean", default: false },
    });

  // A refused client ends in the handshake: the server reports it to the
  // loop's exception handler, and goes on serving.
  getEventLoop().setExceptionHandler((loop, context) => {
    if (context.message === "Error while setting up an accepted connection") {
      const error = context.exception as Error;
      console.log(`Refused a client: ${error.name}: ${error.message}`);
    } else {
      loop.defaultExceptionHandler(context);
    }
  });

  await using server = await startServer(handleClient, {
    hostname: host,
    port,
    tls: {
      cert: readPem(cert, "certificate"),
      key: readPem(key, "private key"),
      clientCert: optional ? "optional" : "required",
      clientCaCerts: [readPem(clientCa, "client CA certificate")],
    },
  });

  const addrs = server.sockets.map((sock) => formatAddr(sock.getSockName()))
    .join(", ");
  console.log(`Serving on ${addrs}`);

  using _interrupt = onInterrupt(() => server.close());
  await server.serveForever();
}

if (import.meta.main) await main();
