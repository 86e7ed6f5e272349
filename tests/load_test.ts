// Load, bounded for CI: 1,000 concurrent stream clients, each doing 20
// framed request/response rounds against a startServer echo server, every
// byte checked, then an orderly shutdown (waitClosed) with the sanitizers
// on. The 10,000-connection soak lives in soak/soak.ts (not run in CI).

import assert from "node:assert/strict";
import {
  type ExceptionContext,
  getEventLoop,
  IncompleteReadError,
  openConnection,
  startServer,
  type StreamReader,
  type StreamWriter,
} from "../mod.ts";
import { bytesEqual, ensureFdLimit, Prng, withTimeout } from "./_helpers.ts";

const CLIENTS = 1000;
const ROUNDS = 20;

/** A frame: 4-byte big-endian length, then the payload. */
function frame(payload: Uint8Array): Uint8Array {
  const out = new Uint8Array(4 + payload.length);
  new DataView(out.buffer).setUint32(0, payload.length);
  out.set(payload, 4);
  return out;
}

/** Payload bytes for client `client`, round `round`: reproducible. */
function payload(client: number, round: number, size: number): Uint8Array {
  const out = new Uint8Array(size);
  let x = (client * 7919 + round * 104729 + 1) >>> 0;
  for (let i = 0; i < size; i++) {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
    out[i] = x >>> 24;
  }
  return out;
}

/** Echoes frames until the client half-closes, then closes. */
async function echoFrames(
  reader: StreamReader,
  writer: StreamWriter,
  stats: { frames: number; bytes: number },
): Promise<void> {
  for (;;) {
    let header: Uint8Array;
    try {
      header = await reader.readExactly(4);
    } catch (error) {
      if (error instanceof IncompleteReadError && error.partial.length === 0) {
        break;
      }
      throw error;
    }
    const size = new DataView(header.buffer, header.byteOffset).getUint32(0);
    const body = await reader.readExactly(size);
    writer.write(header);
    writer.write(body);
    await writer.drain();
    stats.frames++;
    stats.bytes += size;
  }
  writer.close();
  await writer.waitClosed();
}

Deno.test("load: 1,000 concurrent clients x 20 rounds against startServer, every byte verified, waitClosed completes", async () => {
  // 1,000 clients + 1,000 server connections + the listener.
  const fdLimit = ensureFdLimit(2 * CLIENTS + 256);
  assert.ok(fdLimit >= 2 * CLIENTS + 256);
  const contexts: ExceptionContext[] = [];
  const loop = getEventLoop();
  loop.setExceptionHandler((_loop, context) => contexts.push(context));
  const started = performance.now();
  const serverStats = { frames: 0, bytes: 0, connections: 0, finished: 0 };
  const server = await startServer(async (reader, writer) => {
    serverStats.connections++;
    await echoFrames(reader, writer, serverStats);
    serverStats.finished++;
  }, {
    hostname: "127.0.0.1",
    port: 0,
    // A full accept queue drops SYNs (1 s retransmit): make room for all.
    backlog: 2 * CLIENTS,
  });
  const { port } = server.addrs[0] as Deno.NetAddr;
  try {
    let verified = 0;
    let expected = 0;
    const rng = new Prng(0x10ad);
    // Sizes: mostly small, some above the 64 KiB write high-water mark so
    // drain() really waits, and some empty payloads.
    const sizes = Array.from(
      { length: CLIENTS },
      () =>
        Array.from({ length: ROUNDS }, () => {
          const kind = rng.next();
          if (kind < 0.02) return 0;
          if (kind < 0.04) return rng.int(64 * 1024, 160 * 1024);
          return rng.int(1, 4096);
        }),
    );
    for (const row of sizes) for (const n of row) expected += n;

    const client = async (id: number) => {
      const [reader, writer] = await openConnection({
        hostname: "127.0.0.1",
        port,
      });
      try {
        for (let round = 0; round < ROUNDS; round++) {
          const body = payload(id, round, sizes[id][round]);
          writer.write(frame(body));
          await writer.drain();
          const echoed = await reader.readExactly(4 + body.length);
          assert.ok(
            bytesEqual(echoed, frame(body)),
            `client ${id} round ${round}: echo differs`,
          );
          verified += body.length;
        }
        writer.writeEof();
        // The server closes after our EOF: nothing more may arrive.
        assert.equal((await reader.read()).length, 0);
        assert.ok(reader.atEof());
      } finally {
        writer.close();
        await writer.waitClosed();
      }
    };
    await withTimeout(
      Promise.all(Array.from({ length: CLIENTS }, (_, id) => client(id))),
      45_000,
      "1,000 clients",
    );
    const clientsDone = performance.now();
    server.close();
    await withTimeout(server.waitClosed(), 10_000, "server.waitClosed()");
    const elapsed = performance.now() - started;

    assert.equal(verified, expected);
    assert.equal(serverStats.connections, CLIENTS);
    assert.equal(serverStats.finished, CLIENTS);
    assert.equal(serverStats.frames, CLIENTS * ROUNDS);
    assert.equal(serverStats.bytes, expected);
    assert.deepEqual(contexts.map((c) => c.message), []);
    console.log(
      `load: ${CLIENTS} clients x ${ROUNDS} rounds, ${
        (expected / 1048576).toFixed(1)
      } MiB echoed and verified, clients ${
        ((clientsDone - started) / 1000).toFixed(2)
      } s, total ${(elapsed / 1000).toFixed(2)} s, rss ${
        (Deno.memoryUsage().rss / 1048576).toFixed(0)
      } MiB`,
    );
  } finally {
    server.close();
    server.abortClients();
    await server.waitClosed();
    loop.setExceptionHandler(null);
  }
});
