// STARTTLS parity with CPython asyncio (loop.start_tls, StreamWriter.start_tls):
// a CPython peer on the other end, bytes queued before the upgrade, the state
// of the plaintext transport afterwards, getExtraInfo on the upgraded
// transport, failures, repeated and concurrent upgrades, writeEof, Unix.
// Tests named "parity:" pin a behaviour of CPython 3.11+ (asyncio/base_events.py
// BaseEventLoop.start_tls, asyncio/sslproto.py SSLProtocol, asyncio/streams.py
// StreamWriter.start_tls).

import assert from "node:assert/strict";
import {
  createConnection,
  type SslObject,
  startTls,
  type TlsCipher,
  type TlsPeerCertificate,
  type Transport,
} from "../mod.ts";
import {
  openConnection,
  openUnixConnection,
  startServer,
  startUnixServer,
} from "../streams.ts";
import { leakCheckedTest, RecordingProtocol } from "./_helpers.ts";
import {
  CA,
  CLIENT,
  decoder,
  encoder,
  fixturePath,
  Peer,
  rejection,
  SERVER,
  within,
} from "./_tls_helpers.ts";
import { HAS_PYTHON_SSL, REQUIRED } from "./_tls_peers.ts";

const CLIENT_TLS = { serverName: "localhost", caCerts: [CA] };
const PY_SKIP = HAS_PYTHON_SSL
  ? ""
  : " (skipped: python3 3.11+ with ssl not found)";

function pyTest(name: string, fn: () => Promise<void>): void {
  leakCheckedTest(name + PY_SKIP, fn, { ignore: !HAS_PYTHON_SSL });
}

// A CPython asyncio STARTTLS server (StreamWriter.start_tls), one client.
const PY_ASYNCIO_SERVER = `
import asyncio, ssl, sys
async def main():
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(sys.argv[1], sys.argv[2])
    done = asyncio.Event()
    async def handle(reader, writer):
        try:
            writer.write(b"220 ready\\r\\n")
            await writer.drain()
            line = await reader.readline()
            if line.strip() != b"STARTTLS":
                print("BAD", line, flush=True)
                return
            writer.write(b"220 go ahead\\r\\n")
            await writer.drain()
            await writer.start_tls(ctx)
            writer.write(b"secure hello\\r\\n")
            await writer.drain()
            line = await reader.readline()
            writer.write(b"echo:" + line)
            await writer.drain()
            print("VERSION", writer.get_extra_info("ssl_object").version(), flush=True)
            writer.close()
            await writer.wait_closed()
        except Exception as e:
            print("ERROR", repr(e), flush=True)
        finally:
            done.set()
    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    print("PORT", server.sockets[0].getsockname()[1], flush=True)
    await done.wait()
    server.close()
    await server.wait_closed()
asyncio.run(main())
`;

// A blocking CPython peer that reads the request byte by byte (so no TLS
// byte is taken as plaintext), then wraps the socket as a TLS server and
// echoes one line prefixed with what it read in plaintext. n connections.
const PY_SYNC_SERVER = `
import socket, ssl, sys
ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
ctx.load_cert_chain(sys.argv[1], sys.argv[2])
srv = socket.create_server(("127.0.0.1", 0))
print("PORT", srv.getsockname()[1], flush=True)
for _ in range(int(sys.argv[3])):
    conn, _ = srv.accept()
    conn.settimeout(10)
    buf = b""
    while not buf.endswith(b"\\n") and len(buf) < 100:
        b = conn.recv(1)
        if not b:
            break
        buf += b
    try:
        tls = ctx.wrap_socket(conn, server_side=True)
        line = b""
        while not line.endswith(b"\\n") and len(line) < 100:
            b = tls.recv(1)
            if not b:
                break
            line += b
        tls.sendall(b"plain=" + buf.strip() + b" tls=" + line)
        tls.unwrap()
        tls.close()
    except Exception as e:
        print("ERROR", repr(e), flush=True)
        conn.close()
print("DONE", flush=True)
`;

async function pyPeer(script: string, ...args: string[]) {
  const peer = new Peer("python3", [
    "-c",
    script,
    fixturePath("server.pem"),
    fixturePath("server.key"),
    ...args,
  ]);
  const match = await peer.waitForLine(/^PORT (\d+)$/, "the peer's port");
  return { peer, port: Number(match[1]) };
}

pyTest(
  "STARTTLS against CPython's StreamWriter.start_tls: readLine before and after, extra info of the upgraded writer",
  async () => {
    const { peer, port } = await pyPeer(PY_ASYNCIO_SERVER);
    await using _ = peer;
    const [reader, writer] = await openConnection({
      hostname: "127.0.0.1",
      port,
    });
    try {
      assert.equal(
        decoder.decode(await within(reader.readLine())),
        "220 ready\r\n",
      );
      writer.write(encoder.encode("STARTTLS\r\n"));
      assert.equal(
        decoder.decode(await within(reader.readLine())),
        "220 go ahead\r\n",
      );
      const plainPeer = writer.getExtraInfo("peername") as Deno.NetAddr;
      const plainSock = writer.getExtraInfo("sockname") as Deno.NetAddr;
      assert.equal(writer.getExtraInfo("sslObject"), undefined);
      await within(writer.startTls(CLIENT_TLS));
      assert.equal(
        decoder.decode(await within(reader.readLine())),
        "secure hello\r\n",
      );
      writer.write(encoder.encode("ping\n"));
      assert.equal(
        decoder.decode(await within(reader.readLine())),
        "echo:ping\n",
      );
      // asyncio's SSL transport answers peername/sockname from the transport
      // below (sslproto.py SSLProtocol._get_extra_info).
      assert.deepEqual(writer.getExtraInfo("peername"), plainPeer);
      assert.deepEqual(writer.getExtraInfo("sockname"), plainSock);
      const ssl = writer.getExtraInfo("sslObject") as SslObject;
      assert.ok(ssl, "sslObject after the upgrade");
      const cipher = writer.getExtraInfo("cipher") as TlsCipher;
      assert.equal(cipher.length, 3);
      assert.equal(cipher[1], ssl.version());
      const cert = writer.getExtraInfo("peercert") as TlsPeerCertificate;
      assert.ok(cert !== null && typeof cert === "object");
      // The peer closes after its echo: EOF, as asyncio's b"".
      assert.equal((await within(reader.read())).length, 0);
      const { lines } = await peer.finish();
      assert.ok(lines.includes(`VERSION ${ssl.version()}`), lines.join("|"));
    } finally {
      writer.close();
      await writer.waitClosed().catch(() => {});
    }
  },
);

pyTest(
  "a write queued just before startTls reaches the peer in plaintext, before the handshake (transport and StreamWriter)",
  async () => {
    // asyncio: start_tls swaps the protocol of the same transport, so bytes
    // still in its write buffer go out first (base_events.py start_tls);
    // StreamWriter.start_tls drains first (streams.py).
    const { peer, port } = await pyPeer(PY_SYNC_SERVER, "2");
    await using _ = peer;
    // Protocol level, no drain between the write and the upgrade.
    const proto = new RecordingProtocol();
    const [plain] = await createConnection(() => proto, {
      hostname: "127.0.0.1",
      port,
    });
    plain.write(encoder.encode("STARTTLS one\n"));
    const secure = await within(startTls(plain, proto, CLIENT_TLS));
    secure.write(encoder.encode("first\n"));
    const expected1 = "plain=STARTTLS one tls=first\n";
    await proto.waitForBytes(expected1.length, 10_000);
    assert.equal(proto.text(), expected1);
    secure.close();
    await within(proto.lost);
    // Streams.
    const [reader, writer] = await openConnection({
      hostname: "127.0.0.1",
      port,
    });
    try {
      writer.write(encoder.encode("STARTTLS two\n"));
      await within(writer.startTls(CLIENT_TLS));
      writer.write(encoder.encode("second\n"));
      assert.equal(
        decoder.decode(await within(reader.read(-1))),
        "plain=STARTTLS two tls=second\n",
      );
    } finally {
      writer.close();
      await writer.waitClosed().catch(() => {});
    }
    const { lines } = await peer.finish();
    assert.deepEqual(lines, ["DONE"]);
  },
);

/** An aionet STARTTLS server (Streams): greets, waits for STARTTLS, upgrades, echoes lines. */
async function starttlsServer(tls: Record<string, unknown> = SERVER) {
  const failures: unknown[] = [];
  const server = await startServer(async (reader, writer) => {
    try {
      writer.write(encoder.encode("220 ready\n"));
      await reader.readLine();
      writer.write(encoder.encode("220 go ahead\n"));
      await writer.drain();
      await writer.startTls({
        ...tls,
        serverSide: true,
        handshakeTimeout: 5000,
      });
      for (let i = 0; i < 10; i++) {
        const line = await reader.readLine();
        if (line.length === 0) break;
        writer.write(encoder.encode("tls:" + decoder.decode(line)));
      }
    } catch (error) {
      failures.push(error);
    } finally {
      writer.close();
      await writer.waitClosed().catch(() => {});
    }
  }, { hostname: "127.0.0.1", port: 0 });
  const port = (server.addrs[0] as Deno.NetAddr).port;
  return {
    port,
    failures,
    async [Symbol.asyncDispose]() {
      server.close();
      server.abortClients();
      await server.waitClosed();
    },
  };
}

async function negotiate(port: number) {
  const [reader, writer] = await openConnection({
    hostname: "127.0.0.1",
    port,
  });
  assert.equal(decoder.decode(await within(reader.readLine())), "220 ready\n");
  writer.write(encoder.encode("STARTTLS\n"));
  assert.equal(
    decoder.decode(await within(reader.readLine())),
    "220 go ahead\n",
  );
  return [reader, writer] as const;
}

leakCheckedTest(
  "parity: after startTls the plaintext transport is no longer the way to write; closing the TLS transport closes it",
  async () => {
    // CPython: the old transport stays the socket transport under the SSL
    // protocol (sslproto.py); closing the new transport ends with the old one
    // closed (SSLProtocol._start_shutdown → transport.close()). Checked: the
    // old transport's isClosing() is true once the TLS transport is lost.
    await using server = await starttlsServer();
    const proto = new RecordingProtocol();
    const [plain] = await createConnection(() => proto, {
      hostname: "127.0.0.1",
      port: server.port,
    });
    await proto.waitForBytes("220 ready\n".length);
    plain.write(encoder.encode("STARTTLS\n"));
    await proto.waitForBytes("220 ready\n220 go ahead\n".length);
    const secure: Transport = await within(startTls(plain, proto, CLIENT_TLS));
    assert.notEqual(secure, plain);
    assert.equal(plain.isClosing(), false);
    assert.equal(secure.getProtocol(), proto);
    const before = proto.receivedLength;
    secure.write(encoder.encode("a\n"));
    await proto.waitForBytes(before + "tls:a\n".length);
    secure.close();
    assert.equal(await within(proto.lost), null);
    assert.equal(plain.isClosing(), true);
    assert.deepEqual(server.failures, []);
  },
);

leakCheckedTest(
  "parity: a failed writer.startTls closes the connection: the reader ends, waitClosed settles, nothing leaks",
  async () => {
    // CPython: start_tls closes the transport when the handshake fails
    // (base_events.py start_tls, except branch) and the app protocol gets
    // connection_lost (sslproto.py SSLProtocol.connection_lost, app state
    // CON_MADE with call_connection_made=False), so the reader sees the end.
    await using server = await starttlsServer();
    const [reader, writer] = await negotiate(server.port);
    const error = await rejection(
      writer.startTls({ serverName: "localhost", handshakeTimeout: 5000 }),
    );
    assert.ok(error instanceof Deno.errors.InvalidData, String(error));
    assert.equal(writer.isClosing(), true);
    await within(writer.waitClosed().catch(() => {}));
    const end = await within(
      reader.read().then((b) => b.length, (e) => e as Error),
    );
    assert.ok(end === 0 || end instanceof Error, `read after: ${end}`);
  },
);

leakCheckedTest(
  "parity: startTls after writeEof rejects promptly and closes the connection",
  async () => {
    // CPython: after write_eof the socket transport refuses write()
    // (selector_events.py _SelectorSocketTransport.write raises RuntimeError),
    // so no handshake can be sent. aionet must not wait for handshakeTimeout.
    await using server = await starttlsServer();
    const [reader, writer] = await negotiate(server.port);
    writer.writeEof();
    const error = await rejection(
      writer.startTls({ ...CLIENT_TLS, handshakeTimeout: 30_000 }),
    );
    assert.ok(error instanceof Error, String(error));
    assert.equal(writer.isClosing(), true);
    await within(writer.waitClosed().catch(() => {}));
    void reader;
  },
);

leakCheckedTest(
  "parity: two concurrent startTls on one writer: one upgrade at most, the other rejects, nothing hangs",
  async () => {
    // CPython has no guard (streams.py StreamWriter.start_tls swaps protocols
    // twice), but the second call must not leave a second TLS engine writing
    // into the same socket. Expected here: exactly one call succeeds and the
    // connection works, or both settle with an error; none hangs. Observed
    // (both backends): both reject promptly with UnexpectedEof, the peer
    // having dropped the two interleaved handshakes — as garbled as asyncio.
    await using server = await starttlsServer();
    const [reader, writer] = await negotiate(server.port);
    try {
      const results = await within(
        Promise.allSettled([
          writer.startTls(CLIENT_TLS),
          writer.startTls(CLIENT_TLS),
        ]),
      );
      const ok = results.filter((r) => r.status === "fulfilled").length;
      assert.ok(ok <= 1, `both upgrades succeeded: ${JSON.stringify(results)}`);
      if (ok === 1) {
        writer.write(encoder.encode("x\n"));
        assert.equal(
          decoder.decode(await within(reader.readLine())),
          "tls:x\n",
        );
      }
    } finally {
      writer.close();
      await writer.waitClosed().catch(() => {});
    }
  },
);

leakCheckedTest(
  "parity: startTls on an upgraded writer (TLS inside TLS) is refused or works, it does not hang",
  async () => {
    // asyncio allows start_tls over an SSL transport (3.11+). The peer does
    // not answer a second handshake here, so the call must end by its time limit.
    await using server = await starttlsServer();
    const [reader, writer] = await negotiate(server.port);
    try {
      await within(writer.startTls(CLIENT_TLS));
      writer.write(encoder.encode("y\n"));
      assert.equal(decoder.decode(await within(reader.readLine())), "tls:y\n");
      const error = await rejection(
        writer.startTls({ ...CLIENT_TLS, handshakeTimeout: 1000 }),
      );
      assert.ok(error instanceof Error);
    } finally {
      writer.close();
      await writer.waitClosed().catch(() => {});
    }
  },
);

leakCheckedTest(
  "STARTTLS over a Unix socket with a required client certificate: the new writer has the client's peercert; no certificate is refused",
  async () => {
    const path = await Deno.makeTempFile({ prefix: "aionet_starttls_" });
    await Deno.remove(path);
    const seen: string[] = [];
    const failures: unknown[] = [];
    const srv = await startUnixServer(async (reader, writer) => {
      try {
        await reader.readLine();
        writer.write(encoder.encode("go\n"));
        await writer.drain();
        await writer.startTls({
          ...REQUIRED,
          serverSide: true,
          handshakeTimeout: 5000,
        });
        const cert = writer.getExtraInfo("peercert") as TlsPeerCertificate;
        seen.push(String(cert.subject.CN));
        writer.write(encoder.encode("hi " + cert.subject.CN + "\n"));
        await writer.drain();
      } catch (error) {
        failures.push(error);
      } finally {
        writer.close();
        await writer.waitClosed().catch(() => {});
      }
    }, { path });
    try {
      for (const withCert of [true, false]) {
        const [reader, writer] = await openUnixConnection({ path });
        try {
          writer.write(encoder.encode("STARTTLS\n"));
          assert.equal(decoder.decode(await within(reader.readLine())), "go\n");
          const tls = withCert ? { ...CLIENT_TLS, ...CLIENT } : CLIENT_TLS;
          if (withCert) {
            await within(writer.startTls(tls));
            assert.equal(
              decoder.decode(await within(reader.readLine())),
              "hi client\n",
            );
            assert.ok(writer.getExtraInfo("sslObject"));
          } else {
            // TLS 1.3: the client may finish its side before the refusal.
            const outcome = await within(
              writer.startTls(tls).then(
                () => reader.read().then((b) => b.length),
                (e) => e as Error,
              ),
            );
            assert.ok(outcome === 0 || outcome instanceof Error, `${outcome}`);
          }
        } finally {
          writer.close();
          await writer.waitClosed().catch(() => {});
        }
      }
      assert.deepEqual(seen, ["client"]);
      assert.equal(failures.length, 1);
    } finally {
      srv.close();
      srv.abortClients();
      await srv.waitClosed();
      await Deno.remove(path).catch(() => {});
    }
  },
);

leakCheckedTest(
  "parity: aborting writer.startTls over a Unix socket rejects with the reason and closes the connection",
  async () => {
    // asyncio cancels start_tls by cancelling the task; the transport is then
    // closed (base_events.py start_tls, except BaseException). aionet: signal.
    const path = await Deno.makeTempFile({ prefix: "aionet_starttls_" });
    await Deno.remove(path);
    const gotRequest = Promise.withResolvers<void>();
    const srv = await startUnixServer(async (reader, writer) => {
      await reader.readLine();
      gotRequest.resolve();
      // Never answers the handshake; reads until the client goes.
      await reader.read(-1).catch(() => {});
      writer.close();
      await writer.waitClosed().catch(() => {});
    }, { path });
    try {
      const [reader, writer] = await openUnixConnection({ path });
      writer.write(encoder.encode("STARTTLS\n"));
      await within(gotRequest.promise);
      const controller = new AbortController();
      const reason = new Error("stop");
      const pending = writer.startTls({
        ...CLIENT_TLS,
        signal: controller.signal,
      });
      controller.abort(reason);
      assert.equal(await rejection(pending), reason);
      assert.equal(writer.isClosing(), true);
      await within(writer.waitClosed().catch(() => {}));
      void reader;
    } finally {
      srv.close();
      srv.abortClients();
      await srv.waitClosed();
      await Deno.remove(path).catch(() => {});
    }
  },
);
