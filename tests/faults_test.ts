// Faults: peers that reset, half-close, never read or trickle; servers shut
// down mid-transfer; TLS peers that send garbage or stall; protocols that
// throw under load; a UDP flood at a slow consumer. Each case checks that
// nothing is lost silently, every connection ends with exactly one
// connectionLost, and memory stays bounded.

import assert from "node:assert/strict";
import {
  createConnection,
  createDatagramEndpoint,
  createServer,
  DatagramProtocol,
  type DatagramTransport,
  openConnection,
  Protocol,
  startServer,
  startTls,
  type StreamReader,
  type StreamWriter,
  type Transport,
} from "../mod.ts";
import {
  bytesEqual,
  collectExceptions,
  concat,
  decode,
  encode,
  listenRaw,
  pattern,
  readAll,
  readExactly,
  RecordingProtocol,
  rssMiB,
  settlesWithin,
  timedOut,
  withTimeout,
  writeAll,
} from "./_helpers.ts";

const KiB = 1024;
const MiB = 1024 * KiB;
const fixtures = new URL("./fixtures/", import.meta.url);
const cert = Deno.readTextFileSync(new URL("tls_cert.pem", fixtures));
const key = Deno.readTextFileSync(new URL("tls_key.pem", fixtures));

/** Counts unhandled promise rejections while a test runs. */
function watchUnhandled(): { count(): number; [Symbol.dispose](): void } {
  let count = 0;
  const onUnhandled = (event: PromiseRejectionEvent) => {
    count++;
    event.preventDefault();
    console.error("unhandled rejection:", event.reason);
  };
  globalThis.addEventListener("unhandledrejection", onUnhandled);
  return {
    count: () => count,
    [Symbol.dispose]: () =>
      globalThis.removeEventListener("unhandledrejection", onUnhandled),
  };
}

/** One turn through the I/O part of the event loop. */
function macrotask(): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, 0));
}

/** A simple order-sensitive checksum (to compare large streams cheaply). */
class Checksum {
  #a = 1;
  #b = 0;
  length = 0;
  update(bytes: Uint8Array): void {
    let a = this.#a;
    let b = this.#b;
    for (let i = 0; i < bytes.length; i++) {
      a = (a + bytes[i]) % 65521;
      b = (b + a) % 65521;
    }
    this.#a = a;
    this.#b = b;
    this.length += bytes.length;
  }
  get value(): string {
    return `${this.length}:${this.#a}:${this.#b}`;
  }
}

function isConnectionError(error: unknown): boolean {
  return error instanceof Deno.errors.ConnectionReset ||
    error instanceof Deno.errors.BrokenPipe ||
    error instanceof Deno.errors.ConnectionAborted;
}

// ---- peer resets mid-stream ----

Deno.test("fault: peer resets mid-stream: the writing transport gets exactly one connectionLost(error), quietly", async () => {
  using seen = collectExceptions();
  using unhandled = watchUnhandled();
  const raw = listenRaw();
  const protocol = new RecordingProtocol();
  try {
    const [transport] = await createConnection(() => protocol, {
      port: raw.port,
    });
    const peer = await raw.accept();
    // More than the kernel buffers hold: the transport is still writing
    // when the peer goes away.
    transport.write(pattern(8 * MiB));
    assert.equal((await readExactly(peer, 1)).length, 1);
    // Closing with unread data makes the kernel send RST.
    peer.close();
    const error = await withTimeout(protocol.lost, 5000, "connectionLost");
    assert.ok(isConnectionError(error), `connectionLost got ${error}`);
    // Give a second connectionLost every chance to show up.
    await macrotask();
    await macrotask();
    assert.equal(protocol.events.filter((e) => e === "lost").length, 1);
    // Deno reports a reset seen by a read as EOF, so an eofReceived may come
    // first; the write that fails then carries the error.
    assert.match(protocol.order(), /^made (eof )?lost$/);
    assert.equal(transport.getWriteBufferSize(), 0);
    assert.throws(() => transport.write(encode("x")), (e) => e === error);
    // A reset is routine: asyncio does not report it to the handler.
    assert.deepEqual(seen.messages(), []);
    assert.equal(unhandled.count(), 0);
  } finally {
    protocol.transport?.abort();
    await protocol.lost;
    raw.close();
  }
});

Deno.test("fault: client resets while a startServer handler writes: drain, reads and waitClosed reject with the error", async () => {
  using seen = collectExceptions();
  using unhandled = watchUnhandled();
  const outcome = Promise.withResolvers<{
    drainError: unknown;
    readError: unknown;
    closedError: unknown;
    readerException: Error | null;
  }>();
  const server = await startServer(async (reader, writer) => {
    let drainError: unknown = null;
    try {
      for (let i = 0; i < 256; i++) {
        writer.write(pattern(256 * KiB, i + 1));
        await writer.drain();
      }
    } catch (error) {
      drainError = error;
    }
    const readError = await reader.read().then(() => null, (e) => e);
    const closedError = await writer.waitClosed().then(() => null, (e) => e);
    outcome.resolve({
      drainError,
      readError,
      closedError,
      readerException: reader.exception(),
    });
  }, { hostname: "127.0.0.1", port: 0 });
  try {
    const { port } = server.addrs[0] as Deno.NetAddr;
    const conn = await Deno.connect({ hostname: "127.0.0.1", port });
    assert.equal((await readExactly(conn, 1)).length, 1);
    conn.close(); // unread data: RST
    const result = await withTimeout(outcome.promise, 10_000, "handler");
    assert.ok(isConnectionError(result.drainError), `${result.drainError}`);
    // The error the transport saw is the one every later wait gets.
    assert.equal(result.readError, result.drainError);
    assert.equal(result.closedError, result.drainError);
    assert.equal(result.readerException, result.drainError);
    server.close();
    await withTimeout(server.waitClosed(), 5000, "waitClosed");
    assert.deepEqual(seen.messages(), []);
    assert.equal(unhandled.count(), 0);
  } finally {
    server.close();
    server.abortClients();
    await server.waitClosed();
  }
});

// ---- peer half-closes ----

Deno.test("fault: peer half-closes: data, one eofReceived, the reply still goes out, then one connectionLost(null)", async () => {
  const serverProtocol = new RecordingProtocol({ eofResult: true });
  const server = await createServer(() => serverProtocol, {
    hostname: "127.0.0.1",
    port: 0,
  });
  try {
    const { port } = server.addrs[0] as Deno.NetAddr;
    const conn = await Deno.connect({ hostname: "127.0.0.1", port });
    const request = pattern(300 * KiB, 7);
    await writeAll(conn, request);
    await conn.closeWrite();
    await withTimeout(serverProtocol.eof, 5000, "eofReceived");
    assert.ok(bytesEqual(serverProtocol.received(), request));
    // Half-open: the server may still answer, after the peer's EOF.
    const transport = serverProtocol.transport!;
    const reply = pattern(1 * MiB, 8);
    transport.write(reply);
    transport.close();
    const got = await withTimeout(readAll(conn), 5000, "reply");
    assert.ok(bytesEqual(got, reply), `reply: ${got.length} bytes`);
    assert.equal(await withTimeout(serverProtocol.lost, 5000, "lost"), null);
    assert.equal(serverProtocol.order(), "made data* eof lost");
    conn.close();
  } finally {
    server.close();
    server.abortClients();
    await server.waitClosed();
  }
});

Deno.test("fault: peer half-closes on streams: read(-1) gets everything, the answer after EOF arrives whole", async () => {
  const server = await startServer(async (reader, writer) => {
    const request = await reader.read(-1);
    assert.ok(reader.atEof());
    writer.write(encode(`${request.length}\n`));
    writer.write(request.reverse());
    await writer.drain();
    writer.close();
    await writer.waitClosed();
  }, { hostname: "127.0.0.1", port: 0 });
  try {
    const { port } = server.addrs[0] as Deno.NetAddr;
    const [reader, writer] = await openConnection({ port });
    const request = pattern(2 * MiB, 3);
    writer.write(request);
    writer.writeEof();
    assert.throws(() => writer.write(encode("x")), Deno.errors.BadResource);
    const header = decode(await withTimeout(reader.readLine(), 5000, "line"));
    assert.equal(header, `${request.length}\n`);
    const body = await withTimeout(reader.read(-1), 5000, "body");
    assert.ok(bytesEqual(body, request.slice().reverse()));
    assert.ok(reader.atEof());
    // Both directions are shut; as in asyncio the transport stays open
    // until closed.
    assert.equal(writer.isClosing(), false);
    writer.close();
    await withTimeout(writer.waitClosed(), 5000, "waitClosed");
  } finally {
    server.close();
    await server.waitClosed();
  }
});

// ---- peer never reads ----

/** Drains within `ms`, or reports a stall (false); the wait is cancelled. */
async function drainWithin(writer: StreamWriter, ms: number): Promise<boolean> {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(new Error("stalled")), ms);
  try {
    await writer.drain({ signal: controller.signal });
    return true;
  } catch (error) {
    if (controller.signal.aborted) return false;
    throw error;
  } finally {
    clearTimeout(timer);
  }
}

Deno.test("fault: peer never reads: a writer that awaits drain() stalls with bounded memory and loses nothing", async () => {
  const raw = listenRaw();
  const chunk = new Uint8Array(64 * KiB);
  const sent = new Checksum();
  let writer: StreamWriter | undefined;
  try {
    const [, w] = await openConnection({ port: raw.port });
    writer = w;
    const peer = await raw.accept();
    const rssBefore = rssMiB();
    let rssMax = rssBefore;
    let stalled = false;
    // Try to push 256 MiB at a peer that reads nothing.
    for (let i = 0; i < (256 * MiB) / chunk.length; i++) {
      chunk.fill(i & 0xff);
      new DataView(chunk.buffer).setUint32(0, i);
      writer.write(chunk);
      sent.update(chunk);
      if (i % 16 === 0) rssMax = Math.max(rssMax, rssMiB());
      if (!(await drainWithin(writer, 750))) {
        stalled = true;
        break;
      }
    }
    rssMax = Math.max(rssMax, rssMiB());
    const [, high] = writer.transport.getWriteBufferLimits();
    const buffered = writer.transport.getWriteBufferSize();
    console.log(
      `never reads: writer stalled after ${
        (sent.length / MiB).toFixed(1)
      } MiB (kernel buffers), transport buffer ${
        (buffered / KiB).toFixed(0)
      } KiB, RSS growth ${(rssMax - rssBefore).toFixed(1)} MiB`,
    );
    assert.ok(stalled, "drain() must wait while the peer does not read");
    assert.ok(sent.length < 64 * MiB, `${sent.length} bytes accepted`);
    // Paused above the high-water mark, by at most the last write.
    assert.ok(buffered > high, `buffer ${buffered} <= high ${high}`);
    assert.ok(buffered <= high + chunk.length, `buffer ${buffered}`);
    assert.ok(rssMax - rssBefore < 8, `RSS grew ${rssMax - rssBefore} MiB`);

    // The peer wakes up: every byte accepted arrives, in order.
    writer.close();
    const received = new Checksum();
    const buffer = new Uint8Array(256 * KiB);
    for (;;) {
      const n = await withTimeout(peer.read(buffer), 5000, "peer read");
      if (n === null) break;
      received.update(buffer.subarray(0, n));
    }
    assert.equal(received.value, sent.value);
    await withTimeout(writer.waitClosed(), 5000, "waitClosed");
  } finally {
    writer?.transport.abort();
    await writer?.waitClosed().catch(() => {});
    raw.close();
  }
});

/** Writes chunks whenever not paused; counts pause/resume calls. */
class Pump extends Protocol {
  transport: Transport | null = null;
  pauses = 0;
  resumes = 0;
  sent = new Checksum();
  #paused = false;
  #budget: number;
  #chunk = new Uint8Array(32 * KiB);
  #index = 0;
  done = Promise.withResolvers<void>();
  lost = Promise.withResolvers<Error | null>();

  constructor(budget: number) {
    super();
    this.#budget = budget;
  }
  override connectionMade(transport: Transport): void {
    this.transport = transport;
    this.pump();
  }
  pump(): void {
    while (!this.#paused && this.sent.length < this.#budget) {
      this.#chunk.fill(this.#index++ & 0xff);
      this.transport!.write(this.#chunk);
      this.sent.update(this.#chunk);
    }
    if (this.sent.length >= this.#budget) this.done.resolve();
  }
  override pauseWriting(): void {
    this.pauses++;
    this.#paused = true;
  }
  override resumeWriting(): void {
    this.resumes++;
    this.#paused = false;
    // Not from inside the transport's callback: keep the stack flat.
    queueMicrotask(() => this.pump());
  }
  override connectionLost(exc: Error | null): void {
    this.lost.resolve(exc);
  }
}

Deno.test("fault: 256 MiB through pauseWriting/resumeWriting to a peer that stops reading, then reads: RSS bounded, every byte arrives", async () => {
  const raw = listenRaw();
  const pump = new Pump(256 * MiB);
  try {
    const rssBefore = rssMiB();
    await createConnection(() => pump, { port: raw.port });
    const peer = await raw.accept();
    // Not reading: the pump must be paused and stay paused.
    assert.equal(await settlesWithin(pump.done.promise, 300), timedOut);
    // Paused now: every pause but the last was followed by a resume.
    assert.ok(pump.pauses >= 1);
    assert.equal(pump.resumes, pump.pauses - 1);
    const sentWhileStalled = pump.sent.length;
    const [, high] = pump.transport!.getWriteBufferLimits();
    assert.ok(pump.transport!.getWriteBufferSize() <= high + 32 * KiB);
    assert.ok(sentWhileStalled < 64 * MiB, `${sentWhileStalled} bytes`);
    // Now the peer reads everything.
    const received = new Checksum();
    const buffer = new Uint8Array(256 * KiB);
    let rssMax = rssMiB();
    let reads = 0;
    while (received.length < 256 * MiB) {
      const n = await withTimeout(peer.read(buffer), 5000, "peer read");
      if (n === null) break;
      received.update(buffer.subarray(0, n));
      if (++reads % 64 === 0) rssMax = Math.max(rssMax, rssMiB());
    }
    await withTimeout(pump.done.promise, 5000, "pump done");
    assert.equal(received.value, pump.sent.value);
    assert.equal(pump.resumes, pump.pauses, "every pause was resumed");
    console.log(
      `pump: 256 MiB, ${pump.pauses} pauses, stalled at ${
        (sentWhileStalled / MiB).toFixed(1)
      } MiB, RSS growth ${(rssMax - rssBefore).toFixed(1)} MiB`,
    );
    assert.ok(rssMax - rssBefore < 16, `RSS grew ${rssMax - rssBefore} MiB`);
    pump.transport!.close();
    assert.equal(await withTimeout(pump.lost.promise, 5000, "lost"), null);
    assert.equal((await readAll(peer)).length, 0);
  } finally {
    pump.transport?.abort();
    await pump.lost.promise;
    raw.close();
  }
});

// ---- reader pauses ----

Deno.test("fault: a reader nobody reads pauses its transport at 2 x limit: the buffered amount is bounded, then all data arrives", async () => {
  const limit = 16 * KiB;
  const raw = listenRaw();
  let writer: StreamWriter | undefined;
  try {
    const [reader, w] = await openConnection({ port: raw.port, limit });
    writer = w;
    const transport = writer.transport;
    const paused = Promise.withResolvers<void>();
    const pauseReading = transport.pauseReading.bind(transport);
    transport.pauseReading = () => {
      paused.resolve();
      pauseReading();
    };
    const peer = await raw.accept();
    const total = 32 * MiB;
    const data = pattern(total, 11);
    let peerWritten = 0;
    const peerDone = (async () => {
      while (peerWritten < total) {
        peerWritten += await peer.write(
          data.subarray(peerWritten, peerWritten + 64 * KiB),
        );
      }
      await peer.closeWrite();
    })();
    await withTimeout(paused.promise, 5000, "pauseReading");
    assert.equal(transport.isReading(), false);
    // Wait until the peer cannot write any more: the kernel buffers are
    // full, so a transport that kept reading would have buffered more.
    let before = -1;
    while (before !== peerWritten) {
      before = peerWritten;
      await settlesWithin(peerDone, 200);
    }
    assert.ok(peerWritten < total, "the peer must be blocked");
    const buffered = (await reader.read(total)).length;
    console.log(
      `reader pause: limit ${limit / KiB} KiB, buffered ${
        (buffered / KiB).toFixed(0)
      } KiB when paused; peer blocked after ${
        (peerWritten / MiB).toFixed(1)
      } MiB`,
    );
    assert.ok(buffered > 2 * limit, `buffered ${buffered}`);
    // At most one transport read (up to 256 KiB) past the 2 x limit mark.
    assert.ok(buffered <= 2 * limit + 256 * KiB, `buffered ${buffered}`);
    assert.equal(transport.isReading(), true, "resumed below the limit");
    // Everything else arrives, in order.
    const rest = await withTimeout(reader.read(-1), 10_000, "rest");
    assert.equal(buffered + rest.length, total);
    assert.ok(bytesEqual(rest, data.subarray(buffered)));
    await peerDone;
  } finally {
    writer?.close();
    await writer?.waitClosed().catch(() => {});
    raw.close();
  }
});

// ---- server shutdown mid-transfer ----

Deno.test("fault: server close() + closeClients() during transfers: every byte queued before is delivered, waitClosed() resolves", async () => {
  const CLIENTS = 20;
  // Each handler streams until the close cuts it off. No fixed length
  // stands in for "mid-transfer": the kernel grows a connection's socket
  // buffers as the peer reads (here up to 4 MiB send + 32 MiB receive), so
  // an 8 MiB stream was sometimes absorbed whole before the close (a busy
  // machine makes the buffers grow more). 1 GiB is only a bound: a handler
  // that gets there was never cut off, and fails the test.
  const MAX_CHUNKS = 16 * 1024;
  const queued = new Map<number, number>();
  const handlerEnds: Promise<unknown>[] = [];
  const server = await startServer((_reader, writer) => {
    const port = (writer.getExtraInfo("peername") as Deno.NetAddr).port;
    queued.set(port, 0);
    const run = (async () => {
      for (let i = 0; i < MAX_CHUNKS; i++) {
        const chunk = pattern(64 * KiB, port).subarray(0);
        // Stamp the chunk index so that order is checked too.
        new DataView(chunk.buffer).setUint32(0, i);
        writer.write(chunk);
        queued.set(port, queued.get(port)! + chunk.length);
        await writer.drain();
      }
    })();
    handlerEnds.push(run.then(() => "finished", (error) => error));
    return run.catch(() => {});
  }, { hostname: "127.0.0.1", port: 0 });
  const { port } = server.addrs[0] as Deno.NetAddr;
  const clients: Array<[StreamReader, StreamWriter]> = [];
  try {
    for (let i = 0; i < CLIENTS; i++) {
      clients.push(await openConnection({ port }));
    }
    // Every client is mid-transfer.
    const firsts = await Promise.all(
      clients.map(([reader]) => withTimeout(reader.readExactly(256 * KiB))),
    );
    server.close();
    server.closeClients();
    // Every client reads to EOF: it must get exactly what was queued.
    await Promise.all(clients.map(async ([reader, writer], i) => {
      const local = (writer.getExtraInfo("sockname") as Deno.NetAddr).port;
      const rest = await withTimeout(reader.read(-1), 10_000, "client EOF");
      const got = concat([firsts[i], rest]);
      assert.equal(got.length, queued.get(local), `client ${i}`);
      const expected = pattern(64 * KiB, local);
      for (let offset = 0; offset < got.length; offset += 64 * KiB) {
        const chunk = got.subarray(offset, offset + 64 * KiB);
        assert.equal(
          new DataView(chunk.buffer, chunk.byteOffset).getUint32(0),
          offset / (64 * KiB),
        );
        assert.ok(bytesEqual(chunk.subarray(4), expected.subarray(4)));
      }
    }));
    await withTimeout(server.waitClosed(), 5000, "waitClosed");
    // The handlers were cut off mid-transfer, with a clear error.
    const ends = await Promise.all(handlerEnds);
    assert.equal(ends.length, CLIENTS);
    for (const end of ends) {
      assert.ok(
        end instanceof Deno.errors.ConnectionReset ||
          end instanceof Deno.errors.BadResource,
        `handler ended with ${end}`,
      );
    }
    await assert.rejects(
      Deno.connect({ hostname: "127.0.0.1", port }),
      Deno.errors.ConnectionRefused,
    );
  } finally {
    for (const [, writer] of clients) writer.close();
    await Promise.all(clients.map(([, w]) => w.waitClosed().catch(() => {})));
    server.close();
    server.abortClients();
    await server.waitClosed();
  }
});

// ---- TLS peers that misbehave ----

Deno.test("fault: TLS server: garbage, a stalled and a truncated handshake are cut off; the server goes on serving", async () => {
  using seen = collectExceptions();
  const server = await startServer(async (reader, writer) => {
    writer.write(await reader.readLine());
    await writer.drain();
    writer.close();
  }, {
    hostname: "127.0.0.1",
    port: 0,
    tls: { cert, key, handshakeTimeout: 400 },
  });
  const { port } = server.addrs[0] as Deno.NetAddr;
  try {
    // 1. Plaintext garbage instead of a ClientHello.
    const garbage = await Deno.connect({ hostname: "127.0.0.1", port });
    await writeAll(garbage, encode("GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
    const t0 = performance.now();
    const answer = await withTimeout(
      readAll(garbage).catch(() => new Uint8Array()),
      5000,
      "garbage cut off",
    );
    // A TLS alert at most, never an echo.
    assert.ok(!decode(answer).includes("GET"));
    assert.ok(performance.now() - t0 < 3000);
    garbage.close();

    // 2. Says nothing; 3. sends a record header and stops mid-record.
    for (const opening of [null, [0x16, 0x03, 0x01, 0x02, 0x00, 0x01]]) {
      // The server's time limit starts at accept, after this.
      const started = performance.now();
      const conn = await Deno.connect({ hostname: "127.0.0.1", port });
      if (opening !== null) await writeAll(conn, new Uint8Array(opening));
      await withTimeout(
        readAll(conn).catch(() => new Uint8Array()),
        5000,
        "stalled handshake cut off",
      );
      const elapsed = performance.now() - started;
      assert.ok(elapsed >= 300 && elapsed < 3000, `cut off after ${elapsed}`);
      conn.close();
    }

    // The server still serves a well-behaved TLS client.
    const [reader, writer] = await openConnection({
      port,
      tls: { caCerts: [cert], serverName: "localhost" },
    });
    writer.write(encode("still here\n"));
    assert.equal(decode(await withTimeout(reader.readLine())), "still here\n");
    writer.close();
    await writer.waitClosed();

    server.close();
    await withTimeout(server.waitClosed(), 5000, "waitClosed");
    const failures = seen.contexts.map((c) => c.exception);
    assert.equal(failures.length, 3, seen.messages().join("; "));
    assert.ok(failures[0] instanceof Deno.errors.InvalidData, `${failures[0]}`);
    assert.ok(failures[1] instanceof Deno.errors.TimedOut, `${failures[1]}`);
    assert.ok(failures[2] instanceof Deno.errors.TimedOut, `${failures[2]}`);
  } finally {
    server.close();
    server.abortClients();
    await server.waitClosed();
  }
});

Deno.test("fault: TLS client: a server that sends garbage or stalls mid-handshake fails the connect, and the socket is released", async () => {
  const raw = listenRaw();
  try {
    // Garbage.
    const connecting = openConnection({
      port: raw.port,
      tls: { caCerts: [cert], serverName: "localhost", handshakeTimeout: 2000 },
    });
    const peer = await raw.accept();
    await readExactly(peer, 5); // the ClientHello's record header
    await writeAll(peer, encode("220 smtp.example.com ESMTP ready\r\n"));
    await assert.rejects(
      withTimeout(connecting, 5000, "garbage"),
      Deno.errors.InvalidData,
    );
    // The client's socket is closed: the raw peer sees EOF or a reset.
    await withTimeout(readAll(peer).catch(() => null), 5000, "client gone");

    // Stalls: accepts, reads the ClientHello, answers nothing.
    for (const partial of [null, new Uint8Array([0x16, 0x03, 0x03, 0x00])]) {
      const started = performance.now();
      const stalled = openConnection({
        port: raw.port,
        tls: { caCerts: [cert], handshakeTimeout: 300 },
      });
      const conn = await raw.accept();
      await readExactly(conn, 5);
      if (partial !== null) await writeAll(conn, partial);
      await assert.rejects(
        withTimeout(stalled, 5000, "stalled"),
        Deno.errors.TimedOut,
      );
      const elapsed = performance.now() - started;
      assert.ok(elapsed >= 250 && elapsed < 3000, `timed out after ${elapsed}`);
      await withTimeout(readAll(conn).catch(() => null), 5000, "client gone");
    }
  } finally {
    raw.close();
  }
});

Deno.test("fault: the peer closes before STARTTLS: startTls fails promptly, not at handshakeTimeout", async () => {
  const server = await startServer(async (_reader, writer) => {
    writer.write(encode("220 go\r\n"));
    await writer.drain();
    writer.close();
  }, { hostname: "127.0.0.1", port: 0 });
  const { port } = server.addrs[0] as Deno.NetAddr;
  try {
    // Streams: the EOF has arrived (and been read) before the upgrade.
    const [reader, writer] = await openConnection({ port });
    assert.equal(decode(await withTimeout(reader.readLine())), "220 go\r\n");
    assert.equal((await withTimeout(reader.read())).length, 0);
    let started = performance.now();
    const streamsError = await withTimeout(
      writer.startTls({
        serverName: "localhost",
        caCerts: [cert],
        handshakeTimeout: 1500,
      }).then(() => null, (e) => e),
      5000,
      "StreamWriter.startTls",
    );
    const streamsElapsed = performance.now() - started;
    writer.transport.abort();
    await writer.waitClosed().catch(() => {});

    // Transports: a half-open transport (eofReceived returned true).
    const protocol = new RecordingProtocol({ eofResult: true });
    const [transport] = await createConnection(() => protocol, { port });
    await withTimeout(protocol.eof, 5000, "eofReceived");
    started = performance.now();
    const transportError = await withTimeout(
      startTls(transport, protocol, {
        serverName: "localhost",
        caCerts: [cert],
        handshakeTimeout: 1500,
      }).then(() => null, (e) => e),
      5000,
      "startTls",
    );
    const transportElapsed = performance.now() - started;
    transport.abort();
    await protocol.lost;

    for (
      const [what, error, elapsed] of [
        ["StreamWriter.startTls", streamsError, streamsElapsed],
        ["startTls", transportError, transportElapsed],
      ] as const
    ) {
      assert.ok(error instanceof Error, `${what} must fail`);
      assert.ok(
        !(error instanceof Deno.errors.TimedOut) && elapsed < 1000,
        `${what}: ${error} after ${Math.round(elapsed)} ms`,
      );
    }
  } finally {
    server.close();
    server.abortClients();
    await server.waitClosed();
  }
});

// ---- slow loris ----

Deno.test("fault: a slow-loris client trickling a line forever is cut off by the read signal; others are served meanwhile", async () => {
  const outcomes: unknown[] = [];
  const cutOff = Promise.withResolvers<void>();
  const server = await startServer(async (reader, writer) => {
    try {
      const line = await reader.readLine({ signal: AbortSignal.timeout(400) });
      writer.write(line);
      await writer.drain();
    } catch (error) {
      outcomes.push(error);
      cutOff.resolve();
    } finally {
      writer.close();
    }
  }, { hostname: "127.0.0.1", port: 0 });
  const { port } = server.addrs[0] as Deno.NetAddr;
  // The server's deadline starts at accept, after this.
  const started = performance.now();
  const loris = await Deno.connect({ hostname: "127.0.0.1", port });
  let trickled = 0;
  const trickle = setInterval(() => {
    // One byte every 20 ms, never a newline (bounded: 10 s at most).
    if (trickled >= 500) return;
    trickled++;
    loris.write(encode("x")).catch(() => {});
  }, 20);
  try {
    // A normal client is served while the loris trickles.
    const [reader, writer] = await openConnection({ port });
    writer.write(encode("hello\n"));
    assert.equal(decode(await withTimeout(reader.readLine())), "hello\n");
    writer.close();
    await writer.waitClosed();
    // The loris is cut off by the deadline, though bytes kept arriving.
    await withTimeout(cutOff.promise, 5000, "loris cut off");
    const elapsed = performance.now() - started;
    clearInterval(trickle);
    assert.ok(elapsed >= 350 && elapsed < 3000, `cut off after ${elapsed}`);
    assert.ok(trickled >= 5, `only ${trickled} bytes trickled`);
    assert.equal(outcomes.length, 1);
    assert.equal((outcomes[0] as DOMException).name, "TimeoutError");
    // The loris sees its connection end.
    await withTimeout(readAll(loris).catch(() => null), 5000, "loris EOF");
    server.close();
    await withTimeout(server.waitClosed(), 5000, "waitClosed");
  } finally {
    clearInterval(trickle);
    loris.close();
    server.close();
    server.abortClients();
    await server.waitClosed();
  }
});

// ---- protocols that throw, under load ----

class Echo extends Protocol {
  #transport: Transport | null = null;
  override connectionMade(transport: Transport): void {
    this.#transport = transport;
  }
  override dataReceived(data: Uint8Array): void {
    this.#transport!.write(data);
  }
}

class ThrowsEverywhere extends Protocol {
  override connectionMade(): void {
    throw new Error("boom in connectionMade");
  }
  override dataReceived(): void {
    throw new Error("boom in dataReceived");
  }
  override eofReceived(): boolean {
    throw new Error("boom in eofReceived");
  }
  override connectionLost(): void {
    throw new Error("boom in connectionLost");
  }
}

class ThrowsOnData extends Protocol {
  override dataReceived(): void {
    throw new Error("boom in dataReceived");
  }
  override connectionLost(): void {
    throw new Error("boom in connectionLost");
  }
}

Deno.test("fault: protocol callbacks that throw on every call, 300 connections at once: each bad one is closed and reported, the rest are served", async () => {
  using seen = collectExceptions();
  const GOOD = 100;
  const BAD = 100; // of each kind
  let made = 0;
  const server = await createServer(() => {
    const kind = made++ % 3;
    return kind === 0
      ? new Echo()
      : kind === 1
      ? new ThrowsEverywhere()
      : new ThrowsOnData();
  }, { hostname: "127.0.0.1", port: 0, backlog: 512 });
  const { port } = server.addrs[0] as Deno.NetAddr;
  try {
    // Connect one at a time so that connection i gets protocol i % 3.
    const conns: Deno.TcpConn[] = [];
    for (let i = 0; i < GOOD + 2 * BAD; i++) {
      conns.push(await Deno.connect({ hostname: "127.0.0.1", port }));
    }
    const results = await Promise.all(conns.map(async (conn, i) => {
      const message = pattern(1000 + i, i + 1);
      try {
        await writeAll(conn, message);
      } catch {
        // A bad connection may already be gone.
      }
      if (i % 3 === 0) {
        const echoed = await withTimeout(readExactly(conn, message.length));
        conn.close();
        return bytesEqual(echoed, message) ? "echoed" : "corrupt";
      }
      const rest = await withTimeout(
        readAll(conn).catch(() => new Uint8Array()),
        5000,
        "bad connection closed",
      );
      conn.close();
      return rest.length === 0 ? "closed" : "answered";
    }));
    assert.equal(results.filter((r) => r === "echoed").length, GOOD);
    assert.equal(results.filter((r) => r === "closed").length, 2 * BAD);
    server.close();
    await withTimeout(server.waitClosed(), 5000, "waitClosed");
    const count = (m: string) => seen.messages().filter((x) => x === m).length;
    assert.equal(count("Exception in protocol.connectionMade()"), BAD);
    assert.equal(count("Exception in protocol.dataReceived()"), BAD);
    assert.equal(count("Exception in protocol.connectionLost()"), 2 * BAD);
    assert.equal(seen.contexts.length, 4 * BAD, seen.messages().join("\n"));
  } finally {
    server.close();
    server.abortClients();
    await server.waitClosed();
  }
});

Deno.test("fault: startServer callbacks that throw or reject under load: those connections close, the others are served", async () => {
  using seen = collectExceptions();
  const CLIENTS = 150;
  let calls = 0;
  const server = await startServer(async (reader, writer) => {
    const kind = calls++ % 3;
    if (kind === 1) throw new Error("sync failure");
    const line = await reader.readLine();
    if (kind === 2) throw new Error("async failure");
    writer.write(line);
    await writer.drain();
    writer.close();
  }, { hostname: "127.0.0.1", port: 0, backlog: 512 });
  const { port } = server.addrs[0] as Deno.NetAddr;
  try {
    const pairs: Array<[StreamReader, StreamWriter]> = [];
    for (let i = 0; i < CLIENTS; i++) {
      pairs.push(await openConnection({ port }));
    }
    const answers = await Promise.all(pairs.map(async ([reader, writer], i) => {
      try {
        writer.write(encode(`line ${i}\n`));
      } catch {
        // Already closed by the server (sync failure).
      }
      const answer = await withTimeout(
        reader.read(-1).catch(() => new Uint8Array()),
      );
      writer.close();
      await writer.waitClosed().catch(() => {});
      return decode(answer);
    }));
    answers.forEach((answer, i) =>
      assert.equal(answer, i % 3 === 0 ? `line ${i}\n` : "", `client ${i}`)
    );
    server.close();
    await withTimeout(server.waitClosed(), 5000, "waitClosed");
    assert.equal(seen.contexts.length, (2 * CLIENTS) / 3);
    for (const context of seen.contexts) {
      assert.equal(
        context.message,
        "Unhandled exception in client_connected_cb",
      );
    }
  } finally {
    server.close();
    server.abortClients();
    await server.waitClosed();
  }
});

// ---- UDP flood at a slow consumer ----

class SlowConsumer extends DatagramProtocol {
  received = 0;
  rssMax = 0;
  sink = 0;
  marker = Promise.withResolvers<void>();
  lost = Promise.withResolvers<Error | null>();
  override datagramReceived(data: Uint8Array): void {
    if (data.length === 3 && decode(data) === "END") {
      this.marker.resolve();
      return;
    }
    this.received++;
    // Heavy work per datagram: ~100 µs of arithmetic.
    let x = data[0];
    for (let i = 0; i < 100_000; i++) x = (Math.imul(x, 31) + i) | 0;
    this.sink ^= x;
    if (this.received % 256 === 0) {
      this.rssMax = Math.max(this.rssMax, rssMiB());
    }
  }
  override connectionLost(exc: Error | null): void {
    this.lost.resolve(exc);
  }
}

Deno.test("fault: a UDP flood of 100,000 datagrams at a slow consumer: memory stays bounded (the kernel drops), nothing crashes", async () => {
  using seen = collectExceptions();
  const rssBefore = rssMiB();
  const [transport, consumer] = await createDatagramEndpoint(
    () => new SlowConsumer(),
    { localAddr: { hostname: "127.0.0.1", port: 0 } },
  );
  let ticker: ReturnType<typeof setInterval> | undefined;
  const pinger = Deno.listenDatagram({
    hostname: "127.0.0.1",
    port: 0,
    transport: "udp",
  });
  try {
    const { port } = transport.getExtraInfo("sockname") as Deno.NetAddr;
    const COUNT = 100_000;
    // The flooder runs in its own process, so the consumer's work does not
    // slow it down.
    const code = `
      const conn = Deno.listenDatagram({ hostname: "127.0.0.1", port: 0, transport: "udp" });
      const data = new Uint8Array(512);
      const to = { transport: "udp", hostname: "127.0.0.1", port: ${port} };
      const batch = [];
      for (let i = 0; i < ${COUNT}; i++) {
        data[0] = i & 0xff;
        batch.push(conn.send(data, to));
        if (batch.length === 64) await Promise.all(batch.splice(0));
      }
      await Promise.all(batch);
      conn.close();
    `;
    const started = performance.now();
    const flood = await new Deno.Command(Deno.execPath(), {
      args: ["eval", "--unstable-net", code],
      stdout: "null",
      stderr: "piped",
    }).output();
    assert.ok(flood.success, decode(flood.stderr));
    const floodSeconds = (performance.now() - started) / 1000;
    // Then a marker, resent until the consumer has worked through its
    // backlog (the kernel may drop a marker too).
    const to: Deno.NetAddr = { transport: "udp", hostname: "127.0.0.1", port };
    ticker = setInterval(() => {
      pinger.send(encode("END"), to).catch(() => {});
    }, 25);
    await withTimeout(consumer.marker.promise, 10_000, "marker");
    clearInterval(ticker);
    const growth = Math.max(consumer.rssMax, rssMiB()) - rssBefore;
    console.log(
      `udp flood: ${COUNT} sent in ${
        floodSeconds.toFixed(2)
      } s, ${consumer.received} processed (${
        (100 - (100 * consumer.received) / COUNT).toFixed(1)
      }% dropped by the kernel), RSS growth ${growth.toFixed(1)} MiB`,
    );
    assert.ok(consumer.received > 0);
    assert.ok(consumer.received <= COUNT);
    assert.ok(growth < 32, `RSS grew ${growth} MiB`);
    assert.equal(transport.isClosing(), false);
    assert.deepEqual(seen.messages(), []);
    // The endpoint still works after the flood.
    const echo = Promise.withResolvers<void>();
    const before = consumer.received;
    await pinger.send(encode("ping"), to);
    const check = setInterval(() => {
      if (consumer.received > before) echo.resolve();
    }, 5);
    try {
      await withTimeout(echo.promise, 5000, "datagram after the flood");
    } finally {
      clearInterval(check);
    }
  } finally {
    clearInterval(ticker);
    pinger.close();
    (transport as DatagramTransport).close();
    await consumer.lost.promise;
  }
});
