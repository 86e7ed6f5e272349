/**
 * Seed S004-k (seeds/004_0130fc70258334b4.txt): 20 pages fetched at the
 * same time with `open_connection`, each response read line by line with
 * `async for` over the reader, printed in completion order
 * (`asyncio.as_completed`), and the whole run timed.
 *
 * The Python it ports:
 *
 * ```python
 * async def get_url(url):
 *     url = urlparse(url)
 *     host = url.netloc
 *     path = url.path
 *     if path == "":
 *         path = "/"
 *     reader, writer = await asyncio.open_connection(host, 80)
 *     writer.write("GET {} HTTP/1.1\r\nHost:{}\r\nConnection:close\r\n\r\n".format(path, host).encode("utf8"))
 *     all_lines = []
 *     async for raw_line in reader:
 *         data = raw_line.decode("utf8")
 *         all_lines.append(data)
 *     html = "\n".join(all_lines)
 *     return html
 *
 * async def main():
 *     tasks = []
 *     for url in range(20):
 *         url = "http://shop.projectsedu.com/goods/{}/".format(url)
 *         tasks.append(asyncio.ensure_future(get_url(url)))
 *     for task in asyncio.as_completed(tasks):
 *         result = await task
 *         print(result)
 *
 * start_time = time.time()
 * loop.run_until_complete(main())
 * print('last time:{}'.format(time.time()-start_time))
 * ```
 *
 * Offline: the shop is a small HTTP server started in this program
 * (`Deno.serve` on 127.0.0.1, `--port`, 0 picks a free port), and the URLs
 * point at it; the port comes from the URL instead of a fixed 80. Each
 * connection is closed once the response is read. As in the seed, every
 * printed line keeps its `\r\n` and the lines are joined with `"\n"`.
 *
 * Run: `deno run -A examples/http_fetch_concurrent.ts [--port 0]`.
 *
 * @module
 */

import { openConnection } from "../streams.ts";
import { parseFlags, parsePort } from "./_cli.ts";

/** The local stand-in for shop.projectsedu.com: one small page per item. */
function startShop(port: number, signal: AbortSignal) {
  return Deno.serve({
    hostname: "127.0.0.1",
    port,
    signal,
    onListen() {},
  }, (request) => {
    const match = /^\/goods\/(\d+)\/$/.exec(new URL(request.url).pathname);
    if (match === null) return new Response("Not found\n", { status: 404 });
    const html = [
      "<!DOCTYPE html>",
      `<html><head><title>Goods ${match[1]}</title></head>`,
      `<body><h1>Goods ${match[1]}</h1><p>In stock.</p></body></html>`,
      "",
    ].join("\n");
    return new Response(html, {
      headers: { "content-type": "text/html; charset=utf-8" },
    });
  });
}

async function getUrl(address: string): Promise<string> {
  // Request the HTML over a plain socket.
  const url = new URL(address);
  const host = url.host;
  let path = url.pathname;
  if (path === "") path = "/";

  // Open the connection.
  const [reader, writer] = await openConnection({
    hostname: url.hostname,
    port: Number(url.port || 80),
  });
  writer.write(
    new TextEncoder().encode(
      `GET ${path} HTTP/1.1\r\nHost:${host}\r\nConnection:close\r\n\r\n`,
    ),
  );

  const allLines: string[] = [];
  // `for await` reads the response line by line without blocking.
  for await (const rawLine of reader) {
    const data = new TextDecoder().decode(rawLine);
    allLines.push(data);
  }
  writer.close();
  await writer.waitClosed();
  const html = allLines.join("\n");
  return html;
}

/** asyncio.as_completed: the results in the order the tasks finish. */
async function* asCompleted<T>(tasks: Promise<T>[]): AsyncGenerator<T> {
  const pending = new Map(
    tasks.map((task, i) => [i, task.then((value) => [i, value] as const)]),
  );
  while (pending.size > 0) {
    const [i, value] = await Promise.race(pending.values());
    pending.delete(i);
    yield value;
  }
}

async function main(port: number): Promise<void> {
  const tasks: Promise<string>[] = [];
  for (let i = 0; i < 20; i++) {
    const url = `http://127.0.0.1:${port}/goods/${i}/`;
    tasks.push(getUrl(url));
  }
  for await (const result of asCompleted(tasks)) {
    console.log(result);
  }
}

if (import.meta.main) {
  const controller = new AbortController();
  const { port } = parseFlags({ port: { type: "string", default: "0" } });
  const shop = startShop(parsePort(port), controller.signal);
  try {
    const startTime = performance.now();
    await main(shop.addr.port);
    console.log(`last time:${(performance.now() - startTime) / 1000}`);
  } finally {
    controller.abort();
    await shop.finished;
  }
}
