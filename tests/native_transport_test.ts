// Transports over the native backend (installed for each test, whatever
// AIONET_BACKEND says), for what the shared suites assert only of the Deno
// backend: how much one read delivers. Every test checks for leaked
// descriptors.

import assert from "node:assert/strict";
import { createUnixServer, type Transport } from "../transports.ts";
import {
  encode,
  pattern,
  RecordingProtocol,
  withTimeout,
  writeAll,
} from "./_helpers.ts";
import { nativeTest, withBackend } from "./_native_fd_check.ts";

/**
 * Runs `body` with a Unix server whose connections get `protocol` and one
 * connected client; closes both and waits for `connectionLost` after.
 */
async function withUnixConnection(
  protocol: RecordingProtocol,
  body: (client: Deno.UnixConn) => Promise<void>,
): Promise<void> {
  const dir = await Deno.makeTempDir();
  const path = `${dir}/reads.sock`;
  const server = await createUnixServer(() => protocol, { path });
  const client = await Deno.connect({ transport: "unix", path });
  try {
    await body(client);
  } finally {
    client.close();
    await withTimeout(protocol.lost, 5000, "connectionLost");
    server.close();
    await withTimeout(server.waitClosed(), 5000, "waitClosed");
    await Deno.remove(dir, { recursive: true });
  }
}

nativeTest(
  "a read takes what the kernel holds (up to 256 KiB) in one dataReceived; a small message stays small",
  () =>
    withBackend("native", async () => {
      // The Deno backend's reads start at 4 KiB and grow while they fill
      // (transports_test.ts); a native read is synchronous and takes what
      // is there, so a connection needs no warm-up for large messages.
      class PausedAtStart extends RecordingProtocol {
        override connectionMade(transport: Transport): void {
          super.connectionMade(transport);
          transport.pauseReading();
        }
      }
      const protocol = new PausedAtStart();
      await withUnixConnection(protocol, async (client) => {
        const transport = await withTimeout(protocol.made, 5000, "the accept");
        // A Unix stream socket queues what is written at the receiver:
        // once written, all 100 000 bytes wait there, unread.
        const data = pattern(100_000, 9);
        await withTimeout(writeAll(client, data), 5000, "the write");
        transport.resumeReading();
        assert.deepEqual(await protocol.waitForBytes(data.length), data);
        assert.deepEqual(protocol.chunks.map((c) => c.length), [data.length]);
        await writeAll(client, encode("x"));
        await protocol.waitForBytes(data.length + 1);
        assert.deepEqual(protocol.chunks.map((c) => c.length), [
          data.length,
          1,
        ]);
      });
    }),
);

nativeTest(
  "medium reads (8 KiB) are copied out at their size; only reads of 32 KiB or more switch the connection to 256 KiB slabs",
  () =>
    withBackend("native", async () => {
      // A read above the small-read pool's 4 KiB used to switch the
      // connection to slab reads at once: its next read, of any size, took
      // a fresh 256 KiB slab, and a connection of 8 KiB messages pinned a
      // slab between them (3,000 such connections of the soak test held
      // 400 MiB). Failed before the fix (the second 8 KiB chunk was a view
      // of a 256 KiB buffer).
      const protocol = new RecordingProtocol();
      await withUnixConnection(protocol, async (client) => {
        await withTimeout(protocol.made, 5000, "the accept");
        let expected = 0;
        for (let i = 0; i < 3; i++) {
          const message = pattern(8192, i);
          await writeAll(client, message);
          expected += message.length;
          await protocol.waitForBytes(expected);
        }
        for (const chunk of protocol.chunks) {
          assert.ok(
            chunk.buffer.byteLength <= 8192,
            `a chunk of ${chunk.length} bytes lives in a buffer of ${chunk.buffer.byteLength}`,
          );
        }
        // Large reads still go into slabs, without a copy: all but the
        // first read of a 1 MiB stream are views of 256 KiB buffers.
        const large = pattern(1 << 20, 7);
        const first = protocol.chunks.length;
        await writeAll(client, large);
        await protocol.waitForBytes(expected + large.length);
        const bufferSizes = protocol.chunks.slice(first + 1)
          .map((chunk) => chunk.buffer.byteLength);
        assert.ok(bufferSizes.length > 0, "the stream came in one read");
        assert.ok(
          bufferSizes.some((size) => size === 256 * 1024),
          `no read after the first went into a slab: ${bufferSizes}`,
        );
      });
    }),
);
