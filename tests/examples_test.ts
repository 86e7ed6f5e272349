// Runs the Core examples as real programs: each server as a subprocess on a
// free port (it prints the port in its ready line), each client against it,
// and compares the printed lines with the seeds' output. Also runs the demo.

import assert from "node:assert/strict";
import { run, runLines, start } from "./_examples.ts";
import { BACKEND } from "./_helpers.ts";

Deno.test("S001-b echo_server/echo_client print the seed's lines", async () => {
  await using server = start(["examples/echo_server.ts", "--port", "0"]);
  const port = await server.readyPort();
  assert.deepEqual(
    await runLines(["examples/echo_client.ts", "--port", String(port)]),
    [
      "Data sent: Hello World!",
      "Data received: Hello World!",
      "The server closed the connection",
    ],
  );
  await server.expect([
    /^Connection from 127\.0\.0\.1:\d+$/,
    "Data received: Hello World!",
    "Send: Hello World!",
    "Close the client socket",
  ]);
  const { code, lines, stderr } = await server.stop();
  assert.equal(code, 0);
  assert.deepEqual(lines, []);
  assert.equal(stderr, "");
});

Deno.test("S004-e echo_eof_server/echo_eof_client: writeEof closes the connection", async () => {
  await using server = start(["examples/echo_eof_server.ts", "--port", "0"]);
  const port = await server.readyPort();
  // Two clients in turn: one unpaced, one with the seed's pause between
  // messages (shortened); the server serves both.
  for (const delay of ["0", "20"]) {
    const client = await runLines([
      "examples/echo_eof_client.ts",
      "--port",
      String(port),
      "--delay",
      delay,
    ]);
    assert.deepEqual(client, [
      "Data sent: 'Hello word!'",
      "Data received:'Hello word!'",
      "Data sent: '你好'",
      "Data received:'你好'",
      "The server closed the connection",
      "Stop the event loop",
    ]);
    await server.expect([
      /^Connection from 127\.0\.0\.1:\d+$/,
      "Data received:'Hello word!'",
      "Send:'Hello word!'",
      "Data received:'你好'",
      "Send:'你好'",
      "Close the client socket",
    ]);
  }
  const { code, lines, stderr } = await server.stop();
  assert.equal(code, 0);
  assert.deepEqual(lines, []);
  assert.equal(stderr, "");
});

Deno.test("examples reject a bad --port with exit code 2", async () => {
  for (
    const example of [
      "examples/echo_server.ts",
      "examples/echo_client.ts",
      "examples/echo_eof_server.ts",
      "examples/echo_eof_client.ts",
    ]
  ) {
    const result = await run([example, "--port", "70000"]);
    assert.equal(result.code, 2, example);
    assert.match(result.stderr, /--port must be an integer/);
    assert.deepEqual(result.lines, []);
  }
});

Deno.test("a client with no server fails with ConnectionRefused", async () => {
  // Take a free port, then release it: nothing listens there.
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr;
  listener.close();
  const result = await run(["examples/echo_client.ts", "--port", String(port)]);
  assert.notEqual(result.code, 0);
  assert.match(result.stderr, /ConnectionRefused/);
  assert.deepEqual(result.lines, []);
});

Deno.test("demo.ts runs with --allow-net=127.0.0.1, narrates and exits 0", async () => {
  // On the native backend's pass, the demo runs on it too.
  const lines = await runLines(["examples/demo.ts"], {
    permissions: BACKEND === "native"
      ? ["--allow-net=127.0.0.1", "--allow-env=AIONET_BACKEND", "--allow-ffi"]
      : ["--allow-net=127.0.0.1"],
  });
  const text = lines.join("\n");
  const steps = lines.filter((line) => /^== \d+\. /.test(line));
  assert.ok(steps.length >= 5, `steps: ${steps.join(" | ")}`);
  // Every step names the asyncio concept it shows.
  assert.equal(
    lines.filter((line) => line.startsWith("   asyncio: ")).length,
    steps.length,
  );
  for (
    const needle of [
      "loop.create_server",
      "loop.create_connection",
      '[client] dataReceived("Hello World!")',
      "pauseWriting(): buffer ",
      "resumeWriting(): buffer down to",
      "write_eof",
      "eofReceived() after ",
      'the half-closed client still read the reply: "received ',
      "has waitClosed() resolved? false",
      "waitClosed() resolved (true)",
      "a new connect fails: ConnectionRefused",
      "asyncio.open_connection",
      'await readLine() -> "HELLO\\n"',
      'await readLine() -> "STREAMS\\n"',
      "await read() -> 0 bytes: EOF, atEof() = true",
    ]
  ) {
    assert.ok(text.includes(needle), `missing ${JSON.stringify(needle)}`);
  }
  // Every byte written arrived: the server counted all the writes.
  const writes =
    lines.filter((line) =>
      line.includes("[client] transport.write(1048576 bytes)")
    ).length;
  assert.ok(writes >= 1);
  assert.ok(
    text.includes(`received ${writes * 1048576} bytes`),
    `the server did not count ${writes} MiB`,
  );
  // On Deno's ops the first write is queued whole.
  if (BACKEND === "deno") assert.equal(writes, 1);
  assert.equal(lines.at(-1), "Done.");
});
