// (a) The naive raw Deno echo the project compares against: an accept loop
// and, per connection, read into a 64 KiB buffer and write it all back.
import { announce, parseAddress } from "./_args.ts";

/** Writes all of `data` (what std's `writeAll` does). */
async function writeAll(conn: Deno.Conn, data: Uint8Array): Promise<void> {
  let offset = 0;
  while (offset < data.length) {
    offset += await conn.write(data.subarray(offset));
  }
}

async function handle(conn: Deno.TcpConn): Promise<void> {
  conn.setNoDelay(true);
  const buf = new Uint8Array(64 * 1024);
  try {
    let n: number | null;
    while ((n = await conn.read(buf)) !== null) {
      await writeAll(conn, buf.subarray(0, n));
    }
  } catch {
    // A reset from the peer ends the connection.
  } finally {
    try {
      conn.close();
    } catch {
      // Already closed.
    }
  }
}

const listener = Deno.listen(parseAddress(Deno.args));
announce(listener.addr.port);
for await (const conn of listener) handle(conn);
