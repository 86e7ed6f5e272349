// TLS for transports: option checks and TLS run over a live plaintext
// transport with node:tls, as asyncio's sslproto runs TLS over a memory BIO.
// Every TLS connection uses this path (clients, servers, startTls): closing
// the plaintext transport always frees the socket, so a handshake time
// limit is reliable. (Closing a Deno.TlsConn while its handshake is pending
// leaves the socket open on Deno 2.9.6, so the native TLS API is not used.)
//
// Flow control on the way in. The decrypted bytes wait in NodeTlsConn
// until the TLS transport reads them. When too many wait, the *plaintext*
// transport stops reading (no more TLS records enter); the node:tls socket
// itself is never paused: in Deno 2.9.6 a node:tls socket over a JS Duplex
// that is paused when the peer's close_notify arrives never emits 'end',
// even once resumed, and the EOF after a large transfer was lost.

import * as nodeTls from "node:tls";
import { createPrivateKey, X509Certificate } from "node:crypto";
import { Duplex } from "node:stream";
import { type BaseProtocol, Protocol } from "./protocols.ts";
import { peerClosedWrite, type StreamTransport } from "./_stream_transport.ts";
import {
  checkNumber,
  checkOptions,
  checkString,
  describe,
} from "./_validate.ts";

/** asyncio's default TLS handshake time limit (60 s). */
export const DEFAULT_HANDSHAKE_TIMEOUT = 60_000;

/** How long closing waits for close_notify to be flushed before aborting. */
const SHUTDOWN_TIMEOUT = 30_000;

/**
 * Decrypted bytes waiting to be read above which the plaintext transport
 * stops reading; it reads again once they fall to a quarter of this.
 */
const READ_HIGH = 256 * 1024;

/** Client TLS settings after checking. */
export interface ClientTlsSettings {
  caCerts?: string[];
  serverName?: string;
  alpnProtocols?: string[];
  handshakeTimeout: number;
}

/** Server TLS settings after checking. */
export interface ServerTlsSettings {
  cert: string;
  key: string;
  alpnProtocols?: string[];
  handshakeTimeout: number;
}

function checkStringList(value: unknown, what: string): string[] | undefined {
  if (value === undefined) return undefined;
  if (!Array.isArray(value) || value.some((v) => typeof v !== "string")) {
    throw new TypeError(
      `The ${what} must be an array of strings, got ${describe(value)}`,
    );
  }
  return value;
}

function checkTimeout(value: unknown): number {
  if (value === undefined) return DEFAULT_HANDSHAKE_TIMEOUT;
  const timeout = checkNumber(value, "handshakeTimeout");
  if (timeout === 0) {
    throw new RangeError("The handshakeTimeout must be greater than 0");
  }
  return timeout;
}

/** Checks a client `tls` option; `null` when TLS is off. */
export function clientTlsSettings(tls: unknown): ClientTlsSettings | null {
  if (tls === undefined || tls === false) return null;
  if (tls === true) return { handshakeTimeout: DEFAULT_HANDSHAKE_TIMEOUT };
  const options = checkOptions(tls as Record<string, unknown>, "tls option");
  for (const key of Object.keys(options)) {
    if (
      !["caCerts", "serverName", "alpnProtocols", "handshakeTimeout"].includes(
        key,
      )
    ) {
      throw new TypeError(
        `Unknown client TLS option "${key}" (certificate checks cannot be turned off)`,
      );
    }
  }
  return {
    caCerts: checkStringList(options.caCerts, "caCerts"),
    serverName: options.serverName === undefined
      ? undefined
      : checkString(options.serverName, "serverName"),
    alpnProtocols: checkStringList(options.alpnProtocols, "alpnProtocols"),
    handshakeTimeout: checkTimeout(options.handshakeTimeout),
  };
}

/** Checks a server `tls` option; `null` when TLS is off. */
export function serverTlsSettings(tls: unknown): ServerTlsSettings | null {
  if (tls === undefined) return null;
  const options = checkOptions(tls as Record<string, unknown>, "tls option");
  const cert = checkString(options.cert, "TLS cert (PEM)");
  const key = checkString(options.key, "TLS key (PEM)");
  // Fail at the call, as asyncio's load_cert_chain() does, not at every
  // handshake later on.
  checkPem(() => new X509Certificate(cert), "cert is not a PEM certificate");
  checkPem(() => createPrivateKey(key), "key is not a PEM private key");
  return {
    cert,
    key,
    alpnProtocols: checkStringList(options.alpnProtocols, "alpnProtocols"),
    handshakeTimeout: checkTimeout(options.handshakeTimeout),
  };
}

function checkPem(parse: () => unknown, problem: string): void {
  try {
    parse();
  } catch (error) {
    throw new Deno.errors.InvalidData(
      `The TLS ${problem}: ${error instanceof Error ? error.message : error}`,
      { cause: error },
    );
  }
}

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
 * `Deno.Conn`-shaped object that a new StreamTransport can own.
 *
 * Rejects (and closes the transport, waiting until it is closed) when the
 * handshake fails, times out or `signal` aborts (with the signal's reason).
 */
export async function upgradeTransport(
  raw: StreamTransport,
  options: UpgradeOptions,
): Promise<{ conn: Deno.Conn; extra: Record<string, unknown> }> {
  const pipe = new RawPipe(raw);
  const settings = options.serverSide ? options.server! : options.client!;
  let socket: nodeTls.TLSSocket;
  if (options.serverSide) {
    const server = options.server!;
    socket = new nodeTls.TLSSocket(pipe.duplex, {
      isServer: true,
      secureContext: nodeTls.createSecureContext({
        cert: server.cert,
        key: server.key,
      }),
      ALPNProtocols: server.alpnProtocols,
    });
  } else {
    const client = options.client!;
    const peer = raw.getExtraInfo("peername") as Deno.Addr | undefined;
    const host = client.serverName ??
      (peer !== undefined && "hostname" in peer ? peer.hostname : undefined);
    if (host === undefined) {
      throw new TypeError(
        "A serverName is needed to check the server's certificate",
      );
    }
    const isIp = /^[\d.]+$|:/.test(host);
    socket = nodeTls.connect({
      socket: pipe.duplex,
      host,
      servername: isIp ? undefined : host,
      ca: client.caCerts === undefined
        ? undefined
        : [...nodeTls.rootCertificates, ...client.caCerts],
      ALPNProtocols: client.alpnProtocols,
    });
  }
  const conn = new NodeTlsConn(socket, raw, pipe);
  const ready = new Promise<void>((resolve, reject) => {
    const closed = () =>
      reject(
        new Deno.errors.UnexpectedEof(
          "The peer closed the connection during the TLS handshake",
        ),
      );
    socket.once(options.serverSide ? "secure" : "secureConnect", resolve);
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
    timer = setTimeout(
      () =>
        reject(
          new Deno.errors.TimedOut(
            `The TLS handshake timed out after ${ms} ms`,
          ),
        ),
      ms,
    );
    const signal = options.signal;
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
  } catch (error) {
    socket.destroy();
    raw.abort();
    // Settle only once the socket is closed: nothing is left open.
    await pipe.lost;
    throw aborted ? error : asTlsError(error);
  } finally {
    clearTimeout(timer);
    if (onAbort !== undefined) {
      options.signal!.removeEventListener("abort", onAbort);
    }
  }
  pipe.secured = true;
  const alpn = socket.alpnProtocol;
  return {
    conn: conn as unknown as Deno.Conn,
    extra: { alpnProtocol: typeof alpn === "string" ? alpn : null },
  };
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
    this.duplex = new Duplex({
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
  #socket: nodeTls.TLSSocket;
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

  constructor(socket: nodeTls.TLSSocket, raw: StreamTransport, pipe: RawPipe) {
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
    if (this.#queued > 0 && !this.#closed) {
      this.#waiter = null;
      waiter.resolve(this.#take(waiter.buffer));
    } else if (this.#error !== null && !this.#closed) {
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
