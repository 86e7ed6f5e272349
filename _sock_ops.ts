// The loop's low-level socket functions (asyncio's loop.sock_recv,
// sock_sendall, sock_connect, sock_accept, sock_sendfile, sendfile): retry
// a non-blocking Socket call until it does not block, waiting on the
// socket's readiness in between. EventLoop's methods call these.

import type { BaseProtocol } from "./protocols.ts";
import type { Transport } from "./_transport_types.ts";
import {
  abortReason,
  READ,
  type Readiness,
  readinessOf,
  waitReady,
  WRITE,
} from "./_readiness.ts";
import type { Socket, SocketAddress } from "./_socket.ts";
import {
  SO_ERROR,
  SOCK_DGRAM,
  SOCK_STREAM,
  SOL_SOCKET,
} from "./_socket_constants.ts";
import { getAddrInfo } from "./_addrinfo.ts";
import { ipVersion } from "./_ip.ts";
import { errorOfErrno } from "./_errno.ts";
import { assertBytes, describe, signalOption } from "./_validate.ts";

/** What a socket operation of the loop accepts last (aionet extension). */
export interface SockOptions {
  /** Stops waiting: the call rejects with the signal's reason. */
  signal?: AbortSignal;
}

/**
 * What `loop.sendfile` writes to: a stream transport (the write side with
 * flow control, and optionally the read side, which is paused meanwhile).
 *
 * @example Any stream transport fits
 * ```ts
 * import type { SendfileTransport } from "@aionet/aionet/events";
 * import type { Transport } from "@aionet/aionet/transports";
 *
 * export const accept = (t: Transport): SendfileTransport => t;
 * ```
 */
export type SendfileTransport =
  & Pick<
    Transport,
    | "write"
    | "isClosing"
    | "getProtocol"
    | "setProtocol"
    | "getWriteBufferSize"
    | "getWriteBufferLimits"
  >
  & Partial<Pick<Transport, "isReading" | "pauseReading" | "resumeReading">>;

function socketReadiness(sock: unknown): Readiness {
  const readiness = readinessOf(sock);
  if (readiness === undefined || typeof sock === "number") {
    throw new TypeError(
      `The sock must be an aionet Socket, got ${describe(sock)}`,
    );
  }
  return readiness;
}

async function retry<T>(
  sock: Socket,
  mask: number,
  operation: () => T,
  options: SockOptions | undefined,
): Promise<T> {
  const readiness = socketReadiness(sock);
  const signal = signalOption(options);
  if (signal?.aborted) throw abortReason(signal);
  for (;;) {
    try {
      return operation();
    } catch (error) {
      if (!(error instanceof Deno.errors.WouldBlock)) throw error;
    }
    await waitReady(readiness, mask, signal);
  }
}

/** Receives up to `n` bytes, waiting until some arrive (empty at EOF). */
export function sockRecv(
  sock: Socket,
  n: number,
  options?: SockOptions,
): Promise<Uint8Array> {
  return retry(sock, READ, () => sock.recv(n), options);
}

/** Receives into `buffer`, waiting until some bytes arrive; returns the count. */
export function sockRecvInto(
  sock: Socket,
  buffer: Uint8Array,
  options?: SockOptions,
): Promise<number> {
  return retry(sock, READ, () => sock.recvInto(buffer), options);
}

/** Receives a datagram (up to `n` bytes) and its sender: `[data, address]`. */
export function sockRecvFrom(
  sock: Socket,
  n: number,
  options?: SockOptions,
): Promise<[Uint8Array, Deno.Addr]> {
  return retry(sock, READ, () => sock.recvFrom(n), options);
}

/** Receives into `buffer` (at most `nbytes`, default all of it): `[count, address]`. */
export function sockRecvFromInto(
  sock: Socket,
  buffer: Uint8Array,
  nbytes = 0,
  options?: SockOptions,
): Promise<[number, Deno.Addr]> {
  return retry(
    sock,
    READ,
    () => sock.recvFromInto(buffer, nbytes),
    options,
  );
}

/**
 * Sends all of `data`, waiting for room in the send buffer as needed. The
 * bytes are copied at the call; once it resolves they are in the send
 * buffer, so a `close()` right after loses nothing.
 */
export async function sockSendAll(
  sock: Socket,
  data: Uint8Array,
  options?: SockOptions,
): Promise<void> {
  const readiness = socketReadiness(sock);
  assertBytes(data);
  const signal = signalOption(options);
  if (signal?.aborted) throw abortReason(signal);
  const bytes = data.slice();
  let offset = 0;
  do {
    try {
      offset += sock.send(bytes.subarray(offset));
      continue;
    } catch (error) {
      if (!(error instanceof Deno.errors.WouldBlock)) throw error;
    }
    await waitReady(readiness, WRITE, signal);
  } while (offset < bytes.length);
}

/** Sends one datagram to `address`, waiting for room; returns its length. */
export function sockSendTo(
  sock: Socket,
  data: Uint8Array,
  address: SocketAddress,
  options?: SockOptions,
): Promise<number> {
  return retry(sock, WRITE, () => sock.sendTo(data, address), options);
}

/**
 * Connects `sock` to `address` and waits for the outcome: resolves once
 * connected, rejects with the error (e.g. `Deno.errors.ConnectionRefused`).
 */
export async function sockConnect(
  sock: Socket,
  address: SocketAddress,
  options?: SockOptions,
): Promise<void> {
  const readiness = socketReadiness(sock);
  const signal = signalOption(options);
  if (signal?.aborted) throw abortReason(signal);
  if (
    sock.type === SOCK_DGRAM && "port" in address && address.hostname &&
    ipVersion(address.hostname) === 0
  ) {
    // Looked up here, off the loop, as asyncio's sock_connect does: a
    // datagram socket's connect() takes the address it filters on.
    address = await resolvedPeer(sock, address.hostname, address.port);
  }
  try {
    sock.connect(address);
    return;
  } catch (error) {
    if (!(error instanceof Deno.errors.WouldBlock)) throw error;
  }
  await waitReady(readiness, WRITE, signal);
  const code = sock.getsockopt(SOL_SOCKET, SO_ERROR);
  if (code !== 0) {
    const where = "path" in address
      ? address.path
      : `${address.hostname ?? ""}:${address.port}`;
    throw errorOfErrno(
      code,
      `${errorName(code)} (os error ${code}): connecting to ${where}`,
    );
  }
}

/** The first address `hostname` has for `sock`'s family and type. */
async function resolvedPeer(
  sock: Socket,
  hostname: string,
  port: number,
): Promise<{ hostname: string; port: number }> {
  const [found] = await getAddrInfo(hostname, port, {
    family: sock.family,
    type: sock.type,
  });
  if (found === undefined) {
    throw new Deno.errors.NotFound(`No address found for ${hostname}`);
  }
  return found[4] as Deno.NetAddr;
}

/** Waits for a connection on listening `sock`: `[socket, address]`. */
export function sockAccept(
  sock: Socket,
  options?: SockOptions,
): Promise<[Socket, Deno.Addr]> {
  return retry(sock, READ, () => sock.accept(), options);
}

/**
 * Sends `file` (from `offset`, `count` bytes or to its end) over stream
 * socket `sock`; returns the bytes sent. asyncio's fallback: read a chunk,
 * send it, repeat (Deno has no `sendfile(2)`). The file position ends
 * after the last byte sent.
 */
export async function sockSendfile(
  sock: Socket,
  file: Deno.FsFile,
  offset = 0,
  count: number | null = null,
  options?: SockOptions,
): Promise<number> {
  socketReadiness(sock);
  if (sock.type !== SOCK_STREAM) {
    throw new TypeError("sockSendfile() needs a SOCK_STREAM socket");
  }
  checkFile(file);
  checkSendfileRange(offset, count);
  return await sendFileChunks(
    file,
    offset,
    count,
    (chunk) => sockSendAll(sock, chunk, options),
  );
}

/**
 * Sends `file` over a stream transport; returns the bytes sent. asyncio's
 * fallback: reading pauses, chunks are written with flow control
 * (waiting while the transport has paused writing), then the protocol
 * and reading are restored.
 */
export async function sendfile(
  transport: SendfileTransport,
  file: Deno.FsFile,
  offset = 0,
  count: number | null = null,
): Promise<number> {
  if (
    transport === null || typeof transport !== "object" ||
    typeof transport.write !== "function" ||
    typeof transport.setProtocol !== "function"
  ) {
    throw new TypeError(
      `The transport must be a stream transport, got ${describe(transport)}`,
    );
  }
  checkFile(file);
  checkSendfileRange(offset, count);
  if (transport.isClosing()) {
    throw new Deno.errors.BadResource("The transport is closing");
  }
  const fallback = new SendfileFallback(transport);
  try {
    const total = await sendFileChunks(file, offset, count, async (chunk) => {
      await fallback.ready();
      transport.write(chunk);
    });
    await fallback.ready();
    return total;
  } finally {
    fallback.restore();
  }
}

function errorName(code: number): string {
  switch (code) {
    case 111:
      return "Connection refused";
    case 110:
      return "Connection timed out";
    case 113:
      return "No route to host";
    case 101:
      return "Network is unreachable";
    case 2:
      return "No such file or directory";
    case 13:
      return "Permission denied";
    default:
      return "Connection failed";
  }
}

function checkFile(file: unknown): void {
  if (
    file === null || typeof file !== "object" ||
    typeof (file as Deno.FsFile).read !== "function" ||
    typeof (file as Deno.FsFile).seek !== "function"
  ) {
    throw new TypeError(
      `The file must be a Deno.FsFile opened for reading, got ${
        describe(file)
      }`,
    );
  }
}

function checkSendfileRange(offset: unknown, count: unknown): void {
  if (typeof offset !== "number" || !Number.isInteger(offset)) {
    throw new TypeError(
      `The offset must be an integer, got ${describe(offset)}`,
    );
  }
  if (offset < 0) {
    throw new RangeError(`The offset must not be negative, got ${offset}`);
  }
  if (count === null || count === undefined) return;
  if (typeof count !== "number" || !Number.isInteger(count)) {
    throw new TypeError(`The count must be an integer, got ${describe(count)}`);
  }
  if (count <= 0) {
    throw new RangeError(`The count must be a positive integer, got ${count}`);
  }
}

/** Reads `file` from `offset` in chunks and hands each to `send`. */
async function sendFileChunks(
  file: Deno.FsFile,
  offset: number,
  count: number | null,
  send: (chunk: Uint8Array) => Promise<void>,
): Promise<number> {
  const buffer = new Uint8Array(64 * 1024);
  let total = 0;
  const before = await file.seek(0, Deno.SeekMode.Current);
  await file.seek(offset, Deno.SeekMode.Start);
  try {
    while (count === null || total < count) {
      const want = count === null
        ? buffer.length
        : Math.min(buffer.length, count - total);
      const n = await file.read(buffer.subarray(0, want));
      if (n === null || n === 0) break;
      await send(buffer.slice(0, n));
      total += n;
    }
  } finally {
    // As asyncio: the file moves only past what was sent (not at all for
    // nothing sent).
    await file.seek(total > 0 ? offset + total : before, Deno.SeekMode.Start);
  }
  return total;
}

/**
 * asyncio's `_SendfileFallbackProtocol`: stands in for the protocol while
 * `loop.sendfile` writes, to follow `pauseWriting`/`resumeWriting`.
 */
class SendfileFallback {
  #transport: SendfileTransport;
  #protocol: BaseProtocol;
  #wasReading: boolean;
  #paused: boolean;
  /** Whether the protocol had been told to pause when the stand-in took over. */
  #pausedAtStart: boolean;
  #waiters: Array<{ resolve: () => void; reject: (e: unknown) => void }> = [];
  #lost: Error | null = null;
  #restored = false;

  constructor(transport: SendfileTransport) {
    this.#transport = transport;
    this.#protocol = transport.getProtocol();
    this.#wasReading = transport.isReading?.() ?? false;
    const [, high] = transport.getWriteBufferLimits();
    this.#paused = transport.getWriteBufferSize() > high;
    this.#pausedAtStart = this.#paused;
    if (this.#wasReading) transport.pauseReading?.();
    // deno-lint-ignore no-this-alias
    const self = this;
    const stand = {
      connectionMade() {},
      pauseWriting() {
        self.#paused = true;
      },
      resumeWriting() {
        self.#paused = false;
        for (const w of self.#waiters.splice(0)) w.resolve();
      },
      dataReceived() {},
      eofReceived() {
        return true;
      },
      connectionLost(exc: Error | null) {
        self.#lost = exc ?? new Deno.errors.ConnectionReset("Connection lost");
        for (const w of self.#waiters.splice(0)) w.reject(self.#lost);
        self.restore();
        self.#protocol.connectionLost(exc);
      },
    };
    transport.setProtocol(stand as unknown as BaseProtocol);
  }

  /** Resolves once writing is not paused; rejects if the connection was lost. */
  ready(): Promise<void> {
    if (this.#lost !== null) return Promise.reject(this.#lost);
    if (this.#transport.isClosing()) {
      return Promise.reject(
        new Deno.errors.BadResource("The transport is closing"),
      );
    }
    if (!this.#paused) return Promise.resolve();
    return new Promise((resolve, reject) =>
      this.#waiters.push({ resolve, reject })
    );
  }

  /** Gives the transport its protocol back and resumes reading. */
  restore(): void {
    if (this.#restored) return;
    this.#restored = true;
    this.#transport.setProtocol(this.#protocol);
    if (this.#lost !== null) return;
    if (this.#wasReading) this.#transport.resumeReading?.();
    // Tell the protocol what changed while the stand-in listened.
    if (this.#paused && !this.#pausedAtStart) this.#protocol.pauseWriting();
    if (!this.#paused && this.#pausedAtStart) this.#protocol.resumeWriting();
  }
}
