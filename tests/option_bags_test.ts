// Every option bag refuses an unknown key with a TypeError naming it, not
// only the factories' (options_test.ts): the reader's and writer's calls,
// the sock* calls, getAddrInfo, createTask, setWriteBufferLimits, a
// server's shutdown, the transports' constructors and the testing helpers.
// Each of these accepted `{ bogusOption: 1 }` silently before.

import assert from "node:assert/strict";
import { EventLoop, getEventLoop } from "../events.ts";
import { DatagramProtocol, Protocol } from "../protocols.ts";
import {
  createDatagramEndpoint,
  createServer,
  DatagramConnTransport,
  StreamTransport,
} from "../transports.ts";
import { StreamReader, StreamWriter } from "../streams.ts";
import { StreamReaderProtocol } from "../_stream_protocol.ts";
import { AF_INET, SOCK_STREAM, socket } from "../sockets.ts";
import {
  createStreamPair,
  createTransportPair,
  FakeClock,
  RecordingTransport,
  withFakeClock,
} from "../testing.ts";

const bogus = { bogusOption: 1 } as never;

/** The error names the unknown key. */
function namesBogus(error: unknown): boolean {
  assert.ok(error instanceof TypeError, `TypeError, got ${error}`);
  assert.match(error.message, /"bogusOption"/);
  return true;
}

Deno.test("option bags: StreamReader's constructor and read calls refuse unknown options", async () => {
  assert.throws(() => new StreamReader(bogus), namesBogus);
  const reader = new StreamReader();
  reader.feedData(new TextEncoder().encode("line\nmore"));
  reader.feedEof();
  await assert.rejects(() => reader.read(1, bogus), namesBogus);
  await assert.rejects(() => reader.readLine(bogus), namesBogus);
  await assert.rejects(() => reader.readExactly(1, bogus), namesBogus);
  await assert.rejects(
    () => reader.readUntil(new Uint8Array([10]), bogus),
    namesBogus,
  );
  // Nothing was consumed by the refused calls; a known option works.
  const signal = new AbortController().signal;
  assert.equal(
    new TextDecoder().decode(await reader.readLine({ signal })),
    "line\n",
  );
});

Deno.test("option bags: StreamWriter's constructor and drain() refuse unknown options", async () => {
  const [[, writerA], [readerB, writerB]] = createStreamPair();
  await assert.rejects(() => writerA.drain(bogus), namesBogus);
  const protocol = new StreamReaderProtocol(getEventLoop(), new StreamReader());
  assert.throws(
    () => new StreamWriter(writerA.transport, protocol, bogus),
    namesBogus,
  );
  await writerA.drain({ signal: new AbortController().signal });
  writerA.close();
  writerB.close();
  assert.equal((await readerB.read()).length, 0);
  await writerA.waitClosed();
  await writerB.waitClosed();
});

Deno.test("option bags: the sock* calls refuse unknown options before waiting", async () => {
  const loop = new EventLoop();
  const sock = socket(AF_INET, SOCK_STREAM);
  sock.setBlocking(false);
  try {
    const buffer = new Uint8Array(4);
    await assert.rejects(() => loop.sockRecv(sock, 1, bogus), namesBogus);
    await assert.rejects(
      () => loop.sockRecvInto(sock, buffer, bogus),
      namesBogus,
    );
    await assert.rejects(() => loop.sockRecvFrom(sock, 1, bogus), namesBogus);
    await assert.rejects(
      () => loop.sockSendAll(sock, buffer, bogus),
      namesBogus,
    );
    await assert.rejects(
      () => loop.sockConnect(sock, { hostname: "127.0.0.1", port: 9 }, bogus),
      namesBogus,
    );
    await assert.rejects(() => loop.sockAccept(sock, bogus), namesBogus);
  } finally {
    sock.close();
    loop.close();
  }
});

Deno.test("option bags: getAddrInfo and createTask refuse unknown options", async () => {
  const loop = new EventLoop();
  try {
    await assert.rejects(
      () => loop.getAddrInfo("127.0.0.1", 80, bogus),
      namesBogus,
    );
    assert.throws(() => loop.createTask(Promise.resolve(1), bogus), namesBogus);
    const task = loop.createTask(Promise.resolve(1), { name: "one" });
    assert.equal(task.getName(), "one");
    assert.equal(await task, 1);
  } finally {
    loop.close();
  }
});

Deno.test("option bags: setWriteBufferLimits refuses unknown keys (stream and datagram transports)", async () => {
  const [a, b] = createTransportPair(new Protocol(), new Protocol());
  assert.throws(() => a.setWriteBufferLimits({ hi: 10 } as never), (e) => {
    assert.ok(e instanceof TypeError);
    assert.match((e as Error).message, /"hi" \(did you mean "high"\?\)/);
    return true;
  });
  // The refused call changed nothing.
  a.setWriteBufferLimits({ high: 100 });
  assert.deepEqual(a.getWriteBufferLimits(), [25, 100]);
  a.close();
  b.close();
  const [endpoint] = await createDatagramEndpoint(
    () => new DatagramProtocol(),
    { localAddr: { hostname: "127.0.0.1", port: 0 } },
  );
  try {
    assert.throws(() => endpoint.setWriteBufferLimits(bogus), namesBogus);
  } finally {
    endpoint.close();
  }
});

Deno.test("option bags: Server.shutdown refuses unknown options", async () => {
  const server = await createServer(() => new Protocol(), {
    hostname: "127.0.0.1",
    port: 0,
  });
  try {
    await assert.rejects(() => server.shutdown(bogus), namesBogus);
    assert.equal(server.isServing(), true);
  } finally {
    assert.equal(await server.shutdown({ timeout: 1000 }), true);
  }
});

Deno.test("option bags: the transports' constructors refuse unknown options", () => {
  const conn = {} as Deno.Conn;
  assert.throws(
    () => new StreamTransport(conn, new Protocol(), bogus),
    namesBogus,
  );
  assert.throws(
    () =>
      new DatagramConnTransport(
        {} as Deno.DatagramConn,
        new DatagramProtocol(),
        bogus,
      ),
    namesBogus,
  );
});

Deno.test("option bags: the testing helpers refuse unknown options", async () => {
  assert.throws(
    () => createTransportPair(new Protocol(), new Protocol(), bogus),
    namesBogus,
  );
  assert.throws(
    () => new RecordingTransport(new Protocol(), bogus),
    namesBogus,
  );
  assert.throws(() => new FakeClock(bogus), namesBogus);
  let ran = false;
  await assert.rejects(
    () =>
      withFakeClock(() => {
        ran = true;
      }, bogus),
    namesBogus,
  );
  assert.equal(ran, false);
});
