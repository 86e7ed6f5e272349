// Every TLS option is checked at the call: an unknown or misspelled one is
// a TypeError naming it, on the client and on the server (createServer,
// startServer, the Unix variants, server-side startTls), so that an option
// meant to make a server check its clients is never silently dropped.

// deno-lint-ignore-file no-explicit-any
import assert from "node:assert/strict";
import {
  createConnection,
  createServer,
  createUnixConnection,
  createUnixServer,
  openConnection,
  Protocol,
  startServer,
  startTls,
  startUnixServer,
} from "../mod.ts";
import { CA, CLIENT, pair, SERVER, within } from "./_tls_helpers.ts";

/** Options of other TLS stacks (node:tls, Deno, Python) and misspellings. */
const UNKNOWN_SERVER: Array<[Record<string, unknown>, RegExp]> = [
  [{ requestCert: true }, /"requestCert"/],
  [{ rejectUnauthorized: true }, /"rejectUnauthorized"/],
  [{ ca: [CA] }, /"ca"/],
  [{ clientcert: "required" }, /"clientcert" \(did you mean "clientCert"\?\)/],
  [{ clientCaCert: [CA] }, /"clientCaCert" \(did you mean "clientCaCerts"\?\)/],
  [{ verifyMode: "CERT_REQUIRED" }, /"verifyMode"/],
  [{ sniCert: {} }, /"sniCert" \(did you mean "sniCerts"\?\)/],
  [{ minversion: "TLSv1.3" }, /"minversion" \(did you mean "minVersion"\?\)/],
  [{ caCerts: [CA] }, /"caCerts"/],
  [{ serverName: "localhost" }, /"serverName"/],
];

const UNKNOWN_CLIENT: Array<[Record<string, unknown>, RegExp]> = [
  [{ servername: "localhost" }, /"servername" \(did you mean "serverName"\?\)/],
  [{ certs: CLIENT.cert }, /"certs" \(did you mean "cert"\?\)/],
  [{ rejectUnauthorized: false }, /"rejectUnauthorized"/],
  [{ maxversion: "TLSv1.2" }, /"maxversion" \(did you mean "maxVersion"\?\)/],
  [{ clientCert: "required" }, /"clientCert"/],
  [{ sniCerts: {} }, /"sniCerts"/],
];

Deno.test("TLS options: every entry point of a server refuses an unknown or misspelled TLS option, naming it", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/never.sock`;
    for (const [extra, name] of UNKNOWN_SERVER) {
      const tls = { ...SERVER, ...extra } as any;
      const what = JSON.stringify(Object.keys(extra));
      await assert.rejects(
        createServer(() => new Protocol(), {
          hostname: "127.0.0.1",
          port: 0,
          tls,
        }),
        (e: Error) => e instanceof TypeError && name.test(e.message),
        `createServer ${what}`,
      );
      await assert.rejects(
        startServer(() => {}, { hostname: "127.0.0.1", port: 0, tls }),
        (e: Error) => e instanceof TypeError && name.test(e.message),
        `startServer ${what}`,
      );
      await assert.rejects(
        createUnixServer(() => new Protocol(), { path, tls }),
        (e: Error) => e instanceof TypeError && name.test(e.message),
        `createUnixServer ${what}`,
      );
      await assert.rejects(
        startUnixServer(() => {}, { path, tls }),
        (e: Error) => e instanceof TypeError && name.test(e.message),
        `startUnixServer ${what}`,
      );
    }
    // Nothing was left listening.
    await assert.rejects(Deno.lstat(path), Deno.errors.NotFound);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("TLS options: server-side startTls (transport and StreamWriter) refuses unknown options before any handshake", async () => {
  const results: Array<Promise<void>> = [];
  await using server = await startServer((_reader, writer) => {
    results.push((async () => {
      for (const [extra, name] of UNKNOWN_SERVER) {
        await assert.rejects(
          writer.startTls({ ...SERVER, ...extra, serverSide: true } as any),
          (e: Error) => e instanceof TypeError && name.test(e.message),
          `StreamWriter.startTls ${JSON.stringify(extra)}`,
        );
        await assert.rejects(
          startTls(
            writer.transport,
            new Protocol(),
            { ...SERVER, ...extra, serverSide: true } as any,
          ),
          (e: Error) => e instanceof TypeError && name.test(e.message),
          `startTls ${JSON.stringify(extra)}`,
        );
      }
      writer.close();
    })());
  }, { hostname: "127.0.0.1", port: 0 });
  const [reader, writer] = await openConnection({
    hostname: "127.0.0.1",
    port: (server.addrs[0] as Deno.NetAddr).port,
  });
  // The server closes once every check ran; no TLS byte was expected.
  assert.equal((await within(reader.read(-1))).length, 0);
  await Promise.all(results);
  writer.close();
  await writer.waitClosed();
});

Deno.test("TLS options: every client entry point refuses an unknown or misspelled TLS option, naming it", async () => {
  const dir = await Deno.makeTempDir();
  try {
    for (const [extra, name] of UNKNOWN_CLIENT) {
      const tls = { caCerts: [CA], serverName: "localhost", ...extra } as any;
      const check = (e: Error) =>
        e instanceof TypeError && name.test(e.message);
      await assert.rejects(
        createConnection(() => new Protocol(), { port: 1, tls }),
        check,
      );
      await assert.rejects(openConnection({ port: 1, tls }), check);
      await assert.rejects(
        createUnixConnection(() => new Protocol(), {
          path: `${dir}/none.sock`,
          tls,
        }),
        check,
      );
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("TLS options: values are checked at the call", async () => {
  const listen = (tls: unknown) =>
    createServer(() => new Protocol(), {
      hostname: "127.0.0.1",
      port: 0,
      tls: tls as any,
    });
  const connect = (tls: unknown) =>
    createConnection(() => new Protocol(), { port: 1, tls: tls as any });
  const cases: Array<[string, () => Promise<unknown>, unknown, RegExp?]> = [
    [
      'clientCert: "maybe"',
      () => listen({ ...SERVER, clientCert: "maybe", clientCaCerts: [CA] }),
      TypeError,
      /clientCert/,
    ],
    [
      'clientCert: "required" without clientCaCerts',
      () => listen({ ...SERVER, clientCert: "required" }),
      TypeError,
      /clientCaCerts/,
    ],
    [
      'clientCert: "optional" with clientCaCerts: []',
      () => listen({ ...SERVER, clientCert: "optional", clientCaCerts: [] }),
      TypeError,
      /clientCaCerts/,
    ],
    [
      "clientCaCerts without clientCert (would be ignored)",
      () => listen({ ...SERVER, clientCaCerts: [CA] }),
      TypeError,
      /clientCert/,
    ],
    [
      'clientCaCerts with clientCert: "none" (would be ignored)',
      () => listen({ ...SERVER, clientCert: "none", clientCaCerts: [CA] }),
      TypeError,
      /clientCert/,
    ],
    [
      "clientCaCerts: not PEM",
      () =>
        listen({
          ...SERVER,
          clientCert: "required",
          clientCaCerts: ["garbage"],
        }),
      Deno.errors.InvalidData,
      /clientCaCerts/,
    ],
    [
      "clientCaCerts: a string, not an array",
      () => listen({ ...SERVER, clientCert: "required", clientCaCerts: CA }),
      TypeError,
      /clientCaCerts/,
    ],
    [
      'minVersion: "TLSv1.1"',
      () => listen({ ...SERVER, minVersion: "TLSv1.1" }),
      TypeError,
      /minVersion/,
    ],
    [
      "minVersion above maxVersion (server)",
      () => listen({ ...SERVER, minVersion: "TLSv1.3", maxVersion: "TLSv1.2" }),
      RangeError,
      /minVersion/,
    ],
    [
      "minVersion above maxVersion (client)",
      () => connect({ minVersion: "TLSv1.3", maxVersion: "TLSv1.2" }),
      RangeError,
      /minVersion/,
    ],
    [
      'maxVersion: "TLSv1.4" (client)',
      () => connect({ maxVersion: "TLSv1.4" }),
      TypeError,
      /maxVersion/,
    ],
    [
      "client cert without key",
      () => connect({ cert: CLIENT.cert }),
      TypeError,
      /key/,
    ],
    [
      "client key without cert",
      () => connect({ key: CLIENT.key }),
      TypeError,
      /cert/,
    ],
    [
      "client cert and key that do not match",
      () => connect({ cert: CLIENT.cert, key: SERVER.key }),
      Deno.errors.InvalidData,
      /match/,
    ],
    [
      "server cert and key that do not match",
      () => listen({ cert: SERVER.cert, key: CLIENT.key }),
      Deno.errors.InvalidData,
      /match/,
    ],
    [
      "sniCerts: not an object",
      () => listen({ ...SERVER, sniCerts: "sni.example" }),
      TypeError,
      /sniCerts/,
    ],
    [
      "sniCerts entry without key",
      () => listen({ ...SERVER, sniCerts: { "sni.example": { cert: CA } } }),
      TypeError,
      /sniCerts/,
    ],
    [
      "sniCerts entry with an unknown option",
      () =>
        listen({
          ...SERVER,
          sniCerts: { "sni.example": { ...pair("sni"), ca: CA } },
        }),
      TypeError,
      /"ca"/,
    ],
    [
      "sniCerts entry whose key does not match",
      () =>
        listen({
          ...SERVER,
          sniCerts: {
            "sni.example": { cert: pair("sni").cert, key: CLIENT.key },
          },
        }),
      Deno.errors.InvalidData,
      /sni\.example/,
    ],
    [
      "sniCerts with an empty name",
      () => listen({ ...SERVER, sniCerts: { "": pair("sni") } }),
      TypeError,
      /sniCerts/,
    ],
  ];
  for (const [what, call, error, message] of cases) {
    await assert.rejects(
      call(),
      (e: Error) =>
        e instanceof (error as typeof Error) &&
        (message === undefined || message.test(e.message)),
      what,
    );
  }
});

Deno.test("TLS options: startTls refuses an option of the other side", async () => {
  await using server = await startServer(async (reader, writer) => {
    await reader.read(-1);
    writer.close();
  }, { hostname: "127.0.0.1", port: 0 });
  const [, writer] = await openConnection({
    hostname: "127.0.0.1",
    port: (server.addrs[0] as Deno.NetAddr).port,
  });
  try {
    await assert.rejects(
      writer.startTls(
        { serverName: "localhost", clientCert: "required" } as any,
      ),
      (e: Error) => e instanceof TypeError && /"clientCert"/.test(e.message),
    );
    await assert.rejects(
      writer.startTls({ ...SERVER, serverSide: true, serverName: "x" } as any),
      (e: Error) => e instanceof TypeError && /"serverName"/.test(e.message),
    );
    await assert.rejects(
      writer.startTls({ ...SERVER, serverSide: true, caCerts: [CA] } as any),
      (e: Error) => e instanceof TypeError && /"caCerts"/.test(e.message),
    );
    // Nothing was started: the connection is still plaintext and open.
    assert.equal(writer.isClosing(), false);
  } finally {
    writer.close();
    await writer.waitClosed();
  }
});

Deno.test("TLS options: a Unix sock without serverName is refused and closed, not left open", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/tls.sock`;
    using listener = Deno.listen({ transport: "unix", path });
    const accepting = listener.accept();
    const conn = await Deno.connect({ transport: "unix", path });
    using peer = await accepting;
    await assert.rejects(
      () =>
        createConnection(() => new Protocol(), {
          sock: conn,
          tls: { caCerts: [CA] },
        }),
      (error: unknown) =>
        error instanceof TypeError && /serverName/.test(String(error)),
    );
    // The wrapped connection was closed: the peer reads EOF.
    assert.equal(await within(peer.read(new Uint8Array(16))), null);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("TLS options: caCerts replace the default roots (CPython's cadata), and without them the default store decides", async () => {
  // A child process whose default store is the system's
  // (DENO_TLS_CA_STORE=system), with the system's CA file pointed at the
  // test CA (SSL_CERT_FILE): the server's certificate is trusted by the
  // default store alone. Given caCerts of another CA, the client refuses
  // it: caCerts are the whole trust, as `ssl.create_default_context(
  // cadata=…)`. (Until this change they were added to Node's bundled
  // roots, which cost 17 ms per connection: bench/tls_handshake_costs.ts.)
  const fixtures = new URL("./fixtures/mtls/", import.meta.url).pathname;
  const script = `
    import { openConnection, startServer } from ${
    JSON.stringify(new URL("../mod.ts", import.meta.url).href)
  };
    const read = (name) => Deno.readTextFileSync(${
    JSON.stringify(fixtures)
  } + name);
    const server = await startServer(async (reader, writer) => {
      await reader.read(10).catch(() => {});
      writer.close();
    }, { hostname: "127.0.0.1", port: 0,
         tls: { cert: read("server.pem"), key: read("server.key") } });
    const port = server.addrs[0].port;
    const results = [];
    for (const tls of [{ serverName: "localhost" },
        { serverName: "localhost", caCerts: [read("other_ca.pem")] }]) {
      try {
        const [, writer] = await openConnection({ hostname: "127.0.0.1", port, tls });
        writer.close();
        await writer.waitClosed().catch(() => {});
        results.push("trusted");
      } catch (error) {
        results.push(error.name);
      }
    }
    server.close();
    await server.waitClosed();
    console.log(JSON.stringify(results));
  `;
  const output = await within(
    new Deno.Command(Deno.execPath(), {
      args: ["eval", "--ext=js", script],
      env: {
        DENO_TLS_CA_STORE: "system",
        SSL_CERT_FILE: `${fixtures}ca.pem`,
      },
      stdout: "piped",
      stderr: "piped",
    }).output(),
    30_000,
  );
  const stderr = new TextDecoder().decode(output.stderr);
  assert.ok(output.success, stderr);
  assert.deepEqual(
    JSON.parse(new TextDecoder().decode(output.stdout)),
    ["trusted", "InvalidData"],
    stderr,
  );
});
