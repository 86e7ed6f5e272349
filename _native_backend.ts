// The native I/O backend: Linux epoll and libc sockets through Deno's FFI,
// behind the seam of _backend.ts. Handles live in _native_stream.ts,
// _native_datagram.ts and _native_socket.ts, the epoll loop in
// _native_poller.ts (which says how it yields to Deno's loop, parks and
// wakes: a kqueue backend would do the same with kevent), libc in
// _native_libc.ts. This module makes them: connecting (names resolved
// asynchronously, Happy Eyeballs over the addresses, a local address bound
// first), listening and binding, with Deno's permission checks first.

import { removeStaleSocket } from "./_unix_path.ts";
import type {
  Backend,
  BindUdpOptions,
  ConnectTcpOptions,
  DatagramHandle,
  ListenerHandle,
  ListenTcpOptions,
  SocketImpl,
  StreamHandle,
} from "./_backend.ts";
import type { Readiness } from "./_readiness.ts";
import { abortReason } from "./_readiness.ts";
import {
  AF_INET,
  AF_INET6,
  AF_UNIX,
  errno,
  IP_MULTICAST_LOOP,
  IPPROTO_IP,
  IPPROTO_IPV6,
  IPV6_MULTICAST_LOOP,
  openLibc,
  osError,
  platformProblem,
  SO_BROADCAST,
  SO_DOMAIN,
  SO_REUSEADDR,
  SO_REUSEPORT,
  SOCK_DGRAM,
  SOCK_STREAM,
  SOL_SOCKET,
  sys,
} from "./_native_libc.ts";
import {
  bindInet,
  bindUnix,
  checkNet,
  checkResolved,
  checkUnixPath,
  closeFd,
  encodeLiteral,
  encodePath,
  getOption,
  openBound,
  openSocket,
  type ResolvedAddress,
  resolveSync,
  setOption,
  unbracket,
} from "./_native_net.ts";
import { literalFamily } from "./_native_sockaddr.ts";
import { poller } from "./_native_poller.ts";
import {
  connectFd,
  NativeListenerHandle,
  NativeStreamHandle,
} from "./_native_stream.ts";
import { NativeDatagramHandle } from "./_native_datagram.ts";
import {
  NativeSocket,
  nativeSocketPair,
  readinessOfFd,
} from "./_native_socket.ts";

/** Whether the native backend can run here, and why not. */
export type NativeAvailability =
  | { available: true }
  | { available: false; reason: string };

/**
 * Whether the native backend can run in this process: Linux, x86_64 or
 * aarch64, FFI permission granted, glibc loadable. Never prompts.
 */
export function nativeAvailability(): NativeAvailability {
  const problem = platformProblem();
  if (problem !== null) return { available: false, reason: problem };
  try {
    openLibc();
  } catch (error) {
    return {
      available: false,
      reason: error instanceof Error ? error.message : String(error),
    };
  }
  return { available: true };
}

// ---- connecting ----

/** Resolves `host` (not a literal) with Deno's resolver, asynchronously. */
async function lookupAll(host: string): Promise<ResolvedAddress[]> {
  const { lookup } = await import("node:dns/promises");
  let results: Array<{ address: string; family: number }>;
  try {
    results = await lookup(host, { all: true });
  } catch (error) {
    const code = (error as { code?: string }).code;
    // node:dns asks net access for the bare name, which a grant scoped to
    // host:port does not give; Deno's own ops need only what was checked
    // (checkNet): resolve with the C library then.
    if (code === "EPERM" || /\bEPERM\b/.test(String(error))) {
      return resolveSync(host);
    }
    const message = `failed to lookup address information: ${
      error instanceof Error ? error.message : String(error)
    }`;
    if (code === "ENOTFOUND" || code === "EAI_NONAME") {
      throw new Deno.errors.NotFound(message);
    }
    throw new Error(message, { cause: error });
  }
  const out: ResolvedAddress[] = [];
  for (const { address, family } of results) {
    const kind = family === 6 ? AF_INET6 : family === 4 ? AF_INET : 0;
    if (kind !== 0 && !out.some((a) => a.address === address)) {
      out.push({ family: kind, address });
    }
  }
  if (out.length === 0) {
    throw new Deno.errors.NotFound(
      `failed to lookup address information: no address for "${host}"`,
    );
  }
  return out;
}

/** Literal `host` at once, else a lookup raced against `signal`. */
async function resolveHost(
  host: string,
  signal: AbortSignal | undefined,
): Promise<ResolvedAddress[]> {
  const family = literalFamily(host);
  if (family !== 0) return [{ family, address: host }];
  if (signal === undefined) return await lookupAll(host);
  const { promise, reject } = Promise.withResolvers<never>();
  const onAbort = () => reject(abortReason(signal));
  signal.addEventListener("abort", onAbort, { once: true });
  try {
    return await Promise.race([lookupAll(host), promise]);
  } finally {
    signal.removeEventListener("abort", onAbort);
  }
}

/**
 * asyncio's `_interleave_addrinfos`: the addresses of the first family
 * (`firstFamilyCount` of them first), then alternating families.
 */
export function interleaveAddresses(
  addresses: ResolvedAddress[],
  firstFamilyCount: number,
): ResolvedAddress[] {
  const byFamily = new Map<number, ResolvedAddress[]>();
  for (const address of addresses) {
    const list = byFamily.get(address.family);
    if (list === undefined) byFamily.set(address.family, [address]);
    else list.push(address);
  }
  const lists = [...byFamily.values()];
  const out: ResolvedAddress[] = [];
  if (firstFamilyCount > 1) {
    out.push(...lists[0].splice(0, firstFamilyCount - 1));
  }
  for (let i = 0; lists.some((list) => i < list.length); i++) {
    for (const list of lists) if (i < list.length) out.push(list[i]);
  }
  return out;
}

/** One error for several failed attempts (the error itself when alone). */
function combineErrors(errors: Error[], host: string, port: number): Error {
  const distinct = [...new Set(errors.map((e) => e.message))];
  if (distinct.length === 1) return errors[0];
  const message = `Multiple exceptions connecting to ${host}:${port}: ${
    distinct.join(", ")
  }`;
  const first = errors[0];
  const sameClass = errors.every((e) => e.constructor === first.constructor);
  const Class = sameClass
    ? first.constructor as new (
      message: string,
      options?: ErrorOptions,
    ) => Error
    : Error;
  return new Class(message, { cause: new AggregateError(errors, message) });
}

/**
 * One connection attempt: a socket of `address`'s family, bound to a local
 * address of that family first if `locals` is given, connected. Resolves
 * to the descriptor; closes it on failure.
 */
async function attempt(
  address: ResolvedAddress,
  port: number,
  locals: ResolvedAddress[] | null,
  localPort: number,
  signal: AbortSignal | undefined,
): Promise<number> {
  const fd = openSocket(address.family, SOCK_STREAM);
  try {
    if (locals !== null) {
      const candidates = locals.filter((l) => l.family === address.family);
      if (candidates.length === 0) {
        throw new Deno.errors.AddrNotAvailable(
          `No local address of the family of ${address.address} to bind (localAddr)`,
        );
      }
      let bound = false;
      let lastError: unknown = null;
      for (const local of candidates) {
        try {
          bindInet(fd, local.address, localPort);
          bound = true;
          break;
        } catch (error) {
          lastError = error;
        }
      }
      if (!bound) throw lastError;
    }
    const [bytes, length] = encodeLiteral(address.address, port);
    await connectFd(
      fd,
      bytes,
      length,
      signal,
      `connecting to ${address.address}:${port}`,
    );
    return fd;
  } catch (error) {
    closeFd(fd);
    throw error;
  }
}

/**
 * RFC 8305 / asyncio's `staggered_race`: attempts start `delay` ms apart
 * (or as soon as the previous one failed); the first to connect wins and
 * the others are aborted and closed.
 */
function staggered(
  order: ResolvedAddress[],
  port: number,
  locals: ResolvedAddress[] | null,
  localPort: number,
  delay: number,
  signal: AbortSignal | undefined,
  host: string,
): Promise<number> {
  return new Promise<number>((resolve, reject) => {
    const controllers: AbortController[] = [];
    const errors: Error[] = [];
    let next = 0;
    let running = 0;
    let done = false;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const finish = () => {
      done = true;
      if (timer !== undefined) clearTimeout(timer);
      timer = undefined;
      signal?.removeEventListener("abort", onAbort);
      for (const controller of controllers) controller.abort();
    };
    const onAbort = () => {
      if (done) return;
      finish();
      reject(abortReason(signal!));
    };
    const startNext = () => {
      if (timer !== undefined) clearTimeout(timer);
      timer = undefined;
      if (done || next >= order.length) return;
      const index = next++;
      const controller = new AbortController();
      controllers.push(controller);
      running++;
      attempt(order[index], port, locals, localPort, controller.signal).then(
        (fd) => {
          running--;
          if (done) {
            closeFd(fd);
            return;
          }
          finish();
          resolve(fd);
        },
        (error) => {
          running--;
          if (done) return;
          errors.push(
            error instanceof Error ? error : new Error(String(error)),
          );
          if (next < order.length) startNext();
          else if (running === 0) {
            finish();
            reject(combineErrors(errors, host, port));
          }
        },
      );
      if (next < order.length) timer = setTimeout(startNext, delay);
    };
    signal?.addEventListener("abort", onAbort, { once: true });
    startNext();
  });
}

/** How {@linkcode connectAddresses} tries its addresses. */
export interface AttemptOptions {
  /** Local addresses to bind first (one of the attempt's family), or null. */
  locals: ResolvedAddress[] | null;
  localPort: number;
  /** Happy Eyeballs delay in ms; sequential attempts when undefined. */
  happyEyeballsDelay?: number;
  /** asyncio's `interleave` (1 by default with Happy Eyeballs). */
  interleave?: number;
  signal?: AbortSignal;
  /** The name connected to, for error messages. */
  host: string;
}

/**
 * Connects to the first of `addresses` (on `port`) that answers: one after
 * another, or staggered (Happy Eyeballs) with `happyEyeballsDelay`.
 * Rejects with the error (several: combined) or the signal's reason;
 * leaves no descriptor and no poller wait behind when it does.
 */
export async function connectAddresses(
  addresses: ResolvedAddress[],
  port: number,
  options: AttemptOptions,
): Promise<StreamHandle> {
  const { locals, localPort, happyEyeballsDelay, signal, host } = options;
  try {
    const interleave = options.interleave ??
      (happyEyeballsDelay !== undefined ? 1 : undefined);
    const order = interleave !== undefined && interleave > 0
      ? interleaveAddresses(addresses, interleave)
      : addresses;
    let fd = -1;
    if (happyEyeballsDelay === undefined || order.length === 1) {
      const errors: Error[] = [];
      for (const address of order) {
        try {
          fd = await attempt(address, port, locals, localPort, signal);
          break;
        } catch (error) {
          if (signal?.aborted) throw abortReason(signal);
          errors.push(
            error instanceof Error ? error : new Error(String(error)),
          );
        }
      }
      if (fd < 0) throw combineErrors(errors, host, port);
    } else {
      fd = await staggered(
        order,
        port,
        locals,
        localPort,
        happyEyeballsDelay,
        signal,
        host,
      );
    }
    // The handle owns the descriptor from here on, whatever happens.
    const handle = new NativeStreamHandle(fd, socketFamily(fd));
    handle.remoteAddr(); // Known now: the kernel forgets it after a reset.
    return handle;
  } catch (error) {
    // Nothing of the attempts is left in the poller; let a parked wait
    // come back before reporting (a test that ends here leaves no op).
    await poller().settled();
    throw error;
  }
}

async function connectTcp(options: ConnectTcpOptions): Promise<StreamHandle> {
  const { port, localAddr, signal } = options;
  if (signal?.aborted) throw abortReason(signal);
  const host = unbracket(options.hostname);
  checkNet(host, port);
  const addresses = await resolveHost(host, signal);
  checkResolved(addresses, port);
  let locals: ResolvedAddress[] | null = null;
  const localPort = localAddr?.port ?? 0;
  if (localAddr !== undefined) {
    const localHost = unbracket(localAddr.hostname ?? "");
    if (localHost === "") {
      checkNet(addresses[0].family === AF_INET6 ? "::" : "0.0.0.0", localPort);
      locals = [
        { family: AF_INET, address: "0.0.0.0" },
        { family: AF_INET6, address: "::" },
      ];
    } else {
      checkNet(localHost, localPort);
      locals = await resolveHost(localHost, signal);
    }
  }
  return await connectAddresses(addresses, port, {
    locals,
    localPort,
    happyEyeballsDelay: options.happyEyeballsDelay,
    interleave: options.interleave,
    signal,
    host,
  });
}

/** The address family of socket `fd`. */
function socketFamily(fd: number): number {
  return getOption(fd, SOL_SOCKET, SO_DOMAIN);
}

async function connectUnix(
  path: string,
  signal?: AbortSignal,
): Promise<StreamHandle> {
  if (signal?.aborted) throw abortReason(signal);
  checkUnixPath(path);
  const fd = openSocket(AF_UNIX, SOCK_STREAM);
  try {
    const [bytes, length] = encodePath(path);
    await connectFd(fd, bytes, length, signal, `connecting to ${path}`);
  } catch (error) {
    closeFd(fd);
    await poller().settled();
    throw error;
  }
  return new NativeStreamHandle(fd, AF_UNIX, { transport: "unix", path });
}

// ---- listening and binding ----

function listenTcp(options: ListenTcpOptions): ListenerHandle {
  const hostname = unbracket(options.hostname ?? "0.0.0.0");
  checkNet(hostname, options.port);
  const address = resolveSync(hostname)[0];
  checkResolved([address], options.port);
  const fd = openBound(address, options.port, SOCK_STREAM, {
    reuseAddress: true,
    reusePort: options.reusePort,
    v6Only: options.ipv6Only,
  });
  if (sys.listen(fd, options.backlog) < 0) {
    const code = errno();
    closeFd(fd);
    throw osError(code, "listen");
  }
  try {
    return new NativeListenerHandle(fd, address.family);
  } catch (error) {
    closeFd(fd);
    throw error;
  }
}

function listenUnix(path: string, backlog: number): ListenerHandle {
  checkUnixPath(path);
  const fd = openSocket(AF_UNIX, SOCK_STREAM);
  try {
    bindUnix(fd, path);
    if (sys.listen(fd, backlog) < 0) throw osError(errno(), "listen");
    let file: { path: string; dev: number; ino: number } | null = null;
    if (!path.startsWith("\0")) {
      const info = Deno.lstatSync(path);
      file = { path, dev: info.dev, ino: info.ino ?? 0 };
    }
    return new NativeListenerHandle(fd, AF_UNIX, file);
  } catch (error) {
    closeFd(fd);
    throw error;
  }
}

function bindUdp(options: BindUdpOptions): DatagramHandle {
  const hostname = unbracket(options.hostname);
  checkNet(hostname, options.port);
  const address = resolveSync(hostname)[0];
  checkResolved([address], options.port);
  const fd = openSocket(address.family, SOCK_DGRAM);
  try {
    // As the Deno backend: port sharing implies address reuse, so an
    // endpoint with either flag can join a port the others share.
    if (options.reuseAddress || options.reusePort) {
      setOption(fd, SOL_SOCKET, SO_REUSEADDR, 1);
    }
    if (options.reusePort) setOption(fd, SOL_SOCKET, SO_REUSEPORT, 1);
    setOption(fd, SOL_SOCKET, SO_BROADCAST, options.allowBroadcast ? 1 : 0);
    if (address.family === AF_INET6) {
      setOption(
        fd,
        IPPROTO_IPV6,
        IPV6_MULTICAST_LOOP,
        options.loopback ? 1 : 0,
      );
    } else {
      setOption(fd, IPPROTO_IP, IP_MULTICAST_LOOP, options.loopback ? 1 : 0);
    }
    bindInet(fd, address.address, options.port);
    return new NativeDatagramHandle(fd, address.family);
  } catch (error) {
    closeFd(fd);
    throw error;
  }
}

function openUnixDatagram(path?: string): DatagramHandle {
  if (path !== undefined) checkUnixPath(path);
  const fd = openSocket(AF_UNIX, SOCK_DGRAM);
  try {
    if (path !== undefined) {
      removeStaleSocket(path);
      bindUnix(fd, path);
    }
    return new NativeDatagramHandle(fd, AF_UNIX);
  } catch (error) {
    closeFd(fd);
    throw error;
  }
}

// ---- sockets ----

function checkFamilyType(family: number, type: number): void {
  if (family !== AF_INET && family !== AF_INET6 && family !== AF_UNIX) {
    throw new RangeError(
      `The family must be AF_INET (2), AF_INET6 (10) or AF_UNIX (1), got ${family}`,
    );
  }
  if (type !== SOCK_STREAM && type !== SOCK_DGRAM) {
    throw new RangeError(
      `The type must be SOCK_STREAM (1) or SOCK_DGRAM (2), got ${type}`,
    );
  }
}

function newSocket(family: number, type: number): SocketImpl {
  checkFamilyType(family, type);
  return NativeSocket.open(family, type);
}

/**
 * Two connected sockets. AF_UNIX: socketpair(2). AF_INET/AF_INET6 (which
 * socketpair(2) refuses): a loopback listener, a connect and an accept, as
 * Python does where the OS has no such pairs; connected when returned.
 */
function socketPair(family: number, type: number): [SocketImpl, SocketImpl] {
  checkFamilyType(family, type);
  if (family === AF_UNIX) return nativeSocketPair(family, type);
  if (type !== SOCK_STREAM) {
    throw new Deno.errors.NotSupported(
      "An AF_INET/AF_INET6 socket pair must be SOCK_STREAM",
    );
  }
  const loopback = family === AF_INET6 ? "::1" : "127.0.0.1";
  const listenerFd = openBound(
    { family, address: loopback },
    0,
    SOCK_STREAM,
    {},
  );
  if (sys.listen(listenerFd, 1) < 0) {
    const code = errno();
    closeFd(listenerFd);
    throw osError(code, "listen");
  }
  const listener = new NativeSocket(family, SOCK_STREAM, listenerFd);
  let client: NativeSocket | null = null;
  try {
    const addr = listener.getSockName() as Deno.NetAddr;
    client = NativeSocket.open(family, SOCK_STREAM);
    client.connect({ hostname: loopback, port: addr.port });
    // The loopback handshake is done in the kernel at once; wait for it
    // with poll(2) (bounded) rather than spinning.
    const pollfd = new Uint8Array(new ArrayBuffer(8));
    const view = new DataView(pollfd.buffer);
    view.setInt32(0, listenerFd, true);
    view.setInt16(4, 1, /* POLLIN */ true);
    sys.poll(pollfd, 1n, 1000);
    const [server, peer] = listener.accept();
    const clientName = client.getSockName() as Deno.NetAddr;
    if ((peer as Deno.NetAddr).port !== clientName.port) {
      server.close();
      throw new Deno.errors.ConnectionAborted(
        "Another connection reached the socket pair's listener first",
      );
    }
    return [client, server];
  } catch (error) {
    client?.close();
    throw error;
  } finally {
    listener.close();
  }
}

/** A native backend (throws `Deno.errors.NotSupported` naming the reason). */
export function createNativeBackend(): Backend {
  openLibc();
  poller();
  return {
    name: "native",
    features: {
      localBind: true,
      interleave: true,
      reset: true,
      broadcastOff: true,
      udpReusePort: true,
      unixDatagramBind: true,
      realFds: true,
    },
    connectTcp,
    connectUnix,
    listenTcp,
    listenUnix,
    bindUdp,
    openUnixDatagram,
    newSocket,
    socketPair,
    readinessOfFd(fd: number): Readiness | undefined {
      return readinessOfFd(fd);
    },
  };
}
