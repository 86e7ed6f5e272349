/**
 * Seed S004-d (seeds/004_0130fc70258334b4.txt): HTTP GET over a raw
 * socket, 20 pages one after the other, timed.
 *
 * The Python it ports, in short:
 *
 * ```python
 * def get_url(url):
 *     url = urlparse(url)
 *     host = url.netloc; path = url.path or "/"
 *     client = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
 *     client.connect((host, 80))
 *     client.send("GET {} HTTP/1.1\r\nHost:{}\r\nConnection:close\r\n\r\n"
 *                 .format(path, host).encode("utf8"))
 *     data = b""
 *     while True:
 *         d = client.recv(1024)
 *         if d: data += d
 *         else: break
 *     data = data.decode("utf8")
 *     html_data = data.split("\r\n\r\n")[1]
 *     print(html_data)
 *     client.close()
 *
 * start_time = time.time()
 * for url in range(20):
 *     get_url("http://shop.projectsedu.com/goods/{}/".format(url))
 * print(time.time() - start_time)
 * ```
 *
 * Offline: it starts its own HTTP server on 127.0.0.1 (serving
 * `/goods/N/`), unless `--port` names one already running. The blocking
 * calls are the loop's `sockConnect`/`sockSendAll`/`sockRecv`, awaited one
 * page after the other, as the seed does. The time is in seconds.
 *
 * Run: `deno run -A examples/http_get_socket.ts [--port PORT] [--pages 20]`
 *
 * @module
 */

import { getEventLoop } from "../events.ts";
import { AF_INET, SOCK_STREAM, socket } from "../sockets.ts";
import { parseFlags } from "./_cli.ts";

const loop = getEventLoop();

async function getUrl(url: string): Promise<void> {
  const parsed = new URL(url);
  const host = parsed.hostname;
  const port = Number(parsed.port || 80);
  const path = parsed.pathname || "/";
  const client = socket(AF_INET, SOCK_STREAM);
  await loop.sockConnect(client, { hostname: host, port });
  await loop.sockSendAll(
    client,
    new TextEncoder().encode(
      `GET ${path} HTTP/1.1\r\nHost:${parsed.host}\r\nConnection:close\r\n\r\n`,
    ),
  );
  const chunks: Uint8Array[] = [];
  for (;;) {
    const d = await loop.sockRecv(client, 1024);
    if (d.length > 0) chunks.push(d);
    else break;
  }
  const data = new TextDecoder().decode(
    Uint8Array.from(chunks.flatMap((c) => [...c])),
  );
  const htmlData = data.split("\r\n\r\n")[1];
  console.log(htmlData);
  client.close();
}

async function main(): Promise<void> {
  const values = parseFlags({
    port: { type: "string" },
    pages: { type: "string", default: "20" },
  });
  let server: Deno.HttpServer | undefined;
  let port = Number(values.port);
  if (values.port === undefined) {
    // The seed's shop, in miniature.
    const ready = Promise.withResolvers<number>();
    server = Deno.serve({
      hostname: "127.0.0.1",
      port: 0,
      onListen: ({ port }) => ready.resolve(port),
    }, (request) => {
      const { pathname } = new URL(request.url);
      const match = /^\/goods\/(\d+)\/$/.exec(pathname);
      if (match === null) return new Response("not found", { status: 404 });
      return new Response(`<html><body>goods ${match[1]}</body></html>`, {
        headers: { "content-type": "text/html; charset=utf-8" },
      });
    });
    port = await ready.promise;
  }
  const startTime = performance.now();
  for (let url = 0; url < Number(values.pages); url++) {
    await getUrl(`http://127.0.0.1:${port}/goods/${url}/`);
  }
  console.log((performance.now() - startTime) / 1000);
  await server?.shutdown();
  loop.close();
}

if (import.meta.main) await main();
