// The Deno backend's sockets: the kernel side of a `Socket` emulated over
// Deno's promise-based resources. A socket keeps kernel-like buffers
// (channels: _socket_stream.ts, _socket_listener.ts, _socket_datagram.ts),
// so what it reports as ready is really there. Deno's socket calls come in
// through DenoSocketOps (from _deno_backend.ts), never called here directly.

import type { DetachedHandle, SocketAddress, SocketImpl } from "./_backend.ts";
import {
  ConnStreamHandle,
  DenoDatagramHandle,
  DenoListenerHandle,
} from "./_conn_handles.ts";
import { nextFd } from "./_fd.ts";
import { errno, errnoOf, errorOfErrno, toError } from "./_errno.ts";
import { READ, Readiness, WRITE } from "./_readiness.ts";
import { StreamChannel } from "./_socket_stream.ts";
import { ListenerChannel } from "./_socket_listener.ts";
import { DatagramChannel, peerFilter } from "./_socket_datagram.ts";
import { parseMembershipRequest } from "./_multicast.ts";
import { requireUnstableNet } from "./_validate.ts";
import { isLoopbackIp, literalPeer } from "./_ip.ts";
import {
  AF_INET6,
  AF_UNIX,
  IP_ADD_MEMBERSHIP,
  IP_DROP_MEMBERSHIP,
  IP_MULTICAST_LOOP,
  IP_MULTICAST_TTL,
  IPPROTO_IP,
  IPPROTO_TCP,
  SHUT_RD,
  SHUT_WR,
  SO_BROADCAST,
  SO_ERROR,
  SO_KEEPALIVE,
  SO_RCVBUF,
  SO_REUSEADDR,
  SO_REUSEPORT,
  SO_SNDBUF,
  SOCK_DGRAM,
  SOCK_STREAM,
  SOL_SOCKET,
  SOMAXCONN,
  TCP_NODELAY,
} from "./_socket_constants.ts";

type State =
  | "fresh"
  | "bound"
  | "listening"
  | "connecting"
  | "connected"
  | "closed"
  | "detached";

interface Options {
  noDelay: number;
  keepAlive: number;
  reuseAddr: number;
  reusePort: number;
  rcvBuf: number | undefined;
  sndBuf: number | undefined;
  multicastTtl: number;
  multicastLoop: number | undefined;
}

/**
 * The Deno calls an emulated socket makes, given by the Deno backend
 * (_deno_backend.ts is the one module that calls them).
 */
export interface DenoSocketOps {
  connectTcp(
    hostname: string,
    port: number,
    signal?: AbortSignal,
  ): Promise<Deno.TcpConn>;
  connectUnix(path: string): Promise<Deno.UnixConn>;
  listenTcp(
    options: Deno.TcpListenOptions & { reusePort?: boolean },
  ): Deno.Listener;
  listenUnix(path: string): Deno.Listener;
  listenDatagram(
    options:
      | (Deno.UdpListenOptions & { transport: "udp" })
      | (Deno.UnixAddr & { transport: "unixpacket" })
      | { transport: "unixpacket"; path?: string },
  ): Deno.DatagramConn;
}

/** The kernel side of one emulated socket. */
export class EmulatedSocket implements SocketImpl {
  readonly family: number;
  readonly type: number;
  readonly fd: number;
  readonly osSocket = false;
  readonly readiness: Readiness;
  #ops: DenoSocketOps;
  #state: State = "fresh";
  #stream: StreamChannel | null = null;
  #listener: ListenerChannel | null = null;
  #dgram: DatagramChannel | null = null;
  #backlog: number | null = null;
  #connecting: Promise<void> | null = null;
  #connectAbort: AbortController | null = null;
  #soError = 0;
  #soErrorException: Error | null = null;
  #remote: Deno.NetAddr | Deno.UnixAddr | null = null;
  /** The TCP connection underneath, for TCP_NODELAY and SO_KEEPALIVE. */
  #tcpConn: Deno.TcpConn | null = null;
  /** A pair end's addresses, known before its connection is made. */
  #pairAddrs: { local: Deno.Addr; remote: Deno.Addr } | null = null;
  #pendingGroups: Array<[string, string]> = [];
  #boundUnix = false;
  #options: Options = {
    noDelay: 0,
    keepAlive: 0,
    reuseAddr: 0,
    reusePort: 0,
    rcvBuf: undefined,
    sndBuf: undefined,
    multicastTtl: 1,
    multicastLoop: undefined,
  };

  constructor(ops: DenoSocketOps, family: number, type: number) {
    this.#ops = ops;
    this.family = family;
    this.type = type;
    this.fd = nextFd();
    this.readiness = new Readiness(
      this.fd,
      () => this.#poll(),
      () => this.closed,
    );
  }

  get closed(): boolean {
    return this.#state === "closed" || this.#state === "detached";
  }

  /** The state, for `Socket.toString()`. */
  get state(): string {
    return this.#state;
  }

  bind(addr: SocketAddress): void {
    if (this.#state !== "fresh" || this.#dgram !== null) {
      throw new Deno.errors.AlreadyExists(
        "Invalid argument: the socket is already bound or connected",
      );
    }
    if (this.type === SOCK_STREAM) {
      let listener: Deno.Listener;
      if ("path" in addr) {
        listener = this.#ops.listenUnix(addr.path);
      } else {
        const options: Deno.TcpListenOptions & { reusePort?: boolean } = {
          hostname: addr.hostname,
          port: addr.port,
        };
        if (this.#options.reusePort) {
          requireUnstableNet("SO_REUSEPORT");
          options.reusePort = true;
        }
        listener = this.#ops.listenTcp(options);
      }
      this.#listener = new ListenerChannel(listener, () => this.#notify());
      this.#state = "bound";
    } else {
      this.#bindDatagram(addr);
    }
  }

  listen(backlog: number): void {
    if (this.type !== SOCK_STREAM) {
      throw new Deno.errors.NotSupported(
        "Operation not supported: listen() needs a SOCK_STREAM socket",
      );
    }
    if (this.#state === "fresh") {
      if (this.family === AF_UNIX) {
        throw new Deno.errors.NotSupported(
          "listen() on an unbound AF_UNIX socket is not supported: bind() it to a path first",
        );
      }
      this.bind({
        hostname: this.family === AF_INET6 ? "::" : "0.0.0.0",
        port: 0,
      });
    }
    if (this.#state !== "bound" && this.#state !== "listening") {
      throw new Deno.errors.AlreadyExists(
        "Invalid argument: a connected socket cannot listen",
      );
    }
    this.#backlog = Math.max(0, Math.min(backlog, SOMAXCONN));
    this.#state = "listening";
    this.#listener!.listen(this.#backlog);
  }

  accept(): [EmulatedSocket, Deno.Addr] {
    if (this.#state !== "listening") {
      throw new Deno.errors.NotConnected(
        "Invalid argument: accept() needs a listening socket (call listen() first)",
      );
    }
    const conn = this.#listener!.accept();
    this.#notify();
    const sock = new EmulatedSocket(this.#ops, this.family, SOCK_STREAM);
    // Options an accepted socket inherits from its listener, as on Linux.
    sock.#options.noDelay = this.#options.noDelay;
    sock.#options.keepAlive = this.#options.keepAlive;
    sock.#options.rcvBuf = this.#options.rcvBuf;
    sock.#options.sndBuf = this.#options.sndBuf;
    sock.adopt(conn);
    return [sock, conn.remoteAddr];
  }

  connect(addr: SocketAddress): number {
    if (this.type === SOCK_DGRAM) {
      const remote = this.#toDenoAddr(addr);
      if ("hostname" in remote) {
        remote.hostname = literalPeer(
          remote.hostname,
          this.family === AF_INET6,
          "a datagram socket on the Deno backend connects to an IP address or localhost (resolve the name first, e.g. with getAddrInfo(); the native backend resolves it)",
        );
      }
      this.#remote = remote;
      this.#autoBindDatagram(remote);
      if (this.family !== AF_UNIX) this.#dgram!.setFilter(peerFilter(remote));
      return 0;
    }
    switch (this.#state) {
      case "connecting":
        return errno.EALREADY;
      case "connected":
        return errno.EISCONN;
      case "bound":
      case "listening":
        throw new Deno.errors.NotSupported(
          "Connecting a bound or listening stream socket is not supported: Deno cannot bind a local address before connecting (the native backend can)",
        );
    }
    if (this.#soError !== 0) throw this.#takeSoError();
    this.#state = "connecting";
    let connecting: Promise<Deno.Conn>;
    if ("path" in addr) {
      connecting = this.#ops.connectUnix(addr.path);
    } else {
      const abort = new AbortController();
      this.#connectAbort = abort;
      connecting = this.#ops.connectTcp(addr.hostname, addr.port, abort.signal);
    }
    this.#connecting = this.#finishConnect(connecting);
    return errno.EINPROGRESS;
  }

  recv(n: number): [Uint8Array, Deno.Addr] {
    if (this.type === SOCK_DGRAM) {
      if (this.#dgram === null) {
        throw new Deno.errors.WouldBlock(
          "Resource temporarily unavailable: the socket is not bound, nothing can arrive",
        );
      }
      return this.#dgram.recvFrom(n);
    }
    if (this.#state === "listening") {
      throw new Deno.errors.NotConnected(
        "Transport endpoint is not connected: this socket is listening",
      );
    }
    const stream = this.#connectedStream();
    const data = stream.recv(n);
    return [data, this.getPeerName()];
  }

  recvInto(buffer: Uint8Array): [number, Deno.Addr] {
    const [data, addr] = this.recv(buffer.length);
    buffer.set(data);
    return [data.length, addr];
  }

  send(data: Uint8Array): number {
    if (this.type === SOCK_DGRAM) {
      if (this.#remote === null) {
        throw new Deno.errors.NotConnected(
          "Destination address required: connect() the datagram socket or use sendTo()",
        );
      }
      return this.#sendDatagram(data, this.#remote);
    }
    return this.#connectedStream().send(data);
  }

  sendAll(data: Uint8Array): void {
    if (this.type === SOCK_DGRAM) {
      this.send(data);
      return;
    }
    this.#connectedStream().send(data, true);
  }

  sendTo(data: Uint8Array, addr: SocketAddress): number {
    if (this.type === SOCK_STREAM) return this.send(data);
    return this.#sendDatagram(data, this.#toDenoAddr(addr));
  }

  shutdown(how: number): void {
    if (this.type === SOCK_DGRAM) {
      throw new Deno.errors.NotSupported(
        "shutdown() of a datagram socket is not supported",
      );
    }
    const stream = this.#stream;
    if (stream === null) {
      throw new Deno.errors.NotConnected(
        "Transport endpoint is not connected",
      );
    }
    if (how !== SHUT_WR) stream.shutdownRead();
    if (how !== SHUT_RD) stream.shutdownWrite();
  }

  close(): void {
    if (this.closed) return;
    this.#state = "closed";
    this.#stream?.close();
    this.#listener?.close();
    this.#dgram?.close();
    this.#connectAbort?.abort();
    this.readiness.notify();
  }

  getSockName(): Deno.Addr {
    if (this.#stream !== null) return this.#streamAddr("local");
    if (this.#listener !== null) return this.#listener.listener.addr;
    if (this.#dgram !== null) return this.#dgram.conn.addr;
    if (this.family === AF_UNIX) {
      // Unnamed: path null, as Deno's own addresses (and the native backend).
      const transport = this.type === SOCK_STREAM ? "unix" : "unixpacket";
      return { transport, path: null as unknown as string };
    }
    return {
      transport: this.type === SOCK_STREAM ? "tcp" : "udp",
      hostname: this.family === AF_INET6 ? "::" : "0.0.0.0",
      port: 0,
    };
  }

  /** A connected stream's address; a Unix pair's ends are unnamed. */
  #streamAddr(end: "local" | "remote"): Deno.Addr {
    const pair = this.#pairAddrs;
    if (pair !== null && this.family === AF_UNIX) return pair[end];
    const conn = this.#stream!.conn;
    return (end === "local" ? conn.localAddr : conn.remoteAddr) ?? pair![end];
  }

  getPeerName(): Deno.Addr {
    if (this.#stream !== null) return this.#streamAddr("remote");
    if (this.#remote !== null) return this.#remote;
    throw new Deno.errors.NotConnected("Transport endpoint is not connected");
  }

  setsockopt(level: number, option: number, value: number | Uint8Array): void {
    const key = `${level}:${option}`;
    if (key === `${IPPROTO_IP}:${IP_ADD_MEMBERSHIP}`) {
      this.#membership(value, true);
      return;
    }
    if (key === `${IPPROTO_IP}:${IP_DROP_MEMBERSHIP}`) {
      this.#membership(value, false);
      return;
    }
    const number = toOptionNumber(value);
    switch (key) {
      case `${IPPROTO_TCP}:${TCP_NODELAY}`:
        this.#streamOnly("TCP_NODELAY");
        this.#options.noDelay = number ? 1 : 0;
        this.#applyConnOptions();
        return;
      case `${SOL_SOCKET}:${SO_KEEPALIVE}`:
        this.#streamOnly("SO_KEEPALIVE");
        this.#options.keepAlive = number ? 1 : 0;
        this.#applyConnOptions();
        return;
      case `${SOL_SOCKET}:${SO_REUSEADDR}`:
        this.#options.reuseAddr = number ? 1 : 0;
        return;
      case `${SOL_SOCKET}:${SO_REUSEPORT}`:
        if (number) requireUnstableNet("SO_REUSEPORT");
        this.#options.reusePort = number ? 1 : 0;
        return;
      case `${SOL_SOCKET}:${SO_BROADCAST}`:
        if (!number) {
          throw new Deno.errors.NotSupported(
            "SO_BROADCAST 0 is not supported: Deno datagram sockets always allow broadcast",
          );
        }
        return;
      case `${SOL_SOCKET}:${SO_RCVBUF}`:
        checkBufferSize(number, "SO_RCVBUF");
        this.#options.rcvBuf = number;
        this.#stream?.setRecvCapacity(number);
        this.#dgram?.setRecvCapacity(number);
        return;
      case `${SOL_SOCKET}:${SO_SNDBUF}`:
        checkBufferSize(number, "SO_SNDBUF");
        this.#options.sndBuf = number;
        this.#stream?.setSendCapacity(number);
        this.#dgram?.setSendCapacity(number);
        return;
      case `${IPPROTO_IP}:${IP_MULTICAST_TTL}`:
        // Its range is checked by the Socket facade, for every backend.
        this.#datagramOnly("IP_MULTICAST_TTL");
        this.#options.multicastTtl = number;
        this.#dgram?.setMulticastTtl(number);
        return;
      case `${IPPROTO_IP}:${IP_MULTICAST_LOOP}`:
        this.#datagramOnly("IP_MULTICAST_LOOP");
        this.#options.multicastLoop = number ? 1 : 0;
        this.#dgram?.setMulticastLoop(number !== 0);
        return;
      case `${SOL_SOCKET}:${SO_ERROR}`:
        throw new Deno.errors.NotSupported("SO_ERROR can only be read");
    }
    throw new Deno.errors.NotSupported(
      `Socket option ${option} at level ${level} is not supported on the Deno backend (the native backend sets any option)`,
    );
  }

  getsockopt(level: number, option: number): number {
    switch (`${level}:${option}`) {
      case `${SOL_SOCKET}:${SO_ERROR}`: {
        let code = this.#soError;
        if (code === 0 && this.#dgram !== null) {
          const error = this.#dgram.takeError();
          if (error !== null) code = errnoOf(error);
        }
        this.#soError = 0;
        this.#soErrorException = null;
        if (code !== 0) this.#notify();
        return code;
      }
      case `${IPPROTO_TCP}:${TCP_NODELAY}`:
        this.#streamOnly("TCP_NODELAY");
        return this.#options.noDelay;
      case `${SOL_SOCKET}:${SO_KEEPALIVE}`:
        return this.#options.keepAlive;
      case `${SOL_SOCKET}:${SO_REUSEADDR}`:
        return this.#options.reuseAddr;
      case `${SOL_SOCKET}:${SO_REUSEPORT}`:
        return this.#options.reusePort;
      case `${SOL_SOCKET}:${SO_BROADCAST}`:
        return this.type === SOCK_DGRAM ? 1 : 0;
      case `${SOL_SOCKET}:${SO_RCVBUF}`:
        return this.#options.rcvBuf ??
          (this.type === SOCK_STREAM ? 128 * 1024 : 212_992);
      case `${SOL_SOCKET}:${SO_SNDBUF}`:
        return this.#options.sndBuf ??
          (this.type === SOCK_STREAM ? 64 * 1024 : 212_992);
      case `${IPPROTO_IP}:${IP_MULTICAST_TTL}`:
        this.#datagramOnly("IP_MULTICAST_TTL");
        return this.#options.multicastTtl;
      case `${IPPROTO_IP}:${IP_MULTICAST_LOOP}`:
        this.#datagramOnly("IP_MULTICAST_LOOP");
        return this.#options.multicastLoop ?? 1; // The kernel default: on.
    }
    throw new Deno.errors.NotSupported(
      `Socket option ${option} at level ${level} cannot be read on the Deno backend`,
    );
  }

  async detach(): Promise<DetachedHandle> {
    if (this.#connecting !== null) await this.#connecting;
    if (this.closed) {
      throw new Deno.errors.BadResource("Bad file descriptor: socket closed");
    }
    if (this.#soError !== 0) throw this.#takeSoError();
    if (this.type === SOCK_DGRAM) {
      const channel = this.#autoBindDatagram();
      this.#gone();
      return {
        kind: "datagram",
        handle: new DenoDatagramHandle(channel.release()),
        remoteAddr: this.#remote,
      };
    }
    if (this.#stream !== null) {
      const stream = this.#stream;
      this.#gone();
      return { kind: "stream", handle: new ConnStreamHandle(stream.release()) };
    }
    if (this.#listener !== null) {
      const listener = this.#listener;
      this.#gone();
      return {
        kind: "listener",
        handle: new DenoListenerHandle(listener.release()),
        backlog: this.#backlog,
      };
    }
    throw new Deno.errors.NotConnected(
      "The socket is neither connected nor bound: nothing to hand over",
    );
  }

  /** Takes over a connected `conn` (accepted, or given by the user). */
  adopt(conn: Deno.Conn): void {
    this.#stream = new StreamChannel(conn, () => this.#notify(), {
      recv: this.#options.rcvBuf,
      send: this.#options.sndBuf,
    });
    this.#state = "connected";
    this.#setTcpConn(conn);
    this.#notify();
  }

  /**
   * Becomes one end of a pair whose connection is still being made: it is
   * connected at once over `deferred` (sends are buffered, reads wait),
   * `addrs` stand in for the addresses until the connection is there; if
   * `checked` fails, the socket reports the error as a failed connection
   * would.
   */
  pairWith(
    deferred: Deno.Conn,
    checked: Promise<Deno.Conn>,
    addrs: { local: Deno.Addr; remote: Deno.Addr },
  ): void {
    this.#pairAddrs = addrs;
    this.adopt(deferred);
    checked.then((conn) => {
      if (!this.closed) this.#setTcpConn(conn);
    }, (error) => {
      if (this.closed) return;
      this.#stream?.close();
      this.#stream = null;
      this.#state = "fresh";
      this.#soErrorException = toError(error);
      this.#soError = errnoOf(error);
      this.#notify();
    });
  }

  // ---- internals ----

  #gone(): void {
    this.#state = "detached";
    this.#notify();
  }

  #notify(): void {
    this.readiness.notify();
  }

  #takeSoError(): Error {
    const error = this.#soErrorException ??
      errorOfErrno(this.#soError, `Connection failed (errno ${this.#soError})`);
    this.#soError = 0;
    this.#soErrorException = null;
    return error;
  }

  #poll(): number {
    if (this.#soError !== 0) return READ | WRITE;
    switch (this.#state) {
      case "listening":
        return this.#listener!.readable() ? READ : 0;
      case "connected":
        if (this.#stream !== null) {
          return (this.#stream.readable() ? READ : 0) |
            (this.#stream.writable() ? WRITE : 0);
        }
        break;
    }
    if (this.type === SOCK_DGRAM) {
      if (this.#dgram === null) return this.family === AF_UNIX ? 0 : WRITE;
      return (this.#dgram.readable() ? READ : 0) |
        (this.#dgram.writable() ? WRITE : 0);
    }
    return 0;
  }

  #streamOnly(name: string): void {
    if (this.type !== SOCK_STREAM) {
      throw new Deno.errors.NotSupported(`${name} needs a SOCK_STREAM socket`);
    }
  }

  #datagramOnly(name: string): void {
    if (this.type !== SOCK_DGRAM) {
      throw new Deno.errors.NotSupported(`${name} needs a SOCK_DGRAM socket`);
    }
  }

  #toDenoAddr(addr: SocketAddress): Deno.NetAddr | Deno.UnixAddr {
    if ("path" in addr) {
      return {
        transport: this.type === SOCK_STREAM ? "unix" : "unixpacket",
        path: addr.path,
      };
    }
    return {
      transport: this.type === SOCK_STREAM ? "tcp" : "udp",
      hostname: addr.hostname,
      port: addr.port,
    };
  }

  #bindDatagram(addr: SocketAddress): void {
    requireUnstableNet("Datagram sockets");
    const notify = () => this.#notify();
    const capacities = {
      recv: this.#options.rcvBuf,
      send: this.#options.sndBuf,
    };
    let conn: Deno.DatagramConn;
    if ("path" in addr) {
      conn = this.#ops.listenDatagram({
        transport: "unixpacket",
        path: addr.path,
      });
      this.#boundUnix = true;
    } else {
      const options: Deno.UdpListenOptions & { transport: "udp" } = {
        transport: "udp",
        hostname: addr.hostname,
        port: addr.port,
      };
      if (this.#options.reuseAddr || this.#options.reusePort) {
        options.reuseAddress = true;
      }
      if (this.#options.multicastLoop !== undefined) {
        options.loopback = this.#options.multicastLoop === 1;
      }
      conn = this.#ops.listenDatagram(options);
    }
    this.#dgram = new DatagramChannel(conn, notify, {
      ...capacities,
      loopback: this.#options.multicastLoop === undefined
        ? undefined
        : this.#options.multicastLoop === 1,
    });
    if (this.#remote !== null) this.#dgram.setFilter(peerFilter(this.#remote));
    for (const [group, iface] of this.#pendingGroups.splice(0)) {
      this.#dgram.join(group, iface);
    }
    if (this.#options.multicastTtl !== 1) {
      this.#dgram.setMulticastTtl(this.#options.multicastTtl);
    }
    this.#notify();
  }

  /** Binds an unbound datagram socket (as the kernel would at first use). */
  #autoBindDatagram(peer?: Deno.Addr): DatagramChannel {
    if (this.#dgram === null) {
      if (this.family === AF_UNIX) {
        requireUnstableNet("Datagram sockets");
        const conn = this.#ops.listenDatagram({ transport: "unixpacket" });
        this.#dgram = new DatagramChannel(conn, () => this.#notify(), {
          recv: this.#options.rcvBuf,
          send: this.#options.sndBuf,
          receive: false,
        });
      } else {
        // Toward a loopback peer the kernel's source is the loopback
        // address; elsewhere it depends on the route: the wildcard.
        const loopback = peer !== undefined && "hostname" in peer &&
          isLoopbackIp(peer.hostname);
        const ipv6 = this.family === AF_INET6;
        this.#bindDatagram({
          hostname: loopback ? peer.hostname : ipv6 ? "::" : "0.0.0.0",
          port: 0,
        });
      }
    }
    return this.#dgram!;
  }

  #sendDatagram(data: Uint8Array, addr: Deno.Addr): number {
    if (this.family === AF_UNIX && this.#dgram !== null && this.#boundUnix) {
      throw new Deno.errors.NotSupported(
        "Sending from a bound AF_UNIX datagram socket is not supported: Deno cannot send on a Unix datagram socket while a receive is pending (it fails with Busy); send from an unbound socket instead",
      );
    }
    // Sizes over UDP's limit were refused by the Socket facade.
    return this.#autoBindDatagram().sendTo(data, addr);
  }

  #membership(value: unknown, join: boolean): void {
    this.#datagramOnly(join ? "IP_ADD_MEMBERSHIP" : "IP_DROP_MEMBERSHIP");
    if (this.family === AF_UNIX) {
      throw new Deno.errors.NotSupported(
        "Multicast needs an AF_INET datagram socket",
      );
    }
    // The Socket facade refused a group that is not multicast.
    const { group, iface } = parseMembershipRequest(value as Uint8Array);
    if (this.#dgram !== null) {
      if (join) this.#dgram.join(group, iface);
      else this.#dgram.leave(group, iface);
      return;
    }
    // Not bound yet: remembered, and joined at bind(), as the kernel would.
    const index = this.#pendingGroups.findIndex(([g, i]) =>
      g === group && i === iface
    );
    if (join) {
      if (index >= 0) {
        throw new Deno.errors.AddrInUse(
          `Already a member of ${group} on interface ${iface}`,
        );
      }
      this.#pendingGroups.push([group, iface]);
    } else {
      if (index < 0) {
        throw new Deno.errors.AddrNotAvailable(
          `Not a member of ${group} on interface ${iface}`,
        );
      }
      this.#pendingGroups.splice(index, 1);
    }
  }

  #setTcpConn(conn: Deno.Conn): void {
    if (typeof (conn as Partial<Deno.TcpConn>).setNoDelay !== "function") {
      return;
    }
    this.#tcpConn = conn as Deno.TcpConn;
    this.#applyConnOptions();
  }

  #applyConnOptions(): void {
    const conn = this.#tcpConn;
    if (conn === null) return;
    try {
      conn.setNoDelay(this.#options.noDelay === 1);
      conn.setKeepAlive(this.#options.keepAlive === 1);
    } catch {
      // The connection is already closed.
    }
  }

  #connectedStream(): StreamChannel {
    if (this.#stream === null) {
      if (this.#soError !== 0) throw this.#takeSoError();
      if (this.#state === "connecting") {
        throw new Deno.errors.WouldBlock(
          "Resource temporarily unavailable: the socket is still connecting",
        );
      }
      throw new Deno.errors.NotConnected(
        "Transport endpoint is not connected",
      );
    }
    return this.#stream;
  }

  async #finishConnect(connecting: Promise<Deno.Conn>): Promise<void> {
    try {
      const conn = await connecting;
      this.#connectAbort = null;
      if (this.closed) {
        conn.close();
        return;
      }
      this.adopt(conn);
    } catch (error) {
      this.#connectAbort = null;
      if (this.closed) return;
      this.#state = "fresh";
      this.#soErrorException = toError(error);
      this.#soError = errnoOf(error);
      this.#notify();
    } finally {
      this.#connecting = null;
    }
  }
}

function checkBufferSize(n: number, what: string): void {
  if (!Number.isInteger(n) || n < 1) {
    throw new RangeError(`${what} must be a positive integer, got ${n}`);
  }
}

/** An option value as a number (4-byte values as little-endian int32). */
export function toOptionNumber(value: unknown): number {
  if (typeof value === "boolean") return value ? 1 : 0;
  if (typeof value === "number" && !Number.isNaN(value)) return value;
  if (value instanceof Uint8Array && value.length === 4) {
    return new DataView(value.buffer, value.byteOffset, 4).getInt32(0, true);
  }
  throw new TypeError(
    `The option value must be a number or a boolean, got ${
      (value as object)?.constructor?.name ?? typeof value
    }`,
  );
}
