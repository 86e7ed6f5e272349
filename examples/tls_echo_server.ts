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

import { parseArgs } from "node:util";
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

/** `host:port` for a network address, the path for a Unix one. */
function formatAddr(addr: unknown): string {
  const a = addr as { hostname?: string; port?: number; path?: string };
  if (typeof a.path === "string") return a.path;
  const host = a.hostname ?? "?";
  return `${host.includes(":") ? `[${host}]` : host}:${a.port}`;
}

/** A string as Python's `repr()` shows it: `'Hello World!'`. */
function repr(text: string): string {
  const quote = text.includes("'") && !text.includes('"') ? '"' : "'";
  let out = quote;
  for (const ch of text) {
    const code = ch.codePointAt(0)!;
    if (ch === "\\" || ch === quote) out += `\\${ch}`;
    else if (ch === "\n") out += "\\n";
    else if (ch === "\r") out += "\\r";
    else if (ch === "\t") out += "\\t";
    else if (code < 0x20 || code === 0x7f) {
      out += `\\x${code.toString(16).padStart(2, "0")}`;
    } else out += ch;
  }
  return out + quote;
}

function parseFlags(): {
  host: string;
  port: number;
  cert: string;
  key: string;
} {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      host: { type: "string", default: "127.0.0.1" },
      port: { type: "string", default: "8443" },
      cert: { type: "string", default: FIXTURE_CERT_PATH },
      key: { type: "string", default: FIXTURE_KEY_PATH },
    },
  });
  const port = Number(values.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    console.error("--port must be an integer from 0 to 65535");
    Deno.exit(2);
  }
  return {
    host: values.host,
    port,
    cert: readPem(values.cert, "certificate"),
    key: readPem(values.key, "private key"),
  };
}

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
  const { host, port, cert, key } = parseFlags();
  await using server = await startServer(handleEcho, {
    hostname: host,
    port,
    tls: { cert, key, alpnProtocols: ["aionet-echo"] },
  });

  const addrs = server.sockets.map((sock) => formatAddr(sock.getSockName()))
    .join(", ");
  console.log(`Serving on ${addrs}`);

  const stop = () => server.close();
  const signals: Deno.Signal[] = ["SIGINT", "SIGTERM"];
  for (const signal of signals) Deno.addSignalListener(signal, stop);
  try {
    await server.serveForever();
  } finally {
    for (const signal of signals) Deno.removeSignalListener(signal, stop);
  }
}

if (import.meta.main) await main();
