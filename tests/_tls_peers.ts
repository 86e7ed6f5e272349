// The real peers of the TLS interop tests (tests/tls_interop_*_test.ts):
// which tools are installed, a test that is skipped with a message naming
// the tool when it is missing, the fixture paths for their command lines,
// and an aionet mTLS server that greets each client it serves.

import {
  type Server,
  type SslObject,
  startServer,
  type TlsPeerCertificate,
  type TlsServerOptions,
} from "../mod.ts";
import { CA, encoder, fixturePath, hasTool, SERVER } from "./_tls_helpers.ts";

export const HAS_OPENSSL = await hasTool("openssl", ["version"]);
export const HAS_CURL = await hasTool("curl", ["--version"]);
// 3.11+ for StreamWriter.start_tls.
export const HAS_PYTHON_SSL = await hasTool("python3", [
  "-c",
  "import ssl, asyncio; asyncio.StreamWriter.start_tls",
]);

/** What each tool needs, and whether it is here. */
const TOOLS = {
  openssl: { has: HAS_OPENSSL, needs: "openssl" },
  curl: { has: HAS_CURL, needs: "curl" },
  python3: { has: HAS_PYTHON_SSL, needs: "python3 (3.11+) with ssl" },
};

for (const { has, needs } of Object.values(TOOLS)) {
  if (!has) {
    console.warn(
      `TLS interop tests: ${needs} not found; its tests are skipped`,
    );
  }
}

/** Registers an interop test; skipped (named so) when `tool` is missing. */
export function interop(
  tool: keyof typeof TOOLS,
  name: string,
  fn: () => Promise<void>,
): void {
  const { has, needs } = TOOLS[tool];
  Deno.test({
    name: has
      ? `interop ${tool}: ${name}`
      : `interop ${tool}: ${name} (skipped: ${needs} not found)`,
    ignore: !has,
    fn,
  });
}

export const REQUIRED: TlsServerOptions = {
  ...SERVER,
  clientCert: "required",
  clientCaCerts: [CA],
};

/** Fixture paths for the command lines of the peers. */
export const F = {
  ca: fixturePath("ca.pem"),
  server: fixturePath("server.pem"),
  serverKey: fixturePath("server.key"),
  sni: fixturePath("sni.pem"),
  sniKey: fixturePath("sni.key"),
  cert: (name: string) => fixturePath(`${name}.pem`),
  key: (name: string) => fixturePath(`${name}.key`),
};

export const IMPOSTOR_FILES = [
  "impostor_self_signed",
  "impostor_other_ca",
  "expired_client",
  "forged_client",
];

/**
 * An aionet server with `tls` that greets each client it serves with
 * "hello <CN>" and closes; `served` lists the CNs, `versions` the TLS
 * versions, `names` the SNI names, `reused` whether sessions were resumed.
 */
export async function greeter(tls: TlsServerOptions) {
  const served: string[] = [];
  const versions: Array<string | null> = [];
  const names: Array<string | null> = [];
  const reused: boolean[] = [];
  const server = await startServer(async (reader, writer) => {
    void reader;
    const cert = writer.getExtraInfo("peercert") as TlsPeerCertificate | null;
    const ssl = writer.getExtraInfo("sslObject") as SslObject;
    const cn = String(cert?.subject.CN ?? "anonymous");
    served.push(cn);
    versions.push(ssl.version());
    names.push(ssl.serverHostname);
    reused.push(ssl.sessionReused);
    writer.write(encoder.encode(`hello ${cn}\n`));
    writer.close();
    await writer.waitClosed().catch(() => {});
  }, { hostname: "127.0.0.1", port: 0, tls });
  return { server, served, versions, names, reused };
}

export async function closeServer(server: Server): Promise<void> {
  server.close();
  server.abortClients();
  await server.waitClosed();
}

/** Client TLS options that trust the test CA and check "localhost". */
export function clientTls(extra: Record<string, unknown> = {}) {
  return { caCerts: [CA], serverName: "localhost", ...extra };
}
