/**
 * Seed S003-a (seeds/003_7eb64347b71338c1.txt): a walk through the Streams
 * API, one step per section of the seed, against a small line-protocol
 * server started in the same program.
 *
 * The seed's snippets, and what each becomes here:
 *
 * | seed (Python) | here |
 * | --- | --- |
 * | `reader, writer = await asyncio.open_connection(host, port)` | `const [reader, writer] = await openConnection({ hostname, port })` |
 * | `reader, writer = await asyncio.open_connection('www.google.com', 443, ssl=True)` | `const [reader, writer] = await openConnection({ hostname, port, tls: { caCerts, serverName } })` |
 * | `server = await asyncio.start_server(handler, '127.0.0.1', 80)` | `const server = await startServer(handler, { hostname: "127.0.0.1", port })` |
 * | `writer.write(byte_data)`, `writer.writelines(byte_lines)`, `await writer.drain()` | `writer.write(bytes)`, `writer.writeLines(lines)`, `await writer.drain()` |
 * | `await reader.read()`, `await reader.read(n=100)` | `await reader.read()`, `await reader.read(100)` |
 * | `await reader.readline()`, `readexactly(n)`, `readuntil(sep)` | `await reader.readLine()`, `readExactly(n)`, `readUntil(sep)` |
 * | `writer.close()`, `await writer.wait_closed()`, `writer.is_closing()` | `writer.close()`, `await writer.waitClosed()`, `writer.isClosing()` |
 *
 * The seed's `ssl=True` step connects to an HTTPS server on port 443; here
 * the program starts a second server in-process, the same handler behind
 * TLS (`startServer(handler, { hostname, port: 0, tls: { cert, key } })`
 * with the test certificate in `tests/fixtures/`), and connects to it with
 * `tls: { caCerts: [fixtureCert], serverName: "localhost" }`. `tls: true`
 * is the exact equivalent of `ssl=True` (system roots, host name checked);
 * the fixture certificate is not in the system's roots, so it is passed as
 * `caCerts`. After the handshake the reader and writer work as over TCP.
 *
 * The server understands one command a line: `HELLO` (answers a line),
 * `DATA n` (answers exactly n bytes), `RECORD` (answers `;`-separated
 * fields ending in `END`), `CHUNK` (answers 100 bytes) and `BYE` (answers,
 * then closes).
 *
 * Run: `deno run -A examples/streams_walkthrough.ts [--host 127.0.0.1] [--port 0]`
 * (`--port` is where the walkthrough's plaintext server listens; 0 picks a
 * free port; the TLS server always takes a free port).
 *
 * @module
 */

import {
  openConnection,
  startServer,
  type StreamReader,
  type StreamWriter,
} from "../streams.ts";
import { readFixture } from "./_tls_fixture.ts";
import { bytesRepr, serverFlags } from "./_cli.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** 3. The server's handler: called with a reader and a writer per client. */
async function handler(
  reader: StreamReader,
  writer: StreamWriter,
): Promise<void> {
  for await (const raw of reader) {
    const [command, arg] = decoder.decode(raw).trim().split(" ");
    switch (command) {
      case "HELLO":
        writer.write(encoder.encode("Hi there!\n"));
        break;
      case "DATA":
        writer.write(encoder.encode("0123456789".repeat(10).slice(0, +arg)));
        break;
      case "RECORD":
        writer.write(encoder.encode("name=aionet;lang=TypeScript;END"));
        break;
      case "CHUNK":
        writer.write(new Uint8Array(100).fill(0x2a)); // 100 × "*"
        break;
      case "BYE":
        writer.write(encoder.encode("Goodbye!\nThe server closes now.\n"));
        await writer.drain();
        writer.close();
        await writer.waitClosed();
        return;
      default:
        writer.write(encoder.encode(`Unknown command ${command}\n`));
    }
    await writer.drain();
  }
  writer.close();
}

async function main(): Promise<void> {
  const { host, port } = serverFlags(0);

  // 3. How to start a server.
  await using server = await startServer(handler, { hostname: host, port });
  const { port: serverPort } = server.addrs[0] as Deno.NetAddr;
  console.log(`Server started on ${host}:${serverPort}`);

  // 2. How to open a connection.
  const [reader, writer] = await openConnection({
    hostname: host,
    port: serverPort,
  });
  console.log(`Connected to ${host}:${serverPort}`);

  // 4. How to write data: write(), then drain().
  writer.write(encoder.encode("HELLO\n"));
  await writer.drain();
  // 5. readline(): one line, with its "\n".
  console.log(`readLine() -> ${bytesRepr(await reader.readLine())}`);

  // 4. writelines(): several lines in one go.
  writer.writeLines([encoder.encode("DATA 12\n"), encoder.encode("RECORD\n")]);
  await writer.drain();
  // 5. readexactly(n): exactly n bytes.
  console.log(`readExactly(12) -> ${bytesRepr(await reader.readExactly(12))}`);
  // 5. readuntil(separator): up to and including the separator.
  console.log(`readUntil(";") -> ${bytesRepr(await reader.readUntil(";"))}`);
  console.log(
    `readUntil("END") -> ${bytesRepr(await reader.readUntil("END"))}`,
  );

  // 5. read(n=100): at most 100 bytes, as soon as some are there.
  writer.write(encoder.encode("CHUNK\n"));
  await writer.drain();
  let chunk = 0;
  while (chunk < 100) chunk += (await reader.read(100)).length;
  console.log(`read(100) -> ${chunk} bytes`);

  // 5. read(): everything up to EOF.
  writer.write(encoder.encode("BYE\n"));
  await writer.drain();
  console.log(`read() -> ${bytesRepr(await reader.read())}`);
  console.log(`atEof() -> ${reader.atEof()}`);

  // 6. How to close the connection.
  writer.close();
  console.log(`isClosing() after close() -> ${writer.isClosing()}`);
  await writer.waitClosed();
  console.log("waitClosed() -> the connection is closed");

  // 2. Again with ssl=True: the same handler behind TLS, on a free port.
  const { cert, key } = readFixture();
  await using tlsServer = await startServer(handler, {
    hostname: host,
    port: 0,
    tls: { cert, key },
  });
  const { port: tlsPort } = tlsServer.addrs[0] as Deno.NetAddr;
  console.log(`TLS server started on ${host}:${tlsPort}`);
  // Resolves once the handshake succeeded and the certificate was checked.
  const [tlsReader, tlsWriter] = await openConnection({
    hostname: host,
    port: tlsPort,
    tls: { caCerts: [cert], serverName: "localhost" },
  });
  console.log(`Connected to ${host}:${tlsPort} over TLS`);
  tlsWriter.write(encoder.encode("HELLO\n"));
  await tlsWriter.drain();
  console.log(
    `readLine() over TLS -> ${bytesRepr(await tlsReader.readLine())}`,
  );
  tlsWriter.write(encoder.encode("BYE\n"));
  await tlsWriter.drain();
  console.log(`read() over TLS -> ${bytesRepr(await tlsReader.read())}`);
  tlsWriter.close();
  await tlsWriter.waitClosed();
  console.log("waitClosed() -> the TLS connection is closed");
  // Leaving main() closes both servers (`await using`).
}

if (import.meta.main) await main();
