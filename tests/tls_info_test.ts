// What a TLS connection tells about itself after the handshake, on both
// sides, from transports and StreamWriters: "peercert", "cipher",
// "sslObject" (as asyncio's get_extra_info), the certificate the server
// picked by SNI, and the protocol versions.

import assert from "node:assert/strict";
import { X509Certificate } from "node:crypto";
import {
  createConnection,
  createServer,
  openConnection,
  Protocol,
  type SslObject,
  startServer,
  type StreamWriter,
  type TlsPeerCertificate,
  type TlsServerOptions,
  type Transport,
} from "../mod.ts";
import {
  CA,
  captureExceptions,
  CLIENT,
  encoder,
  pair,
  portOf,
  SERVER,
  within,
} from "./_tls_helpers.ts";
import { BACKEND } from "./_helpers.ts";

const MTLS = {
  ...SERVER,
  clientCert: "required" as const,
  clientCaCerts: [CA],
};

function derOf(pemText: string): Uint8Array {
  return new Uint8Array(new X509Certificate(pemText).raw);
}

/** Starts an mTLS echo server; resolves each connection's writer. */
async function infoServer(tls: TlsServerOptions) {
  const writers: Array<PromiseWithResolvers<StreamWriter>> = [];
  let next = 0;
  const server = await startServer(async (reader, writer) => {
    (writers[next++] ??= Promise.withResolvers()).resolve(writer);
    for await (const line of reader) writer.write(line);
    writer.close();
  }, { hostname: "127.0.0.1", port: 0, tls });
  return {
    server,
    writer: (i: number) => (writers[i] ??= Promise.withResolvers()).promise,
  };
}

function checkPeercert(
  cert: TlsPeerCertificate,
  pemText: string,
  expected: { cn: string; issuer: string; san: string[] },
): void {
  const x509 = new X509Certificate(pemText);
  assert.equal(cert.subject.CN, expected.cn);
  assert.equal(cert.issuer.CN, expected.issuer);
  assert.equal(cert.issuer.O, "aionet tests");
  assert.deepEqual(cert.subjectAltName, expected.san);
  assert.ok(cert.notBefore instanceof Date);
  assert.ok(cert.notAfter instanceof Date);
  assert.equal(cert.notBefore.getTime(), x509.validFromDate.getTime());
  assert.equal(cert.notAfter.getTime(), x509.validToDate.getTime());
  assert.equal(cert.serialNumber, x509.serialNumber.toUpperCase());
  assert.equal(cert.fingerprint256, x509.fingerprint256);
  assert.ok(cert.der instanceof Uint8Array);
  assert.deepEqual(cert.der, derOf(pemText));
}

Deno.test("TLS info: peercert, cipher and sslObject on both sides of an mTLS Streams connection", async () => {
  const { server, writer: serverWriter } = await infoServer(MTLS);
  await using _server = server;
  const [reader, writer] = await openConnection({
    hostname: "127.0.0.1",
    port: portOf(server.addrs[0]),
    tls: {
      caCerts: [CA],
      serverName: "localhost",
      alpnProtocols: ["x-info"],
      ...CLIENT,
    },
  });
  writer.write(encoder.encode("hi\n"));
  await within(reader.readLine());
  const other = await within(serverWriter(0));

  // The client sees the server's certificate.
  checkPeercert(
    writer.getExtraInfo("peercert") as TlsPeerCertificate,
    SERVER.cert,
    {
      cn: "localhost",
      issuer: "aionet test CA",
      san: ["DNS:localhost", "IP Address:127.0.0.1", "IP Address:::1"],
    },
  );
  // The server sees the client's.
  checkPeercert(
    other.getExtraInfo("peercert") as TlsPeerCertificate,
    CLIENT.cert,
    {
      cn: "client",
      issuer: "aionet test CA",
      san: ["DNS:client.example"],
    },
  );

  for (const [w, serverSide] of [[writer, false], [other, true]] as const) {
    const cipher = w.getExtraInfo("cipher") as [string, string, number];
    assert.equal(cipher.length, 3);
    assert.match(
      cipher[0],
      /^TLS_(AES_(128|256)_GCM_SHA(256|384)|CHACHA20_POLY1305_SHA256)$/,
    );
    assert.equal(cipher[1], "TLSv1.3");
    assert.ok(cipher[2] === 128 || cipher[2] === 256, String(cipher[2]));
    const ssl = w.getExtraInfo("sslObject") as SslObject;
    assert.equal(ssl.serverSide, serverSide);
    assert.equal(ssl.sessionReused, false);
    assert.equal(ssl.version(), "TLSv1.3");
    assert.deepEqual(ssl.cipher(), cipher);
    // No ALPN on the server side: the client's offer was not taken.
    assert.equal(ssl.selectedAlpnProtocol(), null);
    assert.deepEqual(ssl.getPeerCert(), w.getExtraInfo("peercert"));
    assert.deepEqual(
      ssl.getPeerCert(true),
      derOf(serverSide ? CLIENT.cert : SERVER.cert),
    );
  }
  const clientSsl = writer.getExtraInfo("sslObject") as SslObject;
  assert.equal(clientSsl.serverHostname, "localhost");
  // The transport answers the same names as its writer.
  assert.equal(
    writer.transport.getExtraInfo("cipher"),
    writer.getExtraInfo("cipher"),
  );
  writer.close();
  await writer.waitClosed();
});

Deno.test("TLS info: a client without a certificate gives peercert null on the server; plaintext transports give the fallback", async () => {
  const seen = Promise.withResolvers<Transport>();
  class Keep extends Protocol {
    override connectionMade(t: Transport) {
      seen.resolve(t);
    }
  }
  await using server = await createServer(() => new Keep(), {
    hostname: "127.0.0.1",
    port: 0,
    tls: SERVER,
  });
  const [client] = await createConnection(() => new Protocol(), {
    hostname: "127.0.0.1",
    port: portOf(server.addrs[0]),
    tls: { caCerts: [CA], serverName: "localhost" },
  });
  const accepted = await within(seen.promise);
  assert.equal(accepted.getExtraInfo("peercert"), null);
  const ssl = accepted.getExtraInfo("sslObject") as SslObject;
  assert.equal(ssl.getPeerCert(), null);
  assert.equal(ssl.getPeerCert(true), null);
  assert.equal(ssl.serverHostname, "localhost");
  assert.equal(
    (client.getExtraInfo("peercert") as TlsPeerCertificate).subject.CN,
    "localhost",
  );
  client.close();
  accepted.close();

  await using plain = await createServer(() => new Protocol(), {
    hostname: "127.0.0.1",
    port: 0,
  });
  const [tcp] = await createConnection(() => new Protocol(), {
    hostname: "127.0.0.1",
    port: portOf(plain.addrs[0]),
  });
  for (const name of ["peercert", "cipher", "sslObject"]) {
    assert.equal(tcp.getExtraInfo(name), undefined);
    assert.equal(tcp.getExtraInfo(name, "none"), "none");
  }
  tcp.close();
  plain.closeClients();
});

Deno.test("TLS info: the server picks its certificate by the client's SNI (sniCerts), the default otherwise", async () => {
  // The refused names end handshakes the server reports.
  using _exceptions = captureExceptions();
  const { server } = await infoServer({
    ...SERVER,
    alpnProtocols: ["x-sni"],
    sniCerts: { "sni.example": pair("sni"), "*.sni.example": pair("sni") },
  });
  await using _server = server;
  const port = portOf(server.addrs[0]);
  const connectAs = async (serverName: string) => {
    const [, writer] = await openConnection({
      hostname: "127.0.0.1",
      port,
      tls: { caCerts: [CA], serverName, alpnProtocols: ["x-sni"] },
    });
    const cert = writer.getExtraInfo("peercert") as TlsPeerCertificate;
    const alpn = writer.getExtraInfo("alpnProtocol");
    writer.close();
    await writer.waitClosed();
    return [cert.subject.CN, alpn];
  };
  assert.deepEqual(await connectAs("sni.example"), ["sni.example", "x-sni"]);
  assert.deepEqual(await connectAs("SNI.Example"), ["sni.example", "x-sni"]);
  assert.deepEqual(await connectAs("localhost"), ["localhost", "x-sni"]);
  // "*.sni.example" matches one label, as in a certificate.
  assert.deepEqual(await connectAs("a.sni.example"), ["sni.example", "x-sni"]);
  await assert.rejects(connectAs("a.b.sni.example"), Deno.errors.InvalidData);
  // A name with no entry gets the default certificate, which does not
  // cover it: the client refuses.
  await assert.rejects(connectAs("other.example"), Deno.errors.InvalidData);
});

Deno.test("TLS info: the server's SNI name is its sslObject.serverHostname; the client's peercert is the SNI certificate", async () => {
  const { server, writer: serverWriter } = await infoServer({
    ...SERVER,
    sniCerts: { "sni.example": pair("sni") },
  });
  await using _server = server;
  const [, writer] = await openConnection({
    hostname: "127.0.0.1",
    port: portOf(server.addrs[0]),
    tls: { caCerts: [CA], serverName: "sni.example" },
  });
  const other = await within(serverWriter(0));
  assert.equal(
    (other.getExtraInfo("sslObject") as SslObject).serverHostname,
    "sni.example",
  );
  const cert = writer.getExtraInfo("peercert") as TlsPeerCertificate;
  assert.deepEqual(cert.subjectAltName, [
    "DNS:sni.example",
    "DNS:*.sni.example",
  ]);
  writer.close();
  await writer.waitClosed();
});

Deno.test("TLS info: minVersion/maxVersion decide the version, both sides; no overlap fails the handshake", async () => {
  const cases: Array<{
    server: {
      minVersion?: "TLSv1.2" | "TLSv1.3";
      maxVersion?: "TLSv1.2" | "TLSv1.3";
    };
    client: {
      minVersion?: "TLSv1.2" | "TLSv1.3";
      maxVersion?: "TLSv1.2" | "TLSv1.3";
    };
    version: string | null;
  }> = [
    { server: {}, client: {}, version: "TLSv1.3" },
    { server: { maxVersion: "TLSv1.2" }, client: {}, version: "TLSv1.2" },
    { server: {}, client: { maxVersion: "TLSv1.2" }, version: "TLSv1.2" },
    {
      server: { minVersion: "TLSv1.3" },
      client: { maxVersion: "TLSv1.2" },
      version: null,
    },
    {
      server: { maxVersion: "TLSv1.2" },
      client: { minVersion: "TLSv1.3" },
      version: null,
    },
  ];
  using exceptions = captureExceptions();
  for (const { server: serverVersions, client, version } of cases) {
    const { server } = await infoServer({ ...SERVER, ...serverVersions });
    try {
      const connecting = openConnection({
        hostname: "127.0.0.1",
        port: portOf(server.addrs[0]),
        tls: { caCerts: [CA], serverName: "localhost", ...client },
      });
      if (version === null) {
        // The server refuses the ClientHello; Deno's TLS layer sends no
        // alert over a JS stream, and the server aborts the connection: the
        // client sees its end (on the Deno backend, whose abort closes
        // with FIN), or its reset (on the native backend: abort sends RST).
        await assert.rejects(
          connecting,
          (e) =>
            BACKEND === "deno"
              ? e instanceof Deno.errors.InvalidData ||
                e instanceof Deno.errors.UnexpectedEof
              : e instanceof Deno.errors.ConnectionReset,
        );
        const report = await exceptions.next();
        assert.match(
          String((report.exception as Error).message),
          /incompatible|version/i,
        );
        continue;
      }
      const [, writer] = await connecting;
      const ssl = writer.getExtraInfo("sslObject") as SslObject;
      assert.equal(
        ssl.version(),
        version,
        JSON.stringify({ serverVersions, client }),
      );
      const cipher = writer.getExtraInfo("cipher") as [string, string, number];
      assert.equal(cipher[1], version);
      if (version === "TLSv1.2") assert.match(cipher[0], /^ECDHE-/);
      writer.close();
      await writer.waitClosed();
    } finally {
      server.close();
      server.abortClients();
      await server.waitClosed();
    }
  }
});
