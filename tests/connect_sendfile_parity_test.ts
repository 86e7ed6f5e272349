// Parity with asyncio of createConnection's options (localAddr,
// interleave, errors) and of loop.sockSendfile / loop.sendfile (file
// position, ranges, flow control). CPython's behaviour was checked with
// small scripts under CPython 3.11 (asyncio's selector loop on Linux). The
// "parity:" tests failed before their fix (RELIABILITY.md, finding 38).

import assert from "node:assert/strict";
import { getEventLoop } from "../events.ts";
import { socketpair } from "../sockets.ts";
import type { Transport } from "../transports.ts";
import {
  leakCheckedTest,
  nativeBackendTest,
  pattern,
  readAll,
  RecordingProtocol,
  withTimeout,
} from "./_helpers.ts";

const LOCAL = "127.0.0.1";

/** A port nothing listens on (bound, then released). */
function freePort(): number {
  const listener = Deno.listen({ hostname: LOCAL, port: 0 });
  const { port } = listener.addr;
  listener.close();
  return port;
}

/** A temp file holding `content`, opened for reading. */
async function tempFile(
  content: Uint8Array,
): Promise<{ file: Deno.FsFile; path: string }> {
  const path = await Deno.makeTempFile();
  await Deno.writeFile(path, content);
  return { file: await Deno.open(path, { read: true }), path };
}

/**
 * Runs `body` with a temporary file holding `content` (opened for reading)
 * and a socketpair; closes and removes everything after.
 */
async function withFileAndPair(
  content: Uint8Array,
  body: (
    file: Deno.FsFile,
    a: ReturnType<typeof socketpair>[0],
    b: ReturnType<typeof socketpair>[1],
  ) => Promise<void>,
): Promise<void> {
  const { file, path } = await tempFile(content);
  const [a, b] = socketpair();
  try {
    await body(file, a, b);
  } finally {
    a.close();
    b.close();
    file.close();
    await Deno.remove(path);
  }
}

/**
 * Runs `body` with a temporary file holding `content` and a transport
 * (RecordingProtocol) connected to a plain Deno peer; closes and removes
 * everything after, waiting for `connectionLost`.
 */
async function withFileAndTransport(
  content: Uint8Array,
  body: (
    file: Deno.FsFile,
    transport: Transport,
    protocol: RecordingProtocol,
    peer: Deno.Conn,
  ) => Promise<void>,
): Promise<void> {
  const { file, path } = await tempFile(content);
  const listener = Deno.listen({ hostname: LOCAL, port: 0 });
  const accepting = listener.accept();
  const protocol = new RecordingProtocol();
  const [transport] = await getEventLoop().createConnection(() => protocol, {
    hostname: LOCAL,
    port: listener.addr.port,
  });
  const peer = await withTimeout(accepting);
  try {
    await body(file, transport, protocol, peer);
  } finally {
    transport.close();
    await withTimeout(protocol.lost);
    peer.close();
    listener.close();
    file.close();
    await Deno.remove(path);
  }
}

/** Receives on `sock` until EOF; returns the byte count. */
async function drainSocket(
  sock: ReturnType<typeof socketpair>[0],
): Promise<number> {
  const loop = getEventLoop();
  let total = 0;
  for (let i = 0; i < 100_000; i++) {
    const chunk = await loop.sockRecv(sock, 65536);
    if (chunk.length === 0) return total;
    total += chunk.length;
  }
  throw new Error("drainSocket: too many reads");
}

// ---- createConnection ----

// CPython (Lib/asyncio/base_events.py, BaseEventLoop.create_connection /
// sock_connect): a refused single-address connect raises
// ConnectionRefusedError whose message names the address and port
// ("Connect call failed ('127.0.0.1', <port>)"); verified with a script.
// aionet: the native backend names them; the Deno backend passes on
// Deno.connect's bare "Connection refused (os error 111)".
leakCheckedTest(
  "parity: a refused connect names the address and port in its message",
  async () => {
    const port = freePort();
    const loop = getEventLoop();
    let caught: unknown;
    try {
      await loop.createConnection(() => new RecordingProtocol(), {
        hostname: LOCAL,
        port,
      });
    } catch (e) {
      caught = e;
    }
    assert.ok(caught instanceof Deno.errors.ConnectionRefused);
    const message = (caught as Error).message;
    assert.ok(
      message.includes(LOCAL) && message.includes(String(port)),
      `message should name ${LOCAL} and ${port}: ${JSON.stringify(message)}`,
    );
  },
);

// CPython (Lib/asyncio/base_events.py, create_connection): interleave=0
// is accepted (falsy: the addresses are not reordered) and the connect
// goes on; verified: interleave=0 to a closed port raises
// ConnectionRefusedError. aionet (native backend, which honours
// interleave) refuses 0 with a RangeError ("at least 1").
nativeBackendTest(
  "parity: interleave: 0 is accepted as asyncio (native backend)",
  async () => {
    const loop = getEventLoop();
    await assert.rejects(
      loop.createConnection(() => new RecordingProtocol(), {
        hostname: LOCAL,
        port: freePort(),
        interleave: 0,
      }),
      Deno.errors.ConnectionRefused,
    );
  },
);

// localAddr on the native backend: the connection's own address is the
// one asked for (asyncio binds local_addr before connecting).
nativeBackendTest(
  "connect: localAddr binds the requested local port (native backend)",
  async () => {
    const loop = getEventLoop();
    const listener = Deno.listen({ hostname: LOCAL, port: 0 });
    const localPort = freePort();
    const accepting = listener.accept();
    const [transport] = await loop.createConnection(
      () => new RecordingProtocol(),
      {
        hostname: LOCAL,
        port: listener.addr.port,
        localAddr: { hostname: LOCAL, port: localPort },
      },
    );
    const peer = await withTimeout(accepting);
    assert.equal((peer.remoteAddr as Deno.NetAddr).port, localPort);
    assert.equal(
      (transport.getExtraInfo("sockname") as Deno.NetAddr).port,
      localPort,
    );
    transport.abort();
    peer.close();
    listener.close();
  },
);

// happyEyeballsDelay with a single address connects as without it.
leakCheckedTest(
  "connect: happyEyeballsDelay with one address connects",
  async () => {
    const loop = getEventLoop();
    const listener = Deno.listen({ hostname: LOCAL, port: 0 });
    const accepting = listener.accept();
    const protocol = new RecordingProtocol();
    const [transport] = await loop.createConnection(() => protocol, {
      hostname: LOCAL,
      port: listener.addr.port,
      happyEyeballsDelay: 50,
    });
    const peer = await withTimeout(accepting);
    transport.write(new Uint8Array([1, 2, 3]));
    transport.close();
    assert.deepEqual(
      await withTimeout(readAll(peer)),
      new Uint8Array([1, 2, 3]),
    );
    await withTimeout(protocol.lost);
    peer.close();
    listener.close();
  },
);

// ---- sockSendfile ----

// CPython (Lib/asyncio/unix_events.py, _UnixSelectorEventLoop.
// _sock_sendfile_native): the file is repositioned only when something
// was sent (offset + total_sent); verified: a 5-byte file at position 3,
// sock_sendfile(sock, f, 10) returns 0 and f.tell() is still 3. aionet
// (_sock_ops.ts sendFileChunks) seeks to offset + total in any case, so
// the position becomes 10, past the end of the file.
leakCheckedTest(
  "parity: sockSendfile that sends nothing leaves the file position alone",
  async () => {
    const loop = getEventLoop();
    await withFileAndPair(
      new TextEncoder().encode("hello"),
      async (file, a) => {
        await file.seek(3, Deno.SeekMode.Start);
        assert.equal(await loop.sockSendfile(a, file, 10), 0);
        assert.equal(await file.seek(0, Deno.SeekMode.Current), 3);
      },
    );
  },
);

// count beyond EOF: what the file has is sent, the position ends at EOF
// (CPython: 5-byte file, offset 1, count 100 → 4, tell() 5; verified).
leakCheckedTest(
  "sendfile: count beyond EOF sends the rest and ends at EOF",
  async () => {
    const loop = getEventLoop();
    const content = pattern(100_000, 3);
    await withFileAndPair(content, async (file, a, b) => {
      const receiving = drainSocket(b);
      assert.equal(
        await withTimeout(loop.sockSendfile(a, file, 1, 1_000_000)),
        content.length - 1,
      );
      assert.equal(await file.seek(0, Deno.SeekMode.Current), content.length);
      a.close();
      assert.equal(await withTimeout(receiving), content.length - 1);
    });
  },
);

// CPython (Lib/asyncio/base_events.py, _check_sendfile_params): a
// negative count, a non-integer offset are refused before anything is
// sent (ValueError / TypeError; aionet: RangeError / TypeError).
leakCheckedTest(
  "sendfile: bad ranges are refused and nothing moves",
  async () => {
    const loop = getEventLoop();
    await withFileAndPair(
      new TextEncoder().encode("hello"),
      async (file, a) => {
        await file.seek(2, Deno.SeekMode.Start);
        await assert.rejects(loop.sockSendfile(a, file, 0, -1), RangeError);
        await assert.rejects(loop.sockSendfile(a, file, 1.5), TypeError);
        assert.equal(await file.seek(0, Deno.SeekMode.Current), 2);
      },
    );
  },
);

// ---- loop.sendfile over a transport ----

// CPython (Lib/asyncio/base_events.py, _SendfileFallbackProtocol.__init__
// / restore): when the protocol was paused (pause_writing) before
// sendfile, the fallback waits for the buffer to drain and, on restore,
// calls the protocol's resume_writing(); verified: events
// ['pause', 'resume'] after sendfile returns. aionet's SendfileFallback
// (_sock_ops.ts) swallows the resumeWriting and restore() does not pass
// it on, so the original protocol stays paused for good.
leakCheckedTest(
  "parity: sendfile on a paused transport gives the protocol its resumeWriting",
  async () => {
    const loop = getEventLoop();
    await withFileAndTransport(
      new TextEncoder().encode("hello"),
      async (file, transport, protocol, peer) => {
        transport.setWriteBufferLimits({ high: 1024 });
        const big = new Uint8Array(16 << 20);
        transport.write(big);
        assert.deepEqual(protocol.events, ["made", "pauseWriting"]);
        const reading = readAll(peer, big.length + 5);
        assert.equal(await withTimeout(loop.sendfile(transport, file)), 5);
        assert.equal(transport.getProtocol(), protocol);
        assert.equal(
          (await withTimeout(reading)).length,
          big.length + 5,
        );
        assert.deepEqual(protocol.events, [
          "made",
          "pauseWriting",
          "resumeWriting",
        ]);
      },
    );
  },
);

// The transport sendfile to a slow reader: the write buffer stays
// bounded (the fallback waits for resumeWriting between chunks).
leakCheckedTest(
  "sendfile: a transport sendfile to a slow reader keeps the buffer bounded",
  async () => {
    const loop = getEventLoop();
    const content = pattern(4 << 20, 5);
    await withFileAndTransport(
      content,
      async (file, transport, _protocol, peer) => {
        transport.setWriteBufferLimits({ high: 64 * 1024 });
        let maxBuffered = 0;
        const buffer = new Uint8Array(4096);
        let got = 0;
        const reading = (async () => {
          // Small reads: a slow reader.
          for (let i = 0; i < 10_000_000 && got < content.length; i++) {
            maxBuffered = Math.max(maxBuffered, transport.getWriteBufferSize());
            const n = await peer.read(buffer);
            if (n === null) break;
            got += n;
          }
        })();
        assert.equal(
          await withTimeout(loop.sendfile(transport, file), 20_000),
          content.length,
        );
        await withTimeout(reading, 20_000);
        assert.equal(got, content.length);
        // One chunk (64 KiB) over the high-water mark at most.
        assert.ok(
          maxBuffered <= 64 * 1024 + 64 * 1024,
          `write buffer reached ${maxBuffered}`,
        );
      },
    );
  },
);
