// Tests of testing.ts: the in-memory transport pair (callback order,
// asynchronous delivery, write flow control, read pausing, half-close,
// close/abort, errors and the exception handler, buffered protocols),
// stream pairs and in-memory handlers, the recording transport, and the
// fake clock (alone and installed on the event loop).

import assert from "node:assert/strict";
import {
  type Clock,
  createStreamPair,
  createTransportPair,
  FakeClock,
  type MemoryTransport,
  openMemoryConnection,
  RecordingTransport,
  withFakeClock,
} from "../testing.ts";
import { BufferedProtocol, Protocol } from "../protocols.ts";
import type { Transport } from "../transports.ts";
import { type ExceptionContext, getEventLoop, TimerHandle } from "../events.ts";
import type { StreamReader, StreamWriter } from "../streams.ts";
import {
  concat,
  decode,
  encode,
  pattern,
  RecordingProtocol,
  withTimeout,
} from "./_helpers.ts";
import { run } from "./_examples.ts";

/** Lets queued microtasks run (in-memory delivery uses microtasks). */
async function settle(turns = 20): Promise<void> {
  for (let i = 0; i < turns; i++) await Promise.resolve();
}

/** Collects what the loop's exception handler gets while `fn` runs. */
async function withExceptionHandler<T>(
  fn: (contexts: ExceptionContext[]) => Promise<T> | T,
): Promise<T> {
  const contexts: ExceptionContext[] = [];
  const loop = getEventLoop();
  loop.setExceptionHandler((_loop, context) => contexts.push(context));
  try {
    return await fn(contexts);
  } finally {
    loop.setExceptionHandler(null);
  }
}

/** Counts `connectionLost` calls and records their arguments. */
function countLost(protocol: RecordingProtocol): Array<Error | null> {
  const calls: Array<Error | null> = [];
  const original = protocol.connectionLost.bind(protocol);
  protocol.connectionLost = (exc) => {
    calls.push(exc);
    original(exc);
  };
  return calls;
}

class Echo extends Protocol {
  transport: Transport | null = null;
  override connectionMade(transport: Transport): void {
    this.transport = transport;
  }
  override dataReceived(data: Uint8Array): void {
    this.transport!.write(data);
  }
}

// ---- createTransportPair ----

Deno.test("pair: an echo protocol answers through in-memory transports", async () => {
  const client = new RecordingProtocol();
  const [a, b] = createTransportPair(client, new Echo());
  a.write(encode("hello "));
  a.write(encode("world"));
  assert.equal(
    decode(await client.waitForBytes(11)),
    "hello world",
  );
  a.close();
  assert.equal(await withTimeout(client.lost), null);
  await b.flushed();
  assert.equal(b.isClosing(), true);
});

Deno.test("pair: connectionMade on both sides first, then data, EOF, lost", async () => {
  const order: string[] = [];
  class Side extends RecordingProtocol {
    constructor(readonly name: string, readonly greet: boolean) {
      super();
    }
    override connectionMade(transport: Transport): void {
      order.push(`${this.name}:made`);
      super.connectionMade(transport);
      if (this.greet) {
        transport.write(encode("hi"));
        transport.writeEof();
      }
    }
    override dataReceived(data: Uint8Array): void {
      order.push(`${this.name}:data`);
      super.dataReceived(data);
    }
  }
  const a = new Side("A", true);
  const b = new Side("B", false);
  createTransportPair(a, b);
  // Both connectionMade calls happen before createTransportPair returns,
  // and no data was delivered yet.
  assert.deepEqual(order, ["A:made", "B:made"]);
  await withTimeout(Promise.all([a.lost, b.lost]));
  assert.deepEqual(order, ["A:made", "B:made", "B:data"]);
  assert.equal(b.order(), "made data* eof lost");
  assert.equal(a.order(), "made eof lost");
  assert.equal(b.text(), "hi");
});

Deno.test("pair: delivery is asynchronous and write() copies the bytes", async () => {
  const sink = new RecordingProtocol();
  const [a] = createTransportPair(new Protocol(), sink);
  const data = encode("abc");
  a.write(data);
  assert.equal(sink.chunks.length, 0, "nothing delivered inside write()");
  data[0] = 0x7a; // "z": must not change what is sent
  await a.flushed();
  assert.equal(sink.text(), "abc");
  a.close();
  await withTimeout(sink.lost);
});

Deno.test("pair: pauseReading holds data until resumeReading", async () => {
  const sink = new RecordingProtocol();
  const [a, b] = createTransportPair(new Protocol(), sink);
  b.pauseReading();
  assert.equal(b.isReading(), false);
  a.write(encode("held"));
  const flushed = a.flushed();
  let done = false;
  flushed.then(() => done = true);
  await settle();
  assert.equal(sink.chunks.length, 0);
  assert.equal(done, false, "flushed() waits for the paused reader");
  b.resumeReading();
  assert.equal(b.isReading(), true);
  await withTimeout(flushed);
  assert.equal(sink.text(), "held");
  a.close();
  await withTimeout(sink.lost);
});

Deno.test("pair: pauseWriting inside the write that crosses high, resumeWriting at low", async () => {
  const writer = new RecordingProtocol();
  const reader = new RecordingProtocol();
  const [a, b] = createTransportPair(writer, reader, {
    socketBufferSize: 1000,
    readSize: 512,
  });
  a.setWriteBufferLimits({ high: 4000, low: 1000 });
  assert.deepEqual(a.getWriteBufferLimits(), [1000, 4000]);
  b.pauseReading();
  a.write(pattern(3000, 1));
  assert.equal(a.getWriteBufferSize(), 3000);
  assert.deepEqual(writer.events, ["made"]);
  a.write(pattern(2000, 2));
  // Synchronously, inside the write that took the buffer above 4000.
  assert.deepEqual(writer.events, ["made", "pauseWriting"]);
  assert.equal(a.getWriteBufferSize(), 5000);
  await settle();
  // The in-memory socket buffer took 1000 bytes; the reader is paused.
  assert.equal(a.getWriteBufferSize(), 4000);
  assert.equal(reader.chunks.length, 0);
  assert.deepEqual(writer.events, ["made", "pauseWriting"]);
  b.resumeReading();
  await withTimeout(a.flushed());
  assert.deepEqual(writer.events, ["made", "pauseWriting", "resumeWriting"]);
  assert.equal(a.getWriteBufferSize(), 0);
  assert.deepEqual(
    reader.received(),
    concat([pattern(3000, 1), pattern(2000, 2)]),
  );
  assert.ok(reader.chunks.every((chunk) => chunk.length <= 512));
  a.close();
  await withTimeout(reader.lost);
});

Deno.test("pair: a reader that pauses from dataReceived gets nothing more until it resumes", async () => {
  const chunks: Uint8Array[] = [];
  let transport: Transport | null = null;
  class Slow extends Protocol {
    override connectionMade(t: Transport) {
      transport = t;
    }
    override dataReceived(data: Uint8Array) {
      chunks.push(data);
      transport!.pauseReading();
    }
  }
  const [a] = createTransportPair(new Protocol(), new Slow(), {
    readSize: 10,
  });
  a.write(pattern(35));
  await settle();
  assert.equal(chunks.length, 1);
  for (let i = 2; i <= 4; i++) {
    transport!.resumeReading();
    await settle();
    assert.equal(chunks.length, i);
  }
  assert.deepEqual(concat(chunks), pattern(35));
  a.close();
  transport!.resumeReading();
  await withTimeout(a.flushed());
});

Deno.test("pair: setWriteBufferLimits validates like the real transport and may pause", () => {
  const writer = new RecordingProtocol();
  const [a, b] = createTransportPair(writer, new Protocol());
  assert.deepEqual(a.getWriteBufferLimits(), [16384, 65536]);
  a.setWriteBufferLimits({ high: 1000 });
  assert.deepEqual(a.getWriteBufferLimits(), [250, 1000]);
  a.setWriteBufferLimits({ low: 100 });
  assert.deepEqual(a.getWriteBufferLimits(), [100, 400]);
  a.setWriteBufferLimits();
  assert.deepEqual(a.getWriteBufferLimits(), [16384, 65536]);
  assert.throws(
    () => a.setWriteBufferLimits({ high: 10, low: 20 }),
    RangeError,
  );
  assert.throws(() => a.setWriteBufferLimits({ low: -1 }), RangeError);
  assert.throws(
    () => a.setWriteBufferLimits({ high: "1" as unknown as number }),
    TypeError,
  );
  assert.throws(
    () => a.setWriteBufferLimits(5 as unknown as { high: number }),
    TypeError,
  );
  a.write(new Uint8Array(500));
  assert.deepEqual(writer.events, ["made"]);
  a.setWriteBufferLimits({ high: 100 });
  assert.deepEqual(writer.events, ["made", "pauseWriting"]);
  a.abort();
  b.abort();
});

Deno.test("pair: writeEof, a truthy eofReceived keeps the peer half-open", async () => {
  const client = new RecordingProtocol();
  const server = new RecordingProtocol({ eofResult: true });
  const clientLost = countLost(client);
  const serverLost = countLost(server);
  const [a, b] = createTransportPair(client, server);
  assert.equal(a.canWriteEof(), true);
  a.write(encode("question"));
  a.writeEof();
  assert.throws(() => a.write(encode("more")), Deno.errors.BadResource);
  await withTimeout(server.eof);
  assert.equal(server.text(), "question");
  assert.equal(b.isClosing(), false, "half-open");
  b.write(encode("answer"));
  b.close();
  await withTimeout(Promise.all([client.lost, server.lost]));
  assert.equal(client.text(), "answer");
  assert.equal(client.order(), "made data* eof lost");
  assert.equal(server.order(), "made data* eof lost");
  await settle();
  assert.deepEqual(clientLost, [null]);
  assert.deepEqual(serverLost, [null]);
});

Deno.test("pair: a falsy eofReceived closes that side", async () => {
  const client = new RecordingProtocol({ eofResult: true });
  const server = new RecordingProtocol();
  const [a, b] = createTransportPair(client, server);
  a.writeEof();
  await withTimeout(server.lost);
  assert.equal(b.isClosing(), true);
  assert.throws(() => b.write(encode("x")), Deno.errors.BrokenPipe);
  // The client got the server's EOF and stays half-open until it closes.
  await withTimeout(client.eof);
  assert.equal(a.isClosing(), false);
  a.close();
  assert.equal(await withTimeout(client.lost), null);
});

Deno.test("pair: canWriteEof false behaves like TLS", async () => {
  const server = new RecordingProtocol({ eofResult: true });
  const [a, b] = createTransportPair(new Protocol(), server, {
    canWriteEof: false,
  });
  assert.equal(a.canWriteEof(), false);
  assert.throws(() => a.writeEof(), Deno.errors.NotSupported);
  a.close();
  // EOF closes the peer even though eofReceived returned true.
  await withTimeout(server.lost);
  assert.equal(b.isClosing(), true);
});

Deno.test("pair: close() flushes what is queued, then both sides lose the connection once", async () => {
  const client = new RecordingProtocol();
  const server = new RecordingProtocol();
  const clientLost = countLost(client);
  const serverLost = countLost(server);
  const [a, b] = createTransportPair(client, server, {
    socketBufferSize: 100,
  });
  b.pauseReading();
  a.write(pattern(1000));
  a.close();
  a.close(); // a no-op
  assert.equal(a.isClosing(), true);
  assert.equal(a.isReading(), false);
  assert.throws(() => a.write(encode("x")), Deno.errors.BadResource);
  await settle();
  assert.deepEqual(clientLost, [], "still flushing into a paused peer");
  b.resumeReading();
  await withTimeout(Promise.all([client.lost, server.lost]));
  await settle();
  assert.deepEqual(server.received(), pattern(1000));
  assert.deepEqual(clientLost, [null]);
  assert.deepEqual(serverLost, [null]);
  assert.equal(server.order(), "made data* eof lost");
});

Deno.test("pair: abort() discards the buffer; the peer gets what was sent, then EOF", async () => {
  const client = new RecordingProtocol();
  const server = new RecordingProtocol();
  const [a, b] = createTransportPair(client, server, {
    socketBufferSize: 100,
  });
  b.pauseReading();
  a.write(pattern(1000));
  await settle();
  assert.equal(a.getWriteBufferSize(), 900);
  a.abort();
  assert.equal(a.getWriteBufferSize(), 0);
  assert.throws(() => a.write(encode("x")), Deno.errors.BadResource);
  assert.equal(await withTimeout(client.lost), null);
  b.resumeReading();
  assert.equal(await withTimeout(server.lost), null);
  assert.deepEqual(server.received(), pattern(100));
  assert.equal(server.order(), "made data* eof lost");
});

Deno.test("pair: write() rejects non-bytes with TypeError", () => {
  const [a, b] = createTransportPair(new Protocol(), new Protocol());
  assert.throws(() => a.write("text" as unknown as Uint8Array), TypeError);
  assert.throws(() => a.write([1, 2] as unknown as Uint8Array), TypeError);
  assert.throws(
    () => a.writeLines([encode("ok"), "no" as unknown as Uint8Array]),
    TypeError,
  );
  assert.throws(
    () => a.writeLines(5 as unknown as Iterable<Uint8Array>),
    TypeError,
  );
  assert.equal(a.getWriteBufferSize(), 0, "a bad writeLines writes nothing");
  a.abort();
  b.abort();
});

Deno.test("pair: writeLines writes each chunk in order", async () => {
  const sink = new RecordingProtocol();
  const [a] = createTransportPair(new Protocol(), sink);
  a.writeLines([encode("a\n"), encode("b\n"), encode("c\n")]);
  await a.flushed();
  assert.equal(sink.text(), "a\nb\nc\n");
  a.close();
  await withTimeout(sink.lost);
});

Deno.test("pair: a throwing dataReceived goes to the exception handler and aborts that side", async () => {
  await withExceptionHandler(async (contexts) => {
    const failure = new Error("parse error");
    class Broken extends RecordingProtocol {
      override dataReceived(data: Uint8Array): void {
        super.dataReceived(data);
        throw failure;
      }
    }
    const client = new RecordingProtocol();
    const server = new Broken();
    const [a, b] = createTransportPair(client, server);
    a.write(encode("boom"));
    assert.equal(await withTimeout(server.lost), failure);
    assert.equal(contexts.length, 1);
    assert.equal(contexts[0].message, "Exception in protocol.dataReceived()");
    assert.equal(contexts[0].exception, failure);
    assert.equal(contexts[0].transport, b);
    assert.equal(contexts[0].protocol, server);
    // The other side sees EOF and closes.
    assert.equal(await withTimeout(client.lost), null);
    assert.equal(client.order(), "made eof lost");
    assert.throws(() => b.write(encode("x")), (e) => e === failure);
    assert.equal(a.isClosing(), true);
  });
});

Deno.test("pair: a throwing connectionMade is reported and ends that side", async () => {
  await withExceptionHandler(async (contexts) => {
    const failure = new Error("no");
    class Refuse extends RecordingProtocol {
      override connectionMade(transport: Transport): void {
        super.connectionMade(transport);
        throw failure;
      }
    }
    const client = new RecordingProtocol();
    const server = new Refuse();
    createTransportPair(client, server);
    assert.equal(await withTimeout(server.lost), failure);
    assert.equal(await withTimeout(client.lost), null);
    assert.equal(contexts.length, 1);
    assert.equal(contexts[0].message, "Exception in protocol.connectionMade()");
  });
});

Deno.test("pair: errors in pauseWriting and connectionLost are reported only", async () => {
  await withExceptionHandler(async (contexts) => {
    class Grumpy extends RecordingProtocol {
      override pauseWriting(): void {
        super.pauseWriting();
        throw new Error("pause");
      }
      override connectionLost(exc: Error | null): void {
        super.connectionLost(exc);
        throw new Error("lost");
      }
    }
    const grumpy = new Grumpy();
    const [a] = createTransportPair(grumpy, new Protocol());
    a.setWriteBufferLimits({ high: 1 });
    a.write(encode("xx"));
    assert.equal(a.isClosing(), false);
    a.close();
    await withTimeout(grumpy.lost);
    await settle();
    assert.deepEqual(contexts.map((c) => c.message), [
      "protocol.pauseWriting() failed",
      "Exception in protocol.connectionLost()",
    ]);
  });
});

Deno.test("pair: data sent towards a side that is gone ends the writer with BrokenPipe", async () => {
  await withExceptionHandler(async (contexts) => {
    const client = new RecordingProtocol();
    const server = new RecordingProtocol({ eofResult: true });
    const [a, b] = createTransportPair(client, server);
    a.close();
    await withTimeout(Promise.all([client.lost, server.eof]));
    b.write(encode("too late"));
    const exc = await withTimeout(server.lost);
    assert.ok(exc instanceof Deno.errors.BrokenPipe);
    assert.throws(() => b.write(encode("x")), Deno.errors.BrokenPipe);
    assert.equal(contexts.length, 0, "broken pipes are not reported");
    assert.equal(client.receivedLength, 0);
  });
});

Deno.test("pair: breakConnection fails both sides; only unusual errors are reported", async () => {
  await withExceptionHandler(async (contexts) => {
    const client = new RecordingProtocol();
    const server = new RecordingProtocol();
    const [a] = createTransportPair(client, server);
    a.breakConnection();
    const [e1, e2] = await withTimeout(Promise.all([client.lost, server.lost]));
    assert.ok(e1 instanceof Deno.errors.ConnectionReset);
    assert.equal(e2, e1);
    assert.equal(contexts.length, 0);
    assert.throws(() => a.write(encode("x")), Deno.errors.ConnectionReset);

    const odd = new Error("cosmic ray");
    const c2 = new RecordingProtocol();
    const s2 = new RecordingProtocol();
    const [x] = createTransportPair(c2, s2);
    x.breakConnection(odd);
    await withTimeout(Promise.all([c2.lost, s2.lost]));
    assert.equal(c2.lostError, odd);
    assert.equal(contexts.length, 2);
    assert.equal(contexts[0].message, "Fatal read error on transport");
    assert.throws(
      () => x.breakConnection("no" as unknown as Error),
      TypeError,
    );
  });
});

Deno.test("pair: getExtraInfo gives fake addresses, configurable", () => {
  const [a, b] = createTransportPair(new Protocol(), new Protocol());
  assert.deepEqual(a.getExtraInfo("sockname"), {
    transport: "tcp",
    hostname: "127.0.0.1",
    port: 49152,
  });
  assert.deepEqual(a.getExtraInfo("peername"), b.getExtraInfo("sockname"));
  assert.deepEqual(b.getExtraInfo("peername"), a.getExtraInfo("sockname"));
  assert.equal((b.getExtraInfo("sockname") as Deno.NetAddr).port, 8888);
  assert.equal(a.getExtraInfo("socket"), undefined);
  assert.equal(a.getExtraInfo("conn", "none"), "none");
  a.abort();
  b.abort();

  const addrA: Deno.UnixAddr = { transport: "unix", path: "/tmp/a.sock" };
  const addrB: Deno.NetAddr = { transport: "tcp", hostname: "::1", port: 1 };
  const [c, d] = createTransportPair(new Protocol(), new Protocol(), {
    addrA,
    addrB,
  });
  assert.equal(c.getExtraInfo("sockname"), addrA);
  assert.equal(c.getExtraInfo("peername"), addrB);
  assert.equal(d.getExtraInfo("peername"), addrA);
  c.abort();
  d.abort();
});

Deno.test("pair: bad arguments are rejected", () => {
  const p = new Protocol();
  assert.throws(
    () => createTransportPair(null as unknown as Protocol, p),
    TypeError,
  );
  assert.throws(
    () => createTransportPair(p, p, 1 as unknown as { readSize: number }),
    TypeError,
  );
  assert.throws(
    () => createTransportPair(p, p, { socketBufferSize: 0 }),
    RangeError,
  );
  assert.throws(
    () => createTransportPair(p, p, { socketBufferSize: 1.5 }),
    RangeError,
  );
  assert.throws(
    () => createTransportPair(p, p, { readSize: Infinity }),
    RangeError,
  );
  assert.throws(
    () => createTransportPair(p, p, { readSize: "1" as unknown as number }),
    TypeError,
  );
  assert.throws(
    () => createTransportPair(p, p, { addrA: "x" as unknown as Deno.Addr }),
    TypeError,
  );
  assert.throws(
    () => createTransportPair(p, p, { canWriteEof: 1 as unknown as boolean }),
    TypeError,
  );
});

Deno.test("pair: an unbounded socket buffer never leaves bytes in the writer", async () => {
  const writer = new RecordingProtocol();
  const reader = new RecordingProtocol();
  const [a, b] = createTransportPair(writer, reader, {
    socketBufferSize: Infinity,
  });
  b.pauseReading();
  a.write(new Uint8Array(200_000));
  assert.deepEqual(writer.events, ["made", "pauseWriting"]);
  await settle();
  assert.equal(a.getWriteBufferSize(), 0);
  assert.deepEqual(writer.events, ["made", "pauseWriting", "resumeWriting"]);
  b.resumeReading();
  await withTimeout(a.flushed());
  assert.equal(reader.receivedLength, 200_000);
  a.abort();
  await withTimeout(reader.lost);
});

Deno.test("pair: a BufferedProtocol receives through getBuffer/bufferUpdated", async () => {
  class Collect extends BufferedProtocol {
    #buffer = new Uint8Array(7);
    readonly chunks: Uint8Array[] = [];
    hints: number[] = [];
    eof = false;
    override getBuffer(sizeHint: number): Uint8Array {
      this.hints.push(sizeHint);
      return this.#buffer;
    }
    override bufferUpdated(nbytes: number): void {
      this.chunks.push(this.#buffer.slice(0, nbytes));
    }
    override eofReceived(): void {
      this.eof = true;
    }
  }
  const sink = new Collect();
  const [a] = createTransportPair(new Protocol(), sink);
  a.write(pattern(50));
  a.writeEof();
  await withTimeout(a.flushed());
  assert.deepEqual(concat(sink.chunks), pattern(50));
  assert.ok(sink.chunks.every((c) => c.length <= 7));
  assert.ok(sink.hints.every((h) => h === -1));
  assert.equal(sink.eof, true);
  a.close();
});

Deno.test("pair: a bad getBuffer() result ends the connection with TypeError", async () => {
  await withExceptionHandler(async (contexts) => {
    class Bad extends BufferedProtocol {
      readonly lost = Promise.withResolvers<Error | null>();
      override getBuffer(): Uint8Array {
        return new Uint8Array(0);
      }
      override connectionLost(exc: Error | null): void {
        this.lost.resolve(exc);
      }
    }
    const bad = new Bad();
    const [a] = createTransportPair(new Protocol(), bad);
    a.write(encode("x"));
    const exc = await withTimeout(bad.lost.promise);
    assert.ok(exc instanceof TypeError);
    assert.equal(contexts[0].message, "Exception in protocol.getBuffer()");
  });
});

Deno.test("pair: flushed() covers EOF and resolves when the peer is gone", async () => {
  const sink = new RecordingProtocol({ eofResult: true });
  const [a, b] = createTransportPair(new Protocol(), sink);
  a.write(encode("x"));
  a.writeEof();
  await withTimeout(a.flushed());
  assert.equal(sink.order(), "made data* eof");
  b.close();
  await withTimeout(sink.lost);

  // A peer that closes without reading: flushed() does not wait forever.
  const other = new RecordingProtocol();
  const [c, d] = createTransportPair(new Protocol(), other);
  d.pauseReading();
  c.write(encode("never read"));
  const flushed = c.flushed();
  d.close();
  await withTimeout(flushed);
  assert.equal(other.receivedLength, 0);
  await withTimeout(other.lost);
  c.abort();
});

// ---- streams over in-memory transports ----

Deno.test("streams: readLine, write and drain between two in-memory ends", async () => {
  const [[clientReader, clientWriter], [serverReader, serverWriter]] =
    createStreamPair();
  clientWriter.write(encode("HELO example\r\n"));
  await clientWriter.drain();
  assert.equal(decode(await serverReader.readLine()), "HELO example\r\n");
  serverWriter.write(encode("250 ok\r\n"));
  await serverWriter.drain();
  assert.equal(
    decode(await clientReader.readUntil("\r\n")),
    "250 ok\r\n",
  );
  assert.deepEqual(
    clientWriter.getExtraInfo("peername"),
    serverWriter.getExtraInfo("sockname"),
  );
  clientWriter.close();
  assert.equal((await serverReader.read()).length, 0, "EOF");
  serverWriter.close();
  await withTimeout(
    Promise.all([clientWriter.waitClosed(), serverWriter.waitClosed()]),
  );
});

Deno.test("streams: drain() waits while the reader is slow; every byte arrives", async () => {
  const [[, writer], [reader]] = createStreamPair({
    limit: 1024,
    socketBufferSize: 1024,
  });
  writer.transport.setWriteBufferLimits({ high: 4096 });
  const payload = pattern(64 * 1024, 3);
  writer.write(payload);
  let drained = false;
  const drain = writer.drain().then(() => drained = true);
  await settle();
  assert.equal(drained, false, "drain waits while above the high mark");
  const received: Uint8Array[] = [];
  let total = 0;
  while (total < payload.length) {
    const chunk = await withTimeout(reader.read(4096));
    assert.ok(chunk.length > 0);
    received.push(chunk);
    total += chunk.length;
  }
  await withTimeout(drain);
  assert.deepEqual(concat(received), payload);
  writer.close();
  assert.equal((await reader.read()).length, 0);
});

Deno.test("streams: the reader pauses its transport above 2 × limit", async () => {
  const [[, writer], [reader, readerSideWriter]] = createStreamPair({
    limit: 100,
  });
  writer.write(new Uint8Array(1000));
  await settle();
  assert.equal(readerSideWriter.transport.isReading(), false);
  assert.equal((await reader.readExactly(1000)).length, 1000);
  assert.equal(readerSideWriter.transport.isReading(), true);
  writer.close();
  readerSideWriter.close();
  await withTimeout(readerSideWriter.waitClosed());
});

Deno.test("streams: drain() rejects once the connection breaks", async () => {
  const [[reader, writer], [, other]] = createStreamPair();
  writer.transport.setWriteBufferLimits({ high: 0 });
  (other.transport as MemoryTransport).pauseReading();
  writer.write(encode("stuck"));
  const drain = writer.drain();
  (writer.transport as MemoryTransport).breakConnection();
  await assert.rejects(withTimeout(drain), Deno.errors.ConnectionReset);
  await assert.rejects(reader.read(), Deno.errors.ConnectionReset);
  await assert.rejects(writer.waitClosed(), Deno.errors.ConnectionReset);
  await assert.rejects(other.waitClosed(), Deno.errors.ConnectionReset);
});

Deno.test("streams: drain() on a flowing connection resolves, and throws the reader's error once it has one", async () => {
  const [[reader, writer], [otherReader, other]] = createStreamPair();
  // Not paused, not closing: nothing to wait for.
  await withTimeout(writer.drain());
  const boom = new Error("boom");
  reader.setException(boom);
  // Still flowing, but the reader failed: drain() says so (asyncio).
  await assert.rejects(writer.drain(), (error) => error === boom);
  writer.close();
  other.close();
  assert.equal((await otherReader.read()).length, 0);
  await writer.waitClosed();
  await other.waitClosed();
});

Deno.test("streams: openMemoryConnection runs a startServer handler", async () => {
  let peer: unknown;
  async function upper(reader: StreamReader, writer: StreamWriter) {
    peer = writer.getExtraInfo("peername");
    for await (const line of reader) {
      writer.write(encode(decode(line).toUpperCase()));
      await writer.drain();
    }
    writer.close();
  }
  const [reader, writer] = await openMemoryConnection(upper, {
    addrA: { transport: "tcp", hostname: "192.0.2.1", port: 5555 },
  });
  writer.write(encode("one\ntwo\n"));
  assert.equal(decode(await reader.readLine()), "ONE\n");
  assert.equal(decode(await reader.readLine()), "TWO\n");
  writer.writeEof();
  assert.equal((await reader.read()).length, 0, "the handler closed");
  assert.deepEqual(peer, {
    transport: "tcp",
    hostname: "192.0.2.1",
    port: 5555,
  });
  writer.close();
  await withTimeout(writer.waitClosed());
});

Deno.test("streams: a failing handler is reported and its connection closes", async () => {
  await withExceptionHandler(async (contexts) => {
    const failure = new Error("handler failed");
    const [reader, writer] = await openMemoryConnection(async (r) => {
      await r.readLine();
      throw failure;
    });
    writer.write(encode("go\n"));
    assert.equal((await withTimeout(reader.read())).length, 0);
    assert.equal(contexts.length, 1);
    assert.equal(contexts[0].exception, failure);
    assert.equal(
      contexts[0].message,
      "Unhandled exception in client_connected_cb",
    );
    writer.close();
    await withTimeout(writer.waitClosed());
  });
  await assert.rejects(
    openMemoryConnection("nope" as unknown as () => void),
    TypeError,
  );
  await assert.rejects(
    openMemoryConnection(() => {}, { limit: 0 }),
    RangeError,
  );
  assert.throws(() => createStreamPair({ limit: -1 }), RangeError);
});

// ---- RecordingTransport ----

Deno.test("recording: records writes; value(), text(), writes, clear()", () => {
  const transport = new RecordingTransport();
  const data = encode("ab");
  transport.write(data);
  data[0] = 0x7a;
  transport.writeLines([encode("c"), encode("d")]);
  transport.write(new Uint8Array(0));
  assert.equal(transport.text(), "abcd");
  assert.deepEqual(transport.value(), encode("abcd"));
  assert.deepEqual(transport.writes.map(decode), ["ab", "c", "d"]);
  transport.clear();
  assert.equal(transport.value().length, 0);
  assert.equal(transport.writes.length, 0);
  assert.throws(() => transport.write("x" as unknown as Uint8Array), TypeError);
  assert.ok(transport.getProtocol() instanceof Protocol);
});

Deno.test("recording: drives a protocol: connectionMade, receive, receiveEof, close", async () => {
  const echo = new Echo();
  const lost: Array<Error | null> = [];
  echo.connectionLost = (exc) => lost.push(exc);
  const transport = new RecordingTransport(echo);
  assert.equal(echo.transport, transport);
  const input = encode("ping");
  transport.receive(input);
  assert.equal(transport.text(), "ping", "delivered synchronously");
  transport.receiveEof();
  assert.equal(transport.isClosing(), true, "a falsy eofReceived closes");
  assert.equal(transport.closed, false, "not closed by the protocol");
  assert.deepEqual(lost, [], "connectionLost comes in a microtask");
  await settle();
  assert.deepEqual(lost, [null]);
  assert.equal(transport.lost, true);
  assert.throws(() => transport.write(encode("x")), Deno.errors.BrokenPipe);
  assert.throws(() => transport.receive(encode("x")), Deno.errors.BadResource);
  transport.loseConnection();
  await settle();
  assert.deepEqual(lost, [null], "exactly once");
});

Deno.test("recording: close, abort and writeEof states", async () => {
  const p1 = new RecordingProtocol();
  const t1 = new RecordingTransport(p1);
  t1.write(encode("bye"));
  t1.writeEof();
  assert.equal(t1.eofWritten, true);
  assert.throws(() => t1.write(encode("x")), Deno.errors.BadResource);
  t1.close();
  assert.equal(t1.closed, true);
  assert.equal(t1.aborted, false);
  assert.equal(t1.isClosing(), true);
  assert.equal(await withTimeout(p1.lost), null);
  assert.throws(() => t1.write(encode("x")), Deno.errors.BadResource);
  assert.equal(t1.text(), "bye");

  const p2 = new RecordingProtocol();
  const t2 = new RecordingTransport(p2);
  t2.setWriteBufferSize(10);
  t2.abort();
  assert.equal(t2.aborted, true);
  assert.equal(t2.closed, true);
  assert.equal(t2.getWriteBufferSize(), 0);
  assert.equal(await withTimeout(p2.lost), null);
  assert.throws(() => t2.setWriteBufferSize(1), Deno.errors.BadResource);

  const t3 = new RecordingTransport(new Protocol(), { canWriteEof: false });
  assert.equal(t3.canWriteEof(), false);
  assert.throws(() => t3.writeEof(), Deno.errors.NotSupported);
  t3.abort();
  await settle();
});

Deno.test("recording: a truthy eofReceived keeps it half-open", async () => {
  const protocol = new RecordingProtocol({ eofResult: true });
  const transport = new RecordingTransport(protocol);
  transport.receive(encode("q"));
  transport.receiveEof();
  assert.equal(transport.isClosing(), false);
  assert.throws(() => transport.receiveEof(), Deno.errors.BadResource);
  assert.throws(() => transport.receive(encode("x")), Deno.errors.BadResource);
  transport.write(encode("a"));
  transport.close();
  await withTimeout(protocol.lost);
  assert.equal(protocol.order(), "made data* eof lost");
});

Deno.test("recording: pauseReading holds received data and EOF", async () => {
  const protocol = new RecordingProtocol();
  const transport = new RecordingTransport(protocol);
  transport.pauseReading();
  assert.equal(transport.isReading(), false);
  transport.receive(encode("a"));
  transport.receive(encode("b"));
  transport.receiveEof();
  assert.equal(protocol.chunks.length, 0);
  transport.resumeReading();
  assert.equal(
    protocol.chunks.length,
    0,
    "delivered after resume, not inside it",
  );
  await settle();
  assert.equal(protocol.text(), "ab");
  assert.equal(protocol.order(), "made data* eof lost");
});

Deno.test("recording: setWriteBufferSize drives pauseWriting/resumeWriting", async () => {
  const protocol = new RecordingProtocol();
  const transport = new RecordingTransport(protocol);
  transport.setWriteBufferLimits({ high: 100, low: 10 });
  transport.setWriteBufferSize(100);
  assert.deepEqual(protocol.events, ["made"]);
  // Stalled network: writes add to the buffer and may cross high.
  transport.write(encode("x"));
  assert.equal(transport.getWriteBufferSize(), 101);
  assert.deepEqual(protocol.events, ["made", "pauseWriting"]);
  transport.setWriteBufferSize(11);
  assert.deepEqual(protocol.events, ["made", "pauseWriting"]);
  transport.setWriteBufferSize(10);
  assert.deepEqual(protocol.events, ["made", "pauseWriting", "resumeWriting"]);
  // close() waits until the buffer is empty.
  transport.close();
  await settle();
  assert.equal(protocol.lostError, undefined);
  transport.setWriteBufferSize(0);
  assert.equal(await withTimeout(protocol.lost), null);
  assert.throws(() => transport.setWriteBufferSize(-1), RangeError);
  assert.throws(() => transport.setWriteBufferSize(1.5), RangeError);
  assert.throws(
    () => transport.setWriteBufferSize("1" as unknown as number),
    TypeError,
  );
  assert.throws(
    () => transport.setWriteBufferLimits({ high: 1, low: 2 }),
    RangeError,
  );
});

Deno.test("recording: loseConnection(exc) calls connectionLost now; writes then throw it", async () => {
  await withExceptionHandler((contexts) => {
    const protocol = new RecordingProtocol();
    const transport = new RecordingTransport(protocol);
    const reset = new Deno.errors.ConnectionReset("reset");
    transport.loseConnection(reset);
    assert.equal(protocol.lostError, reset, "synchronously");
    assert.equal(transport.lost, true);
    assert.throws(() => transport.write(encode("x")), (e) => e === reset);
    assert.equal(contexts.length, 0);

    const odd = new Error("odd");
    const other = new RecordingTransport(new RecordingProtocol());
    other.loseConnection(odd);
    assert.equal(contexts.length, 1);
    assert.equal(contexts[0].exception, odd);
    assert.throws(
      () => other.loseConnection("x" as unknown as Error),
      TypeError,
    );
  });
});

Deno.test("recording: a throwing callback is reported and ends the connection", async () => {
  await withExceptionHandler(async (contexts) => {
    const failure = new Error("bad input");
    class Strict extends RecordingProtocol {
      override dataReceived(data: Uint8Array): void {
        super.dataReceived(data);
        throw failure;
      }
    }
    const protocol = new Strict();
    const transport = new RecordingTransport(protocol);
    transport.receive(encode("?"));
    assert.equal(transport.isClosing(), true);
    assert.equal(await withTimeout(protocol.lost), failure);
    assert.equal(contexts.length, 1);
    assert.equal(contexts[0].message, "Exception in protocol.dataReceived()");
    assert.equal(contexts[0].transport, transport);
  });
});

Deno.test("recording: getExtraInfo and a BufferedProtocol", () => {
  const sockname: Deno.NetAddr = {
    transport: "tcp",
    hostname: "10.0.0.1",
    port: 443,
  };
  class Small extends BufferedProtocol {
    #buffer = new Uint8Array(3);
    readonly got: number[] = [];
    override getBuffer(): Uint8Array {
      return this.#buffer;
    }
    override bufferUpdated(n: number): void {
      this.got.push(...this.#buffer.subarray(0, n));
    }
  }
  const protocol = new Small();
  const transport = new RecordingTransport(protocol, {
    sockname,
    extra: { alpnProtocol: "h2" },
  });
  assert.equal(transport.getExtraInfo("sockname"), sockname);
  assert.equal(
    (transport.getExtraInfo("peername") as Deno.NetAddr).port,
    49152,
  );
  assert.equal(transport.getExtraInfo("alpnProtocol"), "h2");
  assert.equal(transport.getExtraInfo("conn", 1), 1);
  transport.receive(new Uint8Array([1, 2, 3, 4, 5, 6, 7]));
  assert.deepEqual(protocol.got, [1, 2, 3, 4, 5, 6, 7]);
  assert.throws(
    () => new RecordingTransport(null as unknown as Protocol),
    TypeError,
  );
  assert.throws(
    () =>
      new RecordingTransport(undefined, {
        peername: 5 as unknown as Deno.Addr,
      }),
    TypeError,
  );
  transport.abort();
});

// ---- FakeClock ----

Deno.test("clock: advance runs due timers in order; cancel prevents", () => {
  const clock = new FakeClock();
  const fired: Array<[string, number]> = [];
  const record = (name: string) => fired.push([name, clock.time()]);
  clock.callLater(30, record, "c");
  clock.callLater(10, record, "a");
  const cancelled = clock.callLater(20, record, "never");
  clock.callAt(10, record, "a2"); // same time: scheduling order
  clock.callLater(100, record, "late");
  assert.ok(cancelled instanceof TimerHandle);
  assert.equal(cancelled.when(), 20);
  cancelled.cancel();
  assert.equal(clock.advance(9), 0);
  assert.equal(clock.time(), 9);
  assert.equal(clock.advance(21), 3);
  assert.deepEqual(fired, [["a", 10], ["a2", 10], ["c", 30]]);
  assert.equal(clock.time(), 30);
  assert.deepEqual(clock.pendingTimers().map((t) => t.when()), [100]);
  assert.equal(clock.runAll(), 1);
  assert.equal(clock.time(), 100);
  assert.equal(clock.pendingTimers().length, 0);
});

Deno.test("clock: a self-rescheduling timer fires once per period within one advance", () => {
  const clock = new FakeClock({ start: 1000 });
  const ticks: number[] = [];
  const tick = () => {
    ticks.push(clock.time());
    if (ticks.length < 5) clock.callLater(100, tick);
  };
  clock.callLater(100, tick);
  assert.equal(clock.advance(350), 3);
  assert.deepEqual(ticks, [1100, 1200, 1300]);
  assert.equal(clock.time(), 1350);
  assert.equal(clock.runAll(), 2);
  assert.deepEqual(ticks, [1100, 1200, 1300, 1400, 1500]);
});

Deno.test("clock: advanceAsync lets async code schedule within the window", async () => {
  const clock = new FakeClock();
  const sleep = (ms: number) =>
    new Promise<void>((resolve) => clock.callLater(ms, resolve));
  const log: number[] = [];
  const task = (async () => {
    for (let i = 0; i < 3; i++) {
      await sleep(10);
      log.push(clock.time());
    }
  })();
  assert.equal(clock.advance(30), 1, "sync advance sees only the first timer");
  assert.equal(await clock.advanceAsync(20), 2);
  await withTimeout(task);
  // The first continuation ran after advance(30) had returned (time 30);
  // advanceAsync ran the next ones at their own due times.
  assert.deepEqual(log, [30, 40, 50]);
});

Deno.test("clock: timer errors go to the exception handler; bad input is rejected", async () => {
  await withExceptionHandler((contexts) => {
    const clock = new FakeClock();
    const failure = new Error("timer failed");
    let after = false;
    clock.callLater(1, () => {
      throw failure;
    });
    clock.callLater(2, () => after = true);
    assert.equal(clock.advance(5), 2);
    assert.equal(after, true, "later timers still run");
    assert.equal(contexts.length, 1);
    assert.equal(contexts[0].exception, failure);
    assert.equal(contexts[0].message, "Exception in callback");

    assert.throws(() => clock.advance(-1), RangeError);
    assert.throws(() => clock.advance(Infinity), RangeError);
    assert.throws(() => clock.advance("1" as unknown as number), TypeError);
    assert.throws(() => clock.callLater(NaN, () => {}), TypeError);
    assert.throws(
      () => clock.callLater(1, "x" as unknown as () => void),
      TypeError,
    );
    assert.throws(() => new FakeClock({ start: Infinity }), RangeError);
    // advance() from inside a timer is refused (reported as a timer error).
    clock.callLater(0, () => clock.advance(1));
    clock.advance(0);
    assert.ok(contexts[1].exception instanceof Deno.errors.Busy);
  });
});

Deno.test("clock: works where code takes a Clock", () => {
  function withDeadline(clock: Clock, ms: number, onTimeout: () => void) {
    const timer = clock.callLater(ms, onTimeout);
    return { done: () => timer.cancel(), deadline: timer.when() };
  }
  const clock = new FakeClock();
  let timedOut = 0;
  const first = withDeadline(clock, 500, () => timedOut++);
  assert.equal(first.deadline, 500);
  first.done();
  withDeadline(clock, 500, () => timedOut++);
  clock.advance(1000);
  assert.equal(timedOut, 1);
  // The real loop has the same surface.
  const real: Clock = getEventLoop();
  assert.equal(typeof real.time(), "number");
});

Deno.test("clock: withFakeClock swaps the loop's time and timers, then restores them", async () => {
  const loop = getEventLoop();
  let fired = false;
  const result = await withFakeClock(async (clock) => {
    assert.equal(loop.time(), 0);
    const timer = loop.callLater(60_000, () => fired = true);
    assert.equal(timer.when(), 60_000);
    assert.deepEqual(clock.pendingTimers(), [timer]);
    await clock.advanceAsync(59_999);
    assert.equal(fired, false);
    clock.advance(1);
    assert.equal(loop.time(), 60_000);
    return "done";
  });
  assert.equal(result, "done");
  assert.equal(fired, true);
  assert.ok(loop.time() > 0 && loop.time() !== 60_000, "real time again");
  assert.equal(Object.hasOwn(loop, "callLater"), false);
  // A real timer works again.
  const { promise, resolve } = Promise.withResolvers<void>();
  loop.callLater(1, resolve);
  await withTimeout(promise);
});

Deno.test("clock: withFakeClock restores the loop when the function throws", async () => {
  const loop = getEventLoop();
  await assert.rejects(
    withFakeClock(() => {
      throw new Error("inside");
    }, { start: 5 }),
    /inside/,
  );
  assert.equal(Object.hasOwn(loop, "time"), false);
  assert.notEqual(loop.time(), 5);
});

Deno.test("clock: install() returns a disposable; installing twice is refused", () => {
  const loop = getEventLoop();
  const clock = new FakeClock({ start: 42 });
  {
    using _installed = clock.install(loop);
    assert.equal(loop.time(), 42);
    assert.throws(() => clock.install(loop), Deno.errors.Busy);
    let ran = false;
    loop.callAt(50, () => ran = true);
    clock.advance(8);
    assert.equal(ran, true);
  }
  assert.notEqual(loop.time(), 50);
  assert.equal(Object.hasOwn(loop, "callAt"), false);
});

Deno.test("clock: drives a callLater timeout in a protocol over an in-memory pair", async () => {
  // An idle-timeout protocol: closes the connection after 5 s without data.
  class Idle extends Protocol {
    #transport: Transport | null = null;
    #timer: TimerHandle | null = null;
    override connectionMade(transport: Transport): void {
      this.#transport = transport;
      this.#arm();
    }
    override dataReceived(): void {
      this.#arm();
    }
    override connectionLost(): void {
      this.#timer?.cancel();
    }
    #arm(): void {
      this.#timer?.cancel();
      this.#timer = getEventLoop().callLater(
        5000,
        () => this.#transport!.close(),
      );
    }
  }
  await withFakeClock(async (clock) => {
    const client = new RecordingProtocol();
    const [a, b] = createTransportPair(client, new Idle());
    clock.advance(4000);
    a.write(encode("still here"));
    await a.flushed();
    clock.advance(4000);
    assert.equal(b.isClosing(), false, "data re-armed the timer");
    clock.advance(1000);
    assert.equal(b.isClosing(), true);
    assert.equal(await withTimeout(client.lost), null);
    assert.equal(clock.pendingTimers().length, 0);
  });
});

// ---- the example ----

Deno.test("example: examples/testing_protocol.ts runs its checks as a program", async () => {
  // No permissions: the in-memory transports need none.
  const { code, stdout, stderr } = await run(["examples/testing_protocol.ts"], {
    permissions: [],
    timeout: 60_000,
  });
  assert.equal(code, 0, stderr);
  assert.equal(stdout.match(/^ok - /gm)?.length, 4, stdout);
});
