// Runs the Unix-socket and TLS examples as real programs: each server as a
// subprocess (on a free port or a temporary socket path, read from its
// "Serving on" line), each client against it, and compares the printed
// lines. The self-contained ones (STARTTLS, HTTPS headers, the
// walkthrough's ssl=True step) run on their own.

import assert from "node:assert/strict";
import { run, start } from "./_examples.ts";

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

/** The ready line of a server on any address: the address captured. */
const SERVING_ON_ANY = /^Serving on (.+)$/;

Deno.test("examples: Unix echo server and client on --path", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/echo.sock`;
    await using server = start([
      "examples/unix_echo_server.ts",
      "--path",
      path,
    ]);
    assert.equal(await server.ready(SERVING_ON_ANY), path);
    assert.equal((await Deno.lstat(path)).isSocket, true);
    for (const message of ["Hello World!", "second one"]) {
      const args = ["examples/unix_echo_client.ts", "--path", path];
      if (message !== "Hello World!") args.push("--message", message);
      const client = await run(args);
      assert.equal(client.code, 0, client.stderr);
      assert.deepEqual(client.lines, ECHO_CLIENT_LINES(message));
      await server.expect(ECHO_SERVER_LINES(path, message));
    }
    const { code, lines, stderr } = await server.stop();
    assert.equal(code, 0, stderr);
    assert.deepEqual(lines, []);
    // The listener removed its socket file; the directory is the test's.
    assert.equal(await exists(path), false);
    assert.equal(await exists(dir), true);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("examples: Unix echo server on its own temporary path; client flag checks", async () => {
  await using server = start(["examples/unix_echo_server.ts"]);
  const path = await server.ready(SERVING_ON_ANY);
  assert.match(path, /\/aionet-unix-echo-[^/]+\/echo\.sock$/);
  const client = await run(["examples/unix_echo_client.ts", "--path", path]);
  assert.equal(client.code, 0, client.stderr);
  assert.deepEqual(client.lines, ECHO_CLIENT_LINES("Hello World!"));
  await server.expect(ECHO_SERVER_LINES(path, "Hello World!"));
  const { code, stderr } = await server.stop();
  assert.equal(code, 0, stderr);
  // The server removed the directory it made.
  assert.equal(await exists(path.slice(0, path.lastIndexOf("/"))), false);

  // Without --path the client says what it needs; nobody listens now.
  const missing = await run(["examples/unix_echo_client.ts"]);
  assert.equal(missing.code, 2);
  assert.match(missing.stderr, /--path is required/);
  const refused = await run(["examples/unix_echo_client.ts", "--path", path]);
  assert.notEqual(refused.code, 0);
  assert.match(refused.stderr, /NotFound|ConnectionRefused/);
});

Deno.test("examples: TLS echo server and client (streams over TLS)", async () => {
  // The server with its default certificate (the test fixture).
  await using server = start(["examples/tls_echo_server.ts", "--port", "0"]);
  const port = await server.readyPort();
  const client = await run([
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
  const wrongName = await run([
    "examples/tls_echo_client.ts",
    "--port",
    String(port),
    "--server-name",
    "example.com",
  ]);
  assert.equal(wrongName.code, 1);
  assert.equal(wrongName.stdout, "");
  assert.match(
    wrongName.stderr,
    /^TLS connection failed: InvalidData: .*example\.com/m,
  );

  // Explicit flags: the CA file, and the IP address as the checked name
  // (the certificate lists 127.0.0.1); the server kept serving.
  const byIp = await run([
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
  const { code, lines, stderr } = await server.stop();
  assert.equal(code, 0, stderr);
  assert.deepEqual(lines, []);
  // The refused handshake was reported, not fatal.
  assert.match(stderr, /Error while setting up an accepted connection/);
});

Deno.test("examples: TLS echo server with explicit --cert/--key; a missing file is reported", async () => {
  {
    await using server = start([
      "examples/tls_echo_server.ts",
      "--port",
      "0",
      "--cert",
      "tests/fixtures/tls_cert.pem",
      "--key",
      "tests/fixtures/tls_key.pem",
    ]);
    const port = await server.readyPort();
    const client = await run([
      "examples/tls_echo_client.ts",
      "--port",
      String(port),
      "--message",
      "explicit",
    ]);
    assert.equal(client.code, 0, client.stderr);
    assert.equal(client.lines[2], "Received: 'explicit'");
    const { code, stderr } = await server.stop();
    assert.equal(code, 0, stderr);
  }
  const missing = await run([
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
  const out = await run(["examples/starttls.ts", "--port", "0"]);
  assert.equal(out.code, 0, out.stderr);
  const [ready, ...rest] = out.lines;
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
  assert.equal(out.stderr, "");
});

Deno.test("examples: HTTP header printer, --https against a local HTTPS server (S004-i)", async () => {
  const out = await run(["examples/http_headers.ts", "--https"]);
  assert.equal(out.code, 0, out.stderr);
  assert.equal(out.lines[0], "HTTP header> HTTP/1.0 200 OK");
  const headers = out.lines.slice(1);
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
  const plain = await run(["examples/http_headers.ts"]);
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
    const out = await run([
      "examples/http_headers.ts",
      "--url",
      `https://127.0.0.1:${server.addr.port}/`,
    ]);
    assert.notEqual(out.code, 0);
    assert.equal(out.stdout, "");
    assert.match(out.stderr, /InvalidData: TLS error/);
  } finally {
    controller.abort();
    await server.finished;
  }
});

Deno.test("examples: the walkthrough's ssl=True step over a local TLS server (S003-a)", async () => {
  const out = await run(["examples/streams_walkthrough.ts"]);
  assert.equal(out.code, 0, out.stderr);
  const at = out.lines.findIndex((l) => l.startsWith("TLS server started"));
  assert.ok(at > 0, out.lines.join("\n"));
  const port = portOf(/^TLS server started on (.+)$/.exec(out.lines[at])![1]);
  assert.deepEqual(out.lines.slice(at + 1), [
    `Connected to 127.0.0.1:${port} over TLS`,
    "readLine() over TLS -> b'Hi there!\\n'",
    "read() over TLS -> b'Goodbye!\\nThe server closes now.\\n'",
    "waitClosed() -> the TLS connection is closed",
  ]);
});

Deno.test("examples: mutual TLS server and client; the server refuses a client without a certificate and an impostor", async () => {
  await using server = start(["examples/tls_mtls_server.ts", "--port", "0"]);
  const port = String(await server.readyPort());
  const client = await run(["examples/tls_mtls_client.ts", "--port", port]);
  assert.equal(client.code, 0, client.stderr);
  assert.deepEqual(client.lines, [
    "TLS established with localhost (TLSv1.3, TLS_AES_256_GCM_SHA384)",
    "Server certificate: 'localhost', issued by 'aionet test CA'",
    "Send: 'Hello!'",
    "Received: 'Hello client, you said: Hello!'",
  ]);
  await server.expect([
    /^Client 'client' \(issued by 'aionet test CA'\) from 127\.0\.0\.1:\d+ over TLSv1\.3 TLS_AES_256_GCM_SHA384$/,
    "Received 'Hello!' from 'client'",
  ]);

  // No certificate: the TLS layer itself refuses it.
  const anonymous = await run([
    "examples/tls_mtls_client.ts",
    "--port",
    port,
    "--anonymous",
  ]);
  assert.equal(anonymous.code, 1);
  assert.match(anonymous.stderr, /^The server refused the connection: /m);
  await server.expect([/^Refused a client: InvalidData: .*certificate/]);

  // Self-signed with the real client's subject: aionet's check refuses it.
  const impostor = await run([
    "examples/tls_mtls_client.ts",
    "--port",
    port,
    "--cert",
    "tests/fixtures/mtls/impostor_self_signed.pem",
    "--key",
    "tests/fixtures/mtls/impostor_self_signed.key",
    "--message",
    "let me in",
  ]);
  assert.equal(impostor.code, 1);
  assert.ok(!impostor.lines.some((l) => l.startsWith("Received")));
  await server.expect([
    /^Refused a client: InvalidData: TLS client certificate refused: .*not signed by a trusted CA/,
  ]);

  // A name the server's certificate does not cover: the client refuses.
  const wrongName = await run([
    "examples/tls_mtls_client.ts",
    "--port",
    port,
    "--server-name",
    "example.com",
  ]);
  assert.equal(wrongName.code, 1);
  assert.equal(wrongName.stdout, "");
  assert.match(wrongName.stderr, /^TLS connection failed: InvalidData: /m);
  await server.expect([/^Refused a client: UnexpectedEof: /]);

  const { code, lines, stderr } = await server.stop();
  assert.equal(code, 0, stderr);
  assert.deepEqual(lines, []);
  assert.equal(stderr, "");
});

Deno.test("examples: mutual TLS server --optional serves a client without a certificate as anonymous", async () => {
  await using server = start([
    "examples/tls_mtls_server.ts",
    "--port",
    "0",
    "--optional",
  ]);
  const port = String(await server.readyPort());
  const anonymous = await run([
    "examples/tls_mtls_client.ts",
    "--port",
    port,
    "--anonymous",
    "--message",
    "no cert",
  ]);
  assert.equal(anonymous.code, 0, anonymous.stderr);
  assert.equal(
    anonymous.lines.at(-1),
    "Received: 'Hello anonymous, you said: no cert'",
  );
  await server.expect([
    /^Client 'anonymous' \(issued by 'nobody'\) from 127\.0\.0\.1:\d+ over TLSv1\.3 /,
    "Received 'no cert' from 'anonymous'",
  ]);
  const { code, stderr } = await server.stop();
  assert.equal(code, 0, stderr);
});
