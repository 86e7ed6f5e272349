// The native backend's datagram handle: a UDP or Unix datagram socket on
// a non-blocking descriptor. Datagrams are received synchronously when
// epoll says readable (into one reused buffer, capped per event); sends go
// out at once and wait for EPOLLOUT only when the socket buffer is full.
// `connect()` makes a kernel-connected socket, so the kernel filters other
// peers and ICMP errors come back as receive errors.

import type {
  DatagramHandle,
  DatagramSink,
  SocketOptionAccess,
} from "./_backend.ts";
import {
  AF_INET6,
  AF_UNIX,
  E,
  EPOLLERR,
  EPOLLIN,
  EPOLLOUT,
  errno,
  IP_ADD_MEMBERSHIP,
  IP_DROP_MEMBERSHIP,
  IP_MULTICAST_LOOP,
  IP_MULTICAST_TTL,
  IPPROTO_IP,
  IPPROTO_IPV6,
  IPV6_JOIN_GROUP,
  IPV6_LEAVE_GROUP,
  IPV6_MULTICAST_HOPS,
  IPV6_MULTICAST_LOOP,
  MAX_IO,
  osError,
  SEND_FLAGS,
  sys,
} from "./_native_libc.ts";
import {
  bigSizes,
  checkNet,
  checkResolved,
  checkUnixPath,
  closedError,
  closeFd,
  encodeLiteral,
  encodePath,
  interfaceIndex,
  optionAccess,
  resolveSync,
  setOption,
  sockName,
  unbracket,
} from "./_native_net.ts";
import {
  parseIPv4,
  parseIPv6,
  SOCKADDR_SIZE,
  SockaddrBuffer,
} from "./_native_sockaddr.ts";
import { type Pollable, type Poller, poller } from "./_native_poller.ts";
import { checkNumber, checkString, describe } from "./_validate.ts";

const EAGAIN = 11;
const EINTR = 4;
/** Datagrams received per event. */
const DATAGRAMS_PER_EVENT = 64;
/** The receive buffer: the largest UDP payload fits (longer ones are cut). */
const RECEIVE_SIZE = 64 * 1024;
const RECEIVE_BIG = BigInt(RECEIVE_SIZE);

/** Errors of one datagram (or an earlier one): receiving goes on. */
const TRANSIENT = new Set<number>([
  E.ECONNREFUSED,
  E.EHOSTUNREACH,
  E.ENETUNREACH,
  E.ECONNRESET,
  E.EMSGSIZE,
  E.ENOBUFS,
  E.ENOMEM,
  E.EPERM,
  E.EACCES,
  E.EIO,
]);

/** The BigInt length of a send. */
const sendSize = bigSizes();

/**
 * Checks a multicast interface argument: `undefined`, a string (an IPv4
 * address, or for IPv6 an index or a name) or an interface index (an
 * integer from 0 to 2^32 - 1).
 */
function checkInterface(iface: unknown): void {
  if (iface === undefined || typeof iface === "string") return;
  if (typeof iface !== "number") {
    throw new TypeError(
      `The interface must be an address, a name or an index, got ${
        describe(iface)
      }`,
    );
  }
  if (!Number.isInteger(iface) || iface < 0 || iface > 0xffffffff) {
    throw new RangeError(
      `The interface index must be an integer from 0 to 4294967295, got ${iface}`,
    );
  }
}

/** Checks a multicast TTL (hop limit): an integer from 0 to 255. */
function checkTtl(ttl: unknown): number {
  checkNumber(ttl, "multicast TTL");
  if (!Number.isInteger(ttl) || (ttl as number) > 255) {
    throw new RangeError(
      `The multicast TTL must be an integer from 0 to 255, got ${ttl}`,
    );
  }
  return ttl as number;
}

/** A datagram socket (UDP or Unix) on a non-blocking descriptor. */
export class NativeDatagramHandle implements DatagramHandle, Pollable {
  readonly resource = null;
  readonly canConnect = true;
  readonly fd: number;
  /** The local address (the source the kernel chose, once connected). */
  addr: Deno.Addr;
  readonly options: SocketOptionAccess;
  pollGen = 0;
  pollEvents = 0;
  readonly #poller: Poller;
  readonly #family: number;
  #sink: DatagramSink | null = null;
  #receiving = false;
  #closed: Promise<void> | null = null;
  #connected = false;
  // Receiving.
  #buffer: Uint8Array | null = null;
  readonly #from = new SockaddrBuffer();
  readonly #lastFrom = new Uint8Array(SOCKADDR_SIZE);
  #lastFromLength = -1;
  #lastFromAddr: Deno.Addr | null = null;
  // Sending: the last destination, encoded and allowed.
  #destination: Deno.Addr | null = null;
  readonly #destinationBytes = new Uint8Array(SOCKADDR_SIZE);
  #destinationLength = 0;
  #pending: { data: Uint8Array; addr: Deno.Addr | null } | null = null;
  #sendResolve: ((n: number) => void) | null = null;
  #sendReject: ((error: Error) => void) | null = null;

  /** Takes ownership of datagram socket `fd` of address family `family`. */
  constructor(fd: number, family: number) {
    this.fd = fd;
    this.#family = family;
    this.addr = sockName(fd, "udp", "unixpacket") ??
      (family === AF_UNIX
        ? { transport: "unixpacket", path: null as unknown as string }
        : { transport: "udp", hostname: "0.0.0.0", port: 0 });
    this.#poller = poller();
    this.#poller.attach(this);
    this.options = optionAccess(() => this.#openFd());
  }

  connect(addr: Deno.Addr): void {
    this.#openFd();
    const [bytes, length] = this.#encode(addr);
    if (sys.connect(this.fd, bytes, length) < 0) {
      throw osError(errno(), "connect");
    }
    this.#connected = true;
    // A wildcard bind now has the route's source address, as getsockname
    // says (asyncio's sockname after connect).
    this.addr = sockName(this.fd, "udp", "unixpacket") ?? this.addr;
  }

  receiveStart(sink: DatagramSink): void {
    if (this.#closed !== null) return;
    this.#sink = sink;
    if (this.#receiving) return;
    this.#receiving = true;
    this.#interest();
  }

  receiveStop(): void {
    if (!this.#receiving) return;
    this.#receiving = false;
    if (this.#closed === null) this.#interest();
  }

  send(data: Uint8Array, addr: Deno.Addr | null): number | Promise<number> {
    if (this.#closed !== null) throw closedError();
    if (this.#pending !== null) {
      throw new Deno.errors.Busy("A send is already in flight on this socket");
    }
    if (data.length > MAX_IO) {
      throw osError(E.EMSGSIZE, "send");
    }
    if (addr === null && !this.#connected) {
      throw new Deno.errors.NotConnected(
        "A datagram needs a destination address (the socket is not connected)",
      );
    }
    const n = this.#trySend(data, addr);
    if (n >= 0) return n;
    if (n !== -EAGAIN) throw osError(-n, "send");
    this.#pending = { data, addr };
    const { promise, resolve, reject } = Promise.withResolvers<number>();
    promise.catch(() => {});
    this.#sendResolve = resolve;
    this.#sendReject = reject;
    this.#interest();
    return promise;
  }

  addMembership(group: string, iface?: string | number): Promise<void> {
    return this.#membership(group, iface, true);
  }

  dropMembership(group: string, iface?: string | number): Promise<void> {
    return this.#membership(group, iface, false);
  }

  setMulticastTtl(ttl: number): Promise<void> {
    return this.#option(
      this.#family === AF_INET6 ? IPPROTO_IPV6 : IPPROTO_IP,
      this.#family === AF_INET6 ? IPV6_MULTICAST_HOPS : IP_MULTICAST_TTL,
      () => checkTtl(ttl),
    );
  }

  setMulticastLoopback(enabled: boolean): Promise<void> {
    return this.#option(
      this.#family === AF_INET6 ? IPPROTO_IPV6 : IPPROTO_IP,
      this.#family === AF_INET6 ? IPV6_MULTICAST_LOOP : IP_MULTICAST_LOOP,
      () => {
        if (typeof enabled !== "boolean") {
          throw new TypeError(
            `The multicast loopback flag must be a boolean, got ${
              describe(enabled)
            }`,
          );
        }
        return enabled ? 1 : 0;
      },
    );
  }

  close(): Promise<void> {
    if (this.#closed !== null) return this.#closed;
    this.#closed = Promise.resolve();
    this.#receiving = false;
    this.#sink = null;
    const reject = this.#sendReject;
    this.#pending = null;
    this.#sendResolve = this.#sendReject = null;
    this.#poller.detach(this);
    closeFd(this.fd);
    reject?.(closedError());
    return this.#closed = this.#poller.settled();
  }

  onPoll(events: number): void {
    if (this.#receiving) this.#receive();
    if (this.#pending !== null && (events & (EPOLLOUT | EPOLLERR)) !== 0) {
      this.#flushSend();
    }
  }

  #openFd(): number {
    if (this.#closed !== null) throw closedError();
    return this.fd;
  }

  #requireIp(what: string): void {
    if (this.#family === AF_UNIX) {
      throw new Deno.errors.NotSupported(
        `${what} needs a UDP socket; this is a Unix datagram socket`,
      );
    }
  }

  #interest(): void {
    this.#poller.watch(
      this,
      (this.#receiving ? EPOLLIN : 0) | (this.#pending !== null ? EPOLLOUT : 0),
    );
  }

  #receive(): void {
    const buffer = this.#buffer ??= new Uint8Array(RECEIVE_SIZE);
    const from = this.#from;
    for (let i = 0; i < DATAGRAMS_PER_EVENT && this.#receiving; i++) {
      const n = sys.recvfrom(
        this.fd,
        buffer,
        RECEIVE_BIG,
        0,
        from.bytes,
        from.prepare(),
      );
      if (n >= 0) {
        this.#sink!.datagram(buffer.subarray(0, n), this.#sender());
        continue;
      }
      const code = errno();
      if (code === EAGAIN) return;
      if (code === EINTR) continue;
      const fatal = !TRANSIENT.has(code);
      const sink = this.#sink!;
      if (fatal) this.receiveStop();
      sink.receiveError(osError(code), fatal);
      if (fatal) return;
    }
  }

  /** The sender of the datagram just received (the last one reused). */
  #sender(): Deno.Addr {
    const from = this.#from;
    const length = from.length;
    const last = this.#lastFrom;
    if (length === this.#lastFromLength && this.#lastFromAddr !== null) {
      const bytes = from.bytes;
      let same = true;
      for (let i = 0; i < length; i++) {
        if (bytes[i] !== last[i]) {
          same = false;
          break;
        }
      }
      if (same) return this.#lastFromAddr;
    }
    const addr = from.decode("udp", "unixpacket", this.#family);
    last.set(from.bytes.subarray(0, Math.min(length, SOCKADDR_SIZE)));
    this.#lastFromLength = length;
    return this.#lastFromAddr = addr;
  }

  /** Sends once: the count, or minus the errno. */
  #trySend(data: Uint8Array, addr: Deno.Addr | null): number {
    for (;;) {
      let n: number;
      if (addr === null) {
        n = sys.send(this.fd, data, sendSize(data.length), SEND_FLAGS);
      } else {
        if (addr !== this.#destination) this.#setDestination(addr);
        n = sys.sendto(
          this.fd,
          data,
          sendSize(data.length),
          SEND_FLAGS,
          this.#destinationBytes,
          this.#destinationLength,
        );
      }
      if (n >= 0) return n;
      const code = errno();
      if (code !== EINTR) return -code;
    }
  }

  #setDestination(addr: Deno.Addr): void {
    const [bytes, length] = this.#encode(addr);
    this.#destinationBytes.set(bytes.subarray(0, length));
    this.#destinationLength = length;
    this.#destination = addr;
  }

  /** Checks permission for `addr` and encodes it (shared buffer). */
  #encode(addr: Deno.Addr): [Uint8Array, number] {
    if (this.#family === AF_UNIX) {
      const path = (addr as Deno.UnixAddr).path;
      if (typeof path !== "string") {
        throw new TypeError("A Unix datagram address needs a path");
      }
      checkUnixPath(path);
      return encodePath(path);
    }
    const { hostname, port } = addr as Deno.NetAddr;
    let host = unbracket(hostname);
    checkNet(host, port);
    if (parseIPv4(host) === null && parseIPv6(host) === null) {
      const [resolved] = resolveSync(host, this.#family);
      checkResolved([resolved], port);
      host = resolved.address;
    }
    // An IPv6 socket reaches IPv4 peers at their mapped addresses.
    if (this.#family === AF_INET6 && parseIPv4(host) !== null) {
      host = `::ffff:${host}`;
    }
    return encodeLiteral(host, port);
  }

  #flushSend(): void {
    const { data, addr } = this.#pending!;
    const n = this.#trySend(data, addr);
    if (n === -EAGAIN) return;
    const resolve = this.#sendResolve!;
    const reject = this.#sendReject!;
    this.#pending = null;
    this.#sendResolve = this.#sendReject = null;
    this.#interest();
    if (n >= 0) resolve(n);
    else reject(osError(-n, "send"));
  }

  #membership(
    group: string,
    iface: string | number | undefined,
    join: boolean,
  ): Promise<void> {
    try {
      this.#openFd();
      checkString(group, "multicast group");
      checkInterface(iface);
      this.#requireIp("Multicast");
      if (this.#family === AF_INET6) {
        const literal = parseIPv6(unbracket(group));
        if (literal === null) {
          throw new TypeError(
            `The multicast group must be an IPv6 address, got "${group}"`,
          );
        }
        if (literal.bytes[0] !== 0xff) {
          throw new RangeError(
            `"${group}" is not a multicast address (ff00::/8)`,
          );
        }
        const mreq = new Uint8Array(20);
        mreq.set(literal.bytes, 0);
        let index = 0;
        if (typeof iface === "number") index = iface;
        else if (typeof iface === "string" && iface !== "") {
          index = /^[0-9]+$/.test(iface)
            ? Number(iface)
            : interfaceIndex(iface);
        }
        new DataView(mreq.buffer).setUint32(16, index, true);
        setOption(
          this.fd,
          IPPROTO_IPV6,
          join ? IPV6_JOIN_GROUP : IPV6_LEAVE_GROUP,
          mreq,
        );
        return Promise.resolve();
      }
      const address = parseIPv4(group);
      if (address === null) {
        throw new TypeError(
          `The multicast group must be an IPv4 address, got "${group}"`,
        );
      }
      if ((address[0] & 0xf0) !== 0xe0) {
        throw new RangeError(
          `"${group}" is not a multicast address (224.0.0.0/4)`,
        );
      }
      let mreq: Uint8Array;
      if (typeof iface === "number") {
        // struct ip_mreqn: group, local address (any), interface index.
        mreq = new Uint8Array(12);
        mreq.set(address, 0);
        new DataView(mreq.buffer).setUint32(8, iface, true);
      } else {
        // struct ip_mreq: group, interface address.
        mreq = new Uint8Array(8);
        mreq.set(address, 0);
        if (iface !== undefined && iface !== "") {
          const local = parseIPv4(iface);
          if (local === null) {
            throw new TypeError(
              `The interface must be an IPv4 address or an index, got "${iface}"`,
            );
          }
          mreq.set(local, 4);
        }
      }
      setOption(
        this.fd,
        IPPROTO_IP,
        join ? IP_ADD_MEMBERSHIP : IP_DROP_MEMBERSHIP,
        mreq,
      );
      return Promise.resolve();
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /** Sets an option to the checked value `value()` gives. */
  #option(level: number, option: number, value: () => number): Promise<void> {
    try {
      const checked = value();
      this.#requireIp("Multicast");
      setOption(this.#openFd(), level, option, checked);
      return Promise.resolve();
    } catch (error) {
      return Promise.reject(error);
    }
  }
}
