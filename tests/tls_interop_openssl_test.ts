// TLS against openssl s_client and s_server: aionet servers with client
// certificates, SNI, versions, STARTTLS and resumed sessions; aionet
// clients with certificates. Skipped, with a message, without openssl.
// Every peer is spawned with Deno.Command, given bounded time, and killed
// and awaited whatever happens. Certificates: tests/fixtures/mtls/.

import assert from "node:assert/strict";
import {
  openConnection,
  type Server,
  type SslObject,
  startServer,
  type TlsPeerCertificate,
} from "../mod.ts";
import {
  captureExceptions,
  CLIENT,
  decoder,
  encoder,
  fixturePath,
  OTHER_CA,
  pair,
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

/**
 * Runs `openssl s_client` to the end; returns its exit code and output.
 * `-quiet` prints only the data; without it the session (e.g. "Reused,")
 * is printed too. Both wait for the server to close (`-ign_eof`).
 */
async function sClient(port: number, args: string[], quiet = true) {
  await using peer = new Peer("openssl", [
    "s_client",
    "-connect",
    `127.0.0.1:${port}`,
    "-CAfile",
    F.ca,
    "-verify_return_error",
    quiet ? "-quiet" : "-ign_eof",
    ...args,
  ], { stdin: true });
  return await peer.finish();
}

// ---- openssl s_client against aionet servers ----

interop(
  "openssl",
  's_client with and without client certificates against clientCert "required"',
  async () => {
    using _exceptions = captureExceptions();
    const { server, served } = await greeter(REQUIRED);
    try {
      const port = portOf(server.addrs[0]);
      for (const impostor of [null, ...IMPOSTOR_FILES]) {
        const args = impostor === null
          ? []
          : ["-cert", F.cert(impostor), "-key", F.key(impostor)];
        const out = await sClient(port, args);
        assert.ok(
          !out.lines.some((l) => l.startsWith("hello")),
          impostor ?? "none",
        );
      }
      assert.deepEqual(served, []);
      const out = await sClient(port, [
        "-cert",
        F.cert("client"),
        "-key",
        F.key("client"),
      ]);
      assert.ok(out.lines.includes("hello client"), out.stderr);
      // With the intermediate sent along (-cert_chain).
      const chained = await sClient(port, [
        "-cert",
        F.cert("chained_client"),
        "-key",
        F.key("chained_client"),
        "-cert_chain",
        F.cert("chained_client"),
      ]);
      assert.ok(chained.lines.includes("hello chained-client"), chained.stderr);
      assert.deepEqual(served, ["client", "chained-client"]);
    } finally {
      await closeServer(server);
    }
  },
);

const CLIENT_ARGS = ["-cert", F.cert("client"), "-key", F.key("client")];

interop(
  "openssl",
  "s_client -servername gets the sniCerts certificate, and the default for another name",
  async () => {
    using _exceptions = captureExceptions();
    const { server, served, names } = await greeter({
      ...REQUIRED,
      sniCerts: { "sni.example": pair("sni") },
    });
    try {
      const port = portOf(server.addrs[0]);
      // -verify_hostname: s_client checks the name against the certificate
      // it got, so only the SNI certificate passes.
      const bySni = await sClient(port, [
        ...CLIENT_ARGS,
        "-servername",
        "sni.example",
        "-verify_hostname",
        "sni.example",
      ]);
      assert.ok(bySni.lines.includes("hello client"), bySni.stderr);
      const byDefault = await sClient(port, [
        ...CLIENT_ARGS,
        "-servername",
        "localhost",
        "-verify_hostname",
        "localhost",
      ]);
      assert.ok(byDefault.lines.includes("hello client"), byDefault.stderr);
      const mismatch = await sClient(port, [
        ...CLIENT_ARGS,
        "-servername",
        "localhost",
        "-verify_hostname",
        "sni.example",
      ]);
      assert.ok(!mismatch.lines.includes("hello client"));
      assert.deepEqual(names, ["sni.example", "localhost"]);
      assert.deepEqual(served, ["client", "client"]);
    } finally {
      await closeServer(server);
    }
  },
);

interop(
  "openssl",
  "s_client -tls1_2/-tls1_3 get that version; -tls1_2 against minVersion TLSv1.3 fails",
  async () => {
    using _exceptions = captureExceptions();
    const { server, versions } = await greeter(REQUIRED);
    try {
      for (const version of ["-tls1_2", "-tls1_3"]) {
        const out = await sClient(portOf(server.addrs[0]), [
          ...CLIENT_ARGS,
          version,
        ]);
        assert.ok(out.lines.includes("hello client"), out.stderr);
      }
      assert.deepEqual(versions, ["TLSv1.2", "TLSv1.3"]);
    } finally {
      await closeServer(server);
    }
    const { server: strict, served } = await greeter({
      ...REQUIRED,
      minVersion: "TLSv1.3",
    });
    try {
      const out = await sClient(portOf(strict.addrs[0]), [
        ...CLIENT_ARGS,
        "-tls1_2",
      ]);
      assert.notEqual(out.code, 0);
      assert.deepEqual(served, []);
    } finally {
      await closeServer(strict);
    }
  },
);

interop(
  "openssl",
  "s_client -starttls smtp upgrades with a client certificate (StreamWriter.startTls, required)",
  async () => {
    const refusals: unknown[] = [];
    const server = await startServer(async (reader, writer) => {
      writer.write(encoder.encode("220 aionet ESMTP\r\n"));
      await reader.readLine(); // EHLO
      writer.write(encoder.encode("250-aionet\r\n250 STARTTLS\r\n"));
      const command = decoder.decode(await reader.readLine());
      if (!command.startsWith("STARTTLS")) {
        writer.close();
        return;
      }
      writer.write(encoder.encode("220 go ahead\r\n"));
      try {
        await writer.startTls({ ...REQUIRED, serverSide: true });
      } catch (error) {
        refusals.push(error);
        return;
      }
      const cert = writer.getExtraInfo("peercert") as TlsPeerCertificate;
      writer.write(encoder.encode(`250 hello ${cert.subject.CN}\r\n`));
      writer.close();
    }, { hostname: "127.0.0.1", port: 0 });
    try {
      const port = portOf(server.addrs[0]);
      const good = await sClient(port, [
        "-starttls",
        "smtp",
        "-cert",
        F.cert("client"),
        "-key",
        F.key("client"),
      ]);
      assert.ok(
        good.lines.some((l) => l.startsWith("250 hello client")),
        good.stderr,
      );
      const bad = await sClient(port, [
        "-starttls",
        "smtp",
        "-cert",
        F.cert("impostor_other_ca"),
        "-key",
        F.key("impostor_other_ca"),
      ]);
      assert.ok(!bad.lines.some((l) => l.startsWith("250 hello")));
      const none = await sClient(port, ["-starttls", "smtp"]);
      assert.ok(!none.lines.some((l) => l.startsWith("250 hello")));
      assert.equal(refusals.length, 2);
      for (const error of refusals) {
        assert.ok(error instanceof Deno.errors.InvalidData, String(error));
      }
    } finally {
      await closeServer(server);
    }
  },
);

interop(
  "openssl",
  "a resumed TLS session is checked again: the TLS layer resumes it, aionet refuses what the server would not accept",
  async () => {
    // Deno's TLS layer shares its session tickets across every server of the
    // process and resumes a session without asking for the certificate
    // again: aionet checks the session's client certificate (or its lack)
    // after every handshake, resumed or not.
    using exceptions = captureExceptions();
    const dir = await Deno.makeTempDir();
    const open = await greeter(SERVER);
    const strict = await greeter(REQUIRED);
    const otherCa = await greeter({ ...REQUIRED, clientCaCerts: [OTHER_CA] });
    try {
      // Without -quiet s_client prints "Reused," for a resumed session
      // (and may not print the data): who was served is read on the server.
      const resume = async (from: Server, to: Server, client: string[]) => {
        const session = `${dir}/session-${crypto.randomUUID()}.pem`;
        await sClient(
          portOf(from.addrs[0]),
          [...client, "-sess_out", session],
          false,
        );
        const resumed = await sClient(
          portOf(to.addrs[0]),
          ["-sess_in", session],
          false,
        );
        assert.ok(
          resumed.lines.some((l) => l.startsWith("Reused,")),
          "not resumed",
        );
      };
      // No certificate in a session from a server that asked for none.
      await resume(open.server, strict.server, []);
      assert.deepEqual(open.served, ["anonymous"]);
      assert.deepEqual(strict.served, []);
      assert.match(
        String((await exceptions.next()).exception),
        /sent no certificate/,
      );
      // A certificate from a CA the other server does not trust.
      await resume(strict.server, otherCa.server, CLIENT_ARGS);
      assert.deepEqual(strict.served, ["client"]);
      assert.deepEqual(otherCa.served, []);
      assert.match(
        String((await exceptions.next()).exception),
        /not signed by a trusted CA/,
      );
      // The same server: the session's certificate is still good.
      await resume(strict.server, strict.server, CLIENT_ARGS);
      assert.deepEqual(strict.served, ["client", "client", "client"]);
      assert.deepEqual(strict.reused, [false, false, true]);
      assert.deepEqual(exceptions.seen, []);
    } finally {
      await closeServer(open.server);
      await closeServer(strict.server);
      await closeServer(otherCa.server);
      await Deno.remove(dir, { recursive: true });
    }
  },
);

// ---- aionet clients against openssl s_server ----

/** Starts `openssl s_server` for one connection; resolves its port. */
async function sServer(args: string[]): Promise<{ peer: Peer; port: number }> {
  const peer = new Peer("openssl", [
    "s_server",
    "-accept",
    "127.0.0.1:0",
    "-naccept",
    "1",
    "-cert",
    F.server,
    "-key",
    F.serverKey,
    ...args,
  ], { stdin: true });
  try {
    const match = await peer.waitForLine(/^ACCEPT 127\.0\.0\.1:(\d+)$/);
    return { peer, port: Number(match[1]) };
  } catch (error) {
    await peer[Symbol.asyncDispose]();
    throw error;
  }
}

const VERIFY = [
  "-CAfile",
  fixturePath("ca.pem"),
  "-Verify",
  "1",
  "-verify_return_error",
];

interop(
  "openssl",
  "aionet client with a certificate against s_server -Verify: both ways, s_server sees the subject",
  async () => {
    const { peer, port } = await sServer(VERIFY);
    await using _peer = peer;
    const [reader, writer] = await openConnection({
      hostname: "127.0.0.1",
      port,
      tls: clientTls(CLIENT),
    });
    const cert = writer.getExtraInfo("peercert") as TlsPeerCertificate;
    assert.equal(cert.subject.CN, "localhost");
    writer.write(encoder.encode("hello from aionet\n"));
    await peer.waitForLine(/^hello from aionet$/);
    assert.ok(
      peer.stdout.seen.some((l) => /^subject=.*CN = client$/.test(l)),
      peer.stdout.seen.join("\n"),
    );
    await peer.write("hello from openssl\n");
    assert.equal(
      decoder.decode(await within(reader.readLine())),
      "hello from openssl\n",
    );
    writer.close();
    await writer.waitClosed();
    await peer.finish();
  },
);

interop(
  "openssl",
  "s_server -Verify refuses an aionet client without a certificate: the aionet side gets the alert as InvalidData",
  async () => {
    using _exceptions = captureExceptions();
    const { peer, port } = await sServer(VERIFY);
    await using _peer = peer;
    const error = await openConnection({
      hostname: "127.0.0.1",
      port,
      tls: clientTls(),
    })
      .then(async ([reader, writer]) => {
        try {
          await within(reader.read(-1));
          return null;
        } catch (error) {
          return error;
        } finally {
          writer.close();
          await writer.waitClosed().catch(() => {});
        }
      }, (error) => error);
    assert.ok(error instanceof Deno.errors.InvalidData, String(error));
    assert.match((error as Error).message, /certificate/i);
    await peer.finish();
  },
);

interop(
  "openssl",
  "aionet client minVersion/maxVersion against s_server -tls1_2; SNI to s_server -servername",
  async () => {
    {
      const { peer, port } = await sServer(["-tls1_2"]);
      await using _peer = peer;
      await assert.rejects(
        openConnection({
          hostname: "127.0.0.1",
          port,
          tls: clientTls({ minVersion: "TLSv1.3" }),
        }),
        Deno.errors.InvalidData,
      );
    }
    {
      const { peer, port } = await sServer(["-tls1_2"]);
      await using _peer = peer;
      const [, writer] = await openConnection({
        hostname: "127.0.0.1",
        port,
        tls: clientTls({ maxVersion: "TLSv1.2" }),
      });
      const ssl = writer.getExtraInfo("sslObject") as SslObject;
      assert.equal(ssl.version(), "TLSv1.2");
      assert.equal(ssl.cipher()?.[1], "TLSv1.2");
      writer.close();
      await writer.waitClosed();
    }
    {
      const { peer, port } = await sServer([
        "-servername",
        "sni.example",
        "-cert2",
        F.sni,
        "-key2",
        F.sniKey,
      ]);
      await using _peer = peer;
      const [, writer] = await openConnection({
        hostname: "127.0.0.1",
        port,
        tls: clientTls({ serverName: "sni.example" }),
      });
      const cert = writer.getExtraInfo("peercert") as TlsPeerCertificate;
      assert.equal(cert.subject.CN, "sni.example");
      writer.close();
      await writer.waitClosed();
    }
  },
);
