// Runs examples/reuseport_workers.ts: N workers share one port with
// reusePort, every connection is echoed, and the kernel spreads them.

import assert from "node:assert/strict";
import { start } from "./_examples.ts";
import { decode, encode, readExactly, writeAll } from "./_helpers.ts";

Deno.test("reuseport_workers: two workers share a port and both serve", async () => {
  await using server = start([
    "examples/reuseport_workers.ts",
    "--port",
    "0",
    "--workers",
    "2",
  ]);
  const port = await server.readyPort(
    /^Serving on 127\.0\.0\.1:(\d+) with 2 workers$/,
  );
  const clients = 40;
  for (let i = 0; i < clients; i++) {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port });
    const message = encode(`hello ${i}\n`);
    await writeAll(conn, message);
    assert.equal(
      decode(await readExactly(conn, message.length)),
      `hello ${i}\n`,
    );
    conn.close();
  }
  const { code, lines, stderr } = await server.stop();
  assert.equal(code, 0);
  assert.equal(stderr, "");
  const served = lines.slice(0, 2).map((line) => {
    const match = /^worker \d served (\d+) connections$/.exec(line);
    assert.ok(match, line);
    return Number(match[1]);
  });
  assert.deepEqual(lines.slice(2), [`total ${clients} connections`]);
  // 40 connections hashed over two sockets: each gets some (the chance
  // that one gets none is 2^-39).
  assert.ok(served.every((n) => n > 0), `spread: ${served}`);
});
