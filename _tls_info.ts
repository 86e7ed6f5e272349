// What a TLS connection tells about itself after the handshake, as
// asyncio's get_extra_info(): "peercert", "cipher", "sslObject" (asyncio's
// "ssl_object"), plus aionet's "alpnProtocol". Read once from the node:tls
// socket when the handshake completes (the values stay after it closes).

import type * as NodeTls from "node:tls";
import type { X509Certificate } from "node:crypto";
import { nodeTls } from "./_node_tls.ts";

/**
 * The peer's certificate (`getExtraInfo("peercert")`), as asyncio's
 * `getpeercert()` with JavaScript types: names as attribute → value
 * objects (an attribute that occurs more than once gives an array), dates
 * as `Date`, the DER bytes in `der`.
 *
 * @example Read who the client is
 * ```ts ignore
 * import type { TlsPeerCertificate } from "@aionet/aionet/transports";
 * import type { StreamWriter } from "@aionet/aionet/streams";
 *
 * function clientName(writer: StreamWriter): string | undefined {
 *   const cert = writer.getExtraInfo("peercert") as TlsPeerCertificate | null;
 *   return cert?.subject.CN as string | undefined; // e.g. "client"
 * }
 * ```
 */
export interface TlsPeerCertificate {
  /** Subject name, e.g. `{ O: "aionet tests", CN: "client" }`. */
  readonly subject: Readonly<Record<string, string | string[]>>;
  /** Issuer name, e.g. `{ CN: "aionet test CA" }`. */
  readonly issuer: Readonly<Record<string, string | string[]>>;
  /** Subject alternative names, e.g. `["DNS:localhost", "IP Address:127.0.0.1"]`. */
  readonly subjectAltName: readonly string[];
  /** Start of the validity period. */
  readonly notBefore: Date;
  /** End of the validity period. */
  readonly notAfter: Date;
  /** Serial number, upper-case hexadecimal. */
  readonly serialNumber: string;
  /** SHA-256 fingerprint, `"AB:CD:…"`. */
  readonly fingerprint256: string;
  /** The certificate, DER-encoded. */
  readonly der: Uint8Array;
}

/**
 * `getExtraInfo("cipher")`: `[name, protocolVersion, secretBits]`, as
 * asyncio's `SSLObject.cipher()`, e.g. `["TLS_AES_256_GCM_SHA384",
 * "TLSv1.3", 256]`.
 *
 * @example Log the cipher
 * ```ts ignore
 * import type { TlsCipher, Transport } from "@aionet/aionet/transports";
 *
 * function logCipher(transport: Transport) {
 *   const [name, version, bits] = transport.getExtraInfo("cipher") as TlsCipher;
 *   console.log(`${version} ${name} (${bits} bits)`);
 * }
 * ```
 */
export type TlsCipher = readonly [
  name: string,
  protocolVersion: string,
  secretBits: number | null,
];

/**
 * `getExtraInfo("sslObject")`: the TLS session as asyncio's `SSLObject`
 * (`ssl_object`), read-only.
 *
 * @example Check the negotiated version
 * ```ts ignore
 * import type { SslObject } from "@aionet/aionet/transports";
 * import type { StreamWriter } from "@aionet/aionet/streams";
 *
 * function isTls13(writer: StreamWriter): boolean {
 *   return (writer.getExtraInfo("sslObject") as SslObject).version() === "TLSv1.3";
 * }
 * ```
 */
export interface SslObject {
  /** The protocol version, `"TLSv1.2"` or `"TLSv1.3"`. */
  version(): string | null;
  /** The cipher, as `getExtraInfo("cipher")`. */
  cipher(): TlsCipher | null;
  /**
   * The peer's certificate (`null` if it sent none); with `binaryForm`
   * the DER bytes.
   */
  getPeerCert(binaryForm?: false): TlsPeerCertificate | null;
  /** The peer's certificate as DER bytes (`null` if it sent none). */
  getPeerCert(binaryForm: true): Uint8Array | null;
  /** The ALPN protocol agreed on, or `null`. */
  selectedAlpnProtocol(): string | null;
  /** Whether this end is the TLS server. */
  readonly serverSide: boolean;
  /** Whether the handshake resumed an earlier session (asyncio's `session_reused`). */
  readonly sessionReused: boolean;
  /**
   * The server name: on a client the name checked (and sent as SNI); on a
   * server the name the client asked for by SNI, or `null`.
   */
  readonly serverHostname: string | null;
}

/** Splits Node's `"DNS:a, IP Address:1.2.3.4"` into its entries. */
function splitAltNames(text: string | undefined): string[] {
  if (text === undefined || text === "") return [];
  return text.split(/, (?=[A-Za-z][A-Za-z ]*:)/);
}

function plainName(
  name: Record<string, unknown> | undefined,
): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const [key, value] of Object.entries(name ?? {})) {
    out[key] = Array.isArray(value) ? value.map(String) : String(value);
  }
  return Object.freeze(out);
}

/** The peer certificate object of `x509`, as {@linkcode TlsPeerCertificate}. */
export function peerCertificate(x509: X509Certificate): TlsPeerCertificate {
  const legacy = x509.toLegacyObject() as unknown as {
    subject?: Record<string, unknown>;
    issuer?: Record<string, unknown>;
  };
  return Object.freeze({
    subject: plainName(legacy.subject),
    issuer: plainName(legacy.issuer),
    subjectAltName: Object.freeze(splitAltNames(x509.subjectAltName)),
    notBefore: x509.validFromDate,
    notAfter: x509.validToDate,
    serialNumber: x509.serialNumber.toUpperCase(),
    fingerprint256: x509.fingerprint256,
    der: new Uint8Array(x509.raw),
  });
}

/**
 * The certificates the peer presented, leaf first, as the TLS layer gives
 * them (`[]` when it sent none). The chain may end with CA certificates
 * the TLS layer added from its trust list; they are only candidates to a
 * chain check.
 */
export function presentedChain(socket: NodeTls.TLSSocket): X509Certificate[] {
  const chain: X509Certificate[] = [];
  let current = socket.getPeerCertificate(true) as
    | NodeTls.DetailedPeerCertificate
    | null;
  const seen = new Set<object>();
  while (
    current != null && current.raw !== undefined && !seen.has(current) &&
    chain.length < 16
  ) {
    seen.add(current);
    chain.push(new (nodeTls().crypto.X509Certificate)(current.raw));
    current = current.issuerCertificate;
  }
  return chain;
}

/**
 * The peer's leaf certificate alone, as a one-element chain (`[]` when it
 * sent none): what a client needs of the server's chain, without walking
 * the chain the TLS layer completes from every trusted root.
 */
export function peerLeaf(socket: NodeTls.TLSSocket): X509Certificate[] {
  const leaf = socket.getPeerX509Certificate();
  return leaf === undefined ? [] : [leaf];
}

/** Secret bits of a cipher suite, by its name; `null` when unknown. */
function secretBits(name: string): number | null {
  if (/AES_?256|AES256|CHACHA20/i.test(name)) return 256;
  if (/AES_?128|AES128/i.test(name)) return 128;
  return null;
}

/** Where the extra information of a TLS connection comes from. */
export interface TlsInfoSource {
  socket: NodeTls.TLSSocket;
  serverSide: boolean;
  serverHostname: string | null;
  /** The peer's certificates, leaf first (only the leaf is used). */
  chain: readonly X509Certificate[];
}

/**
 * The `getExtraInfo()` entries of a TLS transport: `"alpnProtocol"`,
 * `"peercert"`, `"cipher"`, `"compression"` (always `null`: TLS compression
 * is never negotiated, as asyncio's `None`), `"sslObject"`.
 */
export function tlsExtraInfo(source: TlsInfoSource): Record<string, unknown> {
  const { socket, serverSide, serverHostname, chain } = source;
  const alpn = socket.alpnProtocol;
  const alpnProtocol = typeof alpn === "string" ? alpn : null;
  const leaf = chain[0];
  const peercert = leaf === undefined ? null : peerCertificate(leaf);
  const der = peercert?.der ?? null;
  const version = socket.getProtocol() ?? null;
  const suite = socket.getCipher() as { name?: string } | null;
  const cipher: TlsCipher | null = suite?.name === undefined
    ? null
    : Object.freeze(
      [suite.name, version ?? "", secretBits(suite.name)] as const,
    );
  const sslObject: SslObject = Object.freeze({
    version: () => version,
    cipher: () => cipher,
    getPeerCert: ((binaryForm?: boolean) =>
      binaryForm
        ? (der === null ? null : new Uint8Array(der))
        : peercert) as SslObject["getPeerCert"],
    selectedAlpnProtocol: () =>
      alpnProtocol,
    serverSide,
    sessionReused: socket.isSessionReused(),
    serverHostname,
  });
  return { alpnProtocol, peercert, cipher, compression: null, sslObject };
}
