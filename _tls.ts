// TLS run over a live plaintext transport with node:tls, as asyncio's
// sslproto runs TLS over a memory BIO. Every TLS connection uses this path
// (clients, servers, startTls): closing the plaintext transport always
// frees the socket, so a handshake time limit and an abort are reliable.
// (Closing a Deno.TlsConn while its handshake is pending leaves the socket
// open on Deno 2.9.6, so the native TLS API is not used.)
//
// Options and their checks live in _tls_options.ts, the client-certificate
// check in _tls_verify.ts, the extra information in _tls_info.ts.
//
// Flow control on the way in. The decrypted bytes wait in NodeTlsConn
// until the TLS transport reads them. When too many wait, the *plaintext*
// transport stops reading (no more TLS records enter); the node:tls socket
// itself is never paused: in Deno 2.9.6 a node:tls socket over a JS Duplex
// that is paused when the peer's close_notify arrives never emits 'end',
// even once resumed, and the EOF after a large transfer was lost.

import type * as NodeTls from "node:tls";
import { nodeTls } from "./_node_tls.ts";
import type { X509Certificate } from "node:crypto";
import type { Duplex } from "node:stream";
import { type BaseProtocol, Protocol } from "./protocols.ts";
import { peerClosedWrite, type StreamTransport } from "./_stream_transport.ts";
import type { SocketBelow } from "./_conn_handles.ts";
import type {
  ClientTlsSettings,
  ServerTlsSettings,
  TlsKeyPair,
} from "./_tls_options.ts";
import { peerLeaf, presentedChain, tlsExtraInfo } from "./_tls_info.ts";
import { verifyClientChain } from "./_tls_verify.ts";

export {
  type ClientTlsSettings,
  clientTlsSettings,
  DEFAULT_HANDSHAKE_TIMEOUT,
  type ServerTlsSettings,
  serverTlsSettings,
  startTlsSettings,
} from "./_tls_options.ts";

/** The longest delay setTimeout honours (longer ones fire at once). */
const MAX_TIMER_DELAY = 2 ** 31 - 1;

/** How long closing waits for close_notify to be flushed before aborting. */
const SHUTDOWN_TIMEOUT = 30_000;

/**
 * Decrypted bytes waiting to be read above which the plaintext transport
 * stops reading; it reads again once they fall to a quarter of this.
 */
const READ_HIGH = 256 * 1024;

function asTlsError(error: unknown): Error {
  if (error instanceof Deno.errors.TimedOut) return error;
  if (
    error instanceof Error && Object.getPrototypeOf(error) !== Error.prototype
  ) {
    if (Object.values(Deno.errors).some((e) => error instanceof e)) {
      return error;
    }
  }
  const message = error instanceof Error ? error.message : String(error);
  return new Deno.errors.InvalidData(`TLS error: ${message}`, { cause: error });
}

function abortReason(signal: AbortSignal): unknown {
  return signal.reason ??
    new DOMException("The operation was aborted", "AbortError");
}

/** Options of {@linkcode upgradeTransport}. */
export interface UpgradeOptions {
  serverSide: boolean;
  client?: ClientTlsSettings;
  server?: ServerTlsSettings;
  /** Aborts the handshake: the call rejects with the reason. */
  signal?: AbortSignal;
}

/**
 * Runs TLS over a live transport: the transport's protocol is replaced by
 * one that feeds a node:tls socket, and the decrypted side is returned as a
 * `Deno.Conn`-shaped object that a new StreamTransport can own, with the
 * connection's `getExtraInfo()` entries.
 *
 * Rejects (and closes the transport, waiting until it is closed) when the
 * handshake fails, times out or `signal` aborts (with the signal's
 * reason), and on a server when the client certificate is refused.
 */
export async function upgradeTransport(
  raw: StreamTransport,
  options: UpgradeOptions,
): Promise<{ conn: Deno.Conn; extra: Record<string, unknown> }> {
  const { serverSide, signal } = options;
  const settings = serverSide ? options.server! : options.client!;
  const pipe = new RawPipe(raw);
  let serverName: string | null = null;
  let socket: NodeTls.TLSSocket;
  try {
    if (!serverSide) serverName = clientServerName(raw, options.client!);
    socket = serverSide
      ? serverSocket(pipe.duplex, options.server!)
      : clientSocket(pipe.duplex, options.client!, serverName!);
  } catch (error) {
    raw.abort();
    await pipe.lost;
    throw error instanceof TypeError ? error : asTlsError(error);
  }
  const conn = new NodeTlsConn(socket, raw, pipe);
  const ready = new Promise<void>((resolve, reject) => {
    const closed = () =>
      reject(
        new Deno.errors.UnexpectedEof(
          "The peer closed the connection during the TLS handshake",
        ),
      );
    socket.once(serverSide ? "secure" : "secureConnect", resolve);
    socket.once("error", reject);
    socket.once("end", closed);
    socket.once("close", closed);
  });
  // After a timeout or an abort nobody awaits `ready`; its failure is expected.
  ready.catch(() => {});
  let timer: ReturnType<typeof setTimeout> | undefined;
  let onAbort: (() => void) | undefined;
  let aborted = false;
  const stop = new Promise<never>((_, reject) => {
    const ms = settings.handshakeTimeout;
    const deadline = performance.now() + ms;
    // setTimeout fires at once past 2**31 - 1 ms: wait in steps up to it.
    const arm = () => {
      const left = deadline - performance.now();
      timer = setTimeout(
        () =>
          deadline - performance.now() > 0 ? arm() : reject(
            new Deno.errors.TimedOut(
              `The TLS handshake timed out after ${ms} ms`,
            ),
          ),
        Math.min(MAX_TIMER_DELAY, Math.max(0, left)),
      );
    };
    arm();
    if (signal === undefined) return;
    onAbort = () => {
      aborted = true;
      reject(abortReason(signal));
    };
    if (signal.aborted) onAbort();
    else signal.addEventListener("abort", onAbort, { once: true });
  });
  try {
    await Promise.race([ready, stop]);
    const chain = serverSide ? presentedChain(socket) : peerLeaf(socket);
    if (serverSide) checkClientCertificate(socket, options.server!, chain);
    pipe.secured = true;
    return {
      conn: conn as unknown as Deno.Conn,
      extra: tlsExtraInfo({
        socket,
        serverSide,
        serverHostname: serverSide ? sniName(socket) : serverName,
        chain,
      }),
    };
  } catch (error) {
    // Deno's node:tls sends no alert over a JS stream (2.9.6): the peer of
    // a failed handshake sees the connection closed.
    socket.destroy();
    raw.abort();
    // Settle only once the socket is closed: nothing is left open.
    await pipe.lost;
    throw aborted ? error : asTlsError(error);
  } finally {
    clearTimeout(timer);
    if (onAbort !== undefined) signal!.removeEventListener("abort", onAbort);
  }
}

/** The name a client checks the server's certificate against. */
function clientServerName(
  raw: StreamTransport,
  client: ClientTlsSettings,
): string {
  const peer = raw.getExtraInfo("peername") as Deno.Addr | undefined;
  const host = client.serverName ??
    (peer !== undefined && "hostname" in peer ? peer.hostname : undefined);
  if (host === undefined) {
    throw new TypeError(
      "A serverName is needed to check the server's certificate",
    );
  }
  return host;
}

function clientSocket(
  duplex: Duplex,
  client: ClientTlsSettings,
  host: string,
): NodeTls.TLSSocket {
  const isIp = /^[\d.]+$|:/.test(host);
  const options: NodeTls.ConnectionOptions = {
    socket: duplex,
    host,
    servername: isIp ? undefined : host,
    ALPNProtocols: client.alpnProtocols,
  };
  // caCerts replace the default roots, as CPython's `cadata`/`cafile`
  // (create_default_context loads the defaults only without them). Adding
  // Node's bundled roots to them cost 17 ms per connection, their parsing
  // redone by every handshake (bench/RESULTS.md, "TLS connections").
  if (client.caCerts !== undefined) options.ca = client.caCerts;
  if (client.cert !== undefined) {
    options.cert = client.cert;
    options.key = client.key;
  }
  if (client.minVersion !== undefined) options.minVersion = client.minVersion;
  if (client.maxVersion !== undefined) options.maxVersion = client.maxVersion;
  return nodeTls().tls.connect(options);
}

/** The secure contexts of a server's settings, made once per server. */
interface ServerContexts {
  main: NodeTls.SecureContext;
  sni: Map<string, NodeTls.SecureContext> | null;
}

const contexts = new WeakMap<ServerTlsSettings, ServerContexts>();

function serverContexts(server: ServerTlsSettings): ServerContexts {
  let made = contexts.get(server);
  if (made === undefined) {
    const context = ({ cert, key }: TlsKeyPair) => {
      const options: NodeTls.SecureContextOptions = { cert, key };
      // The CAs whose names the certificate request carries (and that the
      // TLS layer checks against; aionet checks again, see _tls_verify.ts).
      if (server.clientCert !== "none") options.ca = server.clientCaCerts;
      if (server.minVersion !== undefined) {
        options.minVersion = server.minVersion;
      }
      if (server.maxVersion !== undefined) {
        options.maxVersion = server.maxVersion;
      }
      return nodeTls().tls.createSecureContext(options);
    };
    made = {
      main: context(server),
      sni: server.sniCerts === undefined ? null : new Map(
        [...server.sniCerts].map(([name, pair]) => [name, context(pair)]),
      ),
    };
    contexts.set(server, made);
  }
  return made;
}

/** The SNI context for `name`: an exact entry, else a `*.` one-label match. */
function sniContext(
  sni: Map<string, NodeTls.SecureContext>,
  name: string,
): NodeTls.SecureContext | undefined {
  const host = name.toLowerCase().replace(/\.$/, "");
  const exact = sni.get(host);
  if (exact !== undefined) return exact;
  const dot = host.indexOf(".");
  return dot > 0 ? sni.get(`*${host.slice(dot)}`) : undefined;
}

function serverSocket(
  duplex: Duplex,
  server: ServerTlsSettings,
): NodeTls.TLSSocket {
  const { main, sni } = serverContexts(server);
  return new (nodeTls().tls.TLSSocket)(duplex, {
    isServer: true,
    secureContext: main,
    ALPNProtocols: server.alpnProtocols,
    // Ask for a certificate unless "none"; let the TLS layer itself refuse
    // a client that sends none only when one is required.
    requestCert: server.clientCert !== "none",
    rejectUnauthorized: server.clientCert === "required",
    SNICallback: sni === null ? undefined : (name, callback) =>
      // No entry: the default certificate.
      callback(null, sniContext(sni, name)),
  } as NodeTls.TLSSocketOptions);
}

/** The name the client asked for by SNI, as the server saw it. */
function sniName(socket: NodeTls.TLSSocket): string | null {
  const name = (socket as unknown as { servername?: unknown }).servername;
  return typeof name === "string" && name !== "" ? name : null;
}

/**
 * Refuses a client whose certificate is missing (when required) or does
 * not pass aionet's own chain check (_tls_verify.ts); then, as a second
 * opinion, the TLS layer's chain verdict when it exposes one.
 */
function checkClientCertificate(
  socket: NodeTls.TLSSocket,
  server: ServerTlsSettings,
  chain: readonly X509Certificate[],
): void {
  if (server.clientCert === "none") return;
  if (chain.length === 0) {
    if (server.clientCert === "required") {
      throw new Deno.errors.InvalidData(
        'TLS client certificate refused: the client sent no certificate (clientCert is "required")',
      );
    }
    return;
  }
  verifyClientChain(chain, server.clientAnchors);
  const verdict = platformVerdict(socket);
  if (verdict !== null) {
    throw new Deno.errors.InvalidData(
      `TLS client certificate refused: the TLS layer's own chain check failed (${verdict})`,
    );
  }
}

/**
 * The TLS layer's own chain-check error, or `null` when it found none.
 * (Deno's node:tls checks the chain with webpki while the handshake runs,
 * extendedKeyUsage included, and keeps the error for `verifyError()`; a
 * bare TLSSocket does not act on it.)
 */
function platformVerdict(socket: NodeTls.TLSSocket): string | null {
  const handle = (socket as unknown as {
    _handle?: { verifyError?: () => unknown };
  })._handle;
  if (typeof handle?.verifyError !== "function") {
    // Fail closed: without it the certificate's purpose goes unchecked.
    return "this Deno does not report it, so the certificate's purpose cannot be checked";
  }
  const error = handle.verifyError();
  if (error instanceof Error) {
    return (error as Error & { code?: string }).code ?? error.message;
  }
  return typeof error === "string" && error !== "" ? error : null;
}

/** Feeds a raw transport's bytes into a Duplex and writes the Duplex's out. */
class RawPipe extends Protocol {
  readonly duplex: Duplex;
  /** Resolves once the plaintext transport is gone (socket closed). */
  readonly lost: Promise<void>;
  #resolveLost: () => void;
  /** Set once the handshake succeeded. */
  secured = false;
  #raw: StreamTransport;
  #original: BaseProtocol;
  #writePaused = false;
  #heldCallbacks: Array<() => void> = [];
  /** The Duplex's buffer is full (node:tls has not taken the records yet). */
  #duplexFull = false;
  /** Too many decrypted bytes wait to be read (set by NodeTlsConn). */
  #decryptedFull = false;

  constructor(raw: StreamTransport) {
    super();
    const { promise, resolve } = Promise.withResolvers<void>();
    this.lost = promise;
    this.#resolveLost = resolve;
    this.#raw = raw;
    this.#original = raw.getProtocol();
    this.duplex = new (nodeTls().stream.Duplex)({
      read: () => {
        this.#duplexFull = false;
        this.#syncReading();
      },
      write: (chunk: Uint8Array, _encoding, callback) => {
        try {
          raw.write(chunk);
        } catch (error) {
          callback(error as Error);
          return;
        }
        if (this.#writePaused) this.#heldCallbacks.push(() => callback());
        else callback();
      },
      final: (callback) => {
        if (!raw.isClosing()) raw.close();
        callback();
      },
      destroy: (error, callback) => {
        if (!raw.isClosing()) raw.abort();
        callback(error);
      },
    });
    raw.setProtocol(this);
    // The peer's EOF came before the upgrade (a half-open transport): no
    // TLS record can follow, so the handshake must fail now, not at its
    // time limit.
    if (peerClosedWrite(raw)) this.duplex.push(null);
  }

  /** Stops (or resumes) reading TLS records while decrypted bytes pile up. */
  holdReading(hold: boolean): void {
    if (this.#decryptedFull === hold) return;
    this.#decryptedFull = hold;
    this.#syncReading();
  }

  #syncReading(): void {
    if (this.#duplexFull || this.#decryptedFull) this.#raw.pauseReading();
    else this.#raw.resumeReading();
  }

  override dataReceived(data: Uint8Array): void {
    if (!this.duplex.push(data)) {
      this.#duplexFull = true;
      this.#syncReading();
    }
  }

  override eofReceived(): boolean {
    this.duplex.push(null);
    return true;
  }

  override connectionLost(exc: Error | null): void {
    this.#resolveLost();
    // Lost before TLS was up: the protocol that owned the connection learns it.
    if (!this.secured) this.#original.connectionLost(exc);
    this.#release();
    if (exc !== null) this.duplex.destroy(exc);
    else this.duplex.push(null);
  }

  override pauseWriting(): void {
    this.#writePaused = true;
  }

  override resumeWriting(): void {
    this.#writePaused = false;
    this.#release();
  }

  #release(): void {
    for (const callback of this.#heldCallbacks.splice(0)) callback();
  }
}

/** The decrypted side of a node:tls socket, shaped as a `Deno.Conn`. */
class NodeTlsConn {
  #socket: NodeTls.TLSSocket;
  #raw: StreamTransport;
  #pipe: RawPipe;
  #chunks: Uint8Array[] = [];
  #queued = 0;
  #ended = false;
  #closed = false;
  #error: Error | null = null;
  #rawGone = false;
  #waiter:
    | {
      buffer: Uint8Array;
      resolve: (n: number | null) => void;
      reject: (e: Error) => void;
    }
    | null = null;

  constructor(socket: NodeTls.TLSSocket, raw: StreamTransport, pipe: RawPipe) {
    this.#socket = socket;
    this.#raw = raw;
    this.#pipe = pipe;
    // The socket always flows (see the top of this file): backpressure is
    // applied by the plaintext transport.
    socket.on("data", (data: Uint8Array) => {
      this.#chunks.push(data);
      this.#queued += data.length;
      if (this.#queued > READ_HIGH) pipe.holdReading(true);
      this.#serve();
    });
    socket.on("end", () => {
      this.#ended = true;
      this.#serve();
    });
    socket.on("error", (error: Error) => {
      this.#error ??= asTlsError(error);
      this.#serve();
    });
    socket.on("close", () => {
      this.#ended = true;
      this.#serve();
      if (!raw.isClosing()) raw.abort();
    });
  }

  get localAddr(): Deno.Addr {
    return this.#raw.getExtraInfo("sockname") as Deno.Addr;
  }

  get remoteAddr(): Deno.Addr {
    return this.#raw.getExtraInfo("peername") as Deno.Addr;
  }

  read(buffer: Uint8Array): Promise<number | null> {
    if (this.#closed) {
      return Promise.reject(new Deno.errors.BadResource("Bad resource ID"));
    }
    if (this.#waiter !== null) {
      return Promise.reject(new Deno.errors.Busy("A read is pending"));
    }
    return new Promise((resolve, reject) => {
      this.#waiter = { buffer, resolve, reject };
      this.#serve();
    });
  }

  write(data: Uint8Array): Promise<number> {
    if (this.#closed) {
      return Promise.reject(new Deno.errors.BadResource("Bad resource ID"));
    }
    return new Promise((resolve, reject) => {
      this.#socket.write(data, (error) => {
        if (error) reject(asTlsError(error));
        else resolve(data.length);
      });
    });
  }

  closeWrite(): Promise<void> {
    return Promise.reject(
      new Deno.errors.NotSupported("TLS connections cannot half-close"),
    );
  }

  /** The plaintext transport's socket (its descriptor and options). */
  get socketBelow(): SocketBelow {
    return this.#raw.getExtraInfo("socket") as SocketBelow;
  }

  /**
   * After `close()`: settles once the plaintext transport is gone, so the
   * TLS transport's `connectionLost` never comes before its socket closed.
   */
  get gone(): Promise<void> {
    return this.#pipe.lost;
  }

  /**
   * Sends close_notify; the plaintext transport then flushes and closes
   * (RawPipe's `final`). A pending read settles only once the socket is
   * closed, so the TLS transport's `connectionLost` comes after it. A peer
   * that never reads cannot hold the socket: it is aborted after
   * SHUTDOWN_TIMEOUT.
   */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    const timer = setTimeout(() => this.#raw.abort(), SHUTDOWN_TIMEOUT);
    this.#pipe.lost.then(() => {
      clearTimeout(timer);
      this.#rawGone = true;
      this.#serve();
    });
    // Nothing more is read: let the plaintext side take the close_notify.
    this.#pipe.holdReading(false);
    this.#socket.end();
  }

  #serve(): void {
    const waiter = this.#waiter;
    if (waiter === null) return;
    if (this.#closed) {
      if (this.#rawGone) {
        this.#waiter = null;
        waiter.resolve(null);
      }
      return;
    }
    if (this.#queued > 0) {
      this.#waiter = null;
      waiter.resolve(this.#take(waiter.buffer));
    } else if (this.#error !== null) {
      this.#waiter = null;
      waiter.reject(this.#error);
    } else if (this.#ended) {
      this.#waiter = null;
      waiter.resolve(null);
    }
  }

  #take(buffer: Uint8Array): number {
    let n = 0;
    while (n < buffer.length && this.#chunks.length > 0) {
      const chunk = this.#chunks[0];
      const count = Math.min(chunk.length, buffer.length - n);
      buffer.set(chunk.subarray(0, count), n);
      n += count;
      if (count === chunk.length) this.#chunks.shift();
      else this.#chunks[0] = chunk.subarray(count);
    }
    this.#queued -= n;
    if (this.#queued <= READ_HIGH / 4) this.#pipe.holdReading(false);
    return n;
  }
}
