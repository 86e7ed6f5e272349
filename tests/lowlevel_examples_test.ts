// Runs the low-level examples (seeds S001-a, S002-a…f, S004-a…d, g, j) as
// real programs: each server as a subprocess on a free port (read from its
// ready line), each client against it, comparing the printed lines with
// what the seeds print.

import assert from "node:assert/strict";

const ROOT = new URL("../", import.meta.url);
const POEM = await Deno.readTextFile(
  new URL("../examples/data/ozymandias.txt", import.meta.url),
);
/** Generous: Deno start-up on a busy 2-core machine. */
const STARTUP_MS = 30_000;
const LINE_MS = 15_000;

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

/** Text lines of a byte stream, each wait bounded in time. */
class LineReader {
  #reader: ReadableStreamDefaultReader<string>;
  #buffer = "";
  #done = false;
  #pending: Promise<ReadableStreamReadResult<string>> | null = null;

  constructor(stream: ReadableStream<Uint8Array>) {
    this.#reader = stream.pipeThrough(new TextDecoderStream()).getReader();
  }

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

  /** Every remaining line. */
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

/** A server example as a subprocess. */
class Server {
  readonly child: Deno.ChildProcess;
  readonly stdout: LineReader;
  readonly stderr: Promise<string>;

  constructor(args: string[]) {
    this.child = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", ...args],
      cwd: ROOT,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    this.stdout = new LineReader(this.child.stdout);
    this.stderr = new Response(this.child.stderr).text();
  }

  /** Reads lines up to the ready line; returns the port in it. */
  async ready(pattern: RegExp): Promise<number> {
    for (;;) {
      const line = await this.stdout.next("the ready line", STARTUP_MS);
      assert.ok(line !== null, "the server exited before its ready line");
      const match = pattern.exec(line);
      if (match) return Number(match[1]);
    }
  }

  /** Ctrl+C, then every line printed and the exit status. */
  async interrupt(): Promise<{ code: number; lines: string[] }> {
    this.child.kill("SIGINT");
    const lines = await this.stdout.rest("the server's output");
    const status = await withTimeout(this.child.status, LINE_MS, "exit");
    assert.equal(await this.stderr, "");
    return { code: status.code, lines };
  }

  async [Symbol.asyncDispose](): Promise<void> {
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

/** Runs a program to completion; returns its stdout lines. */
async function run(
  args: string[],
  stdin?: string,
): Promise<string[]> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", ...args],
    cwd: ROOT,
    stdin: stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  if (stdin !== undefined) {
    const writer = child.stdin.getWriter();
    await writer.write(new TextEncoder().encode(stdin));
    await writer.close();
  }
  let output: Deno.CommandOutput;
  try {
    output = await withTimeout(child.output(), STARTUP_MS, args.join(" "));
  } catch (error) {
    child.kill("SIGKILL");
    await child.output();
    throw error;
  }
  const stderr = new TextDecoder().decode(output.stderr);
  assert.equal(stderr, "", `stderr of ${args.join(" ")}`);
  assert.equal(output.code, 0, `exit code of ${args.join(" ")}`);
  const text = new TextDecoder().decode(output.stdout);
  return text.endsWith("\n") ? text.slice(0, -1).split("\n") : text.split("\n");
}

const SERVING_ON = /^Serving on 127\.0\.0\.1:(\d+)$/;
const SERVING_POEM = /^Serving .*ozymandias\.txt on port (\d+)\.$/;
const PEER = String.raw`\('127\.0\.0\.1', \d+\)`;

Deno.test("S001-a sock_server/sock_client: sock_accept, sock_recv, sock_sendall, quit", async () => {
  await using server = new Server(["examples/sock_server.ts", "--port", "0"]);
  const port = await server.ready(SERVING_ON);
  const client = await run(
    ["examples/sock_client.ts", "--port", String(port)],
    "hello world\nquit\n",
  );
  assert.deepEqual(client, [
    "got message",
    "got message from server:  got message",
  ]);
  const { code, lines } = await server.interrupt();
  assert.equal(code, 0);
  assert.equal(lines.length, 4);
  assert.match(lines[0], new RegExp(`^connected to client:  ${PEER}$`));
  assert.match(
    lines[1],
    new RegExp(`^got from ${PEER}: ack from client connect success$`),
  );
  assert.match(lines[2], new RegExp(`^got from ${PEER}: hello world$`));
  assert.match(lines[3], new RegExp(`^got from ${PEER}: quit$`));
});

Deno.test("S002-d event_loop_basics: hello world with runUntilComplete", async () => {
  assert.deepEqual(await run(["examples/event_loop_basics.ts"]), [
    "Hello World!",
    "call_soon: hello loop",
    "call_later: 20 ms later",
    "stop: run_forever returns",
    "is_running: false",
    "is_closed: true",
  ]);
});

Deno.test("S002-a getaddrinfo_connect: resolve localhost, connect to each", async () => {
  const lines = await run(["examples/getaddrinfo_connect.ts"]);
  assert.equal(lines.length % 3, 0);
  assert.ok(lines.length >= 6);
  assert.equal(
    lines[0],
    "(<AddressFamily.AF_INET: 2>, <SocketKind.SOCK_STREAM: 1>, 6)",
  );
  assert.match(lines[1], /^\('127\.0\.0\.1', \d+\)$/);
  assert.equal(lines[2], "connected");
  assert.ok(
    lines.includes(
      "(<AddressFamily.AF_INET: 2>, <SocketKind.SOCK_DGRAM: 2>, 17)",
    ),
  );
  // A closed port: the stream connections fail, as the seed prints.
  const refused = await run([
    "examples/getaddrinfo_connect.ts",
    "--host",
    "127.0.0.1",
    "--port",
    "1",
  ]);
  assert.match(refused[2], /^Connection refused/);
});

Deno.test("S002-b poetry_server_blocking/poetry_client_blocking", async () => {
  await using server = new Server([
    "examples/poetry_server_blocking.ts",
    "--port",
    "0",
    "--delay",
    "0",
    "--num-bytes",
    "100",
  ]);
  const port = await server.ready(SERVING_POEM);
  const lines = await run([
    "examples/poetry_client_blocking.ts",
    String(port),
    `127.0.0.1:${port}`,
  ]);
  const text = lines.join("\n");
  assert.ok(lines[0] === `Task 1: get poetry from: 127.0.0.1:${port}`);
  assert.equal(text.split(POEM.trimEnd()).length, 3, "the poem, twice");
  assert.match(
    text,
    new RegExp(
      `Task 1: got 691 bytes of poetry from 127\\.0\\.0\\.1:${port} in 0:00:\\d\\d\\.\\d{6}`,
    ),
  );
  assert.match(lines.at(-1)!, /^Got 2 poems in 0:00:\d\d\.\d{6}$/);
  const { code, lines: served } = await server.interrupt();
  assert.equal(code, 0);
  const one = [
    new RegExp(`^Somebody at ${PEER} wants poetry!$`),
    ...Array(6).fill(/^Sending 100 bytes$/),
    /^Sending 91 bytes$/,
    /^sending complete$/,
  ];
  assert.equal(served.length, 2 * one.length);
  served.forEach((line, i) => assert.match(line, one[i % one.length]));
});

/** Starts `count` poetry servers of `kind`; returns them and their ports. */
async function poetryServers(
  kind: string,
  count: number,
): Promise<[Server[], number[]]> {
  const servers = Array.from({ length: count }, () =>
    new Server([
      `examples/poetry_server_${kind}.ts`,
      "--port",
      "0",
      "--delay",
      "0.005",
      "--num-bytes",
      "64",
    ]));
  const ports: number[] = [];
  for (const server of servers) ports.push(await server.ready(SERVING_POEM));
  return [servers, ports];
}

async function checkDownloads(dir: string, ports: number[]): Promise<void> {
  for (const port of ports) {
    assert.equal(await Deno.readTextFile(`${dir}/${port}.txt`), POEM);
  }
}

for (
  const [seed, kind, clientKind] of [
    ["S002-c", "select", "select"],
    ["S002-e", "loop", "loop"],
    ["S002-c/e", "select", "loop"],
    ["S002-e/c", "loop", "select"],
  ]
) {
  Deno.test(`${seed} poetry_server_${kind} with poetry_client_${clientKind}: two servers at once`, async () => {
    const dir = await Deno.makeTempDir();
    const [servers, ports] = await poetryServers(kind, 2);
    try {
      const lines = await run([
        `examples/poetry_client_${clientKind}.ts`,
        "--out-dir",
        dir,
        ...ports.map(String),
      ]);
      assert.equal(lines.filter((l) => l === "end of reading").length, 2);
      const writes = lines.filter((l) => l !== "end of reading");
      assert.ok(writes.length >= 2);
      for (const line of writes) {
        assert.match(line, /^writing to .*\/\d+\.txt$/);
      }
      await checkDownloads(dir, ports);
      for (const server of servers) {
        const { code, lines: served } = await server.interrupt();
        assert.equal(code, 0);
        assert.match(
          served[0],
          new RegExp(`^Somebody at ${PEER} wants poetry!$`),
        );
        assert.equal(served[1], "sending complete");
      }
    } finally {
      for (const server of servers) await server[Symbol.asyncDispose]();
      await Deno.remove(dir, { recursive: true });
    }
  });
}

Deno.test("S002-f poetry_server_protocol/poetry_client_protocol: b'poems' and write_eof", async () => {
  const dir = await Deno.makeTempDir();
  const [servers, ports] = await poetryServers("protocol", 2);
  try {
    const lines = await run([
      "examples/poetry_client_protocol.ts",
      "--out-dir",
      dir,
      ...ports.map(String),
    ]);
    await checkDownloads(dir, ports);
    assert.match(
      lines[0],
      new RegExp(`^\\('127\\.0\\.0\\.1', ${ports[0]}\\)$`),
    );
    assert.equal(lines.filter((l) => l === "end of writing").length, 2);
    const chunks = lines.filter((l) => l.startsWith("b'"));
    assert.equal(chunks.length, 2 * Math.ceil(POEM.length / 64));
    assert.ok(chunks[0].startsWith("b'Ozymandias\\nby Percy"));
    for (const server of servers) {
      const { code, lines: served } = await server.interrupt();
      assert.equal(code, 0);
      assert.match(
        served[0],
        new RegExp(`^<Transport peername=${PEER}>$`),
      );
    }
  } finally {
    for (const server of servers) await server[Symbol.asyncDispose]();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("S004-a/b socket_tcp_server/socket_tcp_client: thank you !, exit", async () => {
  await using server = new Server([
    "examples/socket_tcp_server.ts",
    "--port",
    "0",
  ]);
  const port = await server.ready(SERVING_ON);
  assert.deepEqual(
    await run([
      "examples/socket_tcp_client.ts",
      "--port",
      String(port),
      "--message",
      "hello",
      "--exit",
    ]),
    ["thank you !"],
  );
  assert.deepEqual(
    await run(
      ["examples/socket_tcp_client.ts", "--port", String(port)],
      "from stdin\n",
    ),
    ["thank you !"],
  );
  const { code, lines } = await server.interrupt();
  assert.equal(code, 0);
  assert.match(lines[0], /^Accept new connection from 127\.0\.0\.1:\d+\.\.\.$/);
  assert.deepEqual(lines.slice(1, 3), ["Received: hello", "Received: exit"]);
  assert.match(lines[3], /^Accept new connection from 127\.0\.0\.1:\d+\.\.\.$/);
  assert.deepEqual(lines.slice(4), ["Received: from stdin", "Received: "]);
});

Deno.test("S004-c socket_udp: sendto, recvfrom, bound receiver", async () => {
  const lines = await run(["examples/socket_udp.ts", "--message", "ni hao"]);
  assert.match(lines[0], /^receiver bound to \('127\.0\.0\.1', (\d+)\)$/);
  const port = /(\d+)\)$/.exec(lines[0])![1];
  assert.deepEqual(lines.slice(1), [
    "receiver got: ni hao",
    "from a socket at port true",
    "receiver got: ni hao again",
    "answer",
    `('127.0.0.1', ${port})`,
  ]);
});

Deno.test("S004-d http_get_socket: 20 pages over a raw socket, timed", async () => {
  const lines = await run(["examples/http_get_socket.ts"]);
  assert.equal(lines.length, 21);
  for (let i = 0; i < 20; i++) {
    assert.equal(lines[i], `<html><body>goods ${i}</body></html>`);
  }
  assert.ok(Number(lines[20]) > 0, `elapsed seconds: ${lines[20]}`);
});

Deno.test("S004-g socketpair_protocol: create_connection(sock=rsock)", async () => {
  assert.deepEqual(await run(["examples/socketpair_protocol.ts"]), [
    "Received: hello world.",
  ]);
});

Deno.test("S004-j socketpair_streams: open_connection(sock=rsock)", async () => {
  assert.deepEqual(await run(["examples/socketpair_streams.ts"]), [
    "Received: This is a test.",
  ]);
});
