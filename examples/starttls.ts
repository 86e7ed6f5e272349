/**
 * aionet example: STARTTLS, in one program. A plaintext line server greets
 * the client, agrees to switch to TLS, and both ends upgrade the live
 * connection with `StreamWriter.startTls()` (asyncio's
 * `StreamWriter.start_tls`, Python 3.11+); the rest of the exchange runs
 * over TLS on the same socket, with the same reader and writer.
 *
 * The exchange, SMTP-like (`S:` lines are sent by the server, `C:` lines by
 * the client):
 *
 * ```text
 * S: 220 ready
 * C: STARTTLS
 * S: 220 go ahead
 *    (both ends call writer.startTls(...); the handshake runs)
 * C: EHLO client.example
 * S: 250 hello client.example, over TLS
 * C: QUIT
 * S: 221 bye
 * ```
 *
 * The Python equivalent of the client's upgrade:
 *
 * ```python
 * writer.write(b'STARTTLS\r\n')
 * await reader.readline()                      # 220 go ahead
 * await writer.start_tls(context, server_hostname='localhost')
 * ```
 *
 * Each side prints a line as it sends it; `client:`/`server:` lines report
 * the TLS state of that end (`getExtraInfo("alpnProtocol")`: both offer
 * ALPN `smtp`). The server
 * uses the test certificate in `tests/fixtures/`, which the client trusts
 * as `caCerts` and checks as `localhost`. `startTls` refuses to upgrade
 * while unread plaintext is buffered, so a line injected before the
 * handshake can never pass for a protected one.
 *
 * Run: `deno run -A examples/starttls.ts [--port 0]` (`--port` is where the
 * program's server listens; 0 picks a free port).
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
import { parseFlags, parsePort } from "./_cli.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const { cert, key } = readFixture();

/** Prints a line as `who` sends it, then sends it with CRLF. */
function send(who: "S" | "C", writer: StreamWriter, line: string): void {
  console.log(`${who}: ${line}`);
  writer.write(encoder.encode(`${line}\r\n`));
}

/** One line without its CRLF; `""` at EOF. */
async function receive(reader: StreamReader): Promise<string> {
  return decoder.decode(await reader.readLine()).replace(/\r?\n$/, "");
}

function tlsState(writer: StreamWriter): string {
  return `TLS is up (alpnProtocol: ${writer.getExtraInfo("alpnProtocol")})`;
}

/** The server's side of one connection. */
async function serveClient(
  reader: StreamReader,
  writer: StreamWriter,
): Promise<void> {
  try {
    send("S", writer, "220 ready");
    if (await receive(reader) !== "STARTTLS") {
      send("S", writer, "530 must issue STARTTLS first");
      return;
    }
    send("S", writer, "220 go ahead");
    // The server role comes from startServer; the certificate is ours.
    await writer.startTls({ cert, key, alpnProtocols: ["smtp"] });
    for (;;) {
      const command = await receive(reader);
      if (command.startsWith("EHLO ")) {
        console.log(`server: ${tlsState(writer)}`);
        send("S", writer, `250 hello ${command.slice(5)}, over TLS`);
      } else if (command === "QUIT") {
        send("S", writer, "221 bye");
        await writer.drain();
        return;
      } else if (command === "") {
        return; // EOF
      } else {
        send("S", writer, "500 unknown command");
      }
    }
  } finally {
    writer.close();
    await writer.waitClosed().catch(() => {});
  }
}

/** The client: asks for TLS, upgrades, then talks over TLS. */
async function client(port: number): Promise<void> {
  const [reader, writer] = await openConnection({
    hostname: "127.0.0.1",
    port,
  });
  try {
    const greeting = await receive(reader);
    if (!greeting.startsWith("220 ")) throw new Error(greeting);
    send("C", writer, "STARTTLS");
    const answer = await receive(reader);
    if (!answer.startsWith("220 ")) throw new Error(answer);
    await writer.startTls({
      serverName: "localhost",
      caCerts: [cert],
      alpnProtocols: ["smtp"],
    });
    console.log(`client: ${tlsState(writer)}`);
    send("C", writer, "EHLO client.example");
    await receive(reader);
    send("C", writer, "QUIT");
    await receive(reader);
    const rest = await reader.read();
    console.log(
      `client: the server closed the connection (${rest.length} more bytes)`,
    );
  } finally {
    writer.close();
    await writer.waitClosed().catch(() => {});
  }
}

async function main(): Promise<void> {
  const port = parsePort(
    parseFlags({ port: { type: "string", default: "0" } }).port,
  );
  await using server = await startServer(serveClient, {
    hostname: "127.0.0.1",
    port,
  });
  const { port: serverPort } = server.addrs[0] as Deno.NetAddr;
  console.log(`Serving on 127.0.0.1:${serverPort}`);
  await client(serverPort);
  // Leaving main() closes the server and waits for its connection to end.
}

if (import.meta.main) await main();
