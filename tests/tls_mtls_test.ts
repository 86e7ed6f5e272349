// Client certificates, server side: `clientCert: "required"` serves the
// real client (whose peercert.subject.CN the server reads) and refuses
// every impostor — no certificate, self-signed with the same subject,
// signed by another CA, expired, wrong purpose — before the protocol sees
// a byte: the protocol factory (or the startServer callback, or the code
// after startTls) never runs for them. On TCP and Unix sockets, Streams and
// Protocol, direct TLS and STARTTLS, TLS 1.2 and 1.3.

import assert from "node:assert/strict";
import {
  createConnection,
  createServer,
  createUnixServer,
  openConnection,
  openUnixConnection,
  Protocol,
  type Server,
  startServer,
  startTls,
  startUnixServer,
  type StreamReader,
  type StreamWriter,
  type TlsPeerCertificate,
  type TlsServerOptions,
  type Transport,
} from "../mod.ts";
import {
  BAD_CLIENTS,
  CA,
  captureExceptions,
  CLIENT,
  decoder,
  encoder,
  IMPOSTORS,
  OTHER_CA,
  pair,
  portOf,
  SERVER,
  within,
} from "./_tls_helpers.ts";

const REQUIRED: TlsServerOptions = {
  ...SERVER,
  clientCert: "required",
  clientCaCerts: [CA],
};

type Kind =
  | "createServer"
  | "startServer"
  | "createUnixServer"
  | "startUnixServer"
  | "startTls (Protocol, STARTTLS)"
  | "StreamWriter.startTls (STARTTLS)"
  | "StreamWriter.startTls (STARTTLS, Unix)";

const KINDS: Kind[] = [
  "createServer",
  "startServer",
  "createUnixServer",
  "startUnixServer",
  "startTls (Protocol, STARTTLS)",
  "StreamWriter.startTls (STARTTLS)",
  "StreamWriter.startTls (STARTTLS, Unix)",
];

/** What the server saw: who was served, by the CN it read. */
interface Served {
  names: string[];
  /** Failed upgrades (STARTTLS kinds: startTls rejected). */
  refusals: unknown[];
}

function greeting(peercert: unknown): Uint8Array {
  const cert = peercert as TlsPeerCertificate | null;
  return encoder.encode(`hello ${cert?.subject.CN ?? "anonymous"}\n`);
}

/** The protocol of the Protocol kinds: greets with the client's CN, closes. */
class Greeter extends Protocol {
  constructor(readonly served: Served) {
    super();
  }
  override connectionMade(transport: Transport): void {
    const peercert = transport.getExtraInfo("peercert");
    this.served.names.push(
      (peercert as TlsPeerCertificate | null)?.subject.CN as string ??
        "anonymous",
    );
    transport.write(greeting(peercert));
    transport.close();
  }
}

/** The STARTTLS server protocol: on "STARTTLS\n", upgrades with `tls`. */
class StartTlsGreeter extends Protocol {
  #plain?: Transport;
  #upgrading = false;
  constructor(readonly served: Served, readonly tls: TlsServerOptions) {
    super();
  }
  override connectionMade(transport: Transport): void {
    this.#plain = transport;
  }
  override dataReceived(data: Uint8Array): void {
    if (this.#upgrading) {
      throw new Error(`plaintext after STARTTLS: ${decoder.decode(data)}`);
    }
    this.#upgrading = true;
    this.#plain!.write(encoder.encode("go\n"));
    startTls(this.#plain!, this, { ...this.tls, serverSide: true }).then(
      (secure) => {
        const peercert = secure.getExtraInfo("peercert");
        this.served.names.push(
          (peercert as TlsPeerCertificate | null)?.subject.CN as string ??
            "anonymous",
        );
        secure.write(greeting(peercert));
        secure.close();
      },
      (error) => this.served.refusals.push(error),
    );
  }
}

async function streamHandler(
  served: Served,
  reader: StreamReader,
  writer: StreamWriter,
): Promise<void> {
  // Runs only for a client that passed.
  void reader;
  const peercert = writer.getExtraInfo("peercert");
  served.names.push(
    (peercert as TlsPeerCertificate | null)?.subject.CN as string ??
      "anonymous",
  );
  writer.write(greeting(peercert));
  writer.close();
  await writer.waitClosed();
}

async function startKind(
  kind: Kind,
  tls: TlsServerOptions,
  served: Served,
  path: string,
): Promise<Server> {
  const tcp = { hostname: "127.0.0.1", port: 0 };
  switch (kind) {
    case "createServer":
      return await createServer(() => new Greeter(served), { ...tcp, tls });
    case "startServer":
      return await startServer((r, w) => streamHandler(served, r, w), {
        ...tcp,
        tls,
      });
    case "createUnixServer":
      return await createUnixServer(() => new Greeter(served), { path, tls });
    case "startUnixServer":
      return await startUnixServer((r, w) => streamHandler(served, r, w), {
        path,
        tls,
      });
    case "startTls (Protocol, STARTTLS)":
      return await createServer(() => new StartTlsGreeter(served, tls), tcp);
    case "StreamWriter.startTls (STARTTLS)":
    case "StreamWriter.startTls (STARTTLS, Unix)": {
      const handler = async (reader: StreamReader, writer: StreamWriter) => {
        await reader.readLine();
        writer.write(encoder.encode("go\n"));
        try {
          await writer.startTls({ ...tls, serverSide: true });
        } catch (error) {
          served.refusals.push(error);
          return;
        }
        await streamHandler(served, reader, writer);
      };
      return kind.endsWith("Unix)")
        ? await startUnixServer(handler, { path })
        : await startServer(handler, tcp);
    }
  }
}

/**
 * Connects as a client with `cert` (or none) and returns what it got: the
 * greeting, or "refused" when the call or the first read failed or ended
 * without a byte.
 */
async function tryClient(
  kind: Kind,
  server: Server,
  path: string,
  client: { cert?: string; key?: string },
  extra: { maxVersion?: "TLSv1.2" | "TLSv1.3" } = {},
): Promise<string> {
  const tls = {
    caCerts: [CA],
    serverName: "localhost",
    ...extra,
    ...(client.cert === undefined
      ? {}
      : { cert: client.cert, key: client.key }),
  };
  let reader: StreamReader;
  let writer: StreamWriter;
  try {
    if (kind === "createUnixServer" || kind === "startUnixServer") {
      [reader, writer] = await openUnixConnection({ path, tls });
    } else if (kind.includes("STARTTLS")) {
      [reader, writer] = kind.endsWith("Unix)")
        ? await openUnixConnection({ path })
        : await openConnection({
          hostname: "127.0.0.1",
          port: portOf(server.addrs[0]),
        });
      writer.write(encoder.encode("STARTTLS\n"));
      await within(reader.readLine());
      try {
        await within(writer.startTls(tls));
      } catch {
        await writer.waitClosed().catch(() => {});
        return "refused";
      }
    } else {
      [reader, writer] = await openConnection({
        hostname: "127.0.0.1",
        port: portOf(server.addrs[0]),
        tls,
      });
    }
  } catch {
    return "refused";
  }
  try {
    const data = await within(reader.read(-1));
    return data.length === 0 ? "refused" : decoder.decode(data);
  } catch {
    return "refused";
  } finally {
    writer.close();
    await writer.waitClosed().catch(() => {});
  }
}

for (const kind of KINDS) {
  for (const version of ["TLSv1.3", "TLSv1.2"] as const) {
    Deno.test(`mTLS ${kind}, ${version}: clientCert "required" refuses the impostors before the protocol runs and serves the real client`, async () => {
      using exceptions = captureExceptions();
      const dir = await Deno.makeTempDir();
      const served: Served = { names: [], refusals: [] };
      const path = `${dir}/mtls.sock`;
      try {
        const server = await startKind(kind, REQUIRED, served, path);
        try {
          for (const impostor of [...IMPOSTORS, ...BAD_CLIENTS]) {
            const got = await tryClient(kind, server, path, impostor, {
              maxVersion: version,
            });
            assert.equal(got, "refused", impostor.name);
            assert.deepEqual(served.names, [], impostor.name);
          }
          const got = await tryClient(kind, server, path, CLIENT, {
            maxVersion: version,
          });
          assert.equal(got, "hello client\n");
          assert.deepEqual(served.names, ["client"]);
        } finally {
          server.close();
          server.abortClients();
          await server.waitClosed();
        }
        const refused = IMPOSTORS.length + BAD_CLIENTS.length;
        if (kind.includes("STARTTLS")) {
          assert.equal(served.refusals.length, refused);
          for (const error of served.refusals) {
            assert.ok(error instanceof Deno.errors.InvalidData, String(error));
          }
        } else {
          // Each refusal went to the exception handler, none was served.
          const reports = exceptions.seen.filter((c) =>
            c.message === "Error while setting up an accepted connection"
          );
          assert.equal(reports.length, refused);
          for (const { exception } of reports) {
            assert.ok(
              exception instanceof Deno.errors.InvalidData,
              String(exception),
            );
          }
        }
      } finally {
        await Deno.remove(dir, { recursive: true });
      }
    });
  }
}

Deno.test("mTLS: the refusal says why (no certificate, untrusted issuer, expired, purpose)", async () => {
  using exceptions = captureExceptions();
  await using server = await createServer(() => new Protocol(), {
    hostname: "127.0.0.1",
    port: 0,
    tls: REQUIRED,
  });
  const expected: Array<[{ cert?: string; key?: string }, RegExp]> = [
    [{}, /certificate/i],
    [pair("impostor_self_signed"), /not trusted|untrusted|issuer/i],
    [pair("impostor_other_ca"), /not trusted|untrusted|issuer/i],
    [pair("expired_client"), /expired|not valid/i],
    // Only the TLS layer reads extendedKeyUsage (see _tls_verify.ts).
    [pair("server_only_client"), /TLS layer/],
  ];
  for (const [client, pattern] of expected) {
    assert.equal(
      await tryClient("createServer", server, "", client),
      "refused",
    );
    const context = await exceptions.next();
    assert.ok(context.exception instanceof Deno.errors.InvalidData);
    assert.match((context.exception as Error).message, pattern);
  }
});

Deno.test('mTLS: clientCert "optional" serves a client without a certificate (peercert null) and still refuses a bad one', async () => {
  using _exceptions = captureExceptions();
  const served: Served = { names: [], refusals: [] };
  await using server = await createServer(() => new Greeter(served), {
    hostname: "127.0.0.1",
    port: 0,
    tls: { ...SERVER, clientCert: "optional", clientCaCerts: [CA] },
  });
  assert.equal(
    await tryClient("createServer", server, "", {}),
    "hello anonymous\n",
  );
  assert.equal(
    await tryClient("createServer", server, "", CLIENT),
    "hello client\n",
  );
  for (const impostor of IMPOSTORS.slice(1)) {
    assert.equal(
      await tryClient("createServer", server, "", impostor),
      "refused",
      impostor.name,
    );
  }
  assert.deepEqual(served.names, ["anonymous", "client"]);
});

Deno.test("mTLS: a client certificate through an intermediate the client sends is served; the chain is checked link by link", async () => {
  using _exceptions = captureExceptions();
  const served: Served = { names: [], refusals: [] };
  await using server = await createServer(() => new Greeter(served), {
    hostname: "127.0.0.1",
    port: 0,
    tls: REQUIRED,
  });
  assert.equal(
    await tryClient("createServer", server, "", pair("chained_client")),
    "hello chained-client\n",
  );
  // Trusting only the other CA: the same chain is refused.
  await using other = await createServer(() => new Greeter(served), {
    hostname: "127.0.0.1",
    port: 0,
    tls: { ...REQUIRED, clientCaCerts: [OTHER_CA] },
  });
  assert.equal(
    await tryClient("createServer", other, "", pair("chained_client")),
    "refused",
  );
  assert.equal(await tryClient("createServer", other, "", CLIENT), "refused");
  // Trusting the other CA too: its client is served by that server.
  await using both = await createServer(() => new Greeter(served), {
    hostname: "127.0.0.1",
    port: 0,
    tls: { ...REQUIRED, clientCaCerts: [OTHER_CA, CA] },
  });
  assert.equal(
    await tryClient("createServer", both, "", pair("impostor_other_ca")),
    "hello client\n",
  );
  assert.deepEqual(served.names, ["chained-client", "client"]);
});

Deno.test("mTLS: without clientCert the server asks for no certificate; a client that sends one anyway is served with peercert null", async () => {
  const served: Served = { names: [], refusals: [] };
  await using server = await createServer(() => new Greeter(served), {
    hostname: "127.0.0.1",
    port: 0,
    tls: SERVER,
  });
  assert.equal(
    await tryClient("createServer", server, "", CLIENT),
    "hello anonymous\n",
  );
});

Deno.test("mTLS: a client connection with a certificate sees the server's peercert; the server sees the client's", async () => {
  const seen = Promise.withResolvers<unknown>();
  await using server = await startServer(async (reader, writer) => {
    seen.resolve(writer.getExtraInfo("peercert"));
    writer.write(await reader.readLine());
    writer.close();
  }, { hostname: "127.0.0.1", port: 0, tls: REQUIRED });
  const [reader, writer] = await createConnectionStreams(
    portOf(server.addrs[0]),
  );
  const serverCert = writer.getExtraInfo("peercert") as TlsPeerCertificate;
  assert.equal(serverCert.subject.CN, "localhost");
  assert.equal(serverCert.issuer.CN, "aionet test CA");
  writer.write(encoder.encode("ping\n"));
  assert.equal(decoder.decode(await within(reader.readLine())), "ping\n");
  const clientCert = (await within(seen.promise)) as TlsPeerCertificate;
  assert.equal(clientCert.subject.CN, "client");
  assert.equal(clientCert.subject.O, "aionet tests");
  assert.deepEqual(clientCert.subjectAltName, ["DNS:client.example"]);
  writer.close();
  await writer.waitClosed();
});

async function createConnectionStreams(port: number) {
  return await openConnection({
    hostname: "127.0.0.1",
    port,
    tls: { caCerts: [CA], serverName: "localhost", ...CLIENT },
  });
}

Deno.test("mTLS: a Protocol client made with createConnection sends its certificate", async () => {
  const served: Served = { names: [], refusals: [] };
  await using server = await createServer(() => new Greeter(served), {
    hostname: "127.0.0.1",
    port: 0,
    tls: REQUIRED,
  });
  const got = Promise.withResolvers<string>();
  let text = "";
  class Reader extends Protocol {
    override dataReceived(data: Uint8Array) {
      text += decoder.decode(data);
    }
    override connectionLost() {
      got.resolve(text);
    }
  }
  await createConnection(() => new Reader(), {
    hostname: "127.0.0.1",
    port: portOf(server.addrs[0]),
    tls: { caCerts: [CA], serverName: "localhost", ...CLIENT },
  });
  assert.equal(await within(got.promise), "hello client\n");
});
