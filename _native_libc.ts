// The native backend's view of libc: the platform check, the dlopen of
// libc.so.6 with its symbol table, errno through `__errno_location`, the Linux
// constants the backend uses and the struct layouts of the two supported
// architectures (x86_64, aarch64). libc is loaded at import when FFI is
// already granted, else on first use (importing never needs a permission).
//
// Conventions of the symbol table, for speed (V8 fast calls):
// - `size_t`/`nfds_t` parameters are "usize"/"u64" and take a BigInt
//   (a JS number there takes a slow path several times as costly); hot
//   paths cache the BigInt of a length they repeat.
// - `ssize_t` results of send/recv/read/write are declared "i32": the value
//   is in the low half of the result register and every length passed is
//   capped at `MAX_IO` (< 2^31), so the count and -1 read back exactly, as
//   numbers, with no BigInt.
// - Byte buffers are passed as Uint8Array ("buffer" parameters).

import { errno as errnoTable, errorOfErrno } from "./_errno.ts";

// ---- platform ----

/** Layout facts that differ between the supported architectures. */
export interface ArchLayout {
  /** `Deno.build.arch`. */
  readonly arch: "x86_64" | "aarch64";
  /** `sizeof(struct epoll_event)`: 12 (packed) on x86_64, 16 on aarch64. */
  readonly epollEventSize: number;
  /** Offset of `epoll_event.data` (u64): 4 on x86_64, 8 on aarch64. */
  readonly epollDataOffset: number;
}

const LAYOUTS: Record<string, ArchLayout> = {
  x86_64: { arch: "x86_64", epollEventSize: 12, epollDataOffset: 4 },
  aarch64: { arch: "aarch64", epollEventSize: 16, epollDataOffset: 8 },
};

/** Why native I/O cannot run in this process, or `null` when it can. */
export function platformProblem(): string | null {
  if (Deno.build.os !== "linux") {
    return `the native backend needs Linux (epoll); this is ${Deno.build.os}`;
  }
  if (!(Deno.build.arch in LAYOUTS)) {
    return `the native backend supports x86_64 and aarch64; this CPU is ${Deno.build.arch}`;
  }
  let state: Deno.PermissionState;
  try {
    state = Deno.permissions.querySync({ name: "ffi" }).state;
  } catch {
    state = "denied";
  }
  if (state !== "granted") {
    return "the native backend calls libc through FFI: run with --allow-ffi (or -A)";
  }
  return null;
}

/** The struct layout of this machine (valid once `platformProblem()` is null). */
export const layout: ArchLayout = LAYOUTS[Deno.build.arch] ?? LAYOUTS.x86_64;

// ---- constants (Linux; identical on x86_64 and aarch64) ----

export const AF_UNIX = 1;
export const AF_INET = 2;
export const AF_INET6 = 10;
export const SOCK_STREAM = 1;
export const SOCK_DGRAM = 2;
export const SOCK_NONBLOCK = 0o4000;
export const SOCK_CLOEXEC = 0o2000000;
export const EPOLL_CLOEXEC = 0o2000000;
export const EFD_NONBLOCK = 0o4000;
export const EFD_CLOEXEC = 0o2000000;

export const MSG_DONTWAIT = 0x40;
export const MSG_NOSIGNAL = 0x4000;
/** Flags of every send: never block, never raise SIGPIPE. */
export const SEND_FLAGS = MSG_NOSIGNAL | MSG_DONTWAIT;

export const SHUT_RD = 0;
export const SHUT_WR = 1;
export const SHUT_RDWR = 2;

export const SOL_SOCKET = 1;
export const SO_REUSEADDR = 2;
export const SO_TYPE = 3;
export const SO_ERROR = 4;
export const SO_BROADCAST = 6;
export const SO_SNDBUF = 7;
export const SO_RCVBUF = 8;
export const SO_KEEPALIVE = 9;
export const SO_LINGER = 13;
export const SO_REUSEPORT = 15;
export const SO_ACCEPTCONN = 30;
export const SO_DOMAIN = 39;

export const IPPROTO_IP = 0;
export const IPPROTO_TCP = 6;
export const IPPROTO_UDP = 17;
export const IPPROTO_IPV6 = 41;
export const TCP_NODELAY = 1;
export const IP_MULTICAST_IF = 32;
export const IP_MULTICAST_TTL = 33;
export const IP_MULTICAST_LOOP = 34;
export const IP_ADD_MEMBERSHIP = 35;
export const IP_DROP_MEMBERSHIP = 36;
export const IPV6_MULTICAST_IF = 17;
export const IPV6_MULTICAST_HOPS = 18;
export const IPV6_MULTICAST_LOOP = 19;
export const IPV6_JOIN_GROUP = 20;
export const IPV6_LEAVE_GROUP = 21;
export const IPV6_V6ONLY = 26;

export const EPOLLIN = 0x1;
export const EPOLLOUT = 0x4;
export const EPOLLERR = 0x8;
export const EPOLLHUP = 0x10;
export const EPOLLRDHUP = 0x2000;
/** Edge-triggered (bit 31; as a signed 32-bit value). */
export const EPOLLET = 1 << 31;
export const EPOLL_CTL_ADD = 1;
export const EPOLL_CTL_DEL = 2;
export const EPOLL_CTL_MOD = 3;

export const POLLIN = 0x1;
export const POLLPRI = 0x2;
export const POLLOUT = 0x4;
export const POLLERR = 0x8;
export const POLLHUP = 0x10;
export const POLLNVAL = 0x20;

/** errno values the backend branches on (Linux). */
export const E = {
  ...errnoTable,
  ENOMEM: 12,
  ENFILE: 23,
  EPROTO: 71,
  EMSGSIZE: 90,
  EAFNOSUPPORT: 97,
} as const;

/** The largest length passed to one send/recv (keeps counts in an i32). */
export const MAX_IO = 1 << 30;

// ---- the symbol table ----

const SYMBOLS = {
  __errno_location: { parameters: [], result: "pointer" },
  strerror: { parameters: ["i32"], result: "pointer" },
  socket: { parameters: ["i32", "i32", "i32"], result: "i32" },
  socketpair: {
    parameters: ["i32", "i32", "i32", "buffer"],
    result: "i32",
  },
  bind: { parameters: ["i32", "buffer", "u32"], result: "i32" },
  connect: { parameters: ["i32", "buffer", "u32"], result: "i32" },
  listen: { parameters: ["i32", "i32"], result: "i32" },
  accept4: {
    parameters: ["i32", "buffer", "buffer", "i32"],
    result: "i32",
  },
  getsockname: { parameters: ["i32", "buffer", "buffer"], result: "i32" },
  getpeername: { parameters: ["i32", "buffer", "buffer"], result: "i32" },
  setsockopt: {
    parameters: ["i32", "i32", "i32", "buffer", "u32"],
    result: "i32",
  },
  getsockopt: {
    parameters: ["i32", "i32", "i32", "buffer", "buffer"],
    result: "i32",
  },
  send: { parameters: ["i32", "buffer", "usize", "i32"], result: "i32" },
  recv: { parameters: ["i32", "buffer", "usize", "i32"], result: "i32" },
  sendto: {
    parameters: ["i32", "buffer", "usize", "i32", "buffer", "u32"],
    result: "i32",
  },
  recvfrom: {
    parameters: ["i32", "buffer", "usize", "i32", "buffer", "buffer"],
    result: "i32",
  },
  shutdown: { parameters: ["i32", "i32"], result: "i32" },
  close: { parameters: ["i32"], result: "i32" },
  read: { parameters: ["i32", "buffer", "usize"], result: "i32" },
  write: { parameters: ["i32", "buffer", "usize"], result: "i32" },
  poll: { parameters: ["buffer", "u64", "i32"], result: "i32" },
  eventfd: { parameters: ["u32", "i32"], result: "i32" },
  pipe2: { parameters: ["buffer", "i32"], result: "i32" },
  sched_yield: { parameters: [], result: "i32" },
  epoll_create1: { parameters: ["i32"], result: "i32" },
  epoll_ctl: { parameters: ["i32", "i32", "i32", "buffer"], result: "i32" },
  epoll_wait: {
    parameters: ["i32", "buffer", "i32", "i32"],
    result: "i32",
  },
  /** The parked wait: runs on a Deno worker thread, resolves a promise. */
  epoll_wait_blocking: {
    name: "epoll_wait",
    parameters: ["i32", "buffer", "i32", "i32"],
    result: "i32",
    nonblocking: true,
  },
  getaddrinfo: {
    parameters: ["buffer", "buffer", "buffer", "buffer"],
    result: "i32",
  },
  freeaddrinfo: { parameters: ["pointer"], result: "void" },
  gai_strerror: { parameters: ["i32"], result: "pointer" },
  if_nametoindex: { parameters: ["buffer"], result: "u32" },
} as const;

/** The libc functions, as Deno's FFI exposes them. */
export type Libc = Deno.DynamicLibrary<typeof SYMBOLS>["symbols"];

/**
 * The libc symbols, valid after `openLibc()` (a live binding: modules that
 * import it see the value once loaded).
 */
export let sys: Libc = undefined as unknown as Libc;
let errnoView: Deno.UnsafePointerView | null = null;

/**
 * Loads libc once; throws `Deno.errors.NotSupported` with the reason when
 * the platform or the permissions do not allow it.
 */
export function openLibc(): Libc {
  if (errnoView !== null) return sys;
  const problem = platformProblem();
  if (problem !== null) throw new Deno.errors.NotSupported(problem);
  let lib: Deno.DynamicLibrary<typeof SYMBOLS>;
  try {
    lib = Deno.dlopen("libc.so.6", SYMBOLS);
  } catch (error) {
    throw new Deno.errors.NotSupported(
      `the native backend cannot load libc.so.6 (glibc): ${
        error instanceof Error ? error.message : String(error)
      }`,
    );
  }
  sys = lib.symbols;
  const location = sys.__errno_location();
  if (location === null) {
    throw new Deno.errors.NotSupported(
      "the native backend cannot locate errno (__errno_location returned NULL)",
    );
  }
  errnoView = new Deno.UnsafePointerView(location);
  return sys;
}

// Load at import when allowed (no prompt: permissions are only queried):
// the library is a Deno resource, and one opened inside a test (a backend
// chosen at first use) would be reported by the resource sanitizer.
if (platformProblem() === null) {
  try {
    openLibc();
  } catch {
    // createNativeBackend() reports why, when asked.
  }
}

/**
 * errno of the calling thread: read it right after the call that failed,
 * before anything else runs.
 */
export function errno(): number {
  return errnoView!.getInt32(0);
}

// ---- errors ----

const messages = new Map<number, string>();

/** glibc's text for `code` ("Connection refused"). */
export function strerror(code: number): string {
  let text = messages.get(code);
  if (text === undefined) {
    const pointer = sys.strerror(code);
    text = pointer === null
      ? `Unknown error ${code}`
      : Deno.UnsafePointerView.getCString(pointer);
    messages.set(code, text);
  }
  return text;
}

/**
 * The Deno error for errno `code`, with Deno's message shape
 * ("Connection refused (os error 111)") and an optional context.
 */
export function osError(code: number, context?: string): Error {
  const text = `${strerror(code)} (os error ${code})`;
  return errorOfErrno(
    code,
    context === undefined ? text : `${text}: ${context}`,
  );
}

/** Throws the Deno error for the current errno. */
export function throwErrno(context?: string): never {
  throw osError(errno(), context);
}
