/**
 * Seed S004-i (seeds/004_0130fc70258334b4.txt): print a page's HTTP
 * headers. A `HEAD` request is written with `open_connection`, then the
 * response is read with a `readline()` loop until EOF.
 *
 * The Python it ports:
 *
 * ```python
 * @asyncio.coroutine
 * def print_http_header(url):
 *     url = urllib.parse.urlsplit(url)
 *     if url.scheme == 'https':
 *         connect = asyncio.open_connection(url.hostname, 443, ssl=True)
 *     else:
 *         connect = asyncio.open_connection(url.hostname, 80)
 *     reader, writer = yield from connect
 *     query = ('HEAD {path} HTTP/1.0\r\nHost: {hostname}\r\n\r\n'
 *             ).format(path=url.path or '/', hostname = url.hostname)
 *     writer.write(query.encode('latin-1'))
 *     while True:
 *         line = yield from reader.readline()
 *         if not line:
 *             break
 *         line = line.decode('latin1').rstrip()
 *         if line:
 *             print('HTTP header> % s' % line)
 *     writer.close()
 *
 * url = 'https://docs.python.org/3/library/asyncio-stream.html'
 * ```
 *
 * Offline: by default a small HTTP server started in this program
 * (`Deno.serve` on 127.0.0.1, `--port`, 0 picks a free port) serves
 * `/3/library/asyncio-stream.html`, and the URL points at it; the port
 * comes from the URL when it has one. `--https` takes the seed's
 * `ssl=True` branch offline: the local server speaks HTTPS with the test
 * certificate in `tests/fixtures/`, and the client connects with
 * `openConnection({ hostname, port, tls: { caCerts: [fixtureCert],
 * serverName: "localhost" } })` (asyncio: `ssl=context,
 * server_hostname='localhost'`). `--url` fetches another URL instead (no
 * local server then); an `https://` URL uses `tls: true`, the system's
 * trusted roots and the URL's host name, exactly as `ssl=True`.
 *
 * Run: `deno run -A examples/http_headers.ts [--port 0] [--https]
 * [--url http(s)://…]`.
 *
 * @module
 */

import { openConnection, type OpenConnectionOptions } from "../streams.ts";
import { readFixture } from "./_tls_fixture.ts";
import { parseFlags, parsePort } from "./_cli.ts";

/** Bytes to text one byte per character, as Python's latin-1 codec. */
function latin1Decode(bytes: Uint8Array): string {
  let text = "";
  for (const byte of bytes) text += String.fromCharCode(byte);
  return text;
}

function latin1Encode(text: string): Uint8Array {
  return Uint8Array.from(text, (ch) => ch.charCodeAt(0) & 0xff);
}

/** The local stand-in for docs.python.org; HTTPS when `tls` is given. */
function startDocsServer(
  port: number,
  signal: AbortSignal,
  tls?: { cert: string; key: string },
) {
  return Deno.serve({
    hostname: "127.0.0.1",
    port,
    signal,
    onListen() {},
    ...tls,
  }, (request) => {
    const { pathname } = new URL(request.url);
    if (pathname !== "/3/library/asyncio-stream.html") {
      return new Response("Not found\n", { status: 404 });
    }
    return new Response("<!DOCTYPE html>\n<title>Streams</title>\n", {
      headers: {
        "content-type": "text/html; charset=utf-8",
        "server": "aionet-example",
        // As real HTTPS sites do: only sent over TLS.
        ...(tls ? { "strict-transport-security": "max-age=63072000" } : {}),
      },
    });
  });
}

/**
 * Prints the headers of `address`. `tls` replaces the default `tls: true`
 * of `https://` URLs (the local HTTPS server needs the fixture CA).
 */
async function printHttpHeader(
  address: string,
  tls: OpenConnectionOptions["tls"] = true,
): Promise<void> {
  const url = new URL(address);
  const connect = url.protocol === "https:"
    ? openConnection({
      hostname: url.hostname,
      port: Number(url.port || 443),
      tls,
    })
    : openConnection({ hostname: url.hostname, port: Number(url.port || 80) });
  const [reader, writer] = await connect;

  const query = `HEAD ${url.pathname || "/"} HTTP/1.0\r\n` +
    `Host: ${url.hostname}\r\n\r\n`;
  writer.write(latin1Encode(query));
  while (true) {
    const raw = await reader.readLine();
    if (raw.length === 0) break;
    const line = latin1Decode(raw).trimEnd();
    if (line) console.log(`HTTP header> ${line}`);
  }
  writer.close();
  await writer.waitClosed();
}

if (import.meta.main) {
  const flags = parseFlags({
    port: { type: "string", default: "0" },
    url: { type: "string" },
    https: { type: "boolean", default: false },
  });
  const port = parsePort(flags.port);
  if (flags.url !== undefined) {
    await printHttpHeader(flags.url);
  } else if (flags.https) {
    const { cert, key } = readFixture();
    const controller = new AbortController();
    const server = startDocsServer(port, controller.signal, { cert, key });
    try {
      await printHttpHeader(
        `https://127.0.0.1:${server.addr.port}/3/library/asyncio-stream.html`,
        { caCerts: [cert], serverName: "localhost" },
      );
    } finally {
      controller.abort();
      await server.finished;
    }
  } else {
    const controller = new AbortController();
    const server = startDocsServer(port, controller.signal);
    try {
      await printHttpHeader(
        `http://127.0.0.1:${server.addr.port}/3/library/asyncio-stream.html`,
      );
    } finally {
      controller.abort();
      await server.finished;
    }
  }
}
