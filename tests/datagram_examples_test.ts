// Runs the datagram examples as subprocesses (as `deno run -A
// examples/<name>.ts` from the repository root, whose deno.json enables
// --unstable-net) and checks what they print.
// Run: deno test -A --sanitize-ops --sanitize-resources tests/datagram_examples_test.ts

import assert from "node:assert/strict";
import { run, SERVING_ON, start } from "./_examples.ts";
import { BACKEND, withTimeout } from "./_helpers.ts";

const decoder = new TextDecoder();

const TIME = /^Now is : \d{4}-\d\d-\d\d \d\d:\d\d:\d\d$/;

Deno.test("udp_time_server + udp_time_client (seed 004 S004-f)", async () => {
  await using server = start(["examples/udp_time_server.ts", "--port", "0"]);
  const port = await server.readyPort(SERVING_ON, { skip: true });
  const client = await run([
    "examples/udp_time_client.ts",
    "--port",
    String(port),
    "--count",
    "3",
    "--interval",
    "20",
  ], { timeout: 15_000 });
  assert.equal(client.code, 0, client.stderr);
  assert.equal(client.lines.length, 3, client.lines.join("\n"));
  for (const line of client.lines) assert.match(line, TIME);

  await server.waitForLine(/replied/);
  const result = await server.stop("SIGINT");
  assert.equal(result.code, 0, result.stderr);
  assert.equal(server.lines[0], "Starting UDP server");
  assert.equal(server.lines[1], `Serving on 127.0.0.1:${port}`);
  const rest = server.lines.slice(2);
  assert.equal(rest.length, 6, rest.join("\n"));
  for (let i = 0; i < 3; i++) {
    assert.match(rest[2 * i], /^Received from \('127\.0\.0\.1', \d+\)$/);
    assert.equal(rest[2 * i + 1], "replied");
  }
});

Deno.test("udp_time_client gives up a round with no reply (--timeout)", async () => {
  // A socket that never answers: the datagrams just queue there.
  const silent = Deno.listenDatagram({
    transport: "udp",
    hostname: "127.0.0.1",
    port: 0,
  });
  try {
    const port = String((silent.addr as Deno.NetAddr).port);
    const client = await run([
      "examples/udp_time_client.ts",
      "--port",
      port,
      "--count",
      "2",
      "--interval",
      "10",
      "--timeout",
      "150",
    ], { timeout: 15_000 });
    assert.equal(client.code, 0, client.stderr);
    assert.deepEqual(client.lines, [
      "No reply within 150 ms",
      "No reply within 150 ms",
    ]);
    // Both requests did reach the port.
    for (let i = 0; i < 2; i++) {
      const [data] = await withTimeout(silent.receive(), 15_000, "request");
      assert.equal(decoder.decode(data), "ask for me");
    }
  } finally {
    silent.close();
  }
});

Deno.test("multicast_ssdp (seed 000 S000-a): two listeners share the port and answer", async () => {
  const result = await run([
    "examples/multicast_ssdp.ts",
    "--port",
    "0",
    // Listen on the group address only: nothing on a real interface.
    "--bind",
    "239.255.255.250",
  ], { timeout: 15_000 });
  assert.equal(result.code, 0, result.stderr);
  const [first, ...rest] = result.lines;
  assert.match(
    first,
    /^2 listeners joined 239\.255\.255\.250 on 127\.0\.0\.1, port \d+$/,
  );
  const port = first.split(" ").pop();
  assert.equal(rest.at(-1), "2 answers");
  const heard = rest.filter((line) => line.includes(": M-SEARCH from"));
  assert.deepEqual(
    heard.map((line) => line.split(":")[0]).sort(),
    ["listener-1", "listener-2"],
  );
  for (const line of heard) {
    assert.match(line, /M-SEARCH from \('127\.0\.0\.1', \d+\)$/);
  }
  const answers = rest.filter((line) => line.startsWith("searcher: answer"));
  assert.equal(answers.length, 2);
  for (const line of answers) {
    assert.ok(line.includes(`('127.0.0.1', ${port})`), line);
  }
  assert.deepEqual(
    answers.map((line) => line.split("USN: ")[1]).sort(),
    [
      "uuid:aionet-listener-1::upnp:rootdevice",
      "uuid:aionet-listener-2::upnp:rootdevice",
    ],
  );
});

Deno.test("unix_datagram_pair: send-only endpoint to a bound receiver", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/pair.sock`;
    const result = await run(
      ["examples/unix_datagram_pair.ts", "--path", path],
      {
        timeout: 15_000,
      },
    );
    assert.equal(result.code, 0, result.stderr);
    assert.deepEqual(result.lines, [
      // The example runs on the backend of this run (AIONET_BACKEND is
      // inherited): the Deno backend refuses a bound endpoint and says so;
      // the native backend makes it, and the example closes it silently.
      ...(BACKEND === "deno"
        ? [
          "Bound endpoint: A Unix datagram endpoint bound to a path is not supported (NotSupported)",
        ]
        : []),
      `Receiver bound to ${path}`,
      "sent: datagram 1 of 3",
      "sent: datagram 2 of 3",
      "sent: datagram 3 of 3",
      "received: datagram 1 of 3 (from an unbound socket)",
      "received: datagram 2 of 3 (from an unbound socket)",
      "received: datagram 3 of 3 (from an unbound socket)",
    ]);
    // The example cleans up its socket file.
    await assert.rejects(Deno.lstat(path), Deno.errors.NotFound);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
