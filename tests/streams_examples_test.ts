// Runs the Streams examples as real programs: each server as a subprocess
// on a free port (read from its "Serving on" line), each client against it
// with `--port`, and compares the printed lines with the seeds' output. The
// self-contained examples (walkthrough, HTTP) run on their own.

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

  /** Every line left, until the stream ends. */
  async rest(what: string): Promise<string[]> {
    const lines: string[] = [];
    for (;;) {
      const line = await this.next(what);
      if (line === null) return lines;
      lines.push(line);
    }
  }

  async cancel(): Promise<void> {
    await this.#reader.cancel().catch(() => {});
  }
}

function command(
  args: string[],
  options: { signal?: AbortSignal; stdin?: "null" | "piped" } = {},
): Deno.Command {
  return new Deno.Command(Deno.execPath(), {
    args,
    cwd: ROOT,
    stdin: options.stdin ?? "null",
    stdout: "piped",
    stderr: "piped",
    signal: options.signal,
  });
}

/** A server example running as a subprocess. */
class ServerProcess {
  readonly child: Deno.ChildProcess;
  readonly stdout: Lines;
  readonly stderr: Promise<string>;

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
    const port = Number(match[1]);
    assert.ok(port > 0);
    return port;
  }

  /** Checks the next lines against `expected` (strings or patterns). */
  async expect(expected: Array<string | RegExp>): Promise<void> {
    for (const want of expected) {
      const line = await this.stdout.next(`server line ${want}`);
      if (typeof want === "string") assert.equal(line, want);
      else assert.match(line ?? "<end>", want);
    }
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

/** Runs an example to completion; returns its exit code and output lines. */
async function runExample(
  args: string[],
  input?: string,
): Promise<{ code: number; lines: string[]; stdout: string; stderr: string }> {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), STARTUP_MS);
  try {
    const child = command(["run", "-A", ...args], {
      signal: controller.signal,
      stdin: input === undefined ? "null" : "piped",
    }).spawn();
    if (input !== undefined) {
      const writer = child.stdin.getWriter();
      await writer.write(new TextEncoder().encode(input));
      await writer.close();
    }
    const output = await child.output();
    const stdout = new TextDecoder().decode(output.stdout);
    return {
      code: output.code,
      stdout,
      lines: stdout.replace(/\n$/, "").split("\n"),
      stderr: new TextDecoder().decode(output.stderr),
    };
  } finally {
    clearTimeout(timer);
  }
}

const from = (text: string) =>
  new RegExp(
    `^${
      text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")
    } from 127\\.0\\.0\\.1:\\d+$`,
  );

Deno.test("examples: streams echo server and client (S001-c)", async () => {
  const server = new ServerProcess("examples/streams_echo_server.ts");
  try {
    const port = await server.ready();
    const client = await runExample([
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
    const second = await runExample([
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
    const status = await server.interrupt();
    assert.equal(status.code, 0, await server.stderr);
    assert.deepEqual(await server.stdout.rest("the server's last lines"), []);
  } finally {
    await server.dispose();
  }
});

Deno.test("examples: chat server and client (S004-h), messages as flags and on stdin", async () => {
  const server = new ServerProcess("examples/chat_server.ts");
  try {
    const port = await server.ready();
    const flags = await runExample([
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
    const piped = await runExample(
      ["examples/chat_client.ts", "--port", String(port)],
      "Hello\nHow are you?\n",
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
    const status = await server.interrupt();
    assert.equal(status.code, 0, await server.stderr);
  } finally {
    await server.dispose();
  }
});

Deno.test("examples: streams walkthrough (S003-a)", async () => {
  const run = await runExample([
    "examples/streams_walkthrough.ts",
    "--port",
    "0",
  ]);
  assert.equal(run.code, 0, run.stderr);
  const [started, connected, ...rest] = run.lines;
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
  const run = await runExample([
    "examples/http_fetch_concurrent.ts",
    "--port",
    "0",
  ]);
  assert.equal(run.code, 0, run.stderr);
  const last = run.lines.at(-1)!;
  const seconds = Number(/^last time:([\d.e-]+)$/.exec(last)?.[1]);
  assert.ok(seconds > 0 && seconds < 30, last);
  // Each page is printed whole: status line first, the body's lines
  // joined with "\n" after their own "\r\n" (or "\n").
  const pages = run.stdout.split("HTTP/1.1 200 OK\r\n").slice(1);
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
  const run = await runExample(["examples/http_headers.ts", "--port", "0"]);
  assert.equal(run.code, 0, run.stderr);
  assert.equal(run.lines[0], "HTTP header> HTTP/1.0 200 OK");
  const headers = run.lines.slice(1);
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
    const run = await runExample([
      "examples/http_headers.ts",
      "--url",
      `http://127.0.0.1:${server.addr.port}/`,
    ]);
    assert.equal(run.code, 0, run.stderr);
    assert.equal(run.lines[0], "HTTP header> HTTP/1.0 204 No Content");
    assert.ok(run.lines.includes("HTTP header> x-seed: S004-i"));
  } finally {
    controller.abort();
    await server.finished;
  }
});
