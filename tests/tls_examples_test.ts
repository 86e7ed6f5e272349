// Runs the Unix-socket and TLS examples as real programs: each server as a
// subprocess (on a free port or a temporary socket path, read from its
// "Serving on" line), each client against it, and compares the printed
// lines. The self-contained ones (STARTTLS, HTTPS headers, the
// walkthrough's ssl=True step) run on their own.

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

function command(args: string[], signal?: AbortSignal): Deno.Command {
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

  constructor(args: string[]) {
    this.child = command(["run", "-A", ...args]).spawn();
    this.stdout = new Lines(this.child.stdout);
    this.stderr = new Response(this.child.stderr).text();
  }

  /** Waits for the `Serving on …` line and returns what follows "on ". */
  async ready(): Promise<string> {
    const line = await this.stdout.next("the server's ready line", STARTUP_MS);
    const match = /^Serving on (.+)$/.exec(line ?? "");
    assert.ok(match, `unexpected ready line: ${line}`);
    return match[1];
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
): Promise<{ code: number; lines: string[]; stderr: string }> {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), STARTUP_MS);
  try {
    const output = await command(["run", "-A", ...args], controller.signal)
      .output();
    const stdout = new TextDecoder().decode(output.stdout);
    return {
      code: output.code,
      lines: stdout.replace(/\n$/, "").split("\n"),
      stderr: new TextDecoder().decode(output.stderr),
    };
  } finally {
    clearTimeout(timer);
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.lstat(path);
    return true;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return false;
    throw error;
  }
}

function portOf(address: string): number {
  const match = /^127\.0\.0\.1:(\d+)$/.exec(address);
  assert.ok(match, `not a 127.0.0.1 address: ${address}`);
  const port = Number(match[1]);
  assert.ok(port > 0);
  return port;
}

const ECHO_CLIENT_LINES = (message: string) => [
  `Data sent: ${message}`,
  `Data received: ${message}`,
  "The server closed the connection",
];

const ECHO_SERVER_LINES = (path: string, message: string) => [
  `Connection on ${path}`,
  `Data received: ${message}`,
  `Send: ${message}`,
  "Close the client socket",
];

Deno.test("examples: Unix echo server and client on --path", async () => {
  const dir = await Deno.makeTempDir();
  const path = `${dir}/echo.sock`;
  const server = new ServerProcess([
    "examples/unix_echo_server.ts",
    "--path",
    path,
  ]);
  try {
    assert.equal(await server.ready(), path);
    assert.equal((await Deno.lstat(path)).isSocket, true);
    for (const message of ["Hello World!", "second one"]) {
      const args = ["examples/unix_echo_client.ts", "--path", path];
      if (message !== "Hello World!") args.push("--message", message);
      const client = await runExample(args);
      assert.equal(client.code, 0, client.stderr);
      assert.deepEqual(client.lines, ECHO_CLIENT_LINES(message));
      await server.expect(ECHO_SERVER_LINES(path, message));
    }
    const status = await server.interrupt();
    assert.equal(status.code, 0, await server.stderr);
    assert.deepEqual(await server.stdout.rest("the server's last lines"), []);
    // The listener removed its socket file; the directory is the test's.
    assert.equal(await exists(path), false);
    assert.equal(await exists(dir), true);
  } finally {
    await server.dispose();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("examples: Unix echo server on its own temporary path; client flag checks", async () => {
  const server = new ServerProcess(["examples/unix_echo_server.ts"]);
  try {
    const path = await server.ready();
    assert.match(path, /\/aionet-unix-echo-[^/]+\/echo\.sock$/);
    const client = await runExample([
      "examples/unix_echo_client.ts",
      "--path",
      path,
    ]);
    assert.equal(client.code, 0, client.stderr);
    assert.deepEqual(client.lines, ECHO_CLIENT_LINES("Hello World!"));
    await server.expect(ECHO_SERVER_LINES(path, "Hello World!"));
    const status = await server.interrupt();
    assert.equal(status.code, 0, await server.stderr);
    // The server removed the directory it made.
    assert.equal(await exists(path.slice(0, path.lastIndexOf("/"))), false);

    // Without --path the client says what it needs; nobody listens now.
    const missing = await runExample(["examples/unix_echo_client.ts"]);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /--path is required/);
    const refused = await runExample([
      "examples/unix_echo_client.ts",
      "--path",
      path,
    ]);
    assert.notEqual(refused.code, 0);
    assert.match(refused.stderr, /NotFound|ConnectionRefused/);
  } finally {
    await server.dispose();
  }
});

Deno.test("examples: TLS echo server and client (streams over TLS)", async () => {
  // The server with its default certificate (the test fixture).
  const server = new ServerProcess([
    "examples/tls_echo_server.ts",
    "--port",
    "0",
  ]);
  try {
    const port = portOf(await server.ready());
    const client = await runExample([
      "examples/tls_echo_client.ts",
      "--port",
      String(port),
    ]);
    assert.equal(client.code, 0, client.stderr);
    assert.deepEqual(client.lines, [
      "TLS established with localhost (ALPN: aionet-echo)",
      "Send: 'Hello World!'",
      "Received: 'Hello World!'",
      "Close the connection",
    ]);
    await server.expect([
      /^Received 'Hello World!' from 127\.0\.0\.1:\d+ over TLS \(ALPN: aionet-echo\)$/,
      "Send: 'Hello World!'",
      "Close the connection",
    ]);

    // A name the certificate does not cover: openConnection itself rejects.
    const wrongName = await runExample([
      "examples/tls_echo_client.ts",
      "--port",
      String(port),
      "--server-name",
      "example.com",
    ]);
    assert.equal(wrongName.code, 1);
    assert.deepEqual(wrongName.lines, [""]);
    assert.match(
      wrongName.stderr,
      /^TLS connection failed: InvalidData: .*example\.com/m,
    );

    // Explicit flags: the CA file, and the IP address as the checked name
    // (the certificate lists 127.0.0.1); the server kept serving.
    const byIp = await runExample([
      "examples/tls_echo_client.ts",
      "--port",
      String(port),
      "--ca",
      "tests/fixtures/tls_cert.pem",
      "--server-name",
      "127.0.0.1",
      "--message",
      "it's me",
    ]);
    assert.equal(byIp.code, 0, byIp.stderr);
    assert.deepEqual(byIp.lines, [
      "TLS established with 127.0.0.1 (ALPN: aionet-echo)",
      `Send: "it's me"`,
      `Received: "it's me"`,
      "Close the connection",
    ]);
    await server.expect([
      /^Received "it's me" from 127\.0\.0\.1:\d+ over TLS \(ALPN: aionet-echo\)$/,
      `Send: "it's me"`,
      "Close the connection",
    ]);
    const status = await server.interrupt();
    const stderr = await server.stderr;
    assert.equal(status.code, 0, stderr);
    assert.deepEqual(await server.stdout.rest("the server's last lines"), []);
    // The refused handshake was reported, not fatal.
    assert.match(stderr, /Error while setting up an accepted connection/);
  } finally {
    await server.dispose();
  }
});

Deno.test("examples: TLS echo server with explicit --cert/--key; a missing file is reported", async () => {
  const server = new ServerProcess([
    "examples/tls_echo_server.ts",
    "--port",
    "0",
    "--cert",
    "tests/fixtures/tls_cert.pem",
    "--key",
    "tests/fixtures/tls_key.pem",
  ]);
  try {
    const port = portOf(await server.ready());
    const client = await runExample([
      "examples/tls_echo_client.ts",
      "--port",
      String(port),
      "--message",
      "explicit",
    ]);
    assert.equal(client.code, 0, client.stderr);
    assert.equal(client.lines[2], "Received: 'explicit'");
    const status = await server.interrupt();
    assert.equal(status.code, 0, await server.stderr);
  } finally {
    await server.dispose();
  }
  const missing = await runExample([
    "examples/tls_echo_server.ts",
    "--port",
    "0",
    "--cert",
    "tests/fixtures/no_such_cert.pem",
  ]);
  assert.equal(missing.code, 2);
  assert.match(missing.stderr, /Cannot read the certificate at .*no_such/);
});

Deno.test("examples: STARTTLS exchange in one program", async () => {
  const run = await runExample(["examples/starttls.ts", "--port", "0"]);
  assert.equal(run.code, 0, run.stderr);
  const [ready, ...rest] = run.lines;
  portOf(/^Serving on (.+)$/.exec(ready)?.[1] ?? ready);
  assert.deepEqual(rest, [
    "S: 220 ready",
    "C: STARTTLS",
    "S: 220 go ahead",
    "client: TLS is up (alpnProtocol: smtp)",
    "C: EHLO client.example",
    "server: TLS is up (alpnProtocol: smtp)",
    "S: 250 hello client.example, over TLS",
    "C: QUIT",
    "S: 221 bye",
    "client: the server closed the connection (0 more bytes)",
  ]);
  assert.equal(run.stderr, "");
});

Deno.test("examples: HTTP header printer, --https against a local HTTPS server (S004-i)", async () => {
  const run = await runExample(["examples/http_headers.ts", "--https"]);
  assert.equal(run.code, 0, run.stderr);
  assert.equal(run.lines[0], "HTTP header> HTTP/1.0 200 OK");
  const headers = run.lines.slice(1);
  for (const line of headers) assert.match(line, /^HTTP header> [a-z-]+: ./);
  // Sent only over TLS: proof that the request went through HTTPS.
  assert.ok(
    headers.includes(
      "HTTP header> strict-transport-security: max-age=63072000",
    ),
  );
  assert.ok(headers.includes("HTTP header> server: aionet-example"));
  assert.ok(headers.includes("HTTP header> content-length: 39"));

  // The plain path does not get it.
  const plain = await runExample(["examples/http_headers.ts"]);
  assert.equal(plain.code, 0, plain.stderr);
  assert.ok(!plain.lines.some((l) => l.includes("strict-transport")));
});

Deno.test("examples: HTTP header printer, an https:// --url uses tls: true and checks the certificate", async () => {
  // A local HTTPS server with the test certificate, which tls: true (the
  // system's roots, as ssl=True) does not trust.
  const fixtures = new URL("./fixtures/", import.meta.url);
  const controller = new AbortController();
  const server = Deno.serve({
    hostname: "127.0.0.1",
    port: 0,
    signal: controller.signal,
    onListen() {},
    onError: () => new Response(null, { status: 500 }),
    cert: await Deno.readTextFile(new URL("tls_cert.pem", fixtures)),
    key: await Deno.readTextFile(new URL("tls_key.pem", fixtures)),
  }, () => new Response(null, { status: 204 }));
  try {
    const run = await runExample([
      "examples/http_headers.ts",
      "--url",
      `https://127.0.0.1:${server.addr.port}/`,
    ]);
    assert.notEqual(run.code, 0);
    assert.deepEqual(run.lines, [""]);
    assert.match(run.stderr, /InvalidData: TLS error/);
  } finally {
    controller.abort();
    await server.finished;
  }
});

Deno.test("examples: the walkthrough's ssl=True step over a local TLS server (S003-a)", async () => {
  const run = await runExample(["examples/streams_walkthrough.ts"]);
  assert.equal(run.code, 0, run.stderr);
  const at = run.lines.findIndex((l) => l.startsWith("TLS server started"));
  assert.ok(at > 0, run.lines.join("\n"));
  const port = portOf(/^TLS server started on (.+)$/.exec(run.lines[at])![1]);
  assert.deepEqual(run.lines.slice(at + 1), [
    `Connected to 127.0.0.1:${port} over TLS`,
    "readLine() over TLS -> b'Hi there!\\n'",
    "read() over TLS -> b'Goodbye!\\nThe server closes now.\\n'",
    "waitClosed() -> the TLS connection is closed",
  ]);
});
