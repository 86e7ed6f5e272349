/**
 * Seed S001-c (seeds/001_a67efe0c9151b4f1.txt), client half: the Streams
 * echo client, `asyncio.open_connection`, `drain()`, `close()` and
 * `wait_closed()`.
 *
 * The Python it ports:
 *
 * ```python
 * async def tcp_echo_client(message):
 *     reader, writer = await asyncio.open_connection('127.0.0.1', 8888)
 *     print(f'Send: {message!r}')
 *     writer.write(message.encode())
 *     await writer.drain()
 *     data = await reader.read(100)
 *     print(f'Received: {data.decode()!r}')
 *     print('Close the connection')
 *     writer.close()
 *     await writer.wait_closed()
 *
 * asyncio.run(tcp_echo_client('Hello World!'))
 * ```
 *
 * Run against `examples/streams_echo_server.ts`:
 * `deno run -A examples/streams_echo_client.ts [--host 127.0.0.1] [--port 8888] [--message "Hello World!"]`.
 * It prints:
 *
 * ```text
 * Send: 'Hello World!'
 * Received: 'Hello World!'
 * Close the connection
 * ```
 *
 * @module
 */

import { parseArgs } from "node:util";
import { openConnection } from "../streams.ts";

/** A string as Python's `repr()` shows it: `'Hello World!'`. */
function repr(text: string): string {
  const quote = text.includes("'") && !text.includes('"') ? '"' : "'";
  let out = quote;
  for (const ch of text) {
    const code = ch.codePointAt(0)!;
    if (ch === "\\" || ch === quote) out += `\\${ch}`;
    else if (ch === "\n") out += "\\n";
    else if (ch === "\r") out += "\\r";
    else if (ch === "\t") out += "\\t";
    else if (code < 0x20 || code === 0x7f) {
      out += `\\x${code.toString(16).padStart(2, "0")}`;
    } else out += ch;
  }
  return out + quote;
}

function parseFlags(): { host: string; port: number; message: string } {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      host: { type: "string", default: "127.0.0.1" },
      port: { type: "string", default: "8888" },
      message: { type: "string", default: "Hello World!" },
    },
  });
  const port = Number(values.port);
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    console.error("--port must be an integer from 1 to 65535");
    Deno.exit(2);
  }
  return { host: values.host, port, message: values.message };
}

async function tcpEchoClient(
  message: string,
  host: string,
  port: number,
): Promise<void> {
  const [reader, writer] = await openConnection({ hostname: host, port });

  console.log(`Send: ${repr(message)}`);
  writer.write(new TextEncoder().encode(message));
  await writer.drain();

  const data = await reader.read(100);
  console.log(`Received: ${repr(new TextDecoder().decode(data))}`);

  console.log("Close the connection");
  writer.close();
  await writer.waitClosed();
}

if (import.meta.main) {
  const { host, port, message } = parseFlags();
  await tcpEchoClient(message, host, port);
}
