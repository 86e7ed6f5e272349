// Runs the low-level examples (seeds S001-a, S002-a…f, S004-a…d, g, j) as
// real programs: each server as a subprocess on a free port (read from its
// ready line), each client against it, comparing the printed lines with
// what the seeds print.

import assert from "node:assert/strict";
import { runLines, start } from "./_examples.ts";

const POEM = await Deno.readTextFile(
  new URL("../examples/data/ozymandias.txt", import.meta.url),
);
const SERVING_POEM = /^Serving .*ozymandias\.txt on port (\d+)\.$/;
const PEER = String.raw`\('127\.0\.0\.1', \d+\)`;

Deno.test("S001-a sock_server/sock_client: sock_accept, sock_recv, sock_sendall, quit", async () => {
  await using server = start(["examples/sock_server.ts", "--port", "0"]);
  const port = await server.readyPort();
  const client = await runLines(
    ["examples/sock_client.ts", "--port", String(port)],
    { stdin: "hello world\nquit\n" },
  );
  assert.deepEqual(client, [
    "got message",
    "got message from server:  got message",
  ]);
  // The client exits as soon as "quit" is sent, without an answer: wait for
  // the server to print it. A Ctrl+C that reached the server first would
  // close the connection with "quit" unread.
  await server.expect([
    new RegExp(`^connected to client:  ${PEER}$`),
    new RegExp(`^got from ${PEER}: ack from client connect success$`),
    new RegExp(`^got from ${PEER}: hello world$`),
    new RegExp(`^got from ${PEER}: quit$`),
  ]);
  const { code, lines, stderr } = await server.stop();
  assert.equal(stderr, "");
  assert.equal(code, 0);
  assert.deepEqual(lines, []);
});

Deno.test("S002-d event_loop_basics: hello world with runUntilComplete", async () => {
  assert.deepEqual(await runLines(["examples/event_loop_basics.ts"]), [
    "Hello World!",
    "call_soon: hello loop",
    "call_later: 20 ms later",
    "stop: run_forever returns",
    "is_running: false",
    "is_closed: true",
  ]);
});

Deno.test("S002-a getaddrinfo_connect: resolve localhost, connect to each", async () => {
  const lines = await runLines(["examples/getaddrinfo_connect.ts"]);
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
  const refused = await runLines([
    "examples/getaddrinfo_connect.ts",
    "--host",
    "127.0.0.1",
    "--port",
    "1",
  ]);
  assert.match(refused[2], /^Connection refused/);
});

Deno.test("S002-b poetry_server_blocking/poetry_client_blocking", async () => {
  await using server = start([
    "examples/poetry_server_blocking.ts",
    "--port",
    "0",
    "--delay",
    "0",
    "--num-bytes",
    "100",
  ]);
  const port = await server.readyPort(SERVING_POEM, { skip: true });
  const lines = await runLines([
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
  const { code, lines: served, stderr } = await server.stop();
  assert.equal(stderr, "");
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

/**
 * Starts `count` poetry servers of `kind` and waits for their ports.
 * `stop()` stops them all with Ctrl+C (each must exit with 0 and print
 * nothing on stderr) and returns the lines each printed; disposing the
 * group kills whatever still runs.
 */
async function poetryServers(kind: string, count: number) {
  const servers = Array.from({ length: count }, () =>
    start([
      `examples/poetry_server_${kind}.ts`,
      "--port",
      "0",
      "--delay",
      "0.005",
      "--num-bytes",
      "64",
    ]));
  const group = {
    ports: [] as number[],
    async stop(): Promise<string[][]> {
      const printed: string[][] = [];
      for (const server of servers) {
        const { code, lines, stderr } = await server.stop();
        assert.equal(stderr, "");
        assert.equal(code, 0);
        printed.push(lines);
      }
      return printed;
    },
    async [Symbol.asyncDispose](): Promise<void> {
      for (const server of servers) await server[Symbol.asyncDispose]();
    },
  };
  try {
    for (const server of servers) {
      group.ports.push(await server.readyPort(SERVING_POEM, { skip: true }));
    }
  } catch (error) {
    await group[Symbol.asyncDispose]();
    throw error;
  }
  return group;
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
    try {
      await using poetry = await poetryServers(kind, 2);
      const { ports } = poetry;
      const lines = await runLines([
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
      for (const served of await poetry.stop()) {
        assert.match(
          served[0],
          new RegExp(`^Somebody at ${PEER} wants poetry!$`),
        );
        assert.equal(served[1], "sending complete");
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });
}

Deno.test("S002-f poetry_server_protocol/poetry_client_protocol: b'poems' and write_eof", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await using poetry = await poetryServers("protocol", 2);
    const { ports } = poetry;
    const lines = await runLines([
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
    for (const served of await poetry.stop()) {
      assert.match(served[0], new RegExp(`^<Transport peername=${PEER}>$`));
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("S004-a/b socket_tcp_server/socket_tcp_client: thank you !, exit", async () => {
  await using server = start([
    "examples/socket_tcp_server.ts",
    "--port",
    "0",
  ]);
  const port = await server.readyPort();
  assert.deepEqual(
    await runLines([
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
    await runLines(
      ["examples/socket_tcp_client.ts", "--port", String(port)],
      { stdin: "from stdin\n" },
    ),
    ["thank you !"],
  );
  // The second client closes without waiting for the server: wait for the
  // server to print the end of that connection ("Received: ") before the
  // Ctrl+C, which would otherwise close it unread.
  await server.expect([
    /^Accept new connection from 127\.0\.0\.1:\d+\.\.\.$/,
    "Received: hello",
    "Received: exit",
    /^Accept new connection from 127\.0\.0\.1:\d+\.\.\.$/,
    "Received: from stdin",
    "Received: ",
  ]);
  const { code, lines, stderr } = await server.stop();
  assert.equal(stderr, "");
  assert.equal(code, 0);
  assert.deepEqual(lines, []);
});

Deno.test("S004-c socket_udp: sendto, recvfrom, bound receiver", async () => {
  const lines = await runLines([
    "examples/socket_udp.ts",
    "--message",
    "ni hao",
  ]);
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
  const lines = await runLines(["examples/http_get_socket.ts"]);
  assert.equal(lines.length, 21);
  for (let i = 0; i < 20; i++) {
    assert.equal(lines[i], `<html><body>goods ${i}</body></html>`);
  }
  assert.ok(Number(lines[20]) > 0, `elapsed seconds: ${lines[20]}`);
});

Deno.test("S004-g socketpair_protocol: create_connection(sock=rsock)", async () => {
  assert.deepEqual(await runLines(["examples/socketpair_protocol.ts"]), [
    "Received: hello world.",
  ]);
});

Deno.test("S004-j socketpair_streams: open_connection(sock=rsock)", async () => {
  assert.deepEqual(await runLines(["examples/socketpair_streams.ts"]), [
    "Received: This is a test.",
  ]);
});
