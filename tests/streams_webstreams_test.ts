// Tests of the Web Streams side of streams.ts: `reader.readable` (pull on
// demand, the chunks read() returns, EOF, errors, cancel closing the
// transport, Busy for direct reads while in use), `writer.writable` (drain
// backpressure, writeEof or close, abort, TypeError), `wrapConn` and
// `openConnection({ sock })` over TCP, Unix and TLS conns, composition with
// the platform over real loopback sockets (TextDecoderStream, gzip both
// ways, fetch request and response bodies, a slow consumer), the
// `Deno.inspect` output of readers and writers, and the example program.

import assert from "node:assert/strict";
import {
  LimitOverrunError,
  openConnection,
  startServer,
  StreamReader,
  type StreamWriter,
  wrapConn,
} from "../streams.ts";
import { feedOwnedData, readerBufferedSize } from "../_stream_reader.ts";
import { createConnection, createServer } from "../transports.ts";
import { Protocol } from "../protocols.ts";
import {
  BACKEND,
  concat,
  connSockOpt,
  decode,
  encode,
  IPPROTO_TCP,
  listenRaw,
  pattern,
  readAll,
  TCP_NODELAY,
  withTimeout,
  writeAll,
} from "./_helpers.ts";
import { run } from "./_examples.ts";

const HOST = "127.0.0.1";
const fixtures = new URL("./fixtures/", import.meta.url);
const cert = Deno.readTextFileSync(new URL("tls_cert.pem", fixtures));
const key = Deno.readTextFileSync(new URL("tls_key.pem", fixtures));

/** Lets pending reads run until they wait again (microtasks only). */
async function settle(turns = 10): Promise<void> {
  for (let i = 0; i < turns; i++) await Promise.resolve();
}

/** Whether `promise` is settled after the pending microtasks ran. */
async function isSettled(promise: Promise<unknown>): Promise<boolean> {
  let settled = false;
  promise.then(() => settled = true, () => settled = true);
  await settle();
  return settled;
}

/** A server handler that reads to EOF, then closes. */
async function idle(reader: StreamReader, writer: StreamWriter) {
  await reader.read().catch(() => {});
  writer.close();
}

/** A server running `handler` and a client connected to it. */
async function connectedPair(
  handler: (
    reader: StreamReader,
    writer: StreamWriter,
  ) => void | Promise<void>,
  options: { serverLimit?: number; clientLimit?: number; tls?: boolean } = {},
) {
  const server = await startServer(handler, {
    hostname: HOST,
    port: 0,
    limit: options.serverLimit,
    tls: options.tls ? { cert, key } : undefined,
  });
  const { port } = server.addrs[0] as Deno.NetAddr;
  const [reader, writer] = await openConnection({
    hostname: HOST,
    port,
    limit: options.clientLimit,
    tls: options.tls ? { caCerts: [cert], serverName: "localhost" } : undefined,
  });
  return { server, reader, writer, port };
}

async function closeAll(
  server: { close(): void; waitClosed(): Promise<void> },
  ...writers: StreamWriter[]
): Promise<void> {
  for (const writer of writers) {
    writer.close();
    await withTimeout(writer.waitClosed().catch(() => {}), 5000, "close");
  }
  server.close();
  await withTimeout(server.waitClosed(), 5000, "the server to close");
}

async function sha256(bytes: Uint8Array): Promise<string> {
  const digest = await crypto.subtle.digest(
    "SHA-256",
    bytes as Uint8Array<ArrayBuffer>,
  );
  return Array.from(
    new Uint8Array(digest),
    (b) => b.toString(16).padStart(2, "0"),
  )
    .join("");
}

// ---- reader.readable, fed by hand ----

Deno.test("readable: one stream, pulled only on demand, chunks handed out as read() returns them", async () => {
  const reader = new StreamReader();
  const first = pattern(4096, 1);
  const second = pattern(3000, 2);
  feedOwnedData(reader, first);
  const readable = reader.readable;
  assert.ok(readable instanceof ReadableStream);
  assert.equal(reader.readable, readable, "the same stream on every access");
  await settle();
  assert.equal(readerBufferedSize(reader), 4096, "nothing pulled unasked");
  const stream = readable.getReader();
  const a = await stream.read();
  assert.equal(a.value, first, "the very array fed, not a copy");
  assert.equal(readerBufferedSize(reader), 0);
  feedOwnedData(reader, second);
  await settle();
  assert.equal(
    readerBufferedSize(reader),
    3000,
    "still nothing pulled unasked",
  );
  const b = await stream.read();
  assert.equal(b.value, second);
  // A pull waits for data, then hands out up to 64 KiB per chunk.
  const pending = stream.read();
  assert.equal(await isSettled(pending), false);
  reader.feedData(new Uint8Array(100_000).fill(7));
  const c = await pending;
  assert.equal(c.value?.length, 65536);
  assert.equal((await stream.read()).value?.length, 100_000 - 65536);
  reader.feedEof();
  assert.deepEqual(await stream.read(), { done: true, value: undefined });
  // Closed at EOF: direct reads are free again (and find EOF).
  assert.equal((await reader.read()).length, 0);
});

Deno.test("readable: a reader already at EOF gives an empty, closed stream", async () => {
  const reader = new StreamReader();
  reader.feedData(encode("tail"));
  reader.feedEof();
  const chunks = await Array.fromAsync(reader.readable);
  assert.equal(decode(concat(chunks)), "tail");
  const empty = new StreamReader();
  empty.feedEof();
  assert.deepEqual(await Array.fromAsync(empty.readable), []);
});

Deno.test("readable: errors with the reader's exception, waiting or not", async () => {
  const reader = new StreamReader();
  const stream = reader.readable.getReader();
  const pending = stream.read();
  assert.equal(await isSettled(pending), false);
  const boom = new Deno.errors.ConnectionReset("boom");
  reader.setException(boom);
  await assert.rejects(pending, (e) => e === boom);
  await assert.rejects(stream.closed, (e) => e === boom);
  // Errored: direct reads are not Busy, they throw the exception.
  await assert.rejects(() => reader.read(), (e) => e === boom);

  const failed = new StreamReader();
  failed.feedData(encode("lost"));
  const early = new Deno.errors.BrokenPipe("early");
  failed.setException(early);
  await assert.rejects(
    () => failed.readable.getReader().read(),
    (e) => e === early,
  );
});

Deno.test("readable: direct reads are Busy while the stream is locked", async () => {
  const reader = new StreamReader();
  reader.feedData(encode("line\nmore"));
  const stream = reader.readable.getReader();
  const attempts: Array<[string, () => Promise<unknown>]> = [
    ["read", () => reader.read(2)],
    ["readLine", () => reader.readLine()],
    ["readExactly", () => reader.readExactly(1)],
    ["readUntil", () => reader.readUntil("\n")],
    ["for await", async () => {
      for await (const _ of reader) break;
    }],
  ];
  for (const [name, attempt] of attempts) {
    await assert.rejects(attempt, (e) => {
      assert.ok(e instanceof Deno.errors.Busy, `${name}: ${e}`);
      assert.match((e as Error).message, /reader\.readable is in use/);
      return true;
    });
  }
  assert.equal(readerBufferedSize(reader), 9, "the failed reads took nothing");
  // Released before anything was pulled: direct reads work again.
  stream.releaseLock();
  assert.equal(decode(await reader.readLine()), "line\n");
  // The stream goes on where the direct reads stopped.
  const again = reader.readable.getReader();
  assert.equal(decode((await again.read()).value!), "more");
  again.releaseLock();
});

Deno.test("readable: a pull in flight or a pulled chunk keeps direct reads Busy", async () => {
  const reader = new StreamReader();
  const stream = reader.readable.getReader();
  const pending = stream.read();
  await settle();
  assert.match(Deno.inspect(reader), /waiter=<pending readable pull>/);
  stream.releaseLock();
  await assert.rejects(pending, TypeError);
  // The pull still waits: its data will go to the stream.
  await assert.rejects(() => reader.read(), Deno.errors.Busy);
  reader.feedData(encode("abc"));
  await settle();
  assert.equal(readerBufferedSize(reader), 0, "the pull took the bytes");
  await assert.rejects(() => reader.read(), Deno.errors.Busy);
  assert.match(Deno.inspect(reader), / readable>$/);
  // Reading the stream again gets them; then direct reads are free.
  const again = reader.readable.getReader();
  assert.equal(decode((await again.read()).value!), "abc");
  again.releaseLock();
  reader.feedData(encode("xyz"));
  assert.equal(decode(await reader.read(10)), "xyz");
});

Deno.test("readable: a pull while a direct read waits errors the stream with Busy", async () => {
  const reader = new StreamReader();
  const direct = reader.read(10);
  await settle();
  const stream = reader.readable.getReader();
  await assert.rejects(stream.read(), (e) => {
    assert.ok(e instanceof Deno.errors.Busy);
    assert.match((e as Error).message, /another read is already waiting/);
    return true;
  });
  // The direct read is unharmed.
  reader.feedData(encode("ok"));
  assert.equal(decode(await direct), "ok");
});

Deno.test("readable: cancel wakes a waiting pull and consumes nothing", async () => {
  const reader = new StreamReader();
  const stream = reader.readable.getReader();
  const pending = stream.read();
  assert.equal(await isSettled(pending), false);
  await stream.cancel(new Error("not interested"));
  assert.deepEqual(await pending, { done: true, value: undefined });
  reader.feedData(encode("kept"));
  // Cancelled (even though still locked): direct reads get every byte.
  assert.equal(decode(await reader.read(10)), "kept");
});

// ---- reader.readable and writer.writable over TCP ----

Deno.test("readable over TCP: cancel closes the transport", async () => {
  const cancelled = Promise.withResolvers<StreamWriter>();
  const { server, reader, writer } = await connectedPair(async (r, w) => {
    const stream = r.readable.getReader();
    const first = await stream.read();
    assert.equal(decode(first.value!), "hello");
    await stream.cancel("enough");
    cancelled.resolve(w);
  });
  writer.write(encode("hello"));
  const peer = await withTimeout(cancelled.promise, 5000, "the cancel");
  assert.equal(peer.transport.isClosing(), true);
  await withTimeout(peer.waitClosed(), 5000, "the server side to close");
  // The client sees the end of the connection.
  assert.equal((await withTimeout(reader.read(), 5000, "EOF")).length, 0);
  await closeAll(server, writer);
});

Deno.test("writable: one stream; write copies and drains; close half-closes on TCP", async () => {
  const { server, reader, writer } = await connectedPair(async (r, w) => {
    const all = await r.read();
    w.write(encode(`got ${all.length} bytes: ${decode(all)}`));
    w.close();
  });
  const writable = writer.writable;
  assert.ok(writable instanceof WritableStream);
  assert.equal(writer.writable, writable);
  const sink = writable.getWriter();
  const chunk = encode("abc");
  await sink.write(chunk);
  chunk.fill(0x21); // Later changes to the chunk change nothing sent.
  await sink.write(encode("def"));
  await sink.close();
  // Half-closed: the server saw EOF, and its answer can still be read.
  assert.equal(writer.isClosing(), false);
  assert.equal(
    decode(await withTimeout(reader.read(), 5000, "the answer")),
    "got 6 bytes: abcdef",
  );
  await closeAll(server, writer);
});

Deno.test("writable: a chunk that is not a Uint8Array errors the stream with TypeError", async () => {
  const { server, writer } = await connectedPair(idle);
  const sink = writer.writable.getWriter();
  for (
    const bad of ["text", new ArrayBuffer(4), [1, 2], new Uint16Array(2)]
  ) {
    await assert.rejects(
      sink.write(bad as unknown as Uint8Array),
      (e) => {
        assert.ok(e instanceof TypeError, `${e}`);
        assert.match((e as Error).message, /must be a Uint8Array/);
        return true;
      },
    );
  }
  await assert.rejects(sink.closed, TypeError);
  await closeAll(server, writer);
});

Deno.test("writable: close on TLS closes the connection and waits for it", async () => {
  const received = Promise.withResolvers<string>();
  const { server, writer } = await connectedPair(async (r) => {
    received.resolve(decode(await r.read()));
  }, { tls: true });
  assert.equal(writer.canWriteEof(), false);
  const sink = writer.writable.getWriter();
  await sink.write(encode("over tls"));
  await withTimeout(sink.close(), 5000, "the TLS close");
  // close() resolved once the connection was closed (waitClosed).
  assert.equal(writer.isClosing(), true);
  assert.equal(await isSettled(writer.waitClosed()), true);
  assert.equal(await withTimeout(received.promise, 5000, "server"), "over tls");
  await closeAll(server);
});

Deno.test("writable: close after the connection closed waits and resolves; after a failure rejects", async () => {
  const { server, writer } = await connectedPair(idle);
  writer.close();
  await withTimeout(writer.writable.close(), 5000, "close after close");
  await closeAll(server);

  // Lost with an error: the server aborts once the client has spoken (so
  // the connection is up on both sides before it goes).
  const failed = await connectedPair(async (r, w) => {
    await r.read(1);
    w.transport.abort();
  });
  failed.writer.write(encode("!"));
  let error: unknown;
  if (BACKEND === "deno") {
    // Deno's abort closes with FIN: the client reads EOF; the peer is
    // gone, so writing fails (EPIPE, or a reset if a write raced the FIN).
    assert.equal((await failed.reader.read()).length, 0, "the peer's EOF");
    const block = new Uint8Array(64 * 1024);
    for (let i = 0; i < 1000 && !failed.writer.transport.isClosing(); i++) {
      failed.writer.write(block);
      await failed.writer.drain().catch(() => {});
    }
    error = await withTimeout(
      failed.writer.waitClosed().then(() => null, (e) => e),
      5000,
      "the write error",
    );
    assert.ok(
      error instanceof Deno.errors.BrokenPipe ||
        error instanceof Deno.errors.ConnectionReset,
      `closed with ${error}`,
    );
  } else {
    // The native abort resets: the connection is lost with the reset.
    await assert.rejects(
      withTimeout(failed.reader.read(), 5000, "the reset"),
      Deno.errors.ConnectionReset,
    );
    error = await withTimeout(
      failed.writer.waitClosed().then(() => null, (e) => e),
      5000,
      "the connection error",
    );
    assert.ok(error instanceof Deno.errors.ConnectionReset, `${error}`);
  }
  await assert.rejects(failed.writer.writable.close(), (e) => e === error);
  await closeAll(failed.server, failed.writer);
});

Deno.test("writable: abort aborts the transport and drops what was queued", async () => {
  const listener = listenRaw();
  try {
    const accepting = listener.accept();
    const [reader, writer] = await openConnection({
      hostname: HOST,
      port: listener.port,
    });
    const peer = await accepting;
    // The peer does not read: fill the transport's buffer.
    writer.write(new Uint8Array(8 * 1024 * 1024));
    assert.ok(writer.transport.getWriteBufferSize() > 0);
    await writer.writable.abort(new Error("stop"));
    assert.equal(writer.isClosing(), true);
    await withTimeout(writer.waitClosed(), 5000, "the abort");
    assert.equal(writer.transport.getWriteBufferSize(), 0);
    assert.equal((await reader.read()).length, 0, "the reader sees the end");
    if (BACKEND === "deno") {
      // The peer gets less than was written, then EOF (Deno closes with FIN).
      const got = await withTimeout(readAll(peer), 5000, "the peer's EOF");
      assert.ok(got.length < 8 * 1024 * 1024);
    } else {
      // The native abort resets the connection: the peer's read fails.
      await assert.rejects(
        withTimeout(readAll(peer), 5000, "the peer's reset"),
        Deno.errors.ConnectionReset,
      );
    }
  } finally {
    listener.close();
  }
});

Deno.test("writable: write() waits while the transport is paused (backpressure)", async () => {
  const listener = listenRaw();
  try {
    const accepting = listener.accept();
    const [, writer] = await openConnection({
      hostname: HOST,
      port: listener.port,
    });
    const peer = await accepting;
    const sink = writer.writable.getWriter();
    const block = pattern(256 * 1024, 3);
    let written = 0;
    let stalled: Promise<void> | null = null;
    for (let i = 0; i < 400 && stalled === null; i++) {
      const w = sink.write(block);
      written += block.length;
      if (!await isSettled(w)) stalled = w;
      else await w;
    }
    assert.ok(stalled !== null, "write() never waited");
    // Paused: drain() waits until the buffer is down to the low mark.
    const [low] = writer.transport.getWriteBufferLimits();
    assert.ok(writer.transport.getWriteBufferSize() > low);
    assert.ok((sink.desiredSize ?? 1) <= 0, "the stream reports backpressure");
    // The peer reads everything: the pending write resolves.
    const reading = readAll(peer, written);
    await withTimeout(stalled, 10_000, "the write to resolve");
    await sink.close();
    const got = await withTimeout(reading, 10_000, "the peer");
    assert.equal(got.length, written);
    for (let at = 0; at < got.length; at += block.length) {
      assert.deepEqual(got.subarray(at, at + block.length), block);
    }
    writer.close();
    await writer.waitClosed();
  } finally {
    listener.close();
  }
});

// ---- wrapConn and openConnection({ sock }) ----

Deno.test("wrapConn: streams over Deno.Conns from Deno.connect and Deno.listen", async () => {
  const listener = listenRaw();
  try {
    const accepting = listener.accept();
    const conn = await Deno.connect({ hostname: HOST, port: listener.port });
    const [cr, cw] = await wrapConn(conn, { limit: 8 });
    const [sr, sw] = await wrapConn(await accepting, { serverSide: true });
    assert.equal(cw.getExtraInfo("conn"), conn);
    assert.equal(connSockOpt(conn, IPPROTO_TCP, TCP_NODELAY), 1);
    cw.write(encode("ping\n"));
    assert.equal(decode(await sr.readLine()), "ping\n");
    sw.write(encode("pong\nmuch too long\n"));
    assert.equal(decode(await cr.readLine()), "pong\n");
    // The limit option is the reader's.
    await assert.rejects(() => cr.readLine(), LimitOverrunError);
    sw.close();
    await sw.waitClosed();
    assert.equal((await cr.read()).length, 0);
    cw.close();
    await cw.waitClosed();
  } finally {
    listener.close();
  }
});

Deno.test("wrapConn: bad arguments throw before the conn is taken", async () => {
  const listener = listenRaw();
  try {
    const accepting = listener.accept();
    const conn = await Deno.connect({ hostname: HOST, port: listener.port });
    const peer = await accepting;
    await assert.rejects(
      () => wrapConn(null as unknown as Deno.Conn),
      TypeError,
    );
    await assert.rejects(
      () => wrapConn({ read() {} } as unknown as Deno.Conn),
      TypeError,
    );
    await assert.rejects(() => wrapConn(conn, { limit: 0 }), RangeError);
    await assert.rejects(
      () => wrapConn(conn, { limit: "1" as unknown as number }),
      TypeError,
    );
    await assert.rejects(
      () => wrapConn(conn, { serverSide: 1 as unknown as boolean }),
      TypeError,
    );
    await assert.rejects(
      () => wrapConn(conn, 5 as unknown as { limit: number }),
      TypeError,
    );
    // Still ours, still open.
    await writeAll(conn, encode("still here"));
    assert.equal(decode(await readAll(peer, 10)), "still here");
    conn.close();
  } finally {
    listener.close();
  }
});

Deno.test("openConnection({ sock }) wraps an existing Deno.Conn too", async () => {
  const listener = listenRaw();
  try {
    const accepting = listener.accept();
    const conn = await Deno.connect({ hostname: HOST, port: listener.port });
    await assert.rejects(
      () => openConnection({ sock: conn, port: listener.port }),
      TypeError,
    );
    const [reader, writer] = await openConnection({ sock: conn, limit: 1024 });
    const peer = await accepting;
    writer.write(encode("via sock"));
    writer.writeEof();
    assert.equal(decode(await readAll(peer)), "via sock");
    await writeAll(peer, encode("answer"));
    peer.close();
    assert.equal(decode(await reader.read()), "answer");
    writer.close();
    await writer.waitClosed();
  } finally {
    listener.close();
  }
});

Deno.test("wrapConn: Unix and TLS conns", async () => {
  const dir = await Deno.makeTempDir();
  const unix = Deno.listen({ transport: "unix", path: `${dir}/s.sock` });
  const tls = Deno.listenTls({ hostname: HOST, port: 0, cert, key });
  try {
    for (const kind of ["unix", "tls"]) {
      const accepting = kind === "unix" ? unix.accept() : tls.accept();
      const conn = kind === "unix"
        ? await Deno.connect({ transport: "unix", path: `${dir}/s.sock` })
        : await Deno.connectTls({
          hostname: HOST,
          port: tls.addr.port,
          caCerts: [cert],
        });
      const [cr, cw] = await wrapConn(conn);
      const [sr, sw] = await wrapConn(await accepting, { serverSide: true });
      const payload = pattern(300_000, kind.length);
      const echo = (async () => {
        await sr.readable.pipeTo(sw.writable);
        sw.close();
      })();
      const sending = ReadableStream.from([payload]).pipeTo(cw.writable);
      const got = concat(await Array.fromAsync(cr.readable));
      await withTimeout(sending, 5000, `${kind} sending`);
      await withTimeout(echo, 5000, `${kind} echo`);
      assert.deepEqual(got, payload, kind);
      cw.close();
      await cw.waitClosed();
      await sw.waitClosed();
    }
  } finally {
    unix.close();
    tls.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("wrapConn: serverSide picks the side of writer.startTls()", async () => {
  // Not listenRaw(): its close() would close the accepted conn a second
  // time (see the note in the report about upgraded connections).
  const listener = Deno.listen({ hostname: HOST, port: 0 });
  try {
    const accepting = listener.accept();
    const conn = await Deno.connect({
      hostname: HOST,
      port: listener.addr.port,
    });
    const [cr, cw] = await wrapConn(conn);
    const [sr, sw] = await wrapConn(await accepting, { serverSide: true });
    await Promise.all([
      withTimeout(sw.startTls({ cert, key }), 10_000, "server startTls"),
      withTimeout(
        cw.startTls({ caCerts: [cert], serverName: "localhost" }),
        10_000,
        "client startTls",
      ),
    ]);
    cw.write(encode("secret\n"));
    assert.equal(decode(await sr.readLine()), "secret\n");
    sw.write(encode("ok\n"));
    assert.equal(decode(await cr.readLine()), "ok\n");
    cw.close();
    sw.close();
    await Promise.all(
      [cw.waitClosed(), sw.waitClosed()].map((p) =>
        withTimeout(p.catch(() => {}), 5000, "TLS close")
      ),
    );
  } finally {
    listener.close();
  }
});

// ---- Composing with the platform over loopback TCP ----

Deno.test("platform: reader.readable through TextDecoderStream is exact across split characters", async () => {
  const text = "héllo wörld — ünïcödé 🌍🚀 漢字かな\n".repeat(5000);
  const bytes = encode(text);
  const { server, reader, writer } = await connectedPair(async (_r, w) => {
    // Odd-sized writes split multi-byte characters everywhere.
    for (let at = 0, step = 1; at < bytes.length; at += step, step += 7) {
      w.write(bytes.subarray(at, at + step));
      await w.drain();
    }
    w.close();
  });
  let decoded = "";
  for await (
    const part of reader.readable.pipeThrough(new TextDecoderStream())
  ) {
    decoded += part;
  }
  assert.equal(decoded.length, text.length);
  assert.equal(decoded, text);
  await closeAll(server, writer);
});

Deno.test("platform: gzip server with pipeThrough(CompressionStream).pipeTo(writer.writable)", async () => {
  const { server, reader, writer } = await connectedPair(async (r, w) => {
    await r.readable.pipeThrough(new CompressionStream("gzip"))
      .pipeTo(w.writable);
    w.close();
  }, { serverLimit: 16 * 1024 });
  const text = encode(
    "The quick brown fox jumps over the lazy dog.\n".repeat(20_000),
  );
  const payload = concat([text, pattern(1024 * 1024, 11)]);
  const blocks = Array.from(
    { length: Math.ceil(payload.length / 50_000) },
    (_, i) => payload.subarray(i * 50_000, (i + 1) * 50_000),
  );
  const sending = ReadableStream.from(blocks).pipeTo(writer.writable);
  let compressed = 0;
  const counting = new TransformStream<
    Uint8Array<ArrayBuffer>,
    Uint8Array<ArrayBuffer>
  >({
    transform(chunk, controller) {
      compressed += chunk.length;
      controller.enqueue(chunk);
    },
  });
  const got = concat(
    await Array.fromAsync(
      reader.readable.pipeThrough(counting).pipeThrough(
        new DecompressionStream("gzip"),
      ),
    ),
  );
  await withTimeout(sending, 5000, "the sender");
  assert.equal(got.length, payload.length);
  assert.deepEqual(got, payload);
  assert.ok(compressed > 0 && compressed < payload.length);
  await closeAll(server, writer);
});

Deno.test("platform: reader.readable as a fetch request body (Deno.serve)", async () => {
  const http = Deno.serve(
    { hostname: HOST, port: 0, onListen() {} },
    async (request) => {
      const body = new Uint8Array(await request.arrayBuffer());
      return new Response(`${body.length} ${await sha256(body)}`);
    },
  );
  const payload = pattern(2 * 1024 * 1024 + 17, 5);
  try {
    const { server, reader, writer } = await connectedPair(async (r, w) => {
      const response = await fetch(`http://${HOST}:${http.addr.port}/`, {
        method: "POST",
        body: r.readable,
        duplex: "half",
      } as RequestInit);
      w.write(encode(await response.text()));
      w.close();
    });
    const sending = ReadableStream.from([payload]).pipeTo(writer.writable);
    const answer = decode(await withTimeout(reader.read(), 10_000, "answer"));
    await sending;
    assert.equal(answer, `${payload.length} ${await sha256(payload)}`);
    await closeAll(server, writer);
  } finally {
    await http.shutdown();
  }
});

Deno.test("platform: a fetch response body piped into writer.writable", async () => {
  const payload = pattern(3 * 1024 * 1024 + 5, 9);
  const http = Deno.serve(
    { hostname: HOST, port: 0, onListen() {} },
    () =>
      new Response(
        ReadableStream.from([
          payload.subarray(0, 1_000_000),
          payload.subarray(1_000_000),
        ]),
      ),
  );
  try {
    const received = Promise.withResolvers<Uint8Array>();
    const { server, writer } = await connectedPair(async (r, w) => {
      received.resolve(await r.read());
      w.close();
    });
    const response = await fetch(`http://${HOST}:${http.addr.port}/`);
    await response.body!.pipeTo(writer.writable); // ends with writeEof()
    const got = await withTimeout(received.promise, 10_000, "the server");
    assert.equal(got.length, payload.length);
    assert.deepEqual(got, payload);
    await closeAll(server, writer);
  } finally {
    await http.shutdown();
  }
});

Deno.test("platform: a slow consumer keeps the reader's buffer near 2 × limit and the transport paused", async () => {
  const limit = 16 * 1024;
  const block = pattern(256 * 1024, 13);
  const gate = Promise.withResolvers<void>();
  // Resolves once the consumer is stalled with the transport paused: at a
  // pause while it is stalled, or at the stall if the transport was paused
  // already (one large read can take the buffer past 2 × limit before the
  // consumer got its first chunk, as the native backend's reads of up to
  // 256 KiB do). From then on nothing reads, so the transport stays paused.
  const stuck = Promise.withResolvers<void>();
  const done = Promise.withResolvers<number>();
  let consumerStalled = false;
  let maxBuffered = 0;
  let serverReader: StreamReader | null = null;
  let serverTransport: StreamWriter["transport"] | null = null;
  const { server, writer } = await connectedPair(async (r, w) => {
    serverReader = r;
    const transport = serverTransport = w.transport;
    const pause = transport.pauseReading.bind(transport);
    transport.pauseReading = () => {
      pause();
      if (consumerStalled) stuck.resolve();
    };
    // Record the buffer after every delivery from the transport.
    const protocol = transport.getProtocol() as Protocol;
    const deliver = protocol.dataReceived.bind(protocol);
    protocol.dataReceived = (data) => {
      deliver(data);
      maxBuffered = Math.max(maxBuffered, readerBufferedSize(r));
    };
    let got = 0;
    let mismatch = -1;
    await r.readable.pipeTo(
      new WritableStream({
        async write(chunk) {
          for (let i = 0; i < chunk.length; i++) {
            if (
              mismatch < 0 && chunk[i] !== block[(got + i) % block.length]
            ) mismatch = got + i;
          }
          got += chunk.length;
          consumerStalled = true;
          if (!transport.isReading()) stuck.resolve();
          await gate.promise; // The consumer stalls until told.
        },
      }),
    );
    assert.equal(mismatch, -1, "bytes in order");
    done.resolve(got);
    w.close();
  }, { serverLimit: limit });
  // The sender writes as fast as drain() lets it, until told to stop.
  let stop = false;
  let written = 0;
  const sending = (async () => {
    for (let i = 0; i < 400 && !stop; i++) {
      writer.write(block);
      written += block.length;
      await writer.drain();
    }
    writer.writeEof();
  })();
  await withTimeout(stuck.promise, 10_000, "the server to pause reading");
  assert.equal(serverTransport!.isReading(), false);
  assert.match(Deno.inspect(serverReader), / paused/);
  const buffered = readerBufferedSize(serverReader!);
  assert.ok(buffered > 2 * limit, `buffered ${buffered}`);
  // At most one transport read (up to 256 KiB, asyncio's read size too)
  // arrives past the pause point.
  assert.ok(
    maxBuffered <= 2 * limit + 256 * 1024,
    `buffered up to ${maxBuffered} bytes with limit ${limit}`,
  );
  stop = true;
  gate.resolve();
  await withTimeout(sending, 20_000, "the sender");
  assert.equal(
    await withTimeout(done.promise, 20_000, "the consumer"),
    written,
  );
  assert.ok(maxBuffered <= 2 * limit + 256 * 1024, `max ${maxBuffered}`);
  await closeAll(server, writer);
});

// ---- Deno.inspect ----

Deno.test("inspect: a reader shows its live state as asyncio's repr", async () => {
  const reader = new StreamReader();
  assert.equal(Deno.inspect(reader), "<StreamReader>");
  const small = new StreamReader({ limit: 10 });
  small.feedData(encode("abc"));
  assert.equal(Deno.inspect(small), "<StreamReader 3 bytes limit=10>");
  const waiting = small.readExactly(5);
  await settle();
  assert.equal(
    Deno.inspect(small),
    "<StreamReader 3 bytes limit=10 waiter=<pending readExactly>>",
  );
  small.setException(new Deno.errors.ConnectionReset("gone"));
  await assert.rejects(waiting, Deno.errors.ConnectionReset);
  assert.equal(
    Deno.inspect(small),
    '<StreamReader 3 bytes limit=10 exception=ConnectionReset("gone")>',
  );
  const ended = new StreamReader();
  ended.feedData(encode("x"));
  ended.feedEof();
  assert.equal(Deno.inspect(ended), "<StreamReader 1 bytes eof>");
  assert.match(Deno.inspect({ ended }), /ended: <StreamReader 1 bytes eof>/);

  // With a real transport: its address and state, and `paused`.
  const server = await createServer(() => new Protocol(), {
    hostname: HOST,
    port: 0,
  });
  const { port } = server.addrs[0] as Deno.NetAddr;
  const [transport] = await createConnection(() => new Protocol(), {
    hostname: HOST,
    port,
  });
  const live = new StreamReader({ limit: 10 });
  live.setTransport(transport);
  live.feedData(new Uint8Array(21));
  assert.equal(
    Deno.inspect(live),
    `<StreamReader 21 bytes limit=10 transport=<StreamTransport peer=127.0.0.1:${port} read=idle write=<idle bufsize=0>> paused>`,
  );
  await live.read(11);
  assert.match(Deno.inspect(live), /read=polling write=<idle bufsize=0>>>$/);
  transport.close();
  assert.match(Deno.inspect(live), /transport=<StreamTransport closing peer=/);
  server.close();
  await server.waitClosed();
});

Deno.test("inspect: a writer shows its transport and its reader", async () => {
  const { server, reader, writer, port } = await connectedPair(idle);
  const shown = Deno.inspect(writer);
  assert.equal(
    shown,
    `<StreamWriter transport=<StreamTransport peer=127.0.0.1:${port} read=polling write=<idle bufsize=0>> reader=${
      Deno.inspect(reader)
    }>`,
  );
  assert.match(shown, /reader=<StreamReader transport=<StreamTransport /);
  await closeAll(server, writer);
});

// ---- The example ----

Deno.test("example: webstreams_pipe.ts gzips a text and a file over TCP", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const file = `${dir}/input.bin`;
    await Deno.writeFile(file, pattern(200_000, 21));
    for (const args of [[], ["--file", file]]) {
      const { code, stdout, stderr, lines } = await run([
        "examples/webstreams_pipe.ts",
        ...args,
      ]);
      assert.equal(code, 0, stderr);
      assert.match(lines[0], /^Serving on 127\.0\.0\.1:\d+$/);
      const sent = /^Sent (\d+) bytes$/.exec(lines[1]);
      const gz = /^Received (\d+) gzip bytes$/.exec(lines[2]);
      assert.ok(sent && gz, stdout);
      if (args.length > 0) assert.equal(Number(sent[1]), 200_000);
      assert.equal(lines[3], `Decompressed ${sent[1]} bytes: identical`);
      assert.equal(lines.length, 4, stdout);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
