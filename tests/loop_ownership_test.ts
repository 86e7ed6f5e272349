// A loop owns what it makes: a protocol error in a transport, server,
// datagram endpoint, pipe or subprocess made by `loop.createX(...)` goes to
// that loop's exception handler, never to another loop's or the default
// loop's. Two loops, two handlers, every kind of transport.

import assert from "node:assert/strict";
import {
  BaseProtocol,
  DatagramProtocol,
  Protocol,
  SubprocessProtocol,
} from "../protocols.ts";
import type { DatagramTransport, Transport } from "../transports.ts";
import { EventLoop, type ExceptionContext, getEventLoop } from "../events.ts";
import { encode, startEchoServer, withTimeout } from "./_helpers.ts";

const fixtures = new URL("./fixtures/", import.meta.url);
const cert = Deno.readTextFileSync(new URL("tls_cert.pem", fixtures));
const key = Deno.readTextFileSync(new URL("tls_key.pem", fixtures));

/** A loop whose handler records what it gets and resolves on the first one. */
class OwnedLoop {
  readonly loop = new EventLoop();
  readonly seen: ExceptionContext[] = [];
  readonly first = Promise.withResolvers<ExceptionContext>();

  constructor() {
    this.loop.setExceptionHandler((_loop, context) => {
      this.seen.push(context);
      this.first.resolve(context);
    });
  }
}

/** Two loops and the default loop's handler, each recording. */
function setUp(): {
  a: OwnedLoop;
  b: OwnedLoop;
  defaultSeen: ExceptionContext[];
  [Symbol.dispose](): void;
} {
  const defaultSeen: ExceptionContext[] = [];
  getEventLoop().setExceptionHandler((_loop, c) => defaultSeen.push(c));
  const a = new OwnedLoop();
  const b = new OwnedLoop();
  return {
    a,
    b,
    defaultSeen,
    [Symbol.dispose]() {
      getEventLoop().setExceptionHandler(null);
      a.loop.close();
      b.loop.close();
    },
  };
}

class Boom extends Error {
  constructor(where: string) {
    super(`boom in ${where}`);
  }
}

/** Throws from dataReceived; resolves `lost` when its transport is gone. */
class ThrowOnData extends Protocol {
  readonly lost = Promise.withResolvers<void>();
  constructor(readonly where: string) {
    super();
  }
  override dataReceived(): void {
    throw new Boom(this.where);
  }
  override connectionLost(): void {
    this.lost.resolve();
  }
}

function assertOwned(
  owner: OwnedLoop,
  others: { seen: ExceptionContext[] }[],
  where: string,
): void {
  assert.equal(owner.seen.length, 1, `${where}: the owner got one report`);
  assert.ok(owner.seen[0].exception instanceof Boom);
  assert.equal((owner.seen[0].exception as Error).message, `boom in ${where}`);
  for (const other of others) {
    assert.deepEqual(other.seen, [], `${where}: no other handler got it`);
  }
}

Deno.test("loop ownership: TCP server and client report to their own loops", async () => {
  using t = setUp();
  const serverProtocol = new ThrowOnData("tcp server");
  await using server = await t.a.loop.createServer(() => serverProtocol, {
    hostname: "127.0.0.1",
    port: 0,
  });
  const { port } = server.addrs[0] as Deno.NetAddr;
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  await conn.write(encode("x"));
  await withTimeout(t.a.first.promise, 5000, "the server's report");
  await serverProtocol.lost.promise;
  conn.close();
  assertOwned(t.a, [t.b, { seen: t.defaultSeen }], "tcp server");

  await using echo = startEchoServer();
  const clientProtocol = new ThrowOnData("tcp client");
  const [transport] = await t.b.loop.createConnection(() => clientProtocol, {
    hostname: "127.0.0.1",
    port: echo.port,
  });
  transport.write(encode("y"));
  await withTimeout(t.b.first.promise, 5000, "the client's report");
  await clientProtocol.lost.promise;
  assertOwned(t.b, [{ seen: t.defaultSeen }], "tcp client");
  assert.equal(t.a.seen.length, 1);
});

Deno.test("loop ownership: Unix server and client report to their own loops", async () => {
  using t = setUp();
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/owned.sock`;
    const serverProtocol = new ThrowOnData("unix server");
    const server = await t.a.loop.createUnixServer(() => serverProtocol, {
      path,
    });
    // The client side is made by loop b: its protocol echoes nothing, so
    // the only report is the server's.
    const [client] = await t.b.loop.createUnixConnection(
      () => new Protocol(),
      { path },
    );
    client.write(encode("x"));
    await withTimeout(t.a.first.promise, 5000, "the server's report");
    await serverProtocol.lost.promise;
    client.close();
    server.close();
    await server.waitClosed();
    assertOwned(t.a, [t.b, { seen: t.defaultSeen }], "unix server");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("loop ownership: UDP endpoints report to their own loops", async () => {
  using t = setUp();
  const lost = Promise.withResolvers<void>();
  class ThrowOnDatagram extends DatagramProtocol {
    override datagramReceived(): void {
      throw new Boom("udp");
    }
    override connectionLost(): void {
      lost.resolve();
    }
  }
  const [receiver] = await t.a.loop.createDatagramEndpoint(
    () => new ThrowOnDatagram(),
    { localAddr: { hostname: "127.0.0.1", port: 0 } },
  );
  const { port } = receiver.getExtraInfo("sockname") as Deno.NetAddr;
  const [sender] = await t.b.loop.createDatagramEndpoint(
    () => new DatagramProtocol(),
    { remoteAddr: { hostname: "127.0.0.1", port } },
  );
  (sender as DatagramTransport).sendTo(encode("x"));
  await withTimeout(t.a.first.promise, 5000, "the receiver's report");
  await lost.promise;
  sender.close();
  assertOwned(t.a, [t.b, { seen: t.defaultSeen }], "udp");
});

Deno.test("loop ownership: TLS server and client report to their own loops", async () => {
  using t = setUp();
  const serverProtocol = new ThrowOnData("tls server");
  const server = await t.a.loop.createServer(() => serverProtocol, {
    hostname: "127.0.0.1",
    port: 0,
    tls: { cert, key },
  });
  const { port } = server.addrs[0] as Deno.NetAddr;
  const clientProtocol = new ThrowOnData("tls client");
  const [client] = await t.b.loop.createConnection(() => clientProtocol, {
    hostname: "127.0.0.1",
    port,
    tls: { caCerts: [cert], serverName: "localhost" },
  });
  client.write(encode("x"));
  await withTimeout(t.a.first.promise, 5000, "the server's report");
  await serverProtocol.lost.promise;
  await clientProtocol.lost.promise;
  server.close();
  await server.waitClosed();
  assertOwned(t.a, [{ seen: t.defaultSeen }], "tls server");
  // The client saw the close, not data: its loop got nothing.
  assert.deepEqual(t.b.seen, []);
});

Deno.test("loop ownership: a STARTTLS upgrade keeps the loop", async () => {
  using t = setUp();
  const accepted = Promise.withResolvers<Transport>();
  class Capture extends Protocol {
    override connectionMade(transport: Transport): void {
      accepted.resolve(transport);
    }
  }
  const server = await t.a.loop.createServer(() => new Capture(), {
    hostname: "127.0.0.1",
    port: 0,
  });
  const { port } = server.addrs[0] as Deno.NetAddr;
  const clientProtocol = new Protocol();
  const [plain] = await t.b.loop.createConnection(() => clientProtocol, {
    hostname: "127.0.0.1",
    port,
  });
  const serverProtocol = new ThrowOnData("starttls");
  const [, clientSecure] = await Promise.all([
    t.a.loop.startTls(await accepted.promise, serverProtocol, {
      serverSide: true,
      cert,
      key,
    }),
    t.b.loop.startTls(plain, clientProtocol, {
      caCerts: [cert],
      serverName: "localhost",
    }),
  ]);
  clientSecure.write(encode("x"));
  await withTimeout(t.a.first.promise, 5000, "the upgraded side's report");
  await serverProtocol.lost.promise;
  clientSecure.close();
  server.close();
  await server.waitClosed();
  assertOwned(t.a, [t.b, { seen: t.defaultSeen }], "starttls");
});

Deno.test("loop ownership: pipe transports report to their own loops", async () => {
  using t = setUp();
  const readProtocol = new ThrowOnData("read pipe");
  const stream = new ReadableStream<Uint8Array>({
    start(controller) {
      controller.enqueue(encode("x"));
    },
  });
  await t.a.loop.connectReadPipe(() => readProtocol, stream);
  await withTimeout(t.a.first.promise, 5000, "the read pipe's report");
  await readProtocol.lost.promise;
  assertOwned(t.a, [t.b, { seen: t.defaultSeen }], "read pipe");

  // A write pipe whose protocol throws in pauseWriting (crossing the mark).
  const lost = Promise.withResolvers<void>();
  class ThrowOnPause extends BaseProtocol {
    override pauseWriting(): void {
      throw new Boom("write pipe");
    }
    override connectionLost(): void {
      lost.resolve();
    }
  }
  // The sink holds the first write until released, so the bytes stay
  // queued and the mark is crossed.
  const release = Promise.withResolvers<void>();
  const sink = new WritableStream<Uint8Array>({ write: () => release.promise });
  const [writer] = await t.b.loop.connectWritePipe(
    () => new ThrowOnPause(),
    sink,
  );
  writer.setWriteBufferLimits({ high: 4 });
  writer.write(encode("more than four bytes"));
  await withTimeout(t.b.first.promise, 5000, "the write pipe's report");
  release.resolve();
  writer.close();
  await lost.promise;
  assertOwned(t.b, [{ seen: t.defaultSeen }], "write pipe");
});

Deno.test("loop ownership: subprocess transports report to their own loops", async () => {
  using t = setUp();
  const lost = Promise.withResolvers<void>();
  class ThrowOnOutput extends SubprocessProtocol {
    override pipeDataReceived(): void {
      throw new Boom("subprocess");
    }
    override connectionLost(): void {
      lost.resolve();
    }
  }
  const [transport] = await t.b.loop.subprocessExec(
    () => new ThrowOnOutput(),
    "echo",
    ["hi"],
    { stdin: "null" },
  );
  await withTimeout(t.b.first.promise, 5000, "the subprocess's report");
  await lost.promise;
  transport.close();
  assertOwned(t.b, [t.a, { seen: t.defaultSeen }], "subprocess");
});
