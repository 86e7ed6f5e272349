/**
 * Seed S002-a (seeds/002_6b9579778871f933.txt): resolve a host and port
 * with `getaddrinfo`, then make a socket for each result and connect it.
 *
 * The Python it ports:
 *
 * ```python
 * addrinfos = socket.getaddrinfo('www.163.com', 'http')
 * for addrinfo in addrinfos:
 *     socket_parameter = addrinfo[:3]
 *     print(socket_parameter)
 *     addr = addrinfo[-1]
 *     print(addr)
 *     s = socket.socket(*socket_parameter)
 *     try:
 *         s.connect(addr)
 *         print('connected')
 *     except Exception as e:
 *         print(e)
 * ```
 *
 * Offline: it resolves `--host` (default `localhost`, from /etc/hosts) and
 * connects to a server it starts itself on 127.0.0.1 (or to `--port` if
 * given). The blocking `connect()` of a stream socket becomes
 * `await loop.sockConnect()`; a datagram socket connects at once. Results
 * print as Python's tuples; Deno has no raw sockets, so the `SOCK_RAW`
 * entries Python also lists are left out.
 *
 * Run: `deno run -A examples/getaddrinfo_connect.ts [--host localhost]
 * [--port PORT]`
 *
 * @module
 */

import { getEventLoop } from "../events.ts";
import {
  AF_INET,
  AF_INET6,
  SOCK_DGRAM,
  SOCK_STREAM,
  socket,
} from "../sockets.ts";
import { addrTuple, parseFlags } from "./_cli.ts";

const FAMILIES: Record<number, string> = {
  [AF_INET]: "AddressFamily.AF_INET",
  [AF_INET6]: "AddressFamily.AF_INET6",
};
const KINDS: Record<number, string> = {
  [SOCK_STREAM]: "SocketKind.SOCK_STREAM",
  [SOCK_DGRAM]: "SocketKind.SOCK_DGRAM",
};

async function main(): Promise<void> {
  const values = parseFlags({
    host: { type: "string", default: "localhost" },
    port: { type: "string" },
  });
  const loop = getEventLoop();
  // The seed connects to a web server; this one brings its own.
  let listener: Deno.Listener | undefined;
  let port = Number(values.port);
  if (values.port === undefined) {
    listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    port = (listener.addr as Deno.NetAddr).port;
    (async () => {
      for await (const conn of listener!) conn.close();
    })().catch(() => {});
  }

  const addrinfos = await loop.getAddrInfo(values.host, port);
  for (const addrinfo of addrinfos) {
    const [family, type, proto] = addrinfo;
    console.log(
      `(<${FAMILIES[family]}: ${family}>, <${KINDS[type]}: ${type}>, ${proto})`,
    );
    const addr = addrinfo[4];
    console.log(addrTuple(addr));
    const s = socket(family, type);
    try {
      if (type === SOCK_STREAM) await loop.sockConnect(s, addr);
      else s.connect(addr);
      console.log("connected");
    } catch (error) {
      console.log((error as Error).message);
    } finally {
      s.close();
    }
  }
  listener?.close();
  loop.close();
}

if (import.meta.main) await main();
