// Runs the Core examples as real programs: each server as a subprocess on a
// free port (it prints the port in its ready line), each client against it,
// and compares the printed lines with the seeds' output. Also runs the demo.

import assert from "node:assert/strict";

const ROOT = new URL("../", import.meta.url);
/** Generous: Deno start-up on a busy 2-core machine. */
const STARTUP_MS = 30_000;
const LINE_MS = 10_000;

async function withTimeout<T>(
  promise: Promise<T>,
  ms: number,
  what: string,
): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`Timed out after ${ms} ms waiting for ${what}`)),
      ms,
    );
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Reads a byte stream as text lines, each read bounded in time. */
class Lines {
  #reader: ReadableStreamDefaultReader<string>;
  #buffer = "";
  #done = false;
  #pending: Promise<ReadableStreamReadResult<string>> | null = null;

  constructor(stream: ReadableStream<Uint8Array>) {
    this.#reader = stream.pipeThrough(new TextDecoderStream()).getReader();
  }

  /** The next line without its newline, or `null` at the end. */
  async next(what: string, ms = LINE_MS): Promise<string | null> {
    for (;;) {
      const end = this.#buffer.indexOf("\n");
      if (end >= 0) {
        const line = this.#buffer.slice(0, end);
        this.#buffer = this.#buffer.slice(end + 1);
        return line;
      }
      if (this.#done) {
        const rest = this.#buffer;
        this.#buffer = "";
        return rest === "" ? null : rest;
      }
      this.#pending ??= this.#reader.read();
      const result = await withTimeout(this.#pending, ms, what);
      this.#pending = null;
      if (result.done) this.#done = true;
      else this.#buffer += result.value;
    }
  }

  async cancel(): Promise<void> {
    await this.#reader.cancel().catch(() => {});
  }
}

function command(
  args: string[],
  signal?: AbortSignal,
): Deno.Command {
  return new Deno.Command(Deno.execPath(), {
    args,
    cwd: ROOT,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    signal,
  });
}

/** A server example running as a subprocess. */
class ServerProcess {
  readonly child: Deno.ChildProcess;
  readonly stdout: Lines;
  readonly stderr: Promise<string>;
  port = 0;

  constructor(example: string) {
    this.child = command(["run", "-A", example, "--port", "0"]).spawn();
    this.stdout = new Lines(this.child.stdout);
    this.stderr = new Response(this.child.stderr).text();
  }

  /** Waits for `Serving on 127.0.0.1:PORT` and returns PORT. */
  async ready(): Promise<number> {
    const line = await this.stdout.next("the server's ready line", STARTUP_MS);
    const match = /^Serving on 127\.0\.0\.1:(\d+)$/.exec(line ?? "");
    assert.ok(match, `unexpected ready line: ${line}`);
    this.port = Number(match[1]);
    assert.ok(this.port > 0);
    return this.port;
  }

  /** Sends SIGINT (Ctrl+C) and returns the exit status. */
  async interrupt(): Promise<Deno.CommandStatus> {
    this.child.kill("SIGINT");
    return await withTimeout(this.child.status, LINE_MS, "the server to exit");
  }

  /** Whatever happened: kill the child, await it, release every pipe. */
  async dispose(): Promise<void> {
    try {
      this.child.kill("SIGKILL");
    } catch {
      // Already exited.
    }
    await this.child.status;
    await this.stdout.cancel();
    await this.stderr.catch(() => "");
  }
}

/** Runs a client example to completion; returns its stdout lines. */
async function runClient(
  args: string[],
): Promise<{ code: number; lines: string[]; stderr: string }> {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), STARTUP_MS);
  try {
    const output = await command(args, controller.signal).output();
    const text = new TextDecoder().decode(output.stdout);
    return {
      code: output.code,
      lines: text.split("\n").filter((line, i, all) =>
        line !== "" || i < all.length - 1
      ),
      stderr: new TextDecoder().decode(output.stderr),
    };
  } finally {
    clearTimeout(timer);
  }
}

async function expectLines(
  server: ServerProcess,
  expected: Array<string | RegExp>,
): Promise<void> {
  for (const want of expected) {
    const line = await server.stdout.next(`server line ${want}`);
    assert.ok(line !== null, `the server stopped printing before ${want}`);
    if (typeof want === "string") assert.equal(line, want);
    else assert.match(line, want);
  }
}

Deno.test("S001-b echo_server/echo_client print the seed's lines", async () => {
  const server = new ServerProcess("examples/echo_server.ts");
  try {
    const port = await server.ready();
    const client = await runClient([
      "run",
      "-A",
      "examples/echo_client.ts",
      "--port",
      String(port),
    ]);
    assert.equal(client.stderr, "");
    assert.equal(client.code, 0);
    assert.deepEqual(client.lines, [
      "Data sent: Hello World!",
      "Data received: Hello World!",
      "The server closed the connection",
    ]);
    await expectLines(server, [
      /^Connection from 127\.0\.0\.1:\d+$/,
      "Data received: Hello World!",
      "Send: Hello World!",
      "Close the client socket",
    ]);
    const status = await server.interrupt();
    assert.equal(status.code, 0);
    assert.equal(await server.stdout.next("the end of output"), null);
    assert.equal(await server.stderr, "");
  } finally {
    await server.dispose();
  }
});

Deno.test("S004-e echo_eof_server/echo_eof_client: writeEof closes the connection", async () => {
  const server = new ServerProcess("examples/echo_eof_server.ts");
  try {
    const port = await server.ready();
    // Two clients in turn: one unpaced, one with the seed's pause between
    // messages (shortened); the server serves both.
    for (const delay of ["0", "20"]) {
      const client = await runClient([
        "run",
        "-A",
        "examples/echo_eof_client.ts",
        "--port",
        String(port),
        "--delay",
        delay,
      ]);
      assert.equal(client.stderr, "");
      assert.equal(client.code, 0);
      assert.deepEqual(client.lines, [
        "Data sent: 'Hello word!'",
        "Data received:'Hello word!'",
        "Data sent: '你好'",
        "Data received:'你好'",
        "The server closed the connection",
        "Stop the event loop",
      ]);
      await expectLines(server, [
        /^Connection from 127\.0\.0\.1:\d+$/,
        "Data received:'Hello word!'",
        "Send:'Hello word!'",
        "Data received:'你好'",
        "Send:'你好'",
        "Close the client socket",
      ]);
    }
    const status = await server.interrupt();
    assert.equal(status.code, 0);
    assert.equal(await server.stdout.next("the end of output"), null);
    assert.equal(await server.stderr, "");
  } finally {
    await server.dispose();
  }
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
    const result = await runClient(["run", "-A", example, "--port", "70000"]);
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
  const result = await runClient([
    "run",
    "-A",
    "examples/echo_client.ts",
    "--port",
    String(port),
  ]);
  assert.notEqual(result.code, 0);
  assert.match(result.stderr, /ConnectionRefused/);
  assert.deepEqual(result.lines, []);
});

Deno.test("demo.ts runs with --allow-net=127.0.0.1, narrates and exits 0", async () => {
  const result = await runClient([
    "run",
    "--allow-net=127.0.0.1",
    "examples/demo.ts",
  ]);
  assert.equal(result.stderr, "");
  assert.equal(result.code, 0);
  const text = result.lines.join("\n");
  const steps = result.lines.filter((line) => /^== \d+\. /.test(line));
  assert.ok(steps.length >= 5, `steps: ${steps.join(" | ")}`);
  // Every step names the asyncio concept it shows.
  assert.equal(
    result.lines.filter((line) => line.startsWith("   asyncio: ")).length,
    steps.length,
  );
  for (
    const needle of [
      "loop.create_server",
      "loop.create_connection",
      '[client] dataReceived("Hello World!")',
      "pauseWriting(): buffer 1048576 bytes",
      "resumeWriting(): buffer down to",
      "write_eof",
      "eofReceived() after 1048576 bytes",
      'the half-closed client still read the reply: "received 1048576 bytes"',
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
  assert.equal(result.lines.at(-1), "Done.");
});
