// Shared test helpers: a timeout that cleans up after itself, a protocol
// that records its callbacks, raw Deno peers (a listener and an echo
// server) that do not go through aionet, which I/O backend the run uses,
// socket options read from the kernel, and a few byte utilities.
//
// Everything here is safe under `--sanitize-ops --sanitize-resources`:
// timers are cleared and every resource is closed by its `close()`.

import { Protocol } from "../protocols.ts";
import type { Transport } from "../transports.ts";
import { EventLoop, type ExceptionContext, getEventLoop } from "../events.ts";

// ---- Which I/O backend the suite runs on ----

/** The I/O backends a test can be about. */
export type BackendName = "deno" | "native";

/**
 * The backend `AIONET_BACKEND` selects, read as `_io.ts` reads it (only
 * when the env permission for it is granted; unset or empty: Deno's). A
 * name that is no backend fails here, as the library would at first use.
 */
function backendOfEnvironment(): BackendName {
  let value: string | undefined;
  try {
    const state = Deno.permissions.querySync({
      name: "env",
      variable: "AIONET_BACKEND",
    }).state;
    value = state === "granted"
      ? Deno.env.get("AIONET_BACKEND") || undefined
      : undefined;
  } catch {
    value = undefined;
  }
  if (value === undefined || value === "deno") return "deno";
  if (value === "native") return "native";
  throw new Error(`AIONET_BACKEND=${value} names no backend: deno or native`);
}

/**
 * The backend this test run uses: `"native"` under
 * `AIONET_BACKEND=native` (`deno task test-native`), else `"deno"`.
 */
export const BACKEND: BackendName = backendOfEnvironment();

/**
 * `Deno.test` options that run a test on `backend` only: elsewhere it is
 * reported as ignored (never as passed). For tests of one backend's own
 * behaviour (the Deno backend's emulation and its `NotSupported` reasons);
 * say why in the test's name, e.g. `"… (Deno backend: emulated buffers)"`.
 *
 * ```ts
 * Deno.test("… (Deno backend: …)", onBackend("deno"), async () => {});
 * ```
 */
export function onBackend(backend: BackendName): { ignore: boolean } {
  return { ignore: BACKEND !== backend };
}

/**
 * A test of the native backend's own behaviour in a suite that runs on
 * either backend: ignored on the Deno backend; on the native backend run
 * with the descriptor-leak and idle-poller checks of `nativeTest`
 * (`_native_fd_check.ts`, loaded only then: it needs the native backend).
 */
export function nativeBackendTest(
  name: string,
  fn: (t: Deno.TestContext) => void | Promise<void>,
): void {
  Deno.test(name, onBackend("native"), async (t) => {
    const { withLeakChecks } = await import("./_native_fd_check.ts");
    await withLeakChecks(() => fn(t));
  });
}

/**
 * A test on whichever backend the run uses; on the native one run with the
 * descriptor-leak and idle-poller checks of `_native_fd_check.ts`.
 */
export function leakCheckedTest(
  name: string,
  fn: () => void | Promise<void>,
  options: { ignore?: boolean } = {},
): void {
  Deno.test({ name, ...options }, async () => {
    if (BACKEND !== "native") return await fn();
    const { withLeakChecks } = await import("./_native_fd_check.ts");
    await withLeakChecks(fn);
  });
}

/** UTF-8 encodes `text`. */
export function encode(text: string): Uint8Array {
  return new TextEncoder().encode(text);
}

/** UTF-8 decodes `bytes`. */
export function decode(bytes: Uint8Array): string {
  return new TextDecoder().decode(bytes);
}

/** Joins `chunks` into one array. */
export function concat(chunks: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let offset = 0;
  for (const chunk of chunks) {
    out.set(chunk, offset);
    offset += chunk.length;
  }
  return out;
}

/** `size` deterministic, non-repeating-looking bytes (to check integrity). */
export function pattern(size: number, seed = 1): Uint8Array {
  const out = new Uint8Array(size);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < size; i++) {
    // xorshift32
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

/**
 * Resolves or rejects as `promise`, or rejects with an `Error` naming `what`
 * after `ms` milliseconds. The timer is always cleared, so the op sanitizer
 * stays quiet.
 */
export async function withTimeout<T>(
  promise: Promise<T> | PromiseLike<T>,
  ms = 5000,
  what = "operation",
): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`Timed out after ${ms} ms waiting for ${what}`)),
      ms,
    );
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * A `Protocol` that records every callback, in order, in `events`
 * (`"made"`, `"data"`, `"eof"`, `"lost"`, `"pauseWriting"`,
 * `"resumeWriting"`), keeps the data it got, and exposes promises to wait on.
 *
 * `eofResult` is what `eofReceived()` returns (default `false`: the
 * transport closes itself). Subclass and call `super.x()` to add behaviour.
 */
export class RecordingProtocol extends Protocol {
  /** Callback names in call order. */
  readonly events: string[] = [];
  /** Each `dataReceived` chunk. */
  readonly chunks: Uint8Array[] = [];
  /** The transport given to `connectionMade`. */
  transport: Transport | null = null;
  /** What `eofReceived()` returns. */
  eofResult: boolean;
  /** `undefined` until `connectionLost`, then its argument. */
  lostError: Error | null | undefined = undefined;
  /** Resolves with the transport at `connectionMade`. */
  readonly made: Promise<Transport>;
  /** Resolves at `eofReceived`. */
  readonly eof: Promise<void>;
  /** Resolves with the error (or `null`) at `connectionLost`. */
  readonly lost: Promise<Error | null>;

  #resolveMade: (t: Transport) => void;
  #resolveEof: () => void;
  #resolveLost: (e: Error | null) => void;
  #waiters: Array<
    { n: number; resolve: () => void; reject: (e: Error) => void }
  > = [];

  constructor(options: { eofResult?: boolean } = {}) {
    super();
    this.eofResult = options.eofResult ?? false;
    const made = Promise.withResolvers<Transport>();
    const eof = Promise.withResolvers<void>();
    const lost = Promise.withResolvers<Error | null>();
    this.made = made.promise;
    this.eof = eof.promise;
    this.lost = lost.promise;
    this.#resolveMade = made.resolve;
    this.#resolveEof = eof.resolve;
    this.#resolveLost = lost.resolve;
  }

  /** Number of bytes received so far. */
  get receivedLength(): number {
    return this.chunks.reduce((n, c) => n + c.length, 0);
  }

  /** All bytes received so far, joined. */
  received(): Uint8Array {
    return concat(this.chunks);
  }

  /** The received bytes as text. */
  text(): string {
    return decode(this.received());
  }

  /**
   * Resolves once at least `n` bytes were received; rejects if the
   * connection is lost first, or after `ms`.
   */
  waitForBytes(n: number, ms = 5000): Promise<Uint8Array> {
    if (this.receivedLength >= n) return Promise.resolve(this.received());
    if (this.lostError !== undefined) {
      return Promise.reject(
        new Error(`Connection lost with ${this.receivedLength}/${n} bytes`),
      );
    }
    const { promise, resolve, reject } = Promise.withResolvers<void>();
    this.#waiters.push({ n, resolve, reject });
    return withTimeout(promise, ms, `${n} bytes`).then(() => this.received());
  }

  override connectionMade(transport: Transport): void {
    this.events.push("made");
    this.transport = transport;
    this.#resolveMade(transport);
  }

  override dataReceived(data: Uint8Array): void {
    this.events.push("data");
    this.chunks.push(data);
    const length = this.receivedLength;
    this.#waiters = this.#waiters.filter((w) => {
      if (length < w.n) return true;
      w.resolve();
      return false;
    });
  }

  override eofReceived(): boolean {
    this.events.push("eof");
    this.#resolveEof();
    return this.eofResult;
  }

  override pauseWriting(): void {
    this.events.push("pauseWriting");
  }

  override resumeWriting(): void {
    this.events.push("resumeWriting");
  }

  override connectionLost(exc: Error | null): void {
    this.events.push("lost");
    this.lostError = exc;
    for (const w of this.#waiters.splice(0)) {
      w.reject(new Error(`Connection lost with ${this.receivedLength} bytes`));
    }
    this.#resolveLost(exc);
  }

  /** `events` without flow-control entries, runs of `"data"` folded to `"data*"`. */
  order(): string {
    return this.events
      .filter((e) => e !== "pauseWriting" && e !== "resumeWriting")
      .join(" ")
      .replace(/data( data)*/g, "data*");
  }
}

/** Reads `conn` until EOF (or `limit` bytes) and returns what it read. */
export async function readAll(
  conn: Deno.Conn,
  limit = Infinity,
): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  const buffer = new Uint8Array(64 * 1024);
  let total = 0;
  while (total < limit) {
    const n = await conn.read(
      buffer.subarray(0, Math.min(buffer.length, limit - total)),
    );
    if (n === null) break;
    chunks.push(buffer.slice(0, n));
    total += n;
  }
  return concat(chunks);
}

/** Reads exactly `n` bytes from `conn`; throws if EOF comes first. */
export async function readExactly(
  conn: Deno.Conn,
  n: number,
): Promise<Uint8Array> {
  const data = await readAll(conn, n);
  if (data.length !== n) {
    throw new Error(`EOF after ${data.length} of ${n} bytes`);
  }
  return data;
}

/** Writes all of `data` to `conn` (loops on partial writes). */
export async function writeAll(conn: Deno.Conn, data: Uint8Array) {
  let offset = 0;
  while (offset < data.length) {
    offset += await conn.write(data.subarray(offset));
  }
}

/** A raw `Deno.listen` on 127.0.0.1:0, for tests that need a plain peer. */
export interface RawListener {
  /** The port picked. */
  port: number;
  /** The listener's address. */
  addr: Deno.NetAddr;
  /** Accepts one connection (closed by `close()` too). */
  accept(): Promise<Deno.TcpConn>;
  /** Closes the listener and every connection it accepted. */
  close(): void;
}

/** Listens on 127.0.0.1 port 0 with plain Deno; see {@linkcode RawListener}. */
export function listenRaw(hostname = "127.0.0.1"): RawListener {
  const listener = Deno.listen({ hostname, port: 0 });
  const conns: Deno.Conn[] = [];
  const addr = listener.addr;
  return {
    port: addr.port,
    addr,
    async accept() {
      const conn = await listener.accept();
      conns.push(conn);
      return conn;
    },
    close() {
      for (const resource of [listener, ...conns]) {
        try {
          resource.close();
        } catch {
          // Already closed.
        }
      }
    },
  };
}

/** A plain-Deno TCP echo server on 127.0.0.1 with a free port. */
export interface EchoServer {
  /** The port picked. */
  port: number;
  /** Connections accepted so far. */
  accepted: number;
  /** Stops listening, closes every connection and waits for the loops. */
  close(): Promise<void>;
  /** `await using echo = startEchoServer()`. */
  [Symbol.asyncDispose](): Promise<void>;
}

/**
 * Starts an echo server built on plain Deno (not aionet): it echoes every
 * byte and half-closes when the client half-closes.
 */
export function startEchoServer(): EchoServer {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const conns = new Set<Deno.Conn>();
  const loops: Promise<void>[] = [];
  const server: EchoServer = {
    port: listener.addr.port,
    accepted: 0,
    async close() {
      try {
        listener.close();
      } catch {
        // Already closed.
      }
      for (const conn of conns) {
        try {
          conn.close();
        } catch {
          // Already closed.
        }
      }
      await Promise.allSettled(loops);
    },
    [Symbol.asyncDispose]() {
      return server.close();
    },
  };
  const echo = async (conn: Deno.Conn) => {
    const buffer = new Uint8Array(64 * 1024);
    try {
      while (true) {
        const n = await conn.read(buffer);
        if (n === null) break;
        await writeAll(conn, buffer.subarray(0, n));
      }
      await conn.closeWrite();
    } catch {
      // Closed by close() or by the peer.
    } finally {
      conns.delete(conn);
      try {
        conn.close();
      } catch {
        // Already closed.
      }
    }
  };
  loops.push((async () => {
    try {
      for await (const conn of listener) {
        server.accepted++;
        conns.add(conn);
        loops.push(echo(conn));
      }
    } catch {
      // Listener closed.
    }
  })());
  return server;
}

/** Whether this machine can listen on `::1`. */
export function hasIpv6Loopback(): boolean {
  try {
    Deno.listen({ hostname: "::1", port: 0 }).close();
    return true;
  } catch {
    return false;
  }
}

// ---- Socket options (Linux only), read through libc with FFI ----

/** `getsockopt` levels and names (Linux values). */
export const SOL_SOCKET = 1;
export const SO_KEEPALIVE = 9;
export const SO_REUSEPORT = 15;
export const IPPROTO_TCP = 6;
export const TCP_NODELAY = 1;

function hexPort(port: number): string {
  return port.toString(16).toUpperCase().padStart(4, "0");
}

/** The socket inode of a TCP socket from /proc/net/tcp{,6}, by ports. */
function tcpInode(localPort: number, remotePort: number): string | undefined {
  for (const file of ["/proc/net/tcp", "/proc/net/tcp6"]) {
    let text: string;
    try {
      text = Deno.readTextFileSync(file);
    } catch {
      continue;
    }
    for (const line of text.split("\n").slice(1)) {
      const cols = line.trim().split(/\s+/);
      if (cols.length < 10) continue;
      if (
        cols[1].endsWith(`:${hexPort(localPort)}`) &&
        cols[2].endsWith(`:${hexPort(remotePort)}`)
      ) return cols[9];
    }
  }
  return undefined;
}

/**
 * Reads an integer socket option of descriptor `fd` of this process with
 * libc `getsockopt` (loaded for the call and closed again), independently
 * of aionet's own option code. Linux only; needs `--allow-ffi`.
 */
export function fdSockOpt(fd: number, level: number, name: number): number {
  const libc = Deno.dlopen("libc.so.6", {
    getsockopt: {
      parameters: ["i32", "i32", "i32", "buffer", "buffer"],
      result: "i32",
    },
  });
  try {
    const value = new Int32Array(1);
    const length = new Uint32Array([4]);
    const rc = libc.symbols.getsockopt(fd, level, name, value, length);
    if (rc !== 0) throw new Error(`getsockopt failed on fd ${fd}`);
    return value[0];
  } finally {
    libc.close();
  }
}

/**
 * Reads an integer socket option of this process's TCP socket with local
 * port `localPort` and remote port `remotePort` (0 for a listener), via
 * /proc and libc `getsockopt`. Linux only; needs `--allow-ffi --allow-read`.
 * Deno exposes no getter for socket options, so this is the only way to
 * observe e.g. `TCP_NODELAY` without timing.
 */
export function getTcpSockOpt(
  localPort: number,
  remotePort: number,
  level: number,
  name: number,
): number {
  const inode = tcpInode(localPort, remotePort);
  if (inode === undefined) {
    throw new Error(`No TCP socket ${localPort} -> ${remotePort} in /proc`);
  }
  let fd = -1;
  for (const entry of Deno.readDirSync("/proc/self/fd")) {
    try {
      if (
        Deno.readLinkSync(`/proc/self/fd/${entry.name}`) === `socket:[${inode}]`
      ) {
        fd = Number(entry.name);
        break;
      }
    } catch {
      // The fd closed meanwhile.
    }
  }
  if (fd < 0) throw new Error(`Socket inode ${inode} is not open here`);
  return fdSockOpt(fd, level, name);
}

/** An integer socket option of a TCP `Deno.Conn` (see {@linkcode getTcpSockOpt}). */
export function connSockOpt(conn: Deno.Conn, level: number, name: number) {
  const local = conn.localAddr as Deno.NetAddr;
  const remote = conn.remoteAddr as Deno.NetAddr;
  return getTcpSockOpt(local.port, remote.port, level, name);
}

/**
 * An integer socket option of a transport's socket, as the kernel has it:
 * on the Deno backend through its `Deno.Conn` (`getExtraInfo("conn")`, see
 * {@linkcode connSockOpt}); on the native backend, which has no Deno
 * resource, through the real descriptor of `getExtraInfo("socket")`.
 */
export function transportSockOpt(
  transport: { getExtraInfo(name: string): unknown },
  level: number,
  name: number,
): number {
  if (BACKEND === "native") {
    const socket = transport.getExtraInfo("socket") as { fileno(): number };
    return fdSockOpt(socket.fileno(), level, name);
  }
  return connSockOpt(transport.getExtraInfo("conn") as Deno.Conn, level, name);
}

/**
 * The socket that descriptor `fd` of this process is (`socket:[inode]`),
 * or `null` if `fd` is not an open socket. For checks that a native
 * `fileno()` is a real descriptor, and that closing released it.
 */
export function socketOfFd(fd: number): string | null {
  try {
    const target = Deno.readLinkSync(`/proc/self/fd/${fd}`);
    return target.startsWith("socket:[") ? target : null;
  } catch {
    return null;
  }
}

/**
 * The accept-queue limit (backlog) of the TCP listener on `port`, as `ss`
 * reports it (Send-Q of a LISTEN socket). Linux with iproute2 only.
 */
export function listenBacklog(port: number): number {
  const out = new Deno.Command("ss", {
    args: ["-ltnH", `sport = :${port}`],
    stdout: "piped",
    stderr: "piped",
  }).outputSync();
  const line = decode(out.stdout).trim().split("\n")[0] ?? "";
  const cols = line.split(/\s+/);
  if (cols[0] !== "LISTEN") throw new Error(`No listener on ${port}: ${line}`);
  return Number(cols[2]);
}

// ---- Process limits and load helpers (Linux) ----

/** `RLIMIT_NOFILE` on Linux (x86_64 and aarch64). */
const RLIMIT_NOFILE = 7;

/**
 * Makes sure this process may open at least `min` file descriptors: reads
 * `RLIMIT_NOFILE` and, when the soft limit is lower, raises it (up to the
 * hard limit) with libc `setrlimit` — what `ulimit -n` does in a shell.
 * Returns the soft limit now in force; throws if even the hard limit is
 * below `min`. Linux only; needs `--allow-ffi`.
 */
export function ensureFdLimit(min: number): number {
  const libc = Deno.dlopen("libc.so.6", {
    getrlimit: { parameters: ["i32", "buffer"], result: "i32" },
    setrlimit: { parameters: ["i32", "buffer"], result: "i32" },
  });
  try {
    const limits = new BigUint64Array(2);
    if (libc.symbols.getrlimit(RLIMIT_NOFILE, limits) !== 0) {
      throw new Error("getrlimit(RLIMIT_NOFILE) failed");
    }
    const [soft, hard] = limits;
    if (soft >= BigInt(min)) return Number(soft);
    if (hard < BigInt(min)) {
      throw new Error(
        `Needs ${min} file descriptors but the hard limit is ${hard}: raise it (ulimit -Hn) as root`,
      );
    }
    // Some headroom above `min`, never above the hard limit.
    limits[0] = BigInt(Math.max(min, Math.min(Number(hard), 65536)));
    if (libc.symbols.setrlimit(RLIMIT_NOFILE, limits) !== 0) {
      throw new Error("setrlimit(RLIMIT_NOFILE) failed");
    }
    return Number(limits[0]);
  } finally {
    libc.close();
  }
}

/** Resident set size of this process in MiB (`Deno.memoryUsage().rss`). */
export function rssMiB(): number {
  return Deno.memoryUsage().rss / (1024 * 1024);
}

/**
 * A small seeded PRNG (mulberry32): the same seed gives the same sequence,
 * so a failing randomized case can be replayed from its seed.
 */
export class Prng {
  #state: number;

  constructor(seed: number) {
    this.#state = seed >>> 0;
  }

  /** A float in [0, 1). */
  next(): number {
    let t = (this.#state = (this.#state + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /** An integer in [min, max]. */
  int(min: number, max: number): number {
    return min + Math.floor(this.next() * (max - min + 1));
  }

  /** One element of `items`. */
  pick<T>(items: readonly T[]): T {
    return items[Math.floor(this.next() * items.length)];
  }

  /** True with probability `p`. */
  chance(p: number): boolean {
    return this.next() < p;
  }
}

/** Whether two byte arrays hold the same bytes. */
export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/**
 * Collects what reaches the default loop's exception handler until
 * disposed (`using seen = collectExceptions()`), then restores the
 * default handler.
 */
export function collectExceptions(): {
  contexts: ExceptionContext[];
  messages(): string[];
  [Symbol.dispose](): void;
} {
  const contexts: ExceptionContext[] = [];
  const loop = getEventLoop();
  loop.setExceptionHandler((_loop, context) => contexts.push(context));
  return {
    contexts,
    messages: () => contexts.map((c) => c.message),
    [Symbol.dispose]: () => loop.setExceptionHandler(null),
  };
}

/**
 * Settles as `promise` if it settles within `ms`, else returns the
 * `timedOut` symbol (the timer is cleared either way). For checks that
 * something does *not* happen (a stalled write, a held read).
 */
export async function settlesWithin<T>(
  promise: Promise<T>,
  ms: number,
): Promise<T | typeof timedOut> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<typeof timedOut>((resolve) => {
    timer = setTimeout(() => resolve(timedOut), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** What {@linkcode settlesWithin} returns when the time ran out. */
export const timedOut: unique symbol = Symbol("timedOut");

// ---- Loops of their own ----

/** A fresh loop that collects what reaches its exception handler. */
export function newLoop(): [EventLoop, ExceptionContext[]] {
  const loop = new EventLoop();
  const contexts: ExceptionContext[] = [];
  loop.setExceptionHandler((_loop, context) => contexts.push(context));
  return [loop, contexts];
}

/**
 * Resolves after a timer of `loop` due in `ms` has run: a point by which
 * callbacks and reports that were due earlier have happened.
 */
export async function timerPassed(loop: EventLoop, ms = 20): Promise<void> {
  const passed = loop.createFuture<void>();
  loop.callLater(ms, () => passed.setResult());
  await withTimeout(passed, 5000, `callLater(${ms})`);
}
