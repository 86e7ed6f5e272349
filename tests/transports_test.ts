// Tests of the stream transport (transports.ts, _stream_transport.ts) over
// real sockets on 127.0.0.1 and Unix sockets: callback order, flow control,
// close/abort/writeEof, read pausing, extra info, createConnection's
// arguments and the Unix variants.

import assert from "node:assert/strict";
import {
  createConnection,
  createServer,
  createUnixConnection,
  createUnixServer,
  type Transport,
} from "../transports.ts";
import { type BaseProtocol, BufferedProtocol, Protocol } from "../protocols.ts";
import { type ExceptionContext, getEventLoop } from "../events.ts";
import {
  BACKEND,
  bytesEqual,
  concat,
  connSockOpt,
  decode,
  encode,
  IPPROTO_TCP,
  listenRaw,
  onBackend,
  pattern,
  readAll,
  readExactly,
  RecordingProtocol,
  socketOfFd,
  startEchoServer,
  TCP_NODELAY,
  transportSockOpt,
  withTimeout,
  writeAll,
} from "./_helpers.ts";

const KiB = 1024;
const MiB = 1024 * KiB;

/** Passes a value of the wrong type past the type checker, on purpose. */
function bad(value: unknown): never {
  return value as never;
}

/** A library client connected to a raw Deno peer. */
async function clientAndPeer<P extends BaseProtocol>(factory: () => P) {
  const raw = listenRaw();
  const accepting = raw.accept();
  const [transport, protocol] = await createConnection(factory, {
    hostname: "127.0.0.1",
    port: raw.port,
  });
  const peer = await accepting;
  return { raw, transport, protocol, peer };
}

/** Runs `fn` with an exception handler that collects contexts. */
async function withHandler(
  fn: (contexts: ExceptionContext[]) => Promise<void>,
): Promise<void> {
  const loop = getEventLoop();
  const contexts: ExceptionContext[] = [];
  loop.setExceptionHandler((_loop, context) => contexts.push(context));
  try {
    await fn(contexts);
  } finally {
    loop.setExceptionHandler(null);
  }
}

/** A round trip through a plain echo server: lets pending I/O events run. */
async function echoClock(port: number): Promise<void> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    await writeAll(conn, encode("tick"));
    assert.equal(decode(await readExactly(conn, 4)), "tick");
  } finally {
    conn.close();
  }
}

// ---- callback order ----

Deno.test("transport: made, data*, eof, lost(null); eofReceived() false closes", async () => {
  const { raw, transport, protocol, peer } = await clientAndPeer(() =>
    new RecordingProtocol()
  );
  try {
    assert.equal(protocol.transport, transport);
    await writeAll(peer, encode("hello "));
    await protocol.waitForBytes(6);
    await writeAll(peer, encode("world"));
    await protocol.waitForBytes(11);
    await peer.closeWrite();
    assert.equal(
      await withTimeout(protocol.lost, 5000, "connectionLost"),
      null,
    );
    assert.equal(protocol.order(), "made data* eof lost");
    assert.equal(protocol.text(), "hello world");
    assert.ok(transport.isClosing());
    // The transport closed its side too: the peer sees EOF.
    assert.equal(
      (await withTimeout(readAll(peer), 5000, "peer EOF")).length,
      0,
    );
    // Closing again never calls connectionLost a second time.
    transport.close();
    transport.abort();
    await Promise.resolve();
    assert.equal(protocol.events.filter((e) => e === "lost").length, 1);
    assert.equal(protocol.events.filter((e) => e === "eof").length, 1);
  } finally {
    transport.abort();
    await protocol.lost;
    raw.close();
  }
});

Deno.test("transport: eofReceived() true keeps it half-open: write, then close", async () => {
  const { raw, transport, protocol, peer } = await clientAndPeer(() =>
    new RecordingProtocol({ eofResult: true })
  );
  try {
    await writeAll(peer, encode("ping"));
    await peer.closeWrite();
    await withTimeout(protocol.eof, 5000, "eofReceived");
    assert.equal(protocol.text(), "ping");
    assert.equal(transport.isClosing(), false);
    assert.equal(protocol.lostError, undefined);
    transport.write(encode("pong"));
    transport.close();
    assert.equal(
      decode(await withTimeout(readAll(peer), 5000, "pong")),
      "pong",
    );
    assert.equal(
      await withTimeout(protocol.lost, 5000, "connectionLost"),
      null,
    );
    assert.equal(protocol.order(), "made data* eof lost");
  } finally {
    transport.abort();
    await protocol.lost;
    raw.close();
  }
});

Deno.test("transport: reading starts only after connectionMade returned", async () => {
  const raw = listenRaw();
  try {
    const accepting = raw.accept();
    const client = await Deno.connect({
      hostname: "127.0.0.1",
      port: raw.port,
    });
    const peer = await accepting;
    // The data is on its way before the transport exists.
    await writeAll(peer, encode("early"));
    let inMade = false;
    let dataDuringMade = false;
    class Checker extends RecordingProtocol {
      override connectionMade(t: Transport) {
        inMade = true;
        super.connectionMade(t);
        assert.ok(t.isReading());
        inMade = false;
      }
      override dataReceived(data: Uint8Array) {
        if (inMade) dataDuringMade = true;
        super.dataReceived(data);
      }
    }
    const [transport, protocol] = await createConnection(() => new Checker(), {
      sock: client,
    });
    assert.equal(decode(await protocol.waitForBytes(5)), "early");
    assert.equal(dataDuringMade, false);
    assert.deepEqual(protocol.events.slice(0, 2), ["made", "data"]);
    transport.close();
    assert.equal(
      await withTimeout(protocol.lost, 5000, "connectionLost"),
      null,
    );
  } finally {
    raw.close();
  }
});

Deno.test("transport: pauseReading() inside connectionMade holds the first data", async () => {
  await using echo = startEchoServer();
  class PauseAtStart extends RecordingProtocol {
    override connectionMade(t: Transport) {
      super.connectionMade(t);
      t.pauseReading();
    }
  }
  const { raw, transport, protocol, peer } = await clientAndPeer(() =>
    new PauseAtStart()
  );
  try {
    assert.equal(transport.isReading(), false);
    await writeAll(peer, encode("held"));
    await echoClock(echo.port);
    assert.deepEqual(protocol.events, ["made"]);
    transport.resumeReading();
    assert.equal(decode(await protocol.waitForBytes(4)), "held");
  } finally {
    transport.abort();
    await protocol.lost;
    raw.close();
  }
});

Deno.test("transport: an exception in connectionMade goes to the handler and aborts", async () => {
  await withHandler(async (contexts) => {
    const error = new Error("made failed");
    class Failing extends RecordingProtocol {
      override connectionMade(t: Transport) {
        super.connectionMade(t);
        throw error;
      }
    }
    const raw = listenRaw();
    try {
      const accepting = raw.accept();
      const [transport, protocol] = await createConnection(
        () => new Failing(),
        {
          port: raw.port,
        },
      );
      const peer = await accepting;
      assert.equal(
        await withTimeout(protocol.lost, 5000, "connectionLost"),
        error,
      );
      assert.equal(protocol.order(), "made lost");
      assert.ok(transport.isClosing());
      assert.equal(contexts.length, 1);
      assert.equal(contexts[0].exception, error);
      assert.equal(contexts[0].transport, transport);
      assert.equal(contexts[0].protocol, protocol);
      assert.equal(typeof contexts[0].message, "string");
      assert.equal(
        (await withTimeout(readAll(peer), 5000, "peer EOF")).length,
        0,
      );
    } finally {
      raw.close();
    }
  });
});

// ---- write flow control ----

class FlowProtocol extends RecordingProtocol {
  inWrite = false;
  pausedInsideWrite = false;
  sizeAtPause = -1;
  sizeAtResume = -1;
  readonly resumed = Promise.withResolvers<void>();
  override pauseWriting() {
    super.pauseWriting();
    this.pausedInsideWrite = this.inWrite;
    this.sizeAtPause = this.transport!.getWriteBufferSize();
  }
  override resumeWriting() {
    super.resumeWriting();
    this.sizeAtResume = this.transport!.getWriteBufferSize();
    this.resumed.resolve();
  }
  count(name: string): number {
    return this.events.filter((e) => e === name).length;
  }
}

Deno.test("transport: 16 MiB to a peer that is not reading: pauseWriting once inside write(), resumeWriting once at low", async () => {
  const { raw, transport, protocol, peer } = await clientAndPeer(() =>
    new FlowProtocol()
  );
  try {
    assert.deepEqual(transport.getWriteBufferLimits(), [16 * KiB, 64 * KiB]);
    assert.equal(transport.getWriteBufferSize(), 0);
    const data = pattern(16 * MiB, 7);
    for (let offset = 0; offset < data.length; offset += 64 * KiB) {
      protocol.inWrite = true;
      transport.write(data.subarray(offset, offset + 64 * KiB));
      protocol.inWrite = false;
    }
    assert.equal(protocol.count("pauseWriting"), 1);
    assert.ok(protocol.pausedInsideWrite, "pauseWriting ran inside write()");
    assert.ok(
      protocol.sizeAtPause > 64 * KiB,
      `size at pause ${protocol.sizeAtPause}`,
    );
    const size = transport.getWriteBufferSize();
    assert.ok(size > 64 * KiB && size <= 16 * MiB, `buffer size ${size}`);

    // The peer takes 1 MiB: the buffer is still far above the low mark.
    const head = await withTimeout(readExactly(peer, MiB), 5000, "1 MiB");
    assert.equal(protocol.count("resumeWriting"), 0);
    assert.ok(transport.getWriteBufferSize() > 16 * KiB);

    const rest = await withTimeout(
      readExactly(peer, 15 * MiB),
      20000,
      "15 MiB",
    );
    await withTimeout(protocol.resumed.promise, 5000, "resumeWriting");
    assert.equal(protocol.count("pauseWriting"), 1);
    assert.equal(protocol.count("resumeWriting"), 1);
    assert.ok(
      protocol.sizeAtResume <= 16 * KiB,
      `size at resume ${protocol.sizeAtResume}`,
    );
    assert.ok(
      concat([head, rest]).every((b, i) => b === data[i]),
      "bytes intact",
    );

    // Once the peer has everything and answered, nothing is buffered.
    await writeAll(peer, encode("!"));
    await protocol.waitForBytes(1);
    assert.equal(transport.getWriteBufferSize(), 0);
  } finally {
    transport.abort();
    await protocol.lost;
    raw.close();
  }
});

Deno.test("transport: lowering the high mark below the buffer pauses at once", async () => {
  const { raw, transport, protocol, peer } = await clientAndPeer(() =>
    new FlowProtocol()
  );
  try {
    transport.setWriteBufferLimits({ high: 32 * MiB });
    assert.deepEqual(transport.getWriteBufferLimits(), [8 * MiB, 32 * MiB]);
    const data = pattern(16 * MiB, 3);
    transport.write(data);
    assert.equal(protocol.count("pauseWriting"), 0);
    transport.setWriteBufferLimits({ high: MiB });
    assert.deepEqual(transport.getWriteBufferLimits(), [256 * KiB, MiB]);
    assert.equal(protocol.count("pauseWriting"), 1);
    const all = await withTimeout(readExactly(peer, 16 * MiB), 20000, "16 MiB");
    await withTimeout(protocol.resumed.promise, 5000, "resumeWriting");
    assert.equal(protocol.count("resumeWriting"), 1);
    assert.ok(protocol.sizeAtResume <= 256 * KiB);
    assert.ok(all.every((b, i) => b === data[i]), "bytes intact");
  } finally {
    transport.abort();
    await protocol.lost;
    raw.close();
  }
});

Deno.test("transport: setWriteBufferLimits()/getWriteBufferLimits() defaults and validation", async () => {
  const { raw, transport, protocol } = await clientAndPeer(() =>
    new RecordingProtocol()
  );
  try {
    assert.deepEqual(transport.getWriteBufferLimits(), [16384, 65536]);
    transport.setWriteBufferLimits({ high: 1000 });
    assert.deepEqual(transport.getWriteBufferLimits(), [250, 1000]);
    transport.setWriteBufferLimits({ low: 100 });
    assert.deepEqual(transport.getWriteBufferLimits(), [100, 400]);
    transport.setWriteBufferLimits({ high: 500, low: 500 });
    assert.deepEqual(transport.getWriteBufferLimits(), [500, 500]);
    transport.setWriteBufferLimits({ high: 0 });
    assert.deepEqual(transport.getWriteBufferLimits(), [0, 0]);
    transport.setWriteBufferLimits();
    assert.deepEqual(transport.getWriteBufferLimits(), [16384, 65536]);
    transport.setWriteBufferLimits({});
    assert.deepEqual(transport.getWriteBufferLimits(), [16384, 65536]);

    assert.throws(
      () => transport.setWriteBufferLimits({ high: 10, low: 20 }),
      RangeError,
    );
    assert.throws(
      () => transport.setWriteBufferLimits({ high: -1 }),
      RangeError,
    );
    assert.throws(
      () => transport.setWriteBufferLimits({ low: -4 }),
      RangeError,
    );
    assert.throws(
      () => transport.setWriteBufferLimits(bad({ high: "100" })),
      TypeError,
    );
    assert.throws(
      () => transport.setWriteBufferLimits(bad({ low: null })),
      TypeError,
    );
    assert.throws(
      () => transport.setWriteBufferLimits(bad(5)),
      TypeError,
    );
    // A failed call changes nothing.
    assert.deepEqual(transport.getWriteBufferLimits(), [16384, 65536]);
  } finally {
    transport.abort();
    await protocol.lost;
    raw.close();
  }
});

// ---- close, abort, writeEof ----

Deno.test("transport: close() right after writing 4 MiB delivers all 4 MiB before EOF", async () => {
  const { raw, transport, protocol, peer } = await clientAndPeer(() =>
    new RecordingProtocol()
  );
  try {
    const data = pattern(4 * MiB, 11);
    transport.write(data);
    transport.close();
    assert.ok(transport.isClosing());
    const got = await withTimeout(readAll(peer), 10000, "4 MiB then EOF");
    assert.equal(got.length, data.length);
    assert.ok(got.every((b, i) => b === data[i]), "bytes intact");
    assert.equal(
      await withTimeout(protocol.lost, 5000, "connectionLost"),
      null,
    );
    assert.equal(protocol.order(), "made lost");
  } finally {
    transport.abort();
    await protocol.lost;
    raw.close();
  }
});

Deno.test("transport: abort() discards the buffer and calls connectionLost(null)", async () => {
  const { raw, transport, protocol, peer } = await clientAndPeer(() =>
    new RecordingProtocol()
  );
  try {
    transport.write(pattern(4 * MiB));
    transport.abort();
    assert.ok(transport.isClosing());
    assert.equal(
      await withTimeout(protocol.lost, 5000, "connectionLost"),
      null,
    );
    assert.equal(transport.getWriteBufferSize(), 0);
    let got = 0;
    try {
      got = (await withTimeout(readAll(peer), 5000, "peer EOF")).length;
    } catch (error) {
      // Deno sends FIN, but a reset is acceptable too.
      assert.ok(error instanceof Deno.errors.ConnectionReset, String(error));
    }
    assert.ok(got < 4 * MiB, `peer got ${got} bytes`);
  } finally {
    raw.close();
  }
});

Deno.test("transport: write after writeEof(), close() or abort() throws BadResource", async () => {
  for (const end of ["writeEof", "close", "abort"] as const) {
    const { raw, transport, protocol, peer } = await clientAndPeer(() =>
      new RecordingProtocol()
    );
    try {
      transport[end]();
      assert.throws(
        () => transport.write(encode("x")),
        Deno.errors.BadResource,
        `write after ${end}()`,
      );
      assert.throws(
        () => transport.writeLines([encode("x")]),
        Deno.errors.BadResource,
        `writeLines after ${end}()`,
      );
      if (end === "writeEof") {
        assert.equal((await withTimeout(readAll(peer), 5000, "EOF")).length, 0);
        transport.close();
      }
      await withTimeout(protocol.lost, 5000, "connectionLost");
      assert.throws(
        () => transport.write(encode("x")),
        Deno.errors.BadResource,
        `write after ${end}() and connectionLost`,
      );
    } finally {
      transport.abort();
      await protocol.lost;
      raw.close();
    }
  }
});

Deno.test("transport: write after the peer reset the connection throws the connection's error", async () => {
  const { raw, transport, protocol, peer } = await clientAndPeer(() =>
    new RecordingProtocol()
  );
  try {
    // 4 MiB cannot all fit in the kernel buffers while the peer is not
    // reading, so the transport is still writing when the peer goes away.
    transport.write(pattern(4 * MiB));
    assert.equal((await readExactly(peer, 1)).length, 1);
    // Closing with unread data makes the kernel reset the connection.
    peer.close();
    const error = await withTimeout(protocol.lost, 5000, "connectionLost");
    assert.ok(
      error instanceof Deno.errors.ConnectionReset ||
        error instanceof Deno.errors.BrokenPipe,
      `connectionLost got ${error}`,
    );
    assert.throws(() => transport.write(encode("x")), (e) => e === error);
  } finally {
    transport.abort();
    await protocol.lost;
    raw.close();
  }
});

Deno.test("transport: write after the peer closed and the connection was lost throws BrokenPipe", async () => {
  const { raw, transport, protocol, peer } = await clientAndPeer(() =>
    new RecordingProtocol()
  );
  try {
    peer.close();
    assert.equal(
      await withTimeout(protocol.lost, 5000, "connectionLost"),
      null,
    );
    assert.throws(() => transport.write(encode("x")), Deno.errors.BrokenPipe);
  } finally {
    transport.abort();
    await protocol.lost;
    raw.close();
  }
});

Deno.test("transport: write() and writeLines() reject what is not a Uint8Array", async () => {
  const { raw, transport, protocol, peer } = await clientAndPeer(() =>
    new RecordingProtocol()
  );
  try {
    for (
      const value of ["str", null, undefined, 42, new ArrayBuffer(2), [1, 2]]
    ) {
      assert.throws(
        () => transport.write(bad(value)),
        TypeError,
        String(value),
      );
    }
    assert.throws(() => transport.writeLines(bad("abc")), TypeError);
    assert.throws(() => transport.writeLines(bad(null)), TypeError);
    // A bad item anywhere: nothing of the list is written.
    assert.throws(
      () => transport.writeLines(bad([encode("lost"), "str"])),
      TypeError,
    );
    transport.write(encode("ok"));
    transport.close();
    assert.equal(decode(await withTimeout(readAll(peer), 5000, "data")), "ok");
  } finally {
    transport.abort();
    await protocol.lost;
    raw.close();
  }
});

Deno.test("transport: write() sends the bytes as they were at the call", async () => {
  const { raw, transport, protocol, peer } = await clientAndPeer(() =>
    new RecordingProtocol()
  );
  try {
    const small = encode("aaaa");
    transport.write(small);
    small.fill(98);
    const big = pattern(256 * KiB, 5);
    const expected = big.slice();
    transport.write(big);
    big.fill(0);
    const view = encode("0123456789").subarray(2, 5);
    transport.write(view);
    view.fill(120);
    transport.close();
    const got = await withTimeout(readAll(peer), 5000, "data");
    assert.equal(decode(got.subarray(0, 4)), "aaaa");
    assert.ok(
      got.subarray(4, 4 + expected.length).every((b, i) => b === expected[i]),
    );
    assert.equal(decode(got.subarray(4 + expected.length)), "234");
  } finally {
    transport.abort();
    await protocol.lost;
    raw.close();
  }
});

Deno.test("transport: writeLines() writes every chunk in order, from any iterable", async () => {
  const { raw, transport, protocol, peer } = await clientAndPeer(() =>
    new RecordingProtocol()
  );
  try {
    transport.writeLines([encode("a\n"), encode("b\n")]);
    transport.writeLines(new Set([encode("c\n")]));
    transport.writeLines((function* () {
      yield encode("d\n");
      yield new Uint8Array(0);
      yield encode("e\n");
    })());
    transport.writeLines([]);
    transport.close();
    assert.equal(
      decode(await withTimeout(readAll(peer), 5000, "data")),
      "a\nb\nc\nd\ne\n",
    );
  } finally {
    transport.abort();
    await protocol.lost;
    raw.close();
  }
});

Deno.test("transport: writeEof() half-closes after the buffer drains; the peer can still answer", async () => {
  const { raw, transport, protocol, peer } = await clientAndPeer(() =>
    new RecordingProtocol()
  );
  try {
    assert.equal(transport.canWriteEof(), true);
    const data = pattern(2 * MiB, 9);
    transport.write(data);
    transport.writeEof();
    transport.writeEof(); // a second call is a no-op
    assert.equal(transport.isClosing(), false);
    const got = await withTimeout(readAll(peer), 10000, "data then EOF");
    assert.equal(got.length, data.length);
    assert.ok(got.every((b, i) => b === data[i]));
    await writeAll(peer, encode("bye"));
    assert.equal(decode(await protocol.waitForBytes(3)), "bye");
    await peer.closeWrite();
    assert.equal(
      await withTimeout(protocol.lost, 5000, "connectionLost"),
      null,
    );
    assert.equal(protocol.order(), "made data* eof lost");
  } finally {
    transport.abort();
    await protocol.lost;
    raw.close();
  }
});

// ---- reading ----

Deno.test("transport: pauseReading() holds data, even of a read in flight; resumeReading() loses nothing", async () => {
  await using echo = startEchoServer();
  const { raw, transport, protocol, peer } = await clientAndPeer(() =>
    new RecordingProtocol()
  );
  class PauseInside extends RecordingProtocol {
    override dataReceived(data: Uint8Array) {
      super.dataReceived(data);
      this.transport!.pauseReading();
    }
  }
  const inside = new PauseInside();
  try {
    assert.equal(transport.isReading(), true);
    await writeAll(peer, encode("one"));
    await protocol.waitForBytes(3);
    // The transport is idle now, with a read in flight: pause it.
    transport.pauseReading();
    assert.equal(transport.isReading(), false);
    transport.pauseReading(); // idempotent
    await writeAll(peer, encode("two"));
    await echoClock(echo.port);
    await writeAll(peer, encode("three"));
    await echoClock(echo.port);
    assert.equal(protocol.text(), "one", "no dataReceived while paused");
    transport.resumeReading();
    assert.equal(transport.isReading(), true);
    transport.resumeReading(); // idempotent
    assert.equal(decode(await protocol.waitForBytes(11)), "onetwothree");
    // Pausing from inside dataReceived works too.
    inside.transport = transport;
    transport.setProtocol(inside);
    await writeAll(peer, encode("A"));
    await inside.waitForBytes(1);
    await writeAll(peer, encode("B"));
    await echoClock(echo.port);
    assert.equal(inside.text(), "A");
    transport.resumeReading();
    assert.equal(decode(await inside.waitForBytes(2)), "AB");
    transport.close();
    assert.equal(transport.isReading(), false);
    await withTimeout(inside.lost, 5000, "connectionLost");
  } finally {
    transport.abort();
    await Promise.race([protocol.lost, inside.lost]);
    raw.close();
  }
});

Deno.test("transport: an EOF that arrives while paused is held until resumeReading()", async () => {
  await using echo = startEchoServer();
  const { raw, transport, protocol, peer } = await clientAndPeer(() =>
    new RecordingProtocol()
  );
  try {
    await writeAll(peer, encode("data"));
    await protocol.waitForBytes(4);
    transport.pauseReading();
    await peer.closeWrite();
    await echoClock(echo.port);
    await echoClock(echo.port);
    // As asyncio: a paused transport reads nothing, so it sees no EOF yet.
    assert.deepEqual(protocol.events, ["made", "data"]);
    assert.equal(protocol.lostError, undefined);
    transport.resumeReading();
    assert.equal(
      await withTimeout(protocol.lost, 5000, "connectionLost"),
      null,
    );
    assert.equal(protocol.order(), "made data* eof lost");
  } finally {
    transport.abort();
    await protocol.lost;
    raw.close();
  }
});

Deno.test("transport: data written one byte at a time arrives complete and in order", async () => {
  const { raw, transport, protocol, peer } = await clientAndPeer(() =>
    new RecordingProtocol()
  );
  try {
    const data = pattern(200, 13);
    for (let i = 0; i < data.length; i++) {
      await writeAll(peer, data.subarray(i, i + 1));
      await protocol.waitForBytes(i + 1);
    }
    await peer.closeWrite();
    assert.equal(
      await withTimeout(protocol.lost, 5000, "connectionLost"),
      null,
    );
    assert.deepEqual(protocol.received(), data);
    assert.equal(protocol.chunks.length, data.length);
    assert.equal(protocol.order(), "made data* eof lost");
  } finally {
    transport.abort();
    await protocol.lost;
    raw.close();
  }
});

Deno.test("transport: BufferedProtocol reads straight into getBuffer()'s array", async () => {
  class Collector extends BufferedProtocol {
    readonly events: string[] = [];
    readonly buffer = new Uint8Array(5);
    readonly hints: number[] = [];
    readonly sizes: number[] = [];
    readonly parts: Uint8Array[] = [];
    total = 0;
    readonly lost = Promise.withResolvers<Error | null>();
    readonly progress: Array<[number, () => void]> = [];
    override connectionMade() {
      this.events.push("made");
    }
    override getBuffer(sizeHint: number) {
      this.hints.push(sizeHint);
      return this.buffer;
    }
    override bufferUpdated(nbytes: number) {
      this.events.push("updated");
      this.sizes.push(nbytes);
      this.parts.push(this.buffer.slice(0, nbytes));
      this.total += nbytes;
      for (const [n, resolve] of this.progress) if (this.total >= n) resolve();
    }
    override eofReceived() {
      this.events.push("eof");
      return false;
    }
    override connectionLost(exc: Error | null) {
      this.events.push("lost");
      this.lost.resolve(exc);
    }
    waitFor(n: number) {
      const { promise, resolve } = Promise.withResolvers<void>();
      this.progress.push([n, resolve]);
      if (this.total >= n) resolve();
      return withTimeout(promise, 5000, `${n} bytes`);
    }
  }
  const { raw, transport, protocol, peer } = await clientAndPeer(() =>
    new Collector()
  );
  try {
    const data = pattern(23, 17);
    await writeAll(peer, data);
    await protocol.waitFor(23);
    await peer.closeWrite();
    assert.equal(
      await withTimeout(protocol.lost.promise, 5000, "connectionLost"),
      null,
    );
    assert.deepEqual(concat(protocol.parts), data);
    assert.ok(
      protocol.sizes.every((n) => n >= 1 && n <= 5),
      String(protocol.sizes),
    );
    assert.ok(protocol.sizes.length >= 5);
    assert.ok(protocol.hints.every((h) => typeof h === "number"));
    const order = protocol.events.join(" ").replace(
      /updated( updated)*/,
      "updated*",
    );
    assert.equal(order, "made updated* eof lost");
  } finally {
    transport.abort();
    await protocol.lost.promise;
    raw.close();
  }
});

// ---- extra info and protocol switching ----

Deno.test("transport: getExtraInfo() peername, sockname, socket, conn and fallback", async () => {
  const { raw, transport, protocol, peer } = await clientAndPeer(() =>
    new RecordingProtocol()
  );
  try {
    const peername = transport.getExtraInfo("peername") as Deno.NetAddr;
    // Deno's address objects have a null prototype: compare the fields.
    assert.deepEqual({ ...peername }, {
      transport: "tcp",
      hostname: "127.0.0.1",
      port: raw.port,
    });
    const sockname = transport.getExtraInfo("sockname") as Deno.NetAddr;
    assert.equal(sockname.transport, "tcp");
    assert.equal(sockname.hostname, "127.0.0.1");
    assert.equal(sockname.port, (peer.remoteAddr as Deno.NetAddr).port);

    const socket = transport.getExtraInfo("socket") as {
      getSockName(): Deno.Addr;
      getPeerName(): Deno.Addr;
      fileno(): number;
    };
    assert.deepEqual(socket.getSockName(), sockname);
    assert.deepEqual(socket.getPeerName(), peername);
    assert.equal(typeof socket.fileno(), "number");
    if (BACKEND === "deno") {
      // The Deno.Conn underneath.
      const conn = transport.getExtraInfo("conn") as Deno.TcpConn;
      assert.equal(typeof conn.read, "function");
      assert.deepEqual(conn.localAddr, sockname);
      assert.deepEqual(conn.remoteAddr, peername);
    } else {
      // Native: no Deno resource underneath, so "conn" is the fallback;
      // fileno() is the OS descriptor of the connection.
      assert.equal(transport.getExtraInfo("conn"), undefined);
      assert.equal(transport.getExtraInfo("conn", "none"), "none");
      assert.notEqual(socketOfFd(socket.fileno()), null, "a real socket fd");
    }
    const again = transport.getExtraInfo("socket") as typeof socket;
    assert.equal(again.fileno(), socket.fileno(), "fileno() is stable");

    assert.equal(transport.getExtraInfo("nope"), undefined);
    assert.equal(transport.getExtraInfo("nope", 42), 42);
    // Names that happen to live on Object.prototype are unknown names too.
    assert.equal(transport.getExtraInfo("constructor", "fb"), "fb");
    assert.equal(transport.getExtraInfo("toString", "fb"), "fb");
  } finally {
    transport.abort();
    await protocol.lost;
    raw.close();
  }
});

Deno.test("transport: setProtocol() hands later data, EOF and loss to the new protocol", async () => {
  const second = new RecordingProtocol();
  class Switcher extends RecordingProtocol {
    override dataReceived(data: Uint8Array) {
      super.dataReceived(data);
      this.transport!.setProtocol(second);
    }
  }
  const { raw, transport, protocol, peer } = await clientAndPeer(() =>
    new Switcher()
  );
  try {
    assert.equal(transport.getProtocol(), protocol);
    await writeAll(peer, encode("first"));
    await protocol.waitForBytes(5);
    assert.equal(transport.getProtocol(), second);
    await writeAll(peer, encode("second"));
    await second.waitForBytes(6);
    await peer.closeWrite();
    assert.equal(await withTimeout(second.lost, 5000, "connectionLost"), null);
    assert.equal(protocol.text(), "first");
    assert.equal(protocol.order(), "made data*");
    assert.equal(second.text(), "second");
    assert.equal(second.order(), "data* eof lost");
  } finally {
    transport.abort();
    await second.lost;
    raw.close();
  }
});

Deno.test("transport: setProtocol() to a BufferedProtocol while a read is in flight", async () => {
  class Into extends BufferedProtocol {
    readonly buffer = new Uint8Array(4);
    readonly parts: Uint8Array[] = [];
    readonly got = Promise.withResolvers<void>();
    readonly lost = Promise.withResolvers<Error | null>();
    total = 0;
    override getBuffer() {
      return this.buffer;
    }
    override bufferUpdated(n: number) {
      this.parts.push(this.buffer.slice(0, n));
      this.total += n;
      if (this.total >= 10) this.got.resolve();
    }
    override connectionLost(exc: Error | null) {
      this.lost.resolve(exc);
    }
  }
  const { raw, transport, protocol, peer } = await clientAndPeer(() =>
    new RecordingProtocol()
  );
  const into = new Into();
  try {
    await writeAll(peer, encode("plain"));
    await protocol.waitForBytes(5);
    // The transport is idle with a read in flight; switch kinds now.
    transport.setProtocol(into);
    await writeAll(peer, encode("0123456789"));
    const lostFirst = into.lost.promise.then((e) => {
      throw new Error(`Connection lost before the data arrived: ${e}`);
    });
    await withTimeout(
      Promise.race([into.got.promise, lostFirst]),
      5000,
      "bufferUpdated",
    );
    assert.equal(decode(concat(into.parts)), "0123456789");
    assert.equal(transport.isClosing(), false);
  } finally {
    transport.abort();
    await Promise.race([protocol.lost, into.lost.promise]);
    raw.close();
  }
});

Deno.test("transport: the protocol may keep every buffer dataReceived() gets", async () => {
  const { raw, transport, protocol, peer } = await clientAndPeer(() =>
    new RecordingProtocol()
  );
  try {
    const data = pattern(4 * MiB, 23);
    await withTimeout(writeAll(peer, data), 10000, "peer write");
    await peer.closeWrite();
    assert.equal(
      await withTimeout(protocol.lost, 10000, "connectionLost"),
      null,
    );
    // Chunks kept from early calls were not overwritten by later reads.
    const got = protocol.received();
    assert.equal(got.length, data.length);
    assert.ok(got.every((b, i) => b === data[i]), "bytes intact");
  } finally {
    transport.abort();
    await protocol.lost;
    raw.close();
  }
});

Deno.test("transport: an exception in eofReceived goes to the handler and aborts", async () => {
  await withHandler(async (contexts) => {
    const error = new Error("eof failed");
    class Failing extends RecordingProtocol {
      override eofReceived(): boolean {
        super.eofReceived();
        throw error;
      }
    }
    const { raw, transport, protocol, peer } = await clientAndPeer(() =>
      new Failing()
    );
    try {
      await peer.closeWrite();
      assert.equal(
        await withTimeout(protocol.lost, 5000, "connectionLost"),
        error,
      );
      assert.equal(protocol.order(), "made eof lost");
      assert.equal(contexts.length, 1);
      assert.equal(contexts[0].exception, error);
      assert.equal(contexts[0].protocol, protocol);
      assert.equal(contexts[0].transport, transport);
    } finally {
      transport.abort();
      await protocol.lost;
      raw.close();
    }
  });
});

// ---- TCP_NODELAY ----
// Deno has no getter for socket options and timing-based checks are not
// allowed, so the option is read from the socket itself with getsockopt()
// through FFI (see getTcpSockOpt in _helpers.ts).

Deno.test("transport: createConnection() sets TCP_NODELAY", async () => {
  const { raw, transport, protocol } = await clientAndPeer(() =>
    new RecordingProtocol()
  );
  try {
    assert.equal(transportSockOpt(transport, IPPROTO_TCP, TCP_NODELAY), 1);
  } finally {
    transport.abort();
    await protocol.lost;
    raw.close();
  }
});

Deno.test("transport: createConnection({ sock }) sets TCP_NODELAY on the wrapped conn", async () => {
  const raw = listenRaw();
  try {
    const accepting = raw.accept();
    const conn = await Deno.connect({ hostname: "127.0.0.1", port: raw.port });
    await accepting;
    assert.equal(
      connSockOpt(conn, IPPROTO_TCP, TCP_NODELAY),
      0,
      "Deno's default",
    );
    const [transport, protocol] = await createConnection(
      () => new RecordingProtocol(),
      { sock: conn },
    );
    assert.equal(connSockOpt(conn, IPPROTO_TCP, TCP_NODELAY), 1);
    transport.close();
    await withTimeout(protocol.lost, 5000, "connectionLost");
  } finally {
    raw.close();
  }
});

Deno.test("transport: connections accepted by createServer() have TCP_NODELAY", async () => {
  const made = Promise.withResolvers<Transport>();
  const server = await createServer(() => {
    const p = new RecordingProtocol();
    p.made.then(made.resolve);
    return p;
  }, { hostname: "127.0.0.1", port: 0 });
  const { port } = server.addrs[0] as Deno.NetAddr;
  const client = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    const transport = await withTimeout(made.promise, 5000, "connectionMade");
    assert.equal(transportSockOpt(transport, IPPROTO_TCP, TCP_NODELAY), 1);
  } finally {
    client.close();
    server.close();
    await withTimeout(server.waitClosed(), 5000, "waitClosed");
  }
});

// ---- protocol errors ----

Deno.test("transport: an exception in dataReceived goes to the handler, aborts that transport only", async () => {
  await withHandler(async (contexts) => {
    const boom = new Error("boom in dataReceived");
    const serverProtocols: RecordingProtocol[] = [];
    class Echo extends RecordingProtocol {
      override dataReceived(data: Uint8Array) {
        super.dataReceived(data);
        if (decode(data).includes("boom")) throw boom;
        this.transport!.write(data);
      }
    }
    const madeQueue: Array<(p: RecordingProtocol) => void> = [];
    const server = await createServer(() => {
      const p = new Echo();
      serverProtocols.push(p);
      p.made.then(() => madeQueue.shift()?.(p));
      return p;
    }, { hostname: "127.0.0.1", port: 0 });
    const { port } = server.addrs[0] as Deno.NetAddr;
    const nextMade = () => {
      const { promise, resolve } = Promise.withResolvers<RecordingProtocol>();
      madeQueue.push(resolve);
      return withTimeout(promise, 5000, "server connectionMade");
    };
    try {
      // Client 1 triggers the exception.
      const made1 = nextMade();
      const c1 = await Deno.connect({ hostname: "127.0.0.1", port });
      const p1 = await made1;
      await writeAll(c1, encode("boom"));
      const error = await withTimeout(p1.lost, 5000, "server connectionLost");
      assert.equal(error, boom);
      assert.equal(contexts.length, 1);
      const context = contexts[0];
      assert.equal(typeof context.message, "string");
      assert.ok(context.message.length > 0);
      assert.equal(context.exception, boom);
      assert.equal(context.transport, p1.transport);
      assert.equal(context.protocol, p1);
      // The aborted connection ends for the client.
      let tail: Uint8Array = new Uint8Array(0);
      try {
        tail = await withTimeout(readAll(c1), 5000, "client 1 EOF");
      } catch (e) {
        assert.ok(e instanceof Deno.errors.ConnectionReset, String(e));
      }
      assert.equal(tail.length, 0);
      c1.close();

      // The server still serves the next client.
      assert.equal(server.isServing(), true);
      const made2 = nextMade();
      const c2 = await Deno.connect({ hostname: "127.0.0.1", port });
      await made2;
      await writeAll(c2, encode("hello"));
      assert.equal(
        decode(await withTimeout(readExactly(c2, 5), 5000, "echo")),
        "hello",
      );
      c2.close();
      assert.equal(contexts.length, 1);
    } finally {
      server.close();
      server.abortClients();
      await withTimeout(server.waitClosed(), 5000, "waitClosed");
    }
  });
});

// ---- createConnection arguments ----

Deno.test("createConnection: a refused connect rejects with ConnectionRefused", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr;
  listener.close();
  let made = 0;
  await assert.rejects(
    createConnection(() => {
      made++;
      return new Protocol();
    }, { hostname: "127.0.0.1", port }),
    Deno.errors.ConnectionRefused,
  );
  assert.equal(made, 0);
});

Deno.test("createConnection: an already aborted signal rejects with its reason", async () => {
  const raw = listenRaw();
  try {
    const reason = new Error("stop");
    let made = 0;
    await assert.rejects(
      createConnection(() => {
        made++;
        return new Protocol();
      }, { port: raw.port, signal: AbortSignal.abort(reason) }),
      (e) => e === reason,
    );
    assert.equal(made, 0);
  } finally {
    raw.close();
  }
});

Deno.test("createConnection: aborting right after the call rejects with the reason and leaks nothing", async () => {
  const raw = listenRaw();
  try {
    const reason = new Error("changed my mind");
    const controller = new AbortController();
    let made = 0;
    const connecting = createConnection(() => {
      made++;
      return new Protocol();
    }, { port: raw.port, signal: controller.signal });
    controller.abort(reason);
    await assert.rejects(connecting, (e) => e === reason);
    assert.equal(made, 0);
  } finally {
    raw.close();
  }
});

Deno.test("createConnection: sock wraps an existing Deno.Conn", async () => {
  await using echo = startEchoServer();
  const conn = await Deno.connect({ hostname: "127.0.0.1", port: echo.port });
  const [transport, protocol] = await createConnection(
    () => new RecordingProtocol(),
    { sock: conn },
  );
  assert.equal(transport.getExtraInfo("conn"), conn);
  transport.write(encode("wrapped"));
  assert.equal(decode(await protocol.waitForBytes(7)), "wrapped");
  transport.close();
  assert.equal(await withTimeout(protocol.lost, 5000, "connectionLost"), null);
});

Deno.test("createConnection: bad arguments throw TypeError, RangeError or NotSupported", async () => {
  const raw = listenRaw();
  const conn = await Deno.connect({ hostname: "127.0.0.1", port: raw.port });
  try {
    const f = () => new Protocol();
    await assert.rejects(
      createConnection(f, { sock: conn, hostname: "127.0.0.1" }),
      TypeError,
    );
    await assert.rejects(
      createConnection(f, { sock: conn, port: raw.port }),
      TypeError,
    );
    if (BACKEND === "deno") {
      // Deno.connect can neither bind first nor order the attempts.
      await assert.rejects(
        createConnection(f, {
          port: raw.port,
          localAddr: { hostname: "127.0.0.1", port: 0 },
        }),
        Deno.errors.NotSupported,
      );
      await assert.rejects(
        createConnection(f, { port: raw.port, interleave: 1 }),
        Deno.errors.NotSupported,
      );
    } else {
      // The native backend honours both.
      const [bound, boundProtocol] = await createConnection(
        () => new RecordingProtocol(),
        { port: raw.port, localAddr: { hostname: "127.0.0.1", port: 0 } },
      );
      assert.equal(
        (bound.getExtraInfo("sockname") as Deno.NetAddr).hostname,
        "127.0.0.1",
      );
      const [interleaved, interleavedProtocol] = await createConnection(
        () => new RecordingProtocol(),
        { port: raw.port, interleave: 1 },
      );
      bound.close();
      interleaved.close();
      await withTimeout(boundProtocol.lost, 5000, "connectionLost");
      await withTimeout(interleavedProtocol.lost, 5000, "connectionLost");
    }
    for (const port of [65536, -1, 1.5, 1e9]) {
      await assert.rejects(
        createConnection(f, { port }),
        RangeError,
        String(port),
      );
    }
    await assert.rejects(createConnection(f, bad({ port: "80" })), TypeError);
    await assert.rejects(createConnection(f, bad({})), TypeError);
    await assert.rejects(
      createConnection(f, bad({ port: raw.port, hostname: 1 })),
      TypeError,
    );
    await assert.rejects(
      createConnection(bad("f"), { port: raw.port }),
      TypeError,
    );
    await assert.rejects(
      createConnection(f, bad({ port: raw.port, signal: "x" })),
      TypeError,
    );
    await assert.rejects(createConnection(f, bad({ sock: {} })), TypeError);
    await assert.rejects(
      createConnection(f, { port: raw.port, happyEyeballsDelay: -1 }),
      RangeError,
    );
  } finally {
    conn.close();
    raw.close();
  }
});

Deno.test("createConnection: tls is not silently ignored (a plaintext peer fails the call)", async () => {
  // The echo server sends the ClientHello back: no TLS server answers, so
  // the call must reject instead of resolving with a plaintext transport.
  await using echo = startEchoServer();
  let made = 0;
  await assert.rejects(
    withTimeout(
      createConnection(() => {
        made++;
        return new RecordingProtocol();
      }, {
        hostname: "127.0.0.1",
        port: echo.port,
        tls: { handshakeTimeout: 3000 },
      }),
      10000,
      "the TLS attempt to fail",
    ),
    (e) => e instanceof Error && !/Timed out after 10000/.test(e.message),
  );
  assert.equal(made, 0);
});

Deno.test("createConnection: happyEyeballsDelay connects", async () => {
  await using echo = startEchoServer();
  const [transport, protocol] = await createConnection(
    () => new RecordingProtocol(),
    { hostname: "127.0.0.1", port: echo.port, happyEyeballsDelay: 50 },
  );
  transport.write(encode("eyeballs"));
  assert.equal(decode(await protocol.waitForBytes(8)), "eyeballs");
  transport.close();
  await withTimeout(protocol.lost, 5000, "connectionLost");
});

// ---- Unix sockets ----

class UnixEcho extends RecordingProtocol {
  override dataReceived(data: Uint8Array) {
    super.dataReceived(data);
    this.transport!.write(data);
  }
}

Deno.test("unix: createUnixServer/createUnixConnection echo; addresses are Deno.UnixAddr", async () => {
  const dir = await Deno.makeTempDir();
  const path = `${dir}/echo.sock`;
  const serverProtocols: UnixEcho[] = [];
  const server = await createUnixServer(() => {
    const p = new UnixEcho();
    serverProtocols.push(p);
    return p;
  }, { path });
  try {
    assert.deepEqual(server.addrs, [{ transport: "unix", path }]);
    const [transport, protocol] = await createUnixConnection(
      () => new RecordingProtocol(),
      { path },
    );
    const peername = transport.getExtraInfo("peername") as Deno.UnixAddr;
    assert.deepEqual({ ...peername }, { transport: "unix", path });
    const sockname = transport.getExtraInfo("sockname") as Deno.UnixAddr;
    assert.equal(sockname.transport, "unix");
    assert.ok("path" in sockname);
    transport.write(encode("over unix"));
    assert.equal(decode(await protocol.waitForBytes(9)), "over unix");

    const serverSide = serverProtocols[0].transport!;
    assert.equal(
      (serverSide.getExtraInfo("sockname") as Deno.UnixAddr).path,
      path,
    );
    assert.equal(
      (serverSide.getExtraInfo("peername") as Deno.UnixAddr).transport,
      "unix",
    );

    // Half-close works on Unix sockets too: the server echoes, then closes.
    assert.equal(transport.canWriteEof(), true);
    transport.writeEof();
    assert.equal(
      await withTimeout(protocol.lost, 5000, "connectionLost"),
      null,
    );
    assert.equal(protocol.order(), "made data* eof lost");
  } finally {
    server.close();
    await withTimeout(server.waitClosed(), 5000, "waitClosed");
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("unix: createUnixConnection validates its arguments", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const f = () => new Protocol();
    await assert.rejects(
      createUnixConnection(f, { path: `${dir}/none.sock` }),
      Deno.errors.NotFound,
    );
    await assert.rejects(createUnixConnection(f, bad({ path: 5 })), TypeError);
    await assert.rejects(createUnixConnection(f, { path: "" }), RangeError);
    const reason = new Error("aborted");
    await assert.rejects(
      createUnixConnection(f, {
        path: `${dir}/x.sock`,
        signal: AbortSignal.abort(reason),
      }),
      (e) => e === reason,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test(
  "transport: reads grow 4 KiB -> 256 KiB slabs while they fill the buffer, and go back to 4 KiB on a small read (Deno backend: its reads are ops into a buffer of the size asked; native reads are synchronous and take what the kernel holds, see native_transport_test.ts)",
  onBackend("deno"),
  async () => {
    const { raw, transport, protocol, peer } = await clientAndPeer(
      () => new RecordingProtocol(),
    );
    const readSize = () =>
      Number(/readSize: (\d+)/.exec(Deno.inspect(transport))?.[1]);
    assert.equal(readSize(), 4096);
    let total = 0;
    // A message the size of the buffer fills it in one read, unless the
    // kernel splits it: then the same size is sent again (bounded).
    for (
      const [size, next] of [[4096, 16384], [16384, 65536], [65536, 262144]]
    ) {
      for (let attempt = 0; attempt < 20 && readSize() !== next; attempt++) {
        await writeAll(peer, pattern(size, size));
        total += size;
        await protocol.waitForBytes(total);
      }
      assert.equal(readSize(), next, `after ${size}-byte reads`);
    }
    await writeAll(peer, pattern(100, 7));
    total += 100;
    await protocol.waitForBytes(total);
    assert.equal(readSize(), 4096, "a small read leaves slab mode");
    transport.close();
    await withTimeout(protocol.lost, 2000, "connectionLost");
    peer.close();
    raw.close();
  },
);

Deno.test("transport: chunks a protocol keeps are never overwritten by later reads (pooled, handed-over and slab buffers)", async () => {
  const { raw, transport, protocol, peer } = await clientAndPeer(
    () => new RecordingProtocol(),
  );
  // Sizes around every read-path threshold: pooled (≤ 4 KiB), copied,
  // reads that fill the buffer and make it grow, then slab mode (reads
  // after 64 KiB filled the buffer): windows of one 256 KiB slab, a read
  // that needs a new slab, a message bigger than a slab, small reads in
  // slab mode (back to 4 KiB buffers) and the climb back.
  const sizes = [
    1,
    7,
    512,
    4096,
    4097,
    5000,
    16384,
    40000,
    65536,
    3,
    100,
    4096,
    16384,
    65536,
    70000,
    100000,
    90000,
    300000,
    65536,
    5000,
    2,
    4096,
    16384,
    65536,
    262144,
  ];
  const expected: Uint8Array[] = [];
  let total = 0;
  for (const [i, size] of sizes.entries()) {
    const chunk = pattern(size, i + 1);
    expected.push(chunk);
    await writeAll(peer, chunk);
    total += size;
    // Wait for each message so that reads do not merge across messages.
    await protocol.waitForBytes(total);
  }
  const kept = concat(protocol.chunks);
  // bytesEqual, not deepEqual: a failing deepEqual on a megabyte diffs for
  // minutes.
  assert.ok(bytesEqual(kept, concat(expected)), "kept chunks hold their bytes");
  // Each chunk the protocol got is still what it was when it arrived.
  assert.ok(protocol.chunks.every((chunk) => chunk.length > 0));
  transport.close();
  await withTimeout(protocol.lost, 2000, "connectionLost");
  peer.close();
  raw.close();
});
