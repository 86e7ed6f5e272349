/**
 * aionet example: a TLS client with a client certificate, for
 * `examples/tls_mtls_server.ts`. It checks the server's certificate
 * (against `--ca`, as the name `--server-name`), presents its own
 * (`--cert`/`--key`), sends one line and prints the answer.
 *
 * The Python equivalent:
 *
 * ```python
 * context = ssl.create_default_context(cafile=ca)
 * context.load_cert_chain(certfile, keyfile)
 * reader, writer = await asyncio.open_connection(
 *     '127.0.0.1', 8443, ssl=context, server_hostname='localhost')
 * ```
 *
 * Defaults: the test certificates of `tests/fixtures/mtls/` (`client.pem`,
 * CN `client`). `--anonymous` connects without a certificate, and
 * `--cert tests/fixtures/mtls/impostor_self_signed.pem --key
 * tests/fixtures/mtls/impostor_self_signed.key` with a self-signed one:
 * the server refuses both. With TLS 1.3 the client's handshake completes
 * before the server has checked its certificate, so a refusal shows as the
 * connection ending without an answer: the client prints `The server
 * refused the connection: …` on stderr and exits with 1.
 *
 * Run: `deno run -A examples/tls_mtls_client.ts [--host 127.0.0.1] [--port
 * 8443] [--ca ca.pem] [--cert client.pem] [--key client.key]
 * [--server-name localhost] [--anonymous] [--message …]`. It prints:
 *
 * ```text
 * TLS established with localhost (TLSv1.3, TLS_AES_256_GCM_SHA384)
 * Server certificate: 'localhost', issued by 'aionet test CA'
 * Send: 'Hello!'
 * Received: 'Hello client, you said: Hello!'
 * ```
 *
 * @module
 */

import { openConnection } from "../streams.ts";
import type { TlsCipher, TlsPeerCertificate } from "../transports.ts";
import { readPem } from "./_tls_fixture.ts";
import { clientFlags, repr } from "./_cli.ts";

const MTLS = new URL("../tests/fixtures/mtls/", import.meta.url);
const fixture = (file: string) => new URL(file, MTLS).pathname;

function fail(message: string): never {
  console.error(message);
  Deno.exit(1);
}

function describeError(error: unknown): string {
  return error instanceof Error ? `${error.name}: ${error.message}` : String(
    error,
  );
}

async function main(): Promise<void> {
  const flags = clientFlags(8443, {
    ca: { type: "string", default: fixture("ca.pem") },
    cert: { type: "string", default: fixture("client.pem") },
    key: { type: "string", default: fixture("client.key") },
    "server-name": { type: "string", default: "localhost" },
    anonymous: { type: "boolean", default: false },
    message: { type: "string", default: "Hello!" },
  });
  const serverName = flags["server-name"];
  const identity = flags.anonymous ? {} : {
    cert: readPem(flags.cert, "client certificate"),
    key: readPem(flags.key, "client key"),
  };

  let connection;
  try {
    connection = await openConnection({
      hostname: flags.host,
      port: flags.port,
      tls: {
        caCerts: [readPem(flags.ca, "CA certificate")],
        serverName,
        ...identity,
      },
    });
  } catch (error) {
    // A bad server certificate or name rejects the call itself.
    fail(`TLS connection failed: ${describeError(error)}`);
  }
  const [reader, writer] = connection;
  const [cipher, version] = writer.getExtraInfo("cipher") as TlsCipher;
  const server = writer.getExtraInfo("peercert") as TlsPeerCertificate;
  console.log(`TLS established with ${serverName} (${version}, ${cipher})`);
  console.log(
    `Server certificate: ${repr(String(server.subject.CN))}, issued by ${
      repr(String(server.issuer.CN))
    }`,
  );

  console.log(`Send: ${repr(flags.message)}`);
  writer.write(new TextEncoder().encode(`${flags.message}\n`));
  let answer: Uint8Array;
  try {
    await writer.drain();
    answer = await reader.readLine();
  } catch (error) {
    fail(`The server refused the connection: ${describeError(error)}`);
  }
  if (answer.length === 0) {
    fail("The server refused the connection: it closed without answering");
  }
  console.log(
    `Received: ${repr(new TextDecoder().decode(answer).trimEnd())}`,
  );
  writer.close();
  await writer.waitClosed();
}

if (import.meta.main) await main();
