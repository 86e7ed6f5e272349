/**
 * Web Streams interop: an asyncio-style server that gzips whatever a client
 * sends, written as one pipe, and a client that sends a text (or a file)
 * and decompresses the answer.
 *
 * The server is the whole point:
 *
 * ```ts ignore
 * await reader.readable
 *   .pipeThrough(new CompressionStream("gzip"))
 *   .pipeTo(writer.writable);
 * ```
 *
 * `reader.readable` pulls from the connection only when the compressor asks,
 * and `writer.writable` waits on `drain()`, so backpressure runs end to end:
 * a slow client pauses the server's reads, which stops the sender. When the
 * client half-closes, the readable ends, the gzip trailer is written and
 * `writer.writable` closes with `writeEof()`.
 *
 * Both ends run in this one process on a free port; the program prints the
 * port, how many bytes went each way, and whether the round trip is exact.
 *
 * Run: `deno run -A examples/webstreams_pipe.ts [--file path]`
 *
 * @module
 */

import { parseArgs } from "node:util";
import {
  openConnection,
  startServer,
  type StreamReader,
  type StreamWriter,
} from "../streams.ts";

/** The server side: gzip everything the client sends back to it. */
async function gzipHandler(
  reader: StreamReader,
  writer: StreamWriter,
): Promise<void> {
  await reader.readable
    .pipeThrough(new CompressionStream("gzip"))
    .pipeTo(writer.writable);
  writer.close();
  await writer.waitClosed();
}

/** A file-like text: numbered lines of prose. */
function sampleText(): Uint8Array {
  const lines: string[] = [];
  for (let i = 1; i <= 2000; i++) {
    lines.push(
      `${
        String(i).padStart(4, "0")
      }: The quick brown fox jumps over the lazy dog.`,
    );
  }
  return new TextEncoder().encode(lines.join("\n") + "\n");
}

/** `bytes` as a stream of 16 KiB chunks, as a file would be read. */
function chunked(bytes: Uint8Array): ReadableStream<Uint8Array> {
  let at = 0;
  return new ReadableStream({
    pull(controller) {
      if (at >= bytes.length) return controller.close();
      controller.enqueue(bytes.subarray(at, at += 16 * 1024));
    },
  });
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    args: Deno.args,
    options: { file: { type: "string" } },
  });
  const input = values.file === undefined
    ? sampleText()
    : await Deno.readFile(values.file);

  await using server = await startServer(gzipHandler, {
    hostname: "127.0.0.1",
    port: 0,
  });
  const { port } = server.addrs[0] as Deno.NetAddr;
  console.log(`Serving on 127.0.0.1:${port}`);

  const [reader, writer] = await openConnection({
    hostname: "127.0.0.1",
    port,
  });
  // Send everything, then half-close (writer.writable's close is writeEof()).
  const sending = chunked(input).pipeTo(writer.writable);

  let compressed = 0;
  const count = new TransformStream<
    Uint8Array<ArrayBuffer>,
    Uint8Array<ArrayBuffer>
  >({
    transform(chunk, controller) {
      compressed += chunk.length;
      controller.enqueue(chunk);
    },
  });
  const answer = await new Response(
    reader.readable
      .pipeThrough(count)
      .pipeThrough(new DecompressionStream("gzip")),
  ).bytes();
  await sending;
  writer.close();
  await writer.waitClosed();

  const same = answer.length === input.length &&
    answer.every((byte, i) => byte === input[i]);
  console.log(`Sent ${input.length} bytes`);
  console.log(`Received ${compressed} gzip bytes`);
  console.log(
    `Decompressed ${answer.length} bytes: ${same ? "identical" : "DIFFERENT"}`,
  );
  if (!same) Deno.exitCode = 1;
}

if (import.meta.main) await main();
