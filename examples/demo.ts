/**
 * A guided tour of aionet's Transport/Protocol layer (and a short Streams
 * part), with server and clients in one process. Each step prints which
 * asyncio concept it shows.
 *
 * Run: `deno task demo` (= `deno run --allow-net=127.0.0.1 examples/demo.ts`).
 *
 * 1. `createServer` + a `Protocol` echo (asyncio's `loop.create_server`).
 * 2. `createConnection` client (asyncio's `loop.create_connection`).
 * 3. Write flow control: `getWriteBufferSize()`, `pauseWriting()` /
 *    `resumeWriting()` (asyncio's write buffer limits).
 * 4. Half-close: `writeEof()` on one side, `eofReceived()` on the other.
 * 5. `server.close()` + `server.waitClosed()`.
 * 6. Streams: `startServer()` and `openConnection()` (asyncio's
 *    `start_server` / `open_connection`), `readLine()`, `drain()`,
 *    `writeEof()`, `read()` at EOF, `close()` + `waitClosed()`.
 *
 * @module
 */

import { Protocol } from "../protocols.ts";
import {
  createConnection,
  createServer,
  type Transport,
} from "../transports.ts";
import { type Future, getEventLoop } from "../events.ts";
import { openConnection, startServer } from "../streams.ts";
import { formatAddr } from "./_cli.ts";

const HOST = "127.0.0.1";
const encoder = new TextEncoder();
const decoder = new TextDecoder();
const loop = getEventLoop();

function step(n: number, title: string, asyncio: string): void {
  console.log(`\n== ${n}. ${title}`);
  console.log(`   asyncio: ${asyncio}`);
}

function say(who: "client" | "server" | "demo", text: string): void {
  console.log(`   [${who}] ${text}`);
}

// ---------------------------------------------------------------------------
// Protocols

/** What the demo waits for on the server side of one connection. */
interface ServerEvents {
  connected: Future<void>;
  lost: Future<void>;
}

function serverEvents(): ServerEvents {
  return { connected: loop.createFuture(), lost: loop.createFuture() };
}

/** Server side of steps 1, 2 and 5: echoes what it receives. */
class EchoServerProtocol extends Protocol {
  #transport?: Transport;
  #events: ServerEvents;

  constructor(events: ServerEvents) {
    super();
    this.#events = events;
  }

  override connectionMade(transport: Transport): void {
    this.#transport = transport;
    say(
      "server",
      `connectionMade(): connection from ${
        formatAddr(transport.getExtraInfo("peername"))
      }`,
    );
    this.#events.connected.setResult();
  }

  override dataReceived(data: Uint8Array): void {
    say(
      "server",
      `dataReceived(${
        JSON.stringify(decoder.decode(data))
      }) -> write() it back`,
    );
    this.#transport!.write(data);
  }

  override eofReceived(): void {
    say("server", "eofReceived(): the client closed; returning nothing closes");
  }

  override connectionLost(exc: Error | null): void {
    say("server", `connectionLost(${exc})`);
    this.#events.lost.setResult();
  }
}

/** Client side of steps 2 and 5: prints what comes back. */
class EchoClientProtocol extends Protocol {
  readonly received: Future<string> = loop.createFuture<string>();
  readonly lost: Future<void> = loop.createFuture<void>();

  override connectionMade(transport: Transport): void {
    say(
      "client",
      `connectionMade(): connected to ${
        formatAddr(transport.getExtraInfo("peername"))
      }`,
    );
  }

  override dataReceived(data: Uint8Array): void {
    const text = decoder.decode(data);
    say("client", `dataReceived(${JSON.stringify(text)})`);
    if (!this.received.done()) this.received.setResult(text);
  }

  override connectionLost(exc: Error | null): void {
    say("client", `connectionLost(${exc})`);
    this.lost.setResult();
  }
}

/** Server side of steps 3 and 4: counts bytes, answers at EOF. */
class CountingServerProtocol extends Protocol {
  #transport?: Transport;
  #count = 0;

  override connectionMade(transport: Transport): void {
    this.#transport = transport;
  }

  override dataReceived(data: Uint8Array): void {
    this.#count += data.length;
  }

  override eofReceived(): boolean {
    say(
      "server",
      `eofReceived() after ${this.#count} bytes: the client half-closed, ` +
        `we can still write`,
    );
    this.#transport!.write(encoder.encode(`received ${this.#count} bytes`));
    say("server", "wrote the reply, then close() (flushes first)");
    this.#transport!.close();
    // True would keep our side open; we closed it ourselves anyway.
    return true;
  }
}

/** Client side of steps 3 and 4: logs flow control and the half-close. */
class BulkClientProtocol extends Protocol {
  transport?: Transport;
  paused = false;
  readonly resumed: Future<number> = loop.createFuture<number>();
  readonly reply: Future<string> = loop.createFuture<string>();
  readonly eof: Future<void> = loop.createFuture<void>();
  readonly lost: Future<void> = loop.createFuture<void>();
  #reply = "";

  override connectionMade(transport: Transport): void {
    this.transport = transport;
  }

  override pauseWriting(): void {
    this.paused = true;
    say(
      "client",
      `pauseWriting(): buffer ${this.transport!.getWriteBufferSize()} bytes ` +
        `is above the high-water mark`,
    );
  }

  override resumeWriting(): void {
    this.paused = false;
    const size = this.transport!.getWriteBufferSize();
    say("client", `resumeWriting(): buffer down to ${size} bytes`);
    if (!this.resumed.done()) this.resumed.setResult(size);
  }

  override dataReceived(data: Uint8Array): void {
    this.#reply += decoder.decode(data, { stream: true });
  }

  override eofReceived(): void {
    say(
      "client",
      `dataReceived: ${JSON.stringify(this.#reply)}, then eofReceived()`,
    );
    this.reply.setResult(this.#reply);
    this.eof.setResult();
  }

  override connectionLost(exc: Error | null): void {
    say("client", `connectionLost(${exc})`);
    this.lost.setResult();
  }
}

// ---------------------------------------------------------------------------
// The tour

async function main(): Promise<void> {
  console.log("aionet demo: Python asyncio's networking stack on Deno");

  // 1. ------------------------------------------------------------------
  step(
    1,
    "createServer() with a Protocol factory",
    "server = await loop.create_server(EchoServerProtocol, host, port)",
  );
  // The server-side events of the next connection (one at a time here).
  let events = serverEvents();
  const echoServer = await createServer(
    () => new EchoServerProtocol(events),
    { hostname: HOST, port: 0 },
  );
  const echoPort = (echoServer.addrs[0] as Deno.NetAddr).port;
  say(
    "demo",
    `listening on ${formatAddr(echoServer.addrs[0])} (port 0: the OS ` +
      `picked a free port; read it from server.addrs), isServing() = ${echoServer.isServing()}`,
  );

  // 2. ------------------------------------------------------------------
  step(
    2,
    "createConnection(): a client transport and protocol",
    "transport, protocol = await loop.create_connection(Client, host, port)",
  );
  const [client, clientProtocol] = await createConnection(
    () => new EchoClientProtocol(),
    { hostname: HOST, port: echoPort },
  );
  await events.connected;
  say("client", 'transport.write(b"Hello World!") (queued, never blocks)');
  client.write(encoder.encode("Hello World!"));
  const echoed = await clientProtocol.received;
  say("demo", `the echo came back: ${JSON.stringify(echoed)}`);
  say("client", "transport.close() -> connectionLost(null) on both sides");
  client.close();
  await Promise.all([clientProtocol.lost, events.lost]);

  // 3. ------------------------------------------------------------------
  step(
    3,
    "Write flow control",
    "transport.set_write_buffer_limits(high=...) -> " +
      "protocol.pause_writing() / resume_writing()",
  );
  await using countingServer = await createServer(
    () => new CountingServerProtocol(),
    { hostname: HOST, port: 0 },
  );
  const [bulk, bulkProtocol] = await createConnection(
    () => new BulkClientProtocol(),
    {
      hostname: HOST,
      port: (countingServer.addrs[0] as Deno.NetAddr).port,
    },
  );
  bulk.setWriteBufferLimits({ high: 64 * 1024 });
  const [low, high] = bulk.getWriteBufferLimits();
  say(
    "client",
    `getWriteBufferLimits() = [low ${low}, high ${high}], ` +
      `getWriteBufferSize() = ${bulk.getWriteBufferSize()}`,
  );
  // A producer writes until the transport says pause. On Deno's ops the
  // first write is queued whole; the native backend sends at once what the
  // kernel takes (as asyncio's write() tries send() first) and queues the
  // rest, so it may take a few megabytes to pass the high-water mark.
  const payload = new Uint8Array(1024 * 1024).fill(0x61);
  for (let i = 0; i < 64 && !bulkProtocol.paused; i++) {
    say("client", `transport.write(${payload.length} bytes)`);
    bulk.write(payload);
  }
  say(
    "client",
    `write() returned at once: getWriteBufferSize() = ${bulk.getWriteBufferSize()}, ` +
      `paused = ${bulkProtocol.paused} (pauseWriting ran inside write())`,
  );
  const drained = await bulkProtocol.resumed;
  say(
    "demo",
    `the buffer drained to ${drained} <= low ${low}: a producer may write again`,
  );

  // 4. ------------------------------------------------------------------
  step(
    4,
    "Half-close: writeEof() and eofReceived()",
    "transport.write_eof() -> the peer's protocol.eof_received()",
  );
  say(
    "client",
    `canWriteEof() = ${bulk.canWriteEof()}; writeEof(): no more data from us`,
  );
  bulk.writeEof();
  const reply = await bulkProtocol.reply;
  await bulkProtocol.lost;
  say("demo", `the half-closed client still read the reply: "${reply}"`);

  // 5. ------------------------------------------------------------------
  step(
    5,
    "server.close() and server.waitClosed()",
    "server.close(); await server.wait_closed()",
  );
  events = serverEvents();
  const [live, liveProtocol] = await createConnection(
    () => new EchoClientProtocol(),
    { hostname: HOST, port: echoPort },
  );
  await events.connected;
  say("demo", "server.close(): stop listening; live connections go on");
  echoServer.close();
  say(
    "demo",
    `isServing() = ${echoServer.isServing()}, sockets = ${echoServer.sockets.length}`,
  );
  let waitClosedDone = false;
  const closed = echoServer.waitClosed().then(() => {
    waitClosedDone = true;
  });
  live.write(encoder.encode("still here"));
  await liveProtocol.received;
  say(
    "demo",
    `the live connection still echoes; has waitClosed() resolved? ${waitClosedDone}`,
  );
  say("client", "transport.close()");
  live.close();
  await Promise.all([liveProtocol.lost, events.lost, closed]);
  say(
    "demo",
    `waitClosed() resolved (${waitClosedDone}): the server is closed and ` +
      `every connection it accepted has ended`,
  );
  try {
    const [late] = await createConnection(() => new Protocol(), {
      hostname: HOST,
      port: echoPort,
    });
    late.close();
    say("demo", "unexpected: the port still accepted a connection");
  } catch (error) {
    say(
      "demo",
      `the port is released, a new connect fails: ${(error as Error).name}`,
    );
  }
  say(
    "demo",
    "the counting server closes when main() returns, as its " +
      "`await using` scope ends (asyncio: async with server)",
  );

  // 6. ------------------------------------------------------------------
  step(
    6,
    "Streams: startServer() and openConnection()",
    "reader, writer = await asyncio.open_connection(host, port)",
  );
  await using streamsServer = await startServer(async (reader, writer) => {
    // `async for line in reader`: one line per iteration, until EOF.
    for await (const line of reader) {
      const text = decoder.decode(line);
      say("server", `got line ${JSON.stringify(text)} -> write it uppercased`);
      writer.write(encoder.encode(text.toUpperCase()));
      await writer.drain();
    }
    say("server", "reader reached EOF: writer.close(); await waitClosed()");
    writer.close();
    await writer.waitClosed();
  }, { hostname: HOST, port: 0 });
  const [reader, writer] = await openConnection({
    hostname: HOST,
    port: (streamsServer.addrs[0] as Deno.NetAddr).port,
  });
  say("client", 'writer.write("hello\\n"); writer.write("streams\\n")');
  writer.write(encoder.encode("hello\n"));
  writer.write(encoder.encode("streams\n"));
  await writer.drain();
  say("client", "await drain(); writeEof()");
  writer.writeEof();
  for (let i = 0; i < 2; i++) {
    const line = decoder.decode(await reader.readLine());
    say("client", `await readLine() -> ${JSON.stringify(line)}`);
  }
  const rest = await reader.read();
  say(
    "client",
    `await read() -> ${rest.length} bytes: EOF, atEof() = ${reader.atEof()}`,
  );
  writer.close();
  await writer.waitClosed();
  say("client", "writer.close(); await writer.waitClosed()");
}

const watchdog = setTimeout(() => {
  console.error("demo: did not finish within 15 seconds");
  Deno.exit(1);
}, 15_000);
try {
  await main();
  console.log("\nDone.");
} finally {
  clearTimeout(watchdog);
}
