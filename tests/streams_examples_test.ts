// Runs the Streams examples as real programs: each server as a subprocess
// on a free port (read from its "Serving on" line), each client against it
// with `--port`, and compares the printed lines with the seeds' output. The
// self-contained examples (walkthrough, HTTP) run on their own.

import assert from "node:assert/strict";
import { run, start } from "./_examples.ts";

const from = (text: string) =>
  new RegExp(
    `^${
      text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")
    } from 127\\.0\\.0\\.1:\\d+$`,
  );

Deno.test("examples: streams echo server and client (S001-c)", async () => {
  await using server = start([
    "examples/streams_echo_server.ts",
    "--port",
    "0",
  ]);
  const port = await server.readyPort();
  const client = await run([
    "examples/streams_echo_client.ts",
    "--port",
    String(port),
  ]);
  assert.equal(client.code, 0, client.stderr);
  assert.deepEqual(client.lines, [
    "Send: 'Hello World!'",
    "Received: 'Hello World!'",
    "Close the connection",
  ]);
  await server.expect([
    from("Received 'Hello World!'"),
    "Send: 'Hello World!'",
    "Close the connection",
  ]);
  // Another message, with a quote: Python's repr switches to "...".
  const second = await run([
    "examples/streams_echo_client.ts",
    "--port",
    String(port),
    "--message",
    "it's me",
  ]);
  assert.equal(second.code, 0, second.stderr);
  assert.deepEqual(second.lines, [
    `Send: "it's me"`,
    `Received: "it's me"`,
    "Close the connection",
  ]);
  await server.expect([
    from(`Received "it's me"`),
    `Send: "it's me"`,
    "Close the connection",
  ]);
  const { code, lines, stderr } = await server.stop();
  assert.equal(code, 0, stderr);
  assert.deepEqual(lines, []);
});

Deno.test("examples: chat server and client (S004-h), messages as flags and on stdin", async () => {
  await using server = start(["examples/chat_server.ts", "--port", "0"]);
  const port = await server.readyPort();
  const flags = await run([
    "examples/chat_client.ts",
    "--port",
    String(port),
    "--message",
    "Hello",
    "--message",
    "How are you?",
    "--message",
    "Did you have breakfast?",
    "--message",
    "What's new?",
    "--message",
    "Bye",
    "--message",
    "never sent",
  ]);
  assert.equal(flags.code, 0, flags.stderr);
  assert.deepEqual(flags.lines, [
    "You said:Hello",
    "Receive: 'nihao'",
    "You said:How are you?",
    "Receive: 'Fine, thank you.'",
    "You said:Did you have breakfast?",
    "Receive: 'Yes'",
    `You said:What's new?`,
    "Receive: 'Sorry'",
    "You said:Bye",
    "Receive: 'Bye'",
    "Close the socket",
  ]);
  await server.expect([
    from("Reaceived 'Hello'"),
    "Send: 'nihao'",
    from("Reaceived 'How are you?'"),
    "Send: 'Fine, thank you.'",
    from("Reaceived 'Did you have breakfast?'"),
    "Send: 'Yes'",
    from(`Reaceived "What's new?"`),
    "Send: 'Sorry'",
    from("Reaceived 'Bye'"),
    "Send: 'Bye'",
    "Close the client socket",
  ]);

  // Lines on stdin; the input ends before "Bye".
  const piped = await run(
    ["examples/chat_client.ts", "--port", String(port)],
    { stdin: "Hello\nHow are you?\n" },
  );
  assert.equal(piped.code, 0, piped.stderr);
  assert.deepEqual(piped.lines, [
    "You said:Hello",
    "Receive: 'nihao'",
    "You said:How are you?",
    "Receive: 'Fine, thank you.'",
    "You said:",
    "Close the socket",
  ]);
  await server.expect([
    from("Reaceived 'Hello'"),
    "Send: 'nihao'",
    from("Reaceived 'How are you?'"),
    "Send: 'Fine, thank you.'",
    "Close the client socket",
  ]);
  const { code, stderr } = await server.stop();
  assert.equal(code, 0, stderr);
});

Deno.test("examples: streams walkthrough (S003-a)", async () => {
  const out = await run([
    "examples/streams_walkthrough.ts",
    "--port",
    "0",
  ]);
  assert.equal(out.code, 0, out.stderr);
  const [started, connected, ...rest] = out.lines;
  const port = /^Server started on 127\.0\.0\.1:(\d+)$/.exec(started)?.[1];
  assert.ok(port, started);
  assert.equal(connected, `Connected to 127.0.0.1:${port}`);
  // The seed's ssl=True step, against a TLS server on its own free port.
  const tlsPort = /^TLS server started on 127\.0\.0\.1:(\d+)$/.exec(
    rest.at(-5) ?? "",
  )?.[1];
  assert.ok(tlsPort, rest.at(-5));
  const tlsLines = [
    `TLS server started on 127.0.0.1:${tlsPort}`,
    `Connected to 127.0.0.1:${tlsPort} over TLS`,
    "readLine() over TLS -> b'Hi there!\\n'",
    "read() over TLS -> b'Goodbye!\\nThe server closes now.\\n'",
    "waitClosed() -> the TLS connection is closed",
  ];
  assert.deepEqual(rest, [
    "readLine() -> b'Hi there!\\n'",
    "readExactly(12) -> b'012345678901'",
    `readUntil(";") -> b'name=aionet;'`,
    `readUntil("END") -> b'lang=TypeScript;END'`,
    "read(100) -> 100 bytes",
    "read() -> b'Goodbye!\\nThe server closes now.\\n'",
    "atEof() -> true",
    "isClosing() after close() -> true",
    "waitClosed() -> the connection is closed",
    ...tlsLines,
  ]);
});

Deno.test("examples: 20 concurrent fetches with for await over the reader (S004-k)", async () => {
  const out = await run([
    "examples/http_fetch_concurrent.ts",
    "--port",
    "0",
  ]);
  assert.equal(out.code, 0, out.stderr);
  const last = out.lines.at(-1)!;
  const seconds = Number(/^last time:([\d.e-]+)$/.exec(last)?.[1]);
  assert.ok(seconds > 0 && seconds < 30, last);
  // Each page is printed whole: status line first, the body's lines
  // joined with "\n" after their own "\r\n" (or "\n").
  const pages = out.stdout.split("HTTP/1.1 200 OK\r\n").slice(1);
  assert.equal(pages.length, 20);
  const seen = new Set<number>();
  for (const page of pages) {
    assert.match(page, /\ncontent-type: text\/html; charset=utf-8\r\n/);
    assert.match(page, /\nconnection: close\r\n\n\r\n\n<!DOCTYPE html>\n\n/);
    const item = Number(/<h1>Goods (\d+)<\/h1>/.exec(page)?.[1]);
    seen.add(item);
  }
  assert.deepEqual([...seen].sort((a, b) => a - b), [...Array(20).keys()]);
});

Deno.test("examples: HTTP header printer with a readLine loop (S004-i)", async () => {
  const out = await run(["examples/http_headers.ts", "--port", "0"]);
  assert.equal(out.code, 0, out.stderr);
  assert.equal(out.lines[0], "HTTP header> HTTP/1.0 200 OK");
  const headers = out.lines.slice(1);
  for (const line of headers) assert.match(line, /^HTTP header> [a-z-]+: ./);
  assert.ok(
    headers.includes("HTTP header> content-type: text/html; charset=utf-8"),
  );
  assert.ok(headers.includes("HTTP header> server: aionet-example"));
  assert.ok(headers.includes("HTTP header> content-length: 39"));
});

Deno.test("examples: the HTTP header printer against a server given by --url", async () => {
  // A plain Deno server stands in for a remote site.
  const controller = new AbortController();
  const server = Deno.serve(
    {
      hostname: "127.0.0.1",
      port: 0,
      signal: controller.signal,
      onListen() {},
    },
    () => new Response(null, { status: 204, headers: { "x-seed": "S004-i" } }),
  );
  try {
    const out = await run([
      "examples/http_headers.ts",
      "--url",
      `http://127.0.0.1:${server.addr.port}/`,
    ]);
    assert.equal(out.code, 0, out.stderr);
    assert.equal(out.lines[0], "HTTP header> HTTP/1.0 204 No Content");
    assert.ok(out.lines.includes("HTTP header> x-seed: S004-i"));
  } finally {
    controller.abort();
    await server.finished;
  }
});
