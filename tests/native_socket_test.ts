// Tests of the native SocketImpl (the kernel side of aionet's Socket) and of
// readinessOfFd: non-blocking bind/listen/accept/connect with connect_ex
// codes, recv/send/sendAll/sendTo, shutdown, names, options by number,
// true readiness (poll(2)) with edge notifications, socket pairs connected
// at return, handing descriptors over to handles, and readiness of other
// descriptors (a pipe, a regular file). Every test checks for leaks.

import assert from "node:assert/strict";
import type { SocketImpl } from "../_backend.ts";
import type { NativeSocket } from "../_native_socket.ts";
import {
  AF_INET,
  AF_INET6,
  AF_UNIX,
  IP_ADD_MEMBERSHIP,
  IP_DROP_MEMBERSHIP,
  IP_MULTICAST_TTL,
  IPPROTO_IP,
  IPPROTO_TCP,
  SHUT_WR,
  SO_BROADCAST,
  SO_ERROR,
  SO_LINGER,
  SO_RCVBUF,
  SO_REUSEADDR,
  SO_SNDBUF,
  SOCK_DGRAM,
  SOCK_STREAM,
  SOL_SOCKET,
  TCP_NODELAY,
} from "../_native_libc.ts";
import { READ, waitReady, WRITE } from "../_readiness.ts";
import {
  Acceptor,
  backend,
  closeRaw,
  Collector,
  nativeTest,
  pattern,
  rawPipe,
  rawRead,
  rawWrite,
} from "./_native_fd_check.ts";
import { listenBacklog } from "./_helpers.ts";

const EINPROGRESS = 115;
const EALREADY = 114;
const EISCONN = 106;
const ECONNREFUSED = 111;

const timeout = () => AbortSignal.timeout(5000);

// The native sockets have `osSocket` and `recv` (newer parts of the seam).
const newSock = (family: number, type: number) =>
  backend.newSocket(family, type) as NativeSocket;
const pair = (family: number, type: number) =>
  backend.socketPair(family, type) as [NativeSocket, NativeSocket];

/** A listening TCP socket on 127.0.0.1 and its port. */
function tcpServer(backlog = 8): [NativeSocket, number] {
  const server = newSock(AF_INET, SOCK_STREAM);
  server.setsockopt(SOL_SOCKET, SO_REUSEADDR, 1);
  server.bind({ hostname: "127.0.0.1", port: 0 });
  server.listen(backlog);
  return [server, (server.getSockName() as Deno.NetAddr).port];
}

/** Connects `client` to `port` the non-blocking way; resolves when done. */
async function connect(client: SocketImpl, port: number): Promise<void> {
  const code = client.connect({ hostname: "127.0.0.1", port });
  if (code === 0) return;
  assert.equal(code, EINPROGRESS);
  await waitReady(client.readiness, WRITE, timeout());
  assert.equal(client.getsockopt(SOL_SOCKET, SO_ERROR), 0);
}

/** Receives until `total` bytes arrived (waiting on readiness). */
async function recvAll(sock: NativeSocket, total: number): Promise<Uint8Array> {
  const out = new Uint8Array(total);
  let offset = 0;
  while (offset < total) {
    try {
      const [n] = sock.recvInto(out.subarray(offset));
      if (n === 0) break;
      offset += n;
    } catch (error) {
      if (!(error instanceof Deno.errors.WouldBlock)) throw error;
      await waitReady(sock.readiness, READ, timeout());
    }
  }
  return out.subarray(0, offset);
}

nativeTest(
  "TCP: bind, listen, accept, connect as connect_ex, send, recv, shutdown",
  async () => {
    const [server, port] = tcpServer();
    const client = newSock(AF_INET, SOCK_STREAM);
    let conn: NativeSocket | null = null;
    try {
      assert.equal(client.osSocket, true);
      assert.ok(client.fd > 2);
      assert.throws(() => server.accept(), Deno.errors.WouldBlock);
      assert.equal(server.readiness.poll() & READ, 0);
      await connect(client, port);
      // Linux reports the finished connect once (0), then EISCONN.
      const again = client.connect({ hostname: "127.0.0.1", port });
      assert.ok(again === 0 || again === EISCONN, `got ${again}`);
      assert.equal(client.connect({ hostname: "127.0.0.1", port }), EISCONN);
      await waitReady(server.readiness, READ, timeout());
      const [accepted, peer] = server.accept();
      conn = accepted as NativeSocket;
      assert.deepEqual(peer, client.getSockName());
      assert.deepEqual(conn.getPeerName(), client.getSockName());
      assert.deepEqual(client.getPeerName(), server.getSockName());
      assert.throws(
        () => conn!.recvInto(new Uint8Array(4)),
        Deno.errors.WouldBlock,
      );
      assert.equal(conn.recv(0)[0].length, 0, "recv(0) never blocks");
      assert.throws(() => client.accept(), /listening socket/);
      assert.equal(client.send(new Uint8Array([1, 2, 3])), 3);
      await waitReady(conn.readiness, READ, timeout());
      const buffer = new Uint8Array(8);
      const [n, from] = conn.recvInto(buffer);
      assert.equal(n, 3);
      assert.deepEqual(from, client.getSockName());
      client.shutdown(SHUT_WR);
      await waitReady(conn.readiness, READ, timeout());
      assert.equal(conn.recvInto(buffer)[0], 0, "EOF after SHUT_WR");
      const [empty] = conn.recv(10);
      assert.equal(empty.length, 0);
    } finally {
      conn?.close();
      client.close();
      server.close();
    }
  },
);

nativeTest(
  "connect_ex codes: EALREADY while connecting, then refused via SO_ERROR",
  async () => {
    // A full backlog leaves the next connect in progress.
    const [server, port] = tcpServer(0);
    const filler = newSock(AF_INET, SOCK_STREAM);
    const client = newSock(AF_INET, SOCK_STREAM);
    const refused = newSock(AF_INET, SOCK_STREAM);
    try {
      await connect(filler, port);
      assert.equal(
        client.connect({ hostname: "127.0.0.1", port }),
        EINPROGRESS,
      );
      assert.equal(client.connect({ hostname: "127.0.0.1", port }), EALREADY);
      assert.equal(
        client.readiness.poll() & WRITE,
        0,
        "not writable while connecting",
      );
      const [gone, closedPort] = tcpServer();
      gone.close();
      const code = refused.connect({ hostname: "127.0.0.1", port: closedPort });
      if (code === EINPROGRESS) {
        await waitReady(refused.readiness, WRITE, timeout());
        assert.equal(refused.getsockopt(SOL_SOCKET, SO_ERROR), ECONNREFUSED);
      } else {
        assert.equal(code, ECONNREFUSED);
      }
    } finally {
      filler.close();
      client.close();
      refused.close();
      server.close();
    }
  },
);

nativeTest(
  "readiness: poll(2) truth and edge notifications of the bits asked",
  async () => {
    const [a, b] = pair(AF_UNIX, SOCK_STREAM);
    try {
      assert.equal(a.readiness.poll(), WRITE, "writable, nothing to read");
      let calls = 0;
      const told = Promise.withResolvers<void>();
      const unsubscribe = a.readiness.subscribe(() => {
        calls++;
        told.resolve();
      }, READ);
      assert.equal(a.readiness.interest, READ);
      b.send(new Uint8Array([42]));
      const timer = setTimeout(
        () => told.reject(new Error("never told")),
        5000,
      );
      await told.promise;
      clearTimeout(timer);
      assert.equal(a.readiness.poll(), READ | WRITE);
      assert.ok(calls >= 1);
      unsubscribe();
      assert.equal(a.readiness.interest, 0);
      b.close();
      assert.ok(a.readiness.poll() & READ, "EOF reads as readable");
    } finally {
      a.close();
      b.close();
    }
  },
);

nativeTest(
  "sendAll queues the rest; close right after loses nothing",
  async () => {
    const [a, b] = pair(AF_UNIX, SOCK_STREAM);
    try {
      a.setsockopt(SOL_SOCKET, SO_SNDBUF, 4096);
      const data = pattern(2 * 1024 * 1024, 5);
      a.sendAll(data);
      assert.equal(a.readiness.poll() & WRITE, 0, "not writable while queued");
      assert.throws(() => a.send(new Uint8Array(1)), Deno.errors.WouldBlock);
      assert.throws(() => a.sendAll(new Uint8Array(1)), Deno.errors.WouldBlock);
      a.close();
      assert.equal(a.closed, true);
      assert.throws(() => a.send(new Uint8Array(1)), Deno.errors.BadResource);
      const received = await recvAll(b, data.length + 1);
      assert.equal(received.length, data.length);
      assert.deepEqual(received, data);
    } finally {
      a.close();
      b.close();
    }
  },
);

nativeTest(
  "sendAll of a full socket throws WouldBlock and queues nothing",
  async () => {
    const [a, b] = pair(AF_UNIX, SOCK_STREAM);
    try {
      const chunk = new Uint8Array(65536);
      let total = 0;
      for (let i = 0; i < 4096; i++) {
        try {
          total += a.send(chunk);
        } catch (error) {
          assert.ok(error instanceof Deno.errors.WouldBlock);
          break;
        }
      }
      assert.throws(() => a.sendAll(chunk), Deno.errors.WouldBlock);
      const received = await recvAll(b, total);
      assert.equal(received.length, total);
      assert.equal(b.readiness.poll() & READ, 0, "nothing more was queued");
    } finally {
      a.close();
      b.close();
    }
  },
);

nativeTest(
  "UDP: sendTo, recvInto with the sender, connect, options",
  async () => {
    const a = newSock(AF_INET, SOCK_DGRAM);
    const b = newSock(AF_INET, SOCK_DGRAM);
    try {
      a.bind({ hostname: "127.0.0.1", port: 0 });
      b.bind({ hostname: "localhost", port: 0 });
      const bAddr = b.getSockName() as Deno.NetAddr;
      assert.equal(bAddr.hostname, "127.0.0.1");
      assert.equal(a.sendTo(new Uint8Array([5, 6]), bAddr), 2);
      await waitReady(b.readiness, READ, timeout());
      const buffer = new Uint8Array(16);
      const [n, from] = b.recvInto(buffer);
      assert.equal(n, 2);
      assert.deepEqual(from, a.getSockName());
      assert.throws(
        () => a.send(new Uint8Array([1])),
        Deno.errors.NotConnected,
      );
      assert.equal(a.connect(bAddr), 0);
      assert.equal(a.send(new Uint8Array([7])), 1);
      await waitReady(b.readiness, READ, timeout());
      assert.deepEqual(b.recv(16)[0], new Uint8Array([7]));
      assert.equal(a.getsockopt(SOL_SOCKET, SO_BROADCAST), 0);
      a.setsockopt(SOL_SOCKET, SO_BROADCAST, 1);
      assert.equal(a.getsockopt(SOL_SOCKET, SO_BROADCAST), 1);
      a.setsockopt(IPPROTO_IP, IP_MULTICAST_TTL, 3);
      assert.equal(a.getsockopt(IPPROTO_IP, IP_MULTICAST_TTL), 3);
      // ip_mreq: group, then interface address.
      const mreq = new Uint8Array([239, 255, 77, 2, 127, 0, 0, 1]);
      b.setsockopt(IPPROTO_IP, IP_ADD_MEMBERSHIP, mreq);
      b.setsockopt(IPPROTO_IP, IP_DROP_MEMBERSHIP, mreq);
      assert.throws(
        () => b.setsockopt(IPPROTO_IP, IP_DROP_MEMBERSHIP, mreq),
        Deno.errors.AddrNotAvailable,
      );
      assert.throws(
        () => b.setsockopt(IPPROTO_IP, IP_ADD_MEMBERSHIP, new Uint8Array(4)),
        RangeError,
      );
      assert.throws(
        () => b.setsockopt(IPPROTO_IP, IP_ADD_MEMBERSHIP, 1),
        TypeError,
      );
      // Python's struct.pack("4sL", group, INADDR_ANY): 16 bytes on 64-bit.
      const packed = new Uint8Array(16);
      packed.set([239, 255, 77, 2]);
      b.setsockopt(IPPROTO_IP, IP_ADD_MEMBERSHIP, packed);
      // Unknown options are the kernel's ENOPROTOOPT: NotSupported.
      assert.throws(
        () => b.setsockopt(SOL_SOCKET, 99, 1),
        Deno.errors.NotSupported,
      );
      assert.throws(
        () => b.getsockopt(SOL_SOCKET, 99),
        Deno.errors.NotSupported,
      );
    } finally {
      a.close();
      b.close();
    }
  },
);

nativeTest("options: TCP_NODELAY, SO_RCVBUF, SO_LINGER", () => {
  const sock = newSock(AF_INET6, SOCK_STREAM);
  try {
    sock.setsockopt(IPPROTO_TCP, TCP_NODELAY, 1);
    assert.equal(sock.getsockopt(IPPROTO_TCP, TCP_NODELAY), 1);
    sock.setsockopt(SOL_SOCKET, SO_RCVBUF, 8192);
    assert.ok(sock.getsockopt(SOL_SOCKET, SO_RCVBUF) >= 8192);
    // As CPython: two arguments read l_onoff; three, the struct's bytes.
    assert.equal(sock.getsockopt(SOL_SOCKET, SO_LINGER), 0, "off");
    sock.setsockopt(SOL_SOCKET, SO_LINGER, 0); // aionet: linger 0 s, on
    assert.equal(sock.getsockopt(SOL_SOCKET, SO_LINGER), 1);
    assert.deepEqual(
      sock.getsockoptBytes(SOL_SOCKET, SO_LINGER, 8),
      new Uint8Array([1, 0, 0, 0, 0, 0, 0, 0]),
    );
    sock.setsockopt(SOL_SOCKET, SO_LINGER, new Uint8Array(8));
    assert.equal(sock.getsockopt(SOL_SOCKET, SO_LINGER), 0);
    assert.throws(() => sock.getsockopt(SOL_SOCKET, 12345));
  } finally {
    sock.close();
  }
});

nativeTest(
  "buffers and backlog are the kernel's: SO_SNDBUF/SO_RCVBUF doubled, listen(backlog) bounds the accept queue",
  () => {
    // What the Deno backend emulates (sockets_test.ts: its send and
    // receive buffers, its backlog) is the kernel's own here.
    const sock = newSock(AF_INET, SOCK_STREAM);
    const [server, port] = tcpServer(3);
    try {
      sock.setsockopt(SOL_SOCKET, SO_SNDBUF, 8192);
      assert.equal(sock.getsockopt(SOL_SOCKET, SO_SNDBUF), 16384);
      sock.setsockopt(SOL_SOCKET, SO_RCVBUF, 8192);
      assert.equal(sock.getsockopt(SOL_SOCKET, SO_RCVBUF), 16384);
      assert.equal(listenBacklog(port), 3);
    } finally {
      sock.close();
      server.close();
    }
  },
);

nativeTest(
  "socket pairs are connected at return (Unix stream, Unix datagram, TCP)",
  async () => {
    for (
      const [family, type] of [
        [AF_UNIX, SOCK_STREAM],
        [AF_UNIX, SOCK_DGRAM],
        [AF_INET, SOCK_STREAM],
        [AF_INET6, SOCK_STREAM],
      ]
    ) {
      const [a, b] = pair(family, type);
      try {
        assert.equal(a.send(new Uint8Array([family, type])), 2);
        await waitReady(b.readiness, READ, timeout());
        assert.deepEqual(b.recv(8)[0], new Uint8Array([family, type]));
        if (family !== AF_UNIX) {
          assert.deepEqual(a.getPeerName(), b.getSockName());
        }
      } finally {
        a.close();
        b.close();
      }
    }
    assert.throws(
      () => pair(AF_INET, SOCK_DGRAM),
      Deno.errors.NotSupported,
    );
  },
);

nativeTest("Unix stream sockets by path", async () => {
  const dir = await Deno.makeTempDir();
  const path = `${dir}/s.sock`;
  const server = newSock(AF_UNIX, SOCK_STREAM);
  const client = newSock(AF_UNIX, SOCK_STREAM);
  try {
    server.bind({ path });
    server.listen(4);
    assert.deepEqual(server.getSockName(), { transport: "unix", path });
    assert.equal(client.connect({ path }), 0);
    const [conn, peer] = server.accept();
    assert.deepEqual(peer, { transport: "unix", path: null });
    conn.close();
    assert.throws(
      () => client.bind({ hostname: "127.0.0.1", port: 0 }),
      TypeError,
    );
  } finally {
    client.close();
    server.close();
    await Deno.remove(dir, { recursive: true });
  }
});

nativeTest(
  "detach: the kernel keeps received bytes for the stream handle",
  async () => {
    const [a, b] = pair(AF_UNIX, SOCK_STREAM);
    b.send(new Uint8Array([1, 2, 3]));
    await waitReady(a.readiness, READ, timeout());
    const detached = await a.detach();
    assert.equal(detached.kind, "stream");
    assert.equal(a.closed, true);
    assert.throws(() => a.recv(1), Deno.errors.BadResource);
    if (detached.kind !== "stream") throw new Error("unreachable");
    const handle = detached.handle;
    assert.equal(handle.fd, a.fd, "the same descriptor");
    const collector = new Collector();
    handle.readStart(collector);
    b.send(new Uint8Array([4]));
    await collector.bytesReceived(4);
    assert.deepEqual(collector.bytes(), new Uint8Array([1, 2, 3, 4]));
    a.close(); // Detached: closing the socket does nothing more.
    await handle.close();
    b.close();
  },
);

nativeTest(
  "detach: a listener hands over its backlog; a datagram its peer",
  async () => {
    const [server, port] = tcpServer();
    const client = newSock(AF_INET, SOCK_STREAM);
    await connect(client, port);
    const detached = await server.detach();
    assert.equal(detached.kind, "listener");
    if (detached.kind !== "listener") throw new Error("unreachable");
    assert.equal(detached.backlog, 8);
    const acceptor = new Acceptor();
    detached.handle.acceptStart(acceptor);
    await acceptor.count(1);
    await acceptor.handles[0].close();
    await detached.handle.close();
    client.close();

    const udp = newSock(AF_INET, SOCK_DGRAM);
    const peer = newSock(AF_INET, SOCK_DGRAM);
    peer.bind({ hostname: "127.0.0.1", port: 0 });
    const peerAddr = peer.getSockName() as Deno.NetAddr;
    udp.connect(peerAddr);
    const dgram = await udp.detach();
    assert.equal(dgram.kind, "datagram");
    if (dgram.kind !== "datagram") throw new Error("unreachable");
    assert.deepEqual(dgram.remoteAddr, peerAddr);
    assert.ok((dgram.handle.addr as Deno.NetAddr).port > 0, "bound");
    await dgram.handle.close();
    peer.close();

    const fresh = newSock(AF_INET, SOCK_STREAM);
    await assert.rejects(fresh.detach(), Deno.errors.NotConnected);
    fresh.close();
    await assert.rejects(fresh.detach(), Deno.errors.BadResource);
  },
);

nativeTest("close() wakes waiters with BadResource", async () => {
  const [a, b] = pair(AF_UNIX, SOCK_STREAM);
  const waiting = waitReady(a.readiness, READ, timeout());
  a.close();
  await assert.rejects(waiting, Deno.errors.BadResource);
  assert.equal(a.readiness.closed(), true);
  assert.equal(a.readiness.poll(), 0);
  a.close();
  b.close();
});

nativeTest(
  "readinessOfFd: a pipe, a native socket, a handle, a regular file",
  async () => {
    const [readFd, writeFd] = rawPipe();
    try {
      const readiness = backend.readinessOfFd(readFd)!;
      assert.equal(readiness.fd, readFd);
      assert.equal(readiness.poll() & READ, 0);
      assert.equal(backend.readinessOfFd(writeFd)!.poll(), WRITE);
      const waiting = waitReady(readiness, READ, timeout());
      rawWrite(writeFd, new Uint8Array([1]));
      await waiting;
      assert.deepEqual(rawRead(readFd), new Uint8Array([1]));
      assert.equal(readiness.poll() & READ, 0);
    } finally {
      closeRaw(readFd, writeFd);
    }
    const sock = newSock(AF_INET, SOCK_STREAM);
    assert.equal(backend.readinessOfFd(sock.fd), sock.readiness);
    sock.close();
    const listener = backend.listenTcp({
      hostname: "127.0.0.1",
      port: 0,
      backlog: 1,
      reusePort: false,
    });
    assert.throws(() => backend.readinessOfFd(listener.fd), Deno.errors.Busy);
    await listener.close();
    assert.throws(() => backend.readinessOfFd(-1), RangeError);
    assert.throws(() => backend.readinessOfFd(1.5), TypeError);
    assert.throws(() => backend.readinessOfFd(65000), Deno.errors.BadResource);
    // A regular file: always ready, no epoll registration needed.
    const file = await Deno.makeTempFile();
    const opened = await Deno.open(file);
    const fileFd = [...Deno.readDirSync("/proc/self/fd")]
      .map((e) => Number(e.name))
      .find((fd) => {
        try {
          return Deno.readLinkSync(`/proc/self/fd/${fd}`) === file;
        } catch {
          return false;
        }
      });
    try {
      assert.ok(fileFd !== undefined);
      const readiness = backend.readinessOfFd(fileFd)!;
      await waitReady(readiness, READ, timeout());
      const unsubscribe = readiness.subscribe(() => {}, READ);
      unsubscribe();
    } finally {
      opened.close();
      await Deno.remove(file);
    }
  },
);
