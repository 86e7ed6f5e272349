// TLS against curl and CPython's ssl (asyncio): client certificates both
// ways, STARTTLS, and the close after a large transfer. Skipped, with a
// message, when the tool is missing. Every peer is spawned with
// Deno.Command, given bounded time, and killed and awaited whatever
// happens. Certificates: tests/fixtures/mtls/.

import assert from "node:assert/strict";
import {
  openConnection,
  startServer,
  type StreamReader,
  type StreamWriter,
  type TlsPeerCertificate,
} from "../mod.ts";
import { bytesEqual } from "./_helpers.ts";
import {
  captureExceptions,
  CLIENT,
  decoder,
  encoder,
  Peer,
  portOf,
  SERVER,
  within,
} from "./_tls_helpers.ts";
import {
  clientTls,
  closeServer,
  F,
  greeter,
  IMPOSTOR_FILES,
  interop,
  REQUIRED,
} from "./_tls_peers.ts";

// ---- curl against an aionet HTTPS server ----

interop(
  "curl",
  "curl --cert/--cacert against an mTLS HTTPS server; without a certificate or with an impostor curl fails",
  async () => {
    using _exceptions = captureExceptions();
    const served: string[] = [];
    const server = await startServer(
      async (reader: StreamReader, writer: StreamWriter) => {
        await reader.readUntil("\r\n\r\n");
        const cert = writer.getExtraInfo("peercert") as TlsPeerCertificate;
        const body = `hello ${cert.subject.CN}\n`;
        served.push(String(cert.subject.CN));
        writer.write(encoder.encode(
          `HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: ${body.length}\r\nconnection: close\r\n\r\n${body}`,
        ));
        writer.close();
      },
      { hostname: "127.0.0.1", port: 0, tls: REQUIRED },
    );
    try {
      const port = portOf(server.addrs[0]);
      const curl = async (args: string[]) => {
        await using peer = new Peer("curl", [
          "--silent",
          "--show-error",
          "--max-time",
          "20",
          "--resolve",
          `localhost:${port}:127.0.0.1`,
          "--cacert",
          F.ca,
          ...args,
          `https://localhost:${port}/`,
        ]);
        return await peer.finish();
      };
      const good = await curl([
        "--cert",
        F.cert("client"),
        "--key",
        F.key("client"),
      ]);
      assert.equal(good.code, 0, good.stderr);
      assert.deepEqual(good.lines, ["hello client"]);
      const none = await curl([]);
      assert.notEqual(none.code, 0);
      for (const impostor of IMPOSTOR_FILES) {
        const out = await curl([
          "--cert",
          F.cert(impostor),
          "--key",
          F.key(impostor),
        ]);
        assert.notEqual(out.code, 0, impostor);
      }
      const old = await curl([
        "--cert",
        F.cert("client"),
        "--key",
        F.key("client"),
        "--tlsv1.2",
        "--tls-max",
        "1.2",
      ]);
      assert.equal(old.code, 0, old.stderr);
      assert.deepEqual(served, ["client", "client"]);
    } finally {
      await closeServer(server);
    }
  },
);

// ---- CPython's ssl ----

/** Runs a python3 script given as text, with `args`. */
function python(script: string, args: string[]): Peer {
  return new Peer("python3", ["-c", script, ...args], { stdin: true });
}

/** A CPython asyncio TLS server: a million bytes, then close (close_notify). */
const PY_BULK_SERVER = `
import asyncio, ssl, sys
async def main():
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(sys.argv[1], sys.argv[2])
    done = asyncio.Event()
    async def handle(reader, writer):
        writer.write(bytes(i % 251 for i in range(1_000_000)))
        await writer.drain()
        writer.close()
        await writer.wait_closed()
        done.set()
    server = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=ctx)
    print("PORT", server.sockets[0].getsockname()[1], flush=True)
    await done.wait()
    server.close()
    await server.wait_closed()
    print("DONE", flush=True)
asyncio.run(main())
`;

interop(
  "python3",
  "a CPython asyncio ssl server writes 1,000,000 bytes then closes: read(-1) returns them all",
  async () => {
    await using peer = python(PY_BULK_SERVER, [F.server, F.serverKey]);
    const port = Number((await peer.waitForLine(/^PORT (\d+)$/))[1]);
    const [reader, writer] = await openConnection({
      hostname: "127.0.0.1",
      port,
      tls: clientTls(),
    });
    const data = await within(reader.read(-1));
    const expected = new Uint8Array(1_000_000).map((_, i) => i % 251);
    assert.equal(data.length, expected.length);
    assert.ok(bytesEqual(data, expected));
    writer.close();
    await writer.waitClosed();
    await peer.waitForLine(/^DONE$/);
  },
);

/** A CPython asyncio TLS client: args port, ca, then cert key, or "-". */
const PY_CLIENT = `
import asyncio, ssl, sys
async def main():
    port, ca, cert, key, mode = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5]
    ctx = ssl.create_default_context(cafile=ca)
    if cert != "-":
        ctx.load_cert_chain(cert, key)
    try:
        if mode == "starttls":
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"STARTTLS\\n")
            await writer.drain()
            await reader.readline()
            await writer.start_tls(ctx, server_hostname="localhost")
        else:
            reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=ctx, server_hostname="localhost")
        if mode == "upload":
            writer.write(bytes(i % 251 for i in range(2 * 1024 * 1024)))
            await writer.drain()
            writer.close()
            await writer.wait_closed()
            print("SENT", flush=True)
            return
        data = await reader.read()
        print("GOT", data.decode().strip() if data else "<eof>", flush=True)
        writer.close()
    except (ssl.SSLError, OSError, ConnectionError) as error:
        print("ERROR", type(error).__name__, flush=True)
asyncio.run(main())
`;

async function pyClient(port: number, cert: string | null, mode = "direct") {
  await using peer = python(PY_CLIENT, [
    String(port),
    F.ca,
    cert === null ? "-" : F.cert(cert),
    cert === null ? "-" : F.key(cert),
    mode,
  ]);
  return await peer.finish();
}

interop(
  "python3",
  'CPython ssl clients (load_cert_chain) against clientCert "required": the real one is served, impostors are not',
  async () => {
    using _exceptions = captureExceptions();
    const { server, served } = await greeter(REQUIRED);
    try {
      const port = portOf(server.addrs[0]);
      const good = await pyClient(port, "client");
      assert.deepEqual(good.lines, ["GOT hello client"], good.stderr);
      for (const impostor of [null, ...IMPOSTOR_FILES]) {
        const out = await pyClient(port, impostor);
        assert.ok(
          !out.lines.some((l) => l.startsWith("GOT hello")),
          `${impostor}: ${out.lines}`,
        );
      }
      assert.deepEqual(served, ["client"]);
    } finally {
      await closeServer(server);
    }
  },
);

interop(
  "python3",
  "a CPython client upgrades with StreamWriter.start_tls and a client certificate (aionet STARTTLS, required)",
  async () => {
    const refusals: unknown[] = [];
    const server = await startServer(async (reader, writer) => {
      await reader.readLine();
      writer.write(encoder.encode("go\n"));
      try {
        await writer.startTls({ ...REQUIRED, serverSide: true });
      } catch (error) {
        refusals.push(error);
        return;
      }
      const cert = writer.getExtraInfo("peercert") as TlsPeerCertificate;
      writer.write(encoder.encode(`hello ${cert.subject.CN}\n`));
      writer.close();
    }, { hostname: "127.0.0.1", port: 0 });
    try {
      const port = portOf(server.addrs[0]);
      const good = await pyClient(port, "client", "starttls");
      assert.deepEqual(good.lines, ["GOT hello client"], good.stderr);
      const bad = await pyClient(port, "impostor_self_signed", "starttls");
      assert.ok(
        !bad.lines.some((l) => l.startsWith("GOT hello")),
        bad.lines.join(),
      );
      assert.equal(refusals.length, 1);
    } finally {
      await closeServer(server);
    }
  },
);

interop(
  "python3",
  "a CPython client uploads 2 MiB then closes: the aionet server's read(-1) gets them all",
  async () => {
    const received = Promise.withResolvers<Uint8Array>();
    const server = await startServer(async (reader, writer) => {
      try {
        received.resolve(await reader.read(-1));
      } catch (error) {
        received.reject(error);
      }
      writer.close();
    }, { hostname: "127.0.0.1", port: 0, tls: SERVER });
    try {
      const out = await pyClient(portOf(server.addrs[0]), null, "upload");
      assert.deepEqual(out.lines, ["SENT"], out.stderr);
      const data = await within(received.promise);
      const expected = new Uint8Array(2 * 1024 * 1024).map((_, i) => i % 251);
      assert.equal(data.length, expected.length);
      assert.ok(bytesEqual(data, expected));
    } finally {
      await closeServer(server);
    }
  },
);

/** A CPython asyncio server with CERT_REQUIRED; prints each peer's CN. */
const PY_MTLS_SERVER = `
import asyncio, ssl, sys
async def main():
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(sys.argv[1], sys.argv[2])
    ctx.load_verify_locations(sys.argv[3])
    ctx.verify_mode = ssl.CERT_REQUIRED
    async def handle(reader, writer):
        cert = writer.get_extra_info("peercert")
        cn = dict(pair[0] for pair in cert["subject"])["commonName"]
        print("PEER", cn, flush=True)
        writer.write(("hello " + cn + "\\n").encode())
        await writer.drain()
        writer.close()
    server = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=ctx)
    print("PORT", server.sockets[0].getsockname()[1], flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    server.close()
    await server.wait_closed()
asyncio.run(main())
`;

interop(
  "python3",
  "an aionet client with cert/key against a CPython CERT_REQUIRED server; without them it is refused",
  async () => {
    await using peer = python(PY_MTLS_SERVER, [F.server, F.serverKey, F.ca]);
    const port = Number((await peer.waitForLine(/^PORT (\d+)$/))[1]);
    const [reader, writer] = await openConnection({
      hostname: "127.0.0.1",
      port,
      tls: clientTls(CLIENT),
    });
    assert.equal(
      decoder.decode(await within(reader.read(-1))),
      "hello client\n",
    );
    writer.close();
    await writer.waitClosed();
    await peer.waitForLine(/^PEER client$/);
    // No certificate: refused by CPython (an alert, or the connection ends).
    const refused = await openConnection({
      hostname: "127.0.0.1",
      port,
      tls: clientTls(),
    })
      .then(async ([r, w]) => {
        try {
          return (await within(r.read(-1))).length === 0;
        } catch {
          return true;
        } finally {
          w.close();
          await w.waitClosed().catch(() => {});
        }
      }, () => true);
    assert.equal(refused, true);
    const { lines } = await peer.finish();
    assert.ok(!lines.some((l) => l.startsWith("PEER")), lines.join());
  },
);
