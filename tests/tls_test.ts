// TLS on transports: native TLS clients and servers, handshake limits,
// certificate checks, Unix TLS and startTls in both directions.

import assert from "node:assert/strict";
import {
  createConnection,
  createServer,
  createUnixConnection,
  createUnixServer,
  type ExceptionContext,
  getEventLoop,
  openConnection,
  Protocol,
  startServer,
  startTls,
  type StreamTransport,
  type Transport,
} from "../mod.ts";

const fixtures = new URL("./fixtures/", import.meta.url);
const cert = Deno.readTextFileSync(new URL("tls_cert.pem", fixtures));
const key = Deno.readTextFileSync(new URL("tls_key.pem", fixtures));
const encoder = new TextEncoder();
const decoder = new TextDecoder();

async function within<T>(promise: Promise<T>, ms = 5000): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new Error(`no result in ${ms} ms`)),
          ms,
        );
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** Captures what reaches the exception handler during `fn`. */
async function withHandler(
  fn: (
    seen: ExceptionContext[],
    next: () => Promise<ExceptionContext>,
  ) => Promise<void>,
): Promise<void> {
  const seen: ExceptionContext[] = [];
  let wake: (() => void) | null = null;
  const loop = getEventLoop();
  loop.setExceptionHandler((_loop, context) => {
    seen.push(context);
    wake?.();
  });
  const next = async () => {
    while (seen.length === 0) {
      await new Promise<void>((resolve) => (wake = resolve));
      wake = null;
    }
    return seen.shift()!;
  };
  try {
    await fn(seen, next);
  } finally {
    loop.setExceptionHandler(null);
  }
}

/** A protocol that collects what it receives and reports loss. */
class Collector extends Protocol {
  transport?: Transport;
  received = "";
  lost = Promise.withResolvers<Error | null>();
  #waiters: Array<{ text: string; resolve: () => void }> = [];
  override connectionMade(transport: Transport) {
    this.transport = transport;
  }
  override dataReceived(data: Uint8Array) {
    this.received += decoder.decode(data);
    this.#waiters = this.#waiters.filter((w) => {
      if (!this.received.includes(w.text)) return true;
      w.resolve();
      return false;
    });
  }
  override connectionLost(exc: Error | null) {
    this.lost.resolve(exc);
  }
  until(text: string): Promise<void> {
    if (this.received.includes(text)) return Promise.resolve();
    const { promise, resolve } = Promise.withResolvers<void>();
    this.#waiters.push({ text, resolve });
    return within(promise);
  }
}

class Echo extends Protocol {
  #transport?: Transport;
  override connectionMade(transport: Transport) {
    this.#transport = transport;
  }
  override dataReceived(data: Uint8Array) {
    this.#transport!.write(data);
  }
}

function portOf(addr: Deno.Addr): number {
  return (addr as Deno.NetAddr).port;
}

Deno.test("TLS echo over TCP with ALPN, 2 MiB byte-exact", async () => {
  await using server = await createServer(() => new Echo(), {
    hostname: "127.0.0.1",
    port: 0,
    tls: { cert, key, alpnProtocols: ["aionet/1"] },
  });
  let total = 0;
  let mismatch = false;
  const { promise: done, resolve } = Promise.withResolvers<void>();
  const size = 2 * 1024 * 1024;
  const payload = new Uint8Array(size).map((_, i) => (i * 7) & 0xff);
  class Check extends Protocol {
    override dataReceived(data: Uint8Array) {
      for (let i = 0; i < data.length; i++) {
        if (data[i] !== payload[total + i]) mismatch = true;
      }
      total += data.length;
      if (total >= size) resolve();
    }
  }
  const [transport] = await createConnection(() => new Check(), {
    hostname: "127.0.0.1",
    port: portOf(server.addrs[0]),
    tls: {
      caCerts: [cert],
      serverName: "localhost",
      alpnProtocols: ["aionet/1"],
    },
  });
  assert.equal(transport.getExtraInfo("alpnProtocol"), "aionet/1");
  assert.equal(transport.canWriteEof(), false);
  assert.throws(() => transport.writeEof(), Deno.errors.NotSupported);
  transport.write(payload);
  await within(done);
  assert.equal(total, size);
  assert.equal(mismatch, false);
  transport.close();
  server.closeClients();
});

Deno.test("TLS client: wrong serverName and unknown CA reject the call; server keeps serving", async () => {
  await withHandler(async (_seen, next) => {
    await using server = await createServer(() => new Echo(), {
      hostname: "127.0.0.1",
      port: 0,
      tls: { cert, key },
    });
    const port = portOf(server.addrs[0]);
    await assert.rejects(
      createConnection(() => new Protocol(), {
        hostname: "127.0.0.1",
        port,
        tls: { caCerts: [cert], serverName: "wrong.example" },
      }),
      Deno.errors.InvalidData,
    );
    const first = await within(next());
    assert.ok(first.exception instanceof Error);
    await assert.rejects(
      createConnection(() => new Protocol(), {
        hostname: "127.0.0.1",
        port,
        tls: true,
      }),
      Deno.errors.InvalidData,
    );
    await within(next());
    // The server still serves a good client.
    const client = new Collector();
    const [transport] = await createConnection(() => client, {
      hostname: "127.0.0.1",
      port,
      tls: { caCerts: [cert], serverName: "localhost" },
    });
    transport.write(encoder.encode("still here"));
    await client.until("still here");
    transport.close();
    await within(client.lost.promise);
  });
});

Deno.test("TLS options cannot turn verification off and are checked", async () => {
  await assert.rejects(
    createConnection(() => new Protocol(), {
      hostname: "127.0.0.1",
      port: 1,
      tls: { rejectUnauthorized: false } as unknown as { caCerts: string[] },
    }),
    TypeError,
  );
  await assert.rejects(
    createConnection(() => new Protocol(), {
      hostname: "127.0.0.1",
      port: 1,
      tls: { handshakeTimeout: -1 },
    }),
    RangeError,
  );
  await assert.rejects(
    createServer(() => new Protocol(), {
      hostname: "127.0.0.1",
      port: 0,
      tls: { cert: 42 } as unknown as { cert: string; key: string },
    }),
    TypeError,
  );
});

Deno.test("TLS client handshake timeout against a peer that sends nothing", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const accepted = listener.accept();
  await assert.rejects(
    createConnection(() => new Protocol(), {
      hostname: "127.0.0.1",
      port: listener.addr.port,
      tls: { caCerts: [cert], serverName: "localhost", handshakeTimeout: 200 },
    }),
    Deno.errors.TimedOut,
  );
  (await accepted).close();
  listener.close();
});

Deno.test("TLS server handshake timeout closes a silent client and reports it", async () => {
  await withHandler(async (_seen, next) => {
    await using server = await createServer(() => new Echo(), {
      hostname: "127.0.0.1",
      port: 0,
      tls: { cert, key, handshakeTimeout: 200 },
    });
    const conn = await Deno.connect({
      hostname: "127.0.0.1",
      port: portOf(server.addrs[0]),
    });
    const context = await within(next());
    assert.ok(context.exception instanceof Deno.errors.TimedOut);
    // The server closed its side: the silent client sees EOF.
    const eof = await within(conn.read(new Uint8Array(16)).catch(() => null));
    assert.equal(eof, null);
    conn.close();
  });
});

Deno.test("TLS server survives a client that sends garbage", async () => {
  await withHandler(async (_seen, next) => {
    await using server = await createServer(() => new Echo(), {
      hostname: "127.0.0.1",
      port: 0,
      tls: { cert, key },
    });
    const port = portOf(server.addrs[0]);
    const conn = await Deno.connect({ hostname: "127.0.0.1", port });
    await conn.write(encoder.encode("GET / HTTP/1.0\r\n\r\n"));
    const context = await within(next());
    assert.ok(context.exception instanceof Error);
    conn.close();
    const client = new Collector();
    const [transport] = await createConnection(() => client, {
      hostname: "127.0.0.1",
      port,
      tls: { caCerts: [cert], serverName: "localhost" },
    });
    transport.write(encoder.encode("ok"));
    await client.until("ok");
    transport.close();
    await within(client.lost.promise);
  });
});

Deno.test("TLS over Unix sockets", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/tls.sock`;
    await using server = await createUnixServer(() => new Echo(), {
      path,
      tls: { cert, key },
    });
    await assert.rejects(
      createUnixConnection(() => new Protocol(), { path, tls: true }),
      TypeError,
    );
    const client = new Collector();
    const [transport] = await createUnixConnection(() => client, {
      path,
      tls: { caCerts: [cert], serverName: "localhost" },
    });
    assert.equal(transport.canWriteEof(), false);
    transport.write(encoder.encode("over unix"));
    await client.until("over unix");
    transport.close();
    assert.equal(await within(client.lost.promise), null);
    server.closeClients();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

/** A plaintext server that switches to TLS when a client says STARTTLS. */
class StartTlsServer extends Protocol {
  #plain?: Transport;
  #secure?: Promise<StreamTransport>;
  upgraded = Promise.withResolvers<StreamTransport>();
  override connectionMade(transport: Transport) {
    this.#plain = transport;
    transport.write(encoder.encode("220 ready\n"));
  }
  override dataReceived(data: Uint8Array) {
    const text = decoder.decode(data);
    if (this.#secure === undefined && text === "STARTTLS\n") {
      this.#plain!.write(encoder.encode("220 go ahead\n"));
      this.#secure = startTls(this.#plain!, this, {
        serverSide: true,
        cert,
        key,
      });
      this.#secure.then(this.upgraded.resolve, this.upgraded.reject);
      // A test that makes the upgrade fail does not await it.
      this.upgraded.promise.catch(() => {});
    } else if (this.#secure !== undefined) {
      this.#secure.then((secure) =>
        secure.write(encoder.encode(`tls:${text}`))
      );
    }
  }
}

Deno.test("startTls upgrades a live transport, client and server side", async () => {
  let serverProtocol: StartTlsServer | undefined;
  await using server = await createServer(
    () => (serverProtocol = new StartTlsServer()),
    { hostname: "127.0.0.1", port: 0 },
  );
  const client = new Collector();
  const [plain] = await createConnection(() => client, {
    hostname: "127.0.0.1",
    port: portOf(server.addrs[0]),
  });
  await client.until("220 ready\n");
  plain.write(encoder.encode("STARTTLS\n"));
  await client.until("220 go ahead\n");
  const secure = await within(
    startTls(plain, client, { serverName: "localhost", caCerts: [cert] }),
  );
  const serverSecure = await within(serverProtocol!.upgraded.promise);
  assert.equal(serverSecure.canWriteEof(), false);
  assert.equal(secure.canWriteEof(), false);
  secure.write(encoder.encode("hello"));
  await client.until("tls:hello");
  secure.close();
  assert.equal(await within(client.lost.promise), null);
  server.closeClients();
});

Deno.test("startTls refuses a closed transport and a bad certificate", async () => {
  await withHandler(async () => {
    await using server = await createServer(() => new StartTlsServer(), {
      hostname: "127.0.0.1",
      port: 0,
    });
    const port = portOf(server.addrs[0]);
    const first = new Collector();
    const [closed] = await createConnection(() => first, {
      hostname: "127.0.0.1",
      port,
    });
    closed.close();
    await assert.rejects(
      startTls(closed, first, { serverName: "localhost" }),
      Deno.errors.BadResource,
    );
    await within(first.lost.promise);

    const client = new Collector();
    const [plain] = await createConnection(() => client, {
      hostname: "127.0.0.1",
      port,
    });
    await client.until("220 ready\n");
    plain.write(encoder.encode("STARTTLS\n"));
    await client.until("220 go ahead\n");
    // Not trusting the test CA: verification fails and the call rejects.
    await assert.rejects(
      startTls(plain, client, {
        serverName: "localhost",
        handshakeTimeout: 5000,
      }),
      Deno.errors.InvalidData,
    );
    await within(client.lost.promise);
    server.abortClients();
  });
});

Deno.test("streams: openConnection/startServer over TLS", async () => {
  await using server = await startServer(async (reader, writer) => {
    for await (const line of reader) writer.write(line);
    writer.close();
  }, { hostname: "127.0.0.1", port: 0, tls: { cert, key } });
  const [reader, writer] = await openConnection({
    hostname: "127.0.0.1",
    port: portOf(server.addrs[0]),
    tls: { caCerts: [cert], serverName: "localhost" },
  });
  writer.write(encoder.encode("one\ntwo\n"));
  assert.equal(decoder.decode(await within(reader.readLine())), "one\n");
  assert.equal(decoder.decode(await within(reader.readLine())), "two\n");
  writer.close();
  await writer.waitClosed();
});

/** A STARTTLS server over streams; `greeting` is sent after STARTTLS. */
function startTlsStreamServer(greeting: string) {
  return startServer(async (reader, writer) => {
    writer.write(encoder.encode("220 ready\n"));
    const command = decoder.decode(await reader.readLine());
    if (command !== "STARTTLS\n") {
      writer.close();
      return;
    }
    writer.write(encoder.encode(greeting));
    try {
      await writer.startTls({ cert, key });
    } catch {
      writer.close();
      return;
    }
    const line = decoder.decode(await reader.readLine());
    writer.write(encoder.encode(`tls:${line}`));
    await writer.drain();
    writer.close();
  }, { hostname: "127.0.0.1", port: 0 });
}

Deno.test("streams: StreamWriter.startTls upgrades both ends (STARTTLS)", async () => {
  await using server = await startTlsStreamServer("220 go ahead\n");
  const [reader, writer] = await openConnection({
    hostname: "127.0.0.1",
    port: portOf(server.addrs[0]),
  });
  assert.equal(decoder.decode(await within(reader.readLine())), "220 ready\n");
  writer.write(encoder.encode("STARTTLS\n"));
  assert.equal(
    decoder.decode(await within(reader.readLine())),
    "220 go ahead\n",
  );
  await within(writer.startTls({ serverName: "localhost", caCerts: [cert] }));
  assert.equal(writer.canWriteEof(), false);
  writer.write(encoder.encode("hello\n"));
  assert.equal(decoder.decode(await within(reader.readLine())), "tls:hello\n");
  writer.close();
  await writer.waitClosed();
});

Deno.test("streams: startTls refuses while unread plaintext is buffered (injection guard)", async () => {
  await using server = await startTlsStreamServer(
    "220 go ahead\n250 INJECTED before TLS\n",
  );
  const [reader, writer] = await openConnection({
    hostname: "127.0.0.1",
    port: portOf(server.addrs[0]),
  });
  await within(reader.readLine());
  writer.write(encoder.encode("STARTTLS\n"));
  assert.equal(
    decoder.decode(await within(reader.readLine())),
    "220 go ahead\n",
  );
  // The injected line came in the same segment: it is buffered, unread.
  await assert.rejects(
    writer.startTls({ serverName: "localhost", caCerts: [cert] }),
    Deno.errors.InvalidData,
  );
  // Nothing was consumed or upgraded: the plaintext is still readable.
  assert.equal(
    decoder.decode(await within(reader.readLine())),
    "250 INJECTED before TLS\n",
  );
  writer.close();
  await writer.waitClosed().catch(() => {});
  server.abortClients();
});
