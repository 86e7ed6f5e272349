// The native backend's stream handles: a connected TCP or Unix stream
// socket (reads done synchronously when epoll says readable, writes tried
// at once and finished on EPOLLOUT), a listening socket (accept4 while
// readable, capped per turn), and the non-blocking connect of one
// descriptor that the backend's connectTcp/connectUnix build on.

import type {
  AcceptSink,
  ListenerHandle,
  ReadSink,
  SocketOptionAccess,
  StreamHandle,
} from "./_backend.ts";
import {
  AF_UNIX,
  E,
  EPOLLERR,
  EPOLLHUP,
  EPOLLIN,
  EPOLLOUT,
  errno,
  IPPROTO_TCP,
  MAX_IO,
  osError,
  SEND_FLAGS,
  SHUT_WR,
  SO_KEEPALIVE,
  SOCK_CLOEXEC,
  SOCK_NONBLOCK,
  SOL_SOCKET,
  sys,
  TCP_NODELAY,
} from "./_native_libc.ts";
import {
  bigSizes,
  closedError,
  closeFd,
  lingerZero,
  optionAccess,
  peerName,
  setOption,
  sockName,
  startConnect,
  takeError,
} from "./_native_net.ts";
import { type Pollable, type Poller, poller } from "./_native_poller.ts";
import { SockaddrBuffer } from "./_native_sockaddr.ts";
import { abortReason } from "./_readiness.ts";

const EAGAIN = 11;
const EINTR = 4;
const EINPROGRESS = 115;
/** Reads of one connection per event when each fills its buffer. */
const READS_PER_EVENT = 4;
/** Connections accepted per event (an accept storm must not starve timers). */
const ACCEPTS_PER_EVENT = 32;

/** The BigInt length of a send. */
const writeSize = bigSizes();

/** A connected stream socket on a non-blocking descriptor. */
export class NativeStreamHandle implements StreamHandle, Pollable {
  readonly syncReads = true;
  readonly resource = null;
  readonly fd: number;
  pollGen = 0;
  pollEvents = 0;
  readonly options: SocketOptionAccess;
  readonly #poller: Poller;
  readonly #tcp: boolean;
  #sink: ReadSink | null = null;
  #reading = false;
  #readsOver = false;
  #readLength = -1;
  #readBig = 0n;
  #pendingWrite: Uint8Array | null = null;
  #writeResolve: ((n: number) => void) | null = null;
  #writeReject: ((error: Error) => void) | null = null;
  #closed: Promise<void> | null = null;
  #local: Deno.Addr | undefined;
  #remote: Deno.Addr | undefined;

  /**
   * Takes ownership of connected `fd` (of address family `family`); the
   * peer's address when known (accept and connect know it: the kernel
   * forgets it once the connection is gone).
   */
  constructor(fd: number, family: number, remote?: Deno.Addr) {
    this.fd = fd;
    this.#tcp = family !== AF_UNIX;
    this.#remote = remote;
    this.#poller = poller();
    this.#poller.attach(this);
    this.options = optionAccess(() => this.#openFd());
  }

  localAddr(): Deno.Addr | undefined {
    if (this.#local === undefined && this.#closed === null) {
      this.#local = sockName(this.fd, "tcp", "unix");
    }
    return this.#local;
  }

  remoteAddr(): Deno.Addr | undefined {
    if (this.#remote === undefined && this.#closed === null) {
      try {
        this.#remote = peerName(this.fd, "tcp", "unix");
      } catch {
        return undefined;
      }
    }
    return this.#remote;
  }

  readStart(sink: ReadSink): void {
    if (this.#closed !== null || this.#readsOver) return;
    this.#sink = sink;
    if (this.#reading) return;
    this.#reading = true;
    this.#interest();
  }

  readStop(): void {
    if (!this.#reading) return;
    this.#reading = false;
    if (this.#closed === null) this.#interest();
  }

  write(data: Uint8Array): number | Promise<number> {
    if (this.#closed !== null) throw closedError();
    if (this.#pendingWrite !== null) {
      throw new Deno.errors.Busy("A write is already in flight on this socket");
    }
    if (data.length === 0) return 0;
    const n = this.#send(data);
    if (n > 0) return n;
    if (n < 0) throw osError(-n);
    this.#pendingWrite = data;
    const { promise, resolve, reject } = Promise.withResolvers<number>();
    // Rejected by close() if the caller went away meanwhile: not unhandled.
    promise.catch(() => {});
    this.#writeResolve = resolve;
    this.#writeReject = reject;
    this.#interest();
    return promise;
  }

  /**
   * Sends what the kernel takes now and returns its length (0 when it
   * would block or a write is in flight); never keeps `data`.
   */
  trySend(data: Uint8Array): number {
    if (this.#closed !== null) throw closedError();
    if (this.#pendingWrite !== null || data.length === 0) return 0;
    const n = this.#send(data);
    if (n < 0) throw osError(-n);
    return n;
  }

  shutdownWrite(): Promise<void> {
    if (this.#closed !== null) return Promise.reject(closedError());
    if (sys.shutdown(this.fd, SHUT_WR) < 0) {
      return Promise.reject(osError(errno(), "shutdown"));
    }
    return Promise.resolve();
  }

  setNoDelay(enabled: boolean): void {
    if (this.#tcp && this.#closed === null) {
      setOption(this.fd, IPPROTO_TCP, TCP_NODELAY, enabled ? 1 : 0);
    }
  }

  setKeepAlive(enabled: boolean): void {
    if (this.#tcp && this.#closed === null) {
      setOption(this.fd, SOL_SOCKET, SO_KEEPALIVE, enabled ? 1 : 0);
    }
  }

  close(): Promise<void> {
    if (this.#closed !== null) return this.#closed;
    this.#reading = false;
    this.#sink = null;
    // Addresses stay readable after the close.
    this.localAddr();
    this.remoteAddr();
    this.#closed = Promise.resolve();
    const reject = this.#writeReject;
    this.#pendingWrite = null;
    this.#writeResolve = this.#writeReject = null;
    this.#poller.detach(this);
    closeFd(this.fd);
    reject?.(closedError());
    return this.#closed = this.#poller.settled();
  }

  abort(): Promise<void> {
    if (this.#closed === null) lingerZero(this.fd);
    return this.close();
  }

  onPoll(events: number): void {
    if (this.#reading) this.#read();
    if (
      this.#pendingWrite !== null &&
      (events & (EPOLLOUT | EPOLLERR | EPOLLHUP)) !== 0
    ) {
      this.#flushWrite();
    }
  }

  #openFd(): number {
    if (this.#closed !== null) throw closedError();
    return this.fd;
  }

  #interest(): void {
    this.#poller.watch(
      this,
      (this.#reading ? EPOLLIN : 0) |
        (this.#pendingWrite !== null ? EPOLLOUT : 0),
    );
  }

  #read(): void {
    for (let budget = READS_PER_EVENT; this.#reading;) {
      const sink = this.#sink!;
      // After a read that filled its buffer, the next is ahead of data.
      const ahead = budget !== READS_PER_EVENT;
      const buffer = sink.readBuffer(ahead);
      if (!this.#reading) return;
      const length = buffer.length < MAX_IO ? buffer.length : MAX_IO;
      if (length !== this.#readLength) {
        // No room now: ask again at the next readiness (level-triggered).
        if (length === 0 && ahead) return;
        if (length === 0) {
          this.#endReads();
          sink.readError(
            new RangeError("The read buffer given to the socket is empty"),
          );
          return;
        }
        this.#readLength = length;
        this.#readBig = BigInt(length);
      }
      const n = sys.recv(this.fd, buffer, this.#readBig, 0);
      if (n > 0) {
        sink.readDone(buffer, n);
        if (n < length || --budget === 0) return;
        continue;
      }
      if (n === 0) {
        this.#endReads();
        sink.readEof();
        return;
      }
      const code = errno();
      if (code === EAGAIN) return;
      if (code === EINTR) continue;
      this.#endReads();
      sink.readError(osError(code));
      return;
    }
  }

  #endReads(): void {
    this.#readsOver = true;
    this.#reading = false;
    if (this.#closed === null) this.#interest();
  }

  /**
   * One `send` of a non-empty prefix of `data` (retried on EINTR): the
   * bytes sent, 0 when the kernel would block, or -errno.
   */
  #send(data: Uint8Array): number {
    const length = data.length < MAX_IO ? data.length : MAX_IO;
    for (;;) {
      const n = sys.send(this.fd, data, writeSize(length), SEND_FLAGS);
      if (n > 0) return n;
      const code = errno();
      if (code === EAGAIN) return 0;
      if (code !== EINTR) return -code;
    }
  }

  #flushWrite(): void {
    const n = this.#send(this.#pendingWrite!);
    if (n === 0) return;
    const resolve = this.#writeResolve!;
    const reject = this.#writeReject!;
    this.#pendingWrite = null;
    this.#writeResolve = this.#writeReject = null;
    this.#interest();
    if (n > 0) resolve(n);
    else reject(osError(-n));
  }
}

/** A listening stream socket. */
export class NativeListenerHandle implements ListenerHandle, Pollable {
  readonly resource = null;
  readonly fd: number;
  readonly addr: Deno.Addr;
  readonly options: SocketOptionAccess;
  pollGen = 0;
  pollEvents = 0;
  readonly #poller: Poller;
  readonly #family: number;
  readonly #unlinkOnClose: { path: string; dev: number; ino: number } | null;
  readonly #from = new SockaddrBuffer();
  #sink: AcceptSink | null = null;
  #accepting = false;
  #closed: Promise<void> | null = null;

  /**
   * Takes ownership of listening `fd`. A Unix listener given `unlinkOnClose`
   * removes its socket file on close if the file is still that socket (as
   * Deno's listeners do).
   */
  constructor(
    fd: number,
    family: number,
    unlinkOnClose: { path: string; dev: number; ino: number } | null = null,
  ) {
    this.fd = fd;
    this.#family = family;
    this.#unlinkOnClose = unlinkOnClose;
    const addr = sockName(fd, "tcp", "unix");
    if (addr === undefined) throw osError(errno(), "getsockname");
    this.addr = addr;
    this.#poller = poller();
    this.#poller.attach(this);
    this.options = optionAccess(() => {
      if (this.#closed !== null) throw closedError();
      return this.fd;
    });
  }

  acceptStart(sink: AcceptSink): void {
    if (this.#closed !== null) return;
    this.#sink = sink;
    if (this.#accepting) return;
    this.#accepting = true;
    this.#poller.watch(this, EPOLLIN);
  }

  acceptStop(): void {
    if (!this.#accepting) return;
    this.#accepting = false;
    if (this.#closed === null) this.#poller.watch(this, 0);
  }

  close(): Promise<void> {
    if (this.#closed !== null) return this.#closed;
    this.#accepting = false;
    this.#sink = null;
    this.#closed = Promise.resolve();
    this.#poller.detach(this);
    closeFd(this.fd);
    const file = this.#unlinkOnClose;
    if (file !== null) {
      try {
        const info = Deno.lstatSync(file.path);
        if (info.dev === file.dev && info.ino === file.ino) {
          Deno.removeSync(file.path);
        }
      } catch {
        // Gone already, or not ours to remove.
      }
    }
    return this.#closed = this.#poller.settled();
  }

  onPoll(): void {
    for (let i = 0; i < ACCEPTS_PER_EVENT && this.#accepting; i++) {
      const from = this.#from;
      const fd = sys.accept4(
        this.fd,
        from.bytes,
        from.prepare(),
        SOCK_NONBLOCK | SOCK_CLOEXEC,
      );
      if (fd >= 0) {
        this.#sink!.accepted(
          new NativeStreamHandle(
            fd,
            this.#family,
            from.decode("tcp", "unix", this.#family),
          ),
        );
        continue;
      }
      const code = errno();
      if (code === EAGAIN) return;
      if (
        code === EINTR || code === E.ECONNABORTED || code === E.EPROTO ||
        code === E.EPERM
      ) {
        continue;
      }
      // EMFILE, ENFILE, ENOBUFS, ENOMEM: stop until acceptStart() again.
      const sink = this.#sink!;
      this.acceptStop();
      sink.acceptError(osError(code, "accept"));
      return;
    }
  }
}

/**
 * Waits for a non-blocking connect of `fd` to `address` (`bytes`, `length`)
 * to finish: resolves when connected, rejects with the connect error or
 * the signal's reason. Does not close `fd`.
 */
export function connectFd(
  fd: number,
  bytes: Uint8Array,
  length: number,
  signal?: AbortSignal,
  context?: string,
): Promise<void> {
  if (signal?.aborted) return Promise.reject(abortReason(signal));
  const code = startConnect(fd, bytes, length);
  if (code === 0) return Promise.resolve();
  if (code !== EINPROGRESS && code !== EAGAIN && code !== EINTR) {
    return Promise.reject(osError(code, context));
  }
  return new ConnectWait(fd, signal, context).promise;
}

/** One connect in progress: EPOLLOUT, then SO_ERROR tells the outcome. */
class ConnectWait implements Pollable {
  readonly fd: number;
  pollGen = 0;
  pollEvents = 0;
  readonly promise: Promise<void>;
  readonly #poller = poller();
  readonly #signal: AbortSignal | undefined;
  readonly #context: string | undefined;
  #resolve!: () => void;
  #reject!: (error: unknown) => void;

  constructor(fd: number, signal: AbortSignal | undefined, context?: string) {
    this.fd = fd;
    this.#signal = signal;
    this.#context = context;
    this.promise = new Promise<void>((resolve, reject) => {
      this.#resolve = resolve;
      this.#reject = reject;
    });
    this.#poller.attach(this);
    this.#poller.watch(this, EPOLLOUT);
    signal?.addEventListener("abort", this.#onAbort, { once: true });
  }

  onPoll(): void {
    const code = takeError(this.fd);
    this.#finish();
    if (code === 0) this.#resolve();
    else this.#reject(osError(code, this.#context));
  }

  #onAbort = (): void => {
    this.#finish();
    this.#reject(abortReason(this.#signal!));
  };

  #finish(): void {
    this.#signal?.removeEventListener("abort", this.#onAbort);
    this.#poller.detach(this);
  }
}
