// TLS options: the public option types (re-exported by transports.ts) and
// their checks. Every option is checked at the call: an unknown or
// misspelled one is a TypeError naming it, a value of the wrong type a
// TypeError, a PEM that does not parse (or a key that does not match its
// certificate) Deno.errors.InvalidData, as asyncio's load_cert_chain()
// fails at once and not at every handshake later.

import type { createPrivateKey, X509Certificate } from "node:crypto";
import { nodeTls } from "./_node_tls.ts";
import {
  checkKnownOptions,
  checkNumber,
  checkOptions,
  checkSignal,
  checkString,
  describe,
} from "./_validate.ts";
import { parseCertificates } from "./_tls_verify.ts";

/** asyncio's default TLS handshake time limit (60 s). */
export const DEFAULT_HANDSHAKE_TIMEOUT = 60_000;

/**
 * A TLS protocol version for `minVersion`/`maxVersion`. Deno's TLS stack
 * (rustls) speaks TLS 1.2 and 1.3 only.
 *
 * @example Require TLS 1.3
 * ```ts
 * import type { TlsVersion } from "@aionet/aionet/transports";
 *
 * const minVersion: TlsVersion = "TLSv1.3";
 * console.log({ tls: { minVersion } });
 * ```
 */
export type TlsVersion = "TLSv1.2" | "TLSv1.3";

/**
 * Whether a TLS server asks its clients for a certificate, as asyncio's
 * `verify_mode` on a server context: `"none"` (CERT_NONE, the default: no
 * certificate is asked for), `"optional"` (CERT_OPTIONAL: asked for; a
 * client without one is served, a client whose certificate does not chain
 * to `clientCaCerts` is refused) or `"required"` (CERT_REQUIRED: a client
 * without a trusted certificate is refused).
 *
 * @example Mutual TLS
 * ```ts
 * import type { ClientCertMode } from "@aionet/aionet/transports";
 *
 * const clientCert: ClientCertMode = "required";
 * console.log(clientCert);
 * ```
 */
export type ClientCertMode = "none" | "optional" | "required";

/**
 * A certificate chain and its private key, both PEM (asyncio's
 * `load_cert_chain(certfile, keyfile)`): the chain starts with the leaf
 * certificate, followed by the intermediates to send.
 *
 * @example One entry of `sniCerts`
 * ```ts
 * import type { TlsKeyPair } from "@aionet/aionet/transports";
 *
 * const pair: TlsKeyPair = {
 *   cert: "-----BEGIN CERTIFICATE-----\n…",
 *   key: "-----BEGIN PRIVATE KEY-----\n…",
 * };
 * console.log(Object.keys(pair));
 * ```
 */
export interface TlsKeyPair {
  /** Certificate chain, PEM (leaf first). */
  cert: string;
  /** Private key of the leaf certificate, PEM. */
  key: string;
}

/**
 * Client TLS options (`tls` of `createConnection`, `openConnection` and
 * the Unix variants). The server's certificate is always verified (against
 * `caCerts` when given, else Deno's default roots) and its name checked: no
 * option turns that off, and an unknown option is a `TypeError`.
 *
 * @example Connect with a client certificate (mutual TLS)
 * ```ts ignore
 * import { openConnection } from "@aionet/aionet/streams";
 *
 * const [reader, writer] = await openConnection({
 *   hostname: "127.0.0.1",
 *   port: 8443,
 *   tls: {
 *     caCerts: [await Deno.readTextFile("ca.pem")],
 *     serverName: "localhost",
 *     cert: await Deno.readTextFile("client.pem"),
 *     key: await Deno.readTextFile("client.key"),
 *     minVersion: "TLSv1.3",
 *   },
 * });
 * ```
 */
export interface TlsClientOptions {
  /**
   * The CA certificates (PEM) to trust instead of Deno's default roots, as
   * CPython's `create_default_context(cadata=…)`.
   */
  caCerts?: string[];
  /** The name to check the certificate against (asyncio's `server_hostname`); also sent as SNI. */
  serverName?: string;
  /** ALPN protocols to offer. */
  alpnProtocols?: string[];
  /** Handshake time limit in ms (default 60 000). */
  handshakeTimeout?: number;
  /** Client certificate chain, PEM, sent when the server asks (needs `key`). */
  cert?: string;
  /** Private key of `cert`, PEM. */
  key?: string;
  /** Lowest TLS version to accept (default `"TLSv1.2"`). */
  minVersion?: TlsVersion;
  /** Highest TLS version to offer (default `"TLSv1.3"`). */
  maxVersion?: TlsVersion;
}

/**
 * Server TLS options (`tls` of `createServer`, `startServer` and the Unix
 * variants). With `clientCert: "required"` only clients whose certificate
 * chains to one of `clientCaCerts` are served; the others are refused
 * before the protocol factory runs. An unknown option is a `TypeError`.
 *
 * @example A server that requires client certificates
 * ```ts ignore
 * import { startServer } from "@aionet/aionet/streams";
 * import type { TlsPeerCertificate } from "@aionet/aionet/transports";
 *
 * await using server = await startServer((reader, writer) => {
 *   const peer = writer.getExtraInfo("peercert") as TlsPeerCertificate;
 *   writer.write(new TextEncoder().encode(`hello ${peer.subject.CN}\n`));
 *   writer.close();
 * }, {
 *   hostname: "127.0.0.1",
 *   port: 8443,
 *   tls: {
 *     cert: await Deno.readTextFile("server.pem"),
 *     key: await Deno.readTextFile("server.key"),
 *     clientCert: "required",
 *     clientCaCerts: [await Deno.readTextFile("ca.pem")],
 *   },
 * });
 * ```
 */
export interface TlsServerOptions {
  /** Certificate chain, PEM (the default when `sniCerts` has no match). */
  cert: string;
  /** Private key, PEM. */
  key: string;
  /** ALPN protocols to accept. */
  alpnProtocols?: string[];
  /** Handshake time limit in ms (default 60 000). */
  handshakeTimeout?: number;
  /** Whether to ask clients for a certificate (default `"none"`). */
  clientCert?: ClientCertMode;
  /**
   * The CA certificates (PEM) a client certificate must chain to; required
   * unless `clientCert` is `"none"` (and refused then, as it would be
   * ignored).
   */
  clientCaCerts?: string[];
  /**
   * Certificates chosen by the name the client asks for (SNI): exact names
   * (case-insensitive) or `"*.example.com"` for one label. Other names, and
   * clients that send no name, get `cert`/`key`.
   */
  sniCerts?: Record<string, TlsKeyPair>;
  /** Lowest TLS version to accept (default `"TLSv1.2"`). */
  minVersion?: TlsVersion;
  /** Highest TLS version to accept (default `"TLSv1.3"`). */
  maxVersion?: TlsVersion;
}

/**
 * Options of `startTls` and `StreamWriter.startTls`: the client options,
 * or with `serverSide: true` the server options, plus `signal`. An option
 * of the other side is a `TypeError` (it would be ignored).
 *
 * @example STARTTLS on the server side with client certificates
 * ```ts ignore
 * import type { StartTlsOptions } from "@aionet/aionet/transports";
 *
 * const options: StartTlsOptions = {
 *   serverSide: true,
 *   cert: await Deno.readTextFile("server.pem"),
 *   key: await Deno.readTextFile("server.key"),
 *   clientCert: "required",
 *   clientCaCerts: [await Deno.readTextFile("ca.pem")],
 *   signal: AbortSignal.timeout(10_000),
 * };
 * ```
 */
export interface StartTlsOptions {
  /** Act as the TLS server (needs `cert` and `key`). Default `false`. */
  serverSide?: boolean;
  /** Client: the name to check the certificate against (default: the peer's IP). */
  serverName?: string;
  /** Client: the CA certificates (PEM) to trust instead of the default roots. */
  caCerts?: string[];
  /** Server: certificate chain, PEM; client: the client certificate chain. */
  cert?: string;
  /** Private key of `cert`, PEM. */
  key?: string;
  /** ALPN protocols to offer (client) or accept (server). */
  alpnProtocols?: string[];
  /** Handshake time limit in ms (default 60 000). */
  handshakeTimeout?: number;
  /** Server: whether to ask the client for a certificate (default `"none"`). */
  clientCert?: ClientCertMode;
  /** Server: the CAs a client certificate must chain to. */
  clientCaCerts?: string[];
  /** Server: certificates chosen by the client's SNI name. */
  sniCerts?: Record<string, TlsKeyPair>;
  /** Lowest TLS version (default `"TLSv1.2"`). */
  minVersion?: TlsVersion;
  /** Highest TLS version (default `"TLSv1.3"`). */
  maxVersion?: TlsVersion;
  /** Cancels the handshake: the call rejects with the reason, the transport is closed. */
  signal?: AbortSignal;
}

/** Client TLS settings after checking. */
export interface ClientTlsSettings {
  caCerts?: string[];
  serverName?: string;
  alpnProtocols?: string[];
  handshakeTimeout: number;
  cert?: string;
  key?: string;
  minVersion?: TlsVersion;
  maxVersion?: TlsVersion;
}

/** Server TLS settings after checking. */
export interface ServerTlsSettings {
  cert: string;
  key: string;
  alpnProtocols?: string[];
  handshakeTimeout: number;
  clientCert: ClientCertMode;
  /** The PEM strings given, for the TLS layer. */
  clientCaCerts?: string[];
  /** The same, parsed: the trust anchors of the client-certificate check. */
  clientAnchors: X509Certificate[];
  /** SNI names (lower case, maybe `*.` wildcards) to their key pairs. */
  sniCerts?: Map<string, TlsKeyPair>;
  minVersion?: TlsVersion;
  maxVersion?: TlsVersion;
}

const COMMON = [
  "alpnProtocols",
  "handshakeTimeout",
  "minVersion",
  "maxVersion",
];
const CLIENT_OPTIONS = ["caCerts", "serverName", "cert", "key", ...COMMON];
const SERVER_OPTIONS = [
  "cert",
  "key",
  "clientCert",
  "clientCaCerts",
  "sniCerts",
  ...COMMON,
];
const VERSIONS: readonly string[] = ["TLSv1.2", "TLSv1.3"];
const MODES: readonly string[] = ["none", "optional", "required"];

function checkStringList(value: unknown, what: string): string[] | undefined {
  if (value === undefined) return undefined;
  if (!Array.isArray(value) || value.some((v) => typeof v !== "string")) {
    throw new TypeError(
      `The ${what} must be an array of strings, got ${describe(value)}`,
    );
  }
  return value;
}

/**
 * A server name to verify the certificate against: an IP literal or a DNS
 * name (labels of 1 to 63 characters, 253 in all; one trailing dot). Never
 * empty: asyncio's `server_hostname=""` turns the check off, and nothing
 * turns it off here.
 */
function checkServerName(value: unknown): string {
  const name = checkString(value, "serverName");
  if (name.length === 0) {
    throw new TypeError(
      "The TLS serverName must not be empty: the server's certificate is always checked against a name (leave serverName out to use the host connected to)",
    );
  }
  if (name.includes(":")) return name; // An IPv6 literal.
  const labels = (name.endsWith(".") ? name.slice(0, -1) : name).split(".");
  const bad = labels.find((label) =>
    label.length === 0 || label.length > 63 || /[\s/\\@]/.test(label)
  );
  if (bad !== undefined || name.length > 254) {
    throw new TypeError(
      `The TLS serverName ${JSON.stringify(name)} is not a host name: ${
        bad === ""
          ? "it has an empty label"
          : bad === undefined
          ? "it is longer than 253 characters"
          : `the label ${JSON.stringify(bad)} is not valid`
      }`,
    );
  }
  return name;
}

/** ALPN protocol names: each 1 to 255 bytes, as TLS (and CPython) require. */
function checkAlpn(value: unknown): string[] | undefined {
  const protocols = checkStringList(value, "alpnProtocols");
  for (const name of protocols ?? []) {
    const bytes = new TextEncoder().encode(name).length;
    if (bytes < 1 || bytes > 255) {
      throw new RangeError(
        `Each TLS alpnProtocols entry must be 1 to 255 bytes long, got ${bytes} (${
          JSON.stringify(name.slice(0, 20))
        })`,
      );
    }
  }
  return protocols;
}

function checkTimeout(value: unknown): number {
  if (value === undefined) return DEFAULT_HANDSHAKE_TIMEOUT;
  const timeout = checkNumber(value, "handshakeTimeout");
  if (timeout === 0) {
    throw new RangeError("The handshakeTimeout must be greater than 0");
  }
  return timeout;
}

function checkVersions(
  options: Record<string, unknown>,
): { minVersion?: TlsVersion; maxVersion?: TlsVersion } {
  const versions: { minVersion?: TlsVersion; maxVersion?: TlsVersion } = {};
  for (const name of ["minVersion", "maxVersion"] as const) {
    const value = options[name];
    if (value === undefined) continue;
    if (typeof value !== "string" || !VERSIONS.includes(value)) {
      throw new TypeError(
        `The TLS ${name} must be "TLSv1.2" or "TLSv1.3", got ${
          describe(value)
        }`,
      );
    }
    versions[name] = value as TlsVersion;
  }
  if (
    versions.minVersion === "TLSv1.3" && versions.maxVersion === "TLSv1.2"
  ) {
    throw new RangeError(
      'The TLS minVersion ("TLSv1.3") is above the maxVersion ("TLSv1.2")',
    );
  }
  return versions;
}

function pemProblem(what: string, error: unknown): never {
  throw new Deno.errors.InvalidData(
    `The ${what}: ${error instanceof Error ? error.message : error}`,
    { cause: error },
  );
}

/**
 * Checks a certificate chain and its key: both PEM, and the key is the
 * certificate's (asyncio's load_cert_chain fails the same way).
 */
export function checkKeyPair(
  cert: unknown,
  key: unknown,
  what: string,
): TlsKeyPair {
  checkString(cert, `${what} cert (PEM)`);
  checkString(key, `${what} key (PEM)`);
  let certificate: X509Certificate;
  try {
    certificate = new (nodeTls().crypto.X509Certificate)(cert as string);
  } catch (error) {
    pemProblem(`${what} cert is not a PEM certificate`, error);
  }
  let privateKey: ReturnType<typeof createPrivateKey>;
  try {
    privateKey = nodeTls().crypto.createPrivateKey(key as string);
  } catch (error) {
    pemProblem(`${what} key is not a PEM private key`, error);
  }
  let matches = false;
  try {
    matches = certificate.checkPrivateKey(privateKey);
  } catch {
    // A key of another type: it does not match.
  }
  if (!matches) {
    throw new Deno.errors.InvalidData(
      `The ${what} key does not match its certificate (${
        certificate.subject.replaceAll("\n", ", ")
      })`,
    );
  }
  return { cert: cert as string, key: key as string };
}

/** Checks a client `tls` option; `null` when TLS is off. */
export function clientTlsSettings(tls: unknown): ClientTlsSettings | null {
  if (tls === undefined || tls === false) return null;
  if (tls === true) return { handshakeTimeout: DEFAULT_HANDSHAKE_TIMEOUT };
  const options = checkKnownOptions(
    tls as Record<string, unknown>,
    CLIENT_OPTIONS,
    "client TLS option",
  );
  return checkClient(options);
}

function checkClient(options: Record<string, unknown>): ClientTlsSettings {
  const caCerts = checkStringList(options.caCerts, "caCerts");
  // Parsed now so that a bad entry is an error at the call, not a failed
  // (or, for one bad entry among good ones, silently ignored) handshake.
  if (caCerts !== undefined) parseCertificates(caCerts, "caCerts");
  const settings: ClientTlsSettings = {
    caCerts,
    serverName: options.serverName === undefined
      ? undefined
      : checkServerName(options.serverName),
    alpnProtocols: checkAlpn(options.alpnProtocols),
    handshakeTimeout: checkTimeout(options.handshakeTimeout),
    ...checkVersions(options),
  };
  if (options.cert !== undefined || options.key !== undefined) {
    if (options.key === undefined) {
      throw new TypeError("The client TLS cert needs its key");
    }
    if (options.cert === undefined) {
      throw new TypeError("The client TLS key needs its cert");
    }
    Object.assign(settings, checkKeyPair(options.cert, options.key, "client"));
  }
  return settings;
}

/** Checks a server `tls` option; `null` when TLS is off. */
export function serverTlsSettings(tls: unknown): ServerTlsSettings | null {
  if (tls === undefined) return null;
  const options = checkKnownOptions(
    tls as Record<string, unknown>,
    SERVER_OPTIONS,
    "server TLS option",
  );
  return checkServer(options);
}

function checkServer(options: Record<string, unknown>): ServerTlsSettings {
  const { cert, key } = checkKeyPair(options.cert, options.key, "TLS");
  const clientCert = options.clientCert ?? "none";
  if (typeof clientCert !== "string" || !MODES.includes(clientCert)) {
    throw new TypeError(
      `The TLS clientCert must be "none", "optional" or "required", got ${
        describe(clientCert)
      }`,
    );
  }
  const clientCaCerts = checkStringList(options.clientCaCerts, "clientCaCerts");
  let clientAnchors: X509Certificate[] = [];
  if (clientCert === "none") {
    if (clientCaCerts !== undefined) {
      throw new TypeError(
        'The TLS clientCaCerts would be ignored: set clientCert to "required" or "optional" to check client certificates',
      );
    }
  } else {
    if (clientCaCerts === undefined || clientCaCerts.length === 0) {
      throw new TypeError(
        `clientCert "${clientCert}" needs clientCaCerts: the CA certificates (PEM) a client certificate must chain to`,
      );
    }
    clientAnchors = parseCertificates(clientCaCerts, "clientCaCerts");
  }
  return {
    cert,
    key,
    alpnProtocols: checkAlpn(options.alpnProtocols),
    handshakeTimeout: checkTimeout(options.handshakeTimeout),
    clientCert: clientCert as ClientCertMode,
    clientCaCerts,
    clientAnchors,
    sniCerts: checkSniCerts(options.sniCerts),
    ...checkVersions(options),
  };
}

function checkSniCerts(value: unknown): Map<string, TlsKeyPair> | undefined {
  if (value === undefined) return undefined;
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    throw new TypeError(
      `The TLS sniCerts must be an object of server names to { cert, key }, got ${
        describe(value)
      }`,
    );
  }
  const map = new Map<string, TlsKeyPair>();
  for (const [name, entry] of Object.entries(value)) {
    if (!/^(\*\.)?[^\s*]+$/.test(name)) {
      throw new TypeError(
        `The TLS sniCerts name "${name}" must be a host name or "*.domain"`,
      );
    }
    if (entry === null || typeof entry !== "object") {
      throw new TypeError(
        `The TLS sniCerts entry "${name}" must be { cert, key }, got ${
          describe(entry)
        }`,
      );
    }
    checkKnownOptions(entry, ["cert", "key"], `sniCerts["${name}"] option`);
    const { cert, key } = entry as Record<string, unknown>;
    if (typeof cert !== "string" || typeof key !== "string") {
      throw new TypeError(
        `The TLS sniCerts entry "${name}" needs a cert and a key (PEM strings)`,
      );
    }
    map.set(name.toLowerCase(), checkKeyPair(cert, key, `sniCerts "${name}"`));
  }
  return map;
}

/** What `startTls` was asked to do, checked. */
export interface StartTlsSettings {
  serverSide: boolean;
  client?: ClientTlsSettings;
  server?: ServerTlsSettings;
  signal?: AbortSignal;
}

/** Checks the options of `startTls`; the side decides which are known. */
export function startTlsSettings(options: unknown): StartTlsSettings {
  const given = checkOptions(options as Record<string, unknown> | undefined);
  const serverSide = given.serverSide ?? false;
  if (typeof serverSide !== "boolean") {
    throw new TypeError(
      `The serverSide option must be a boolean, got ${describe(serverSide)}`,
    );
  }
  const known = [
    "serverSide",
    "signal",
    ...(serverSide ? SERVER_OPTIONS : CLIENT_OPTIONS),
  ];
  const checked = checkKnownOptions(
    given,
    known,
    serverSide ? "server-side startTls option" : "client-side startTls option",
  );
  const signal = checkSignal(checked.signal);
  const { serverSide: _side, signal: _signal, ...tls } = checked;
  return serverSide
    ? { serverSide, server: checkServer(tls), signal }
    : { serverSide, client: checkClient(tls), signal };
}
