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
      const dir = await Deno.makeTempDir();
      const path = `${dir}/reads.sock`;
      const server = await createUnixServer(() => protocol, { path });
      const client = await Deno.connect({ transport: "unix", path });
      try {
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
      } finally {
        client.close();
        await withTimeout(protocol.lost, 5000, "connectionLost");
        server.close();
        await withTimeout(server.waitClosed(), 5000, "waitClosed");
        await Deno.remove(dir, { recursive: true });
      }
    }),
);
