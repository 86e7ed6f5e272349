// Tests of the native stream and listener handles over real loopback TCP
// and Unix sockets: echo integrity, synchronous and deferred writes, read
// stop/start holding, half-close, close exactly once, abort as a reset
// (seen by a raw Deno peer), socket options, local-address binding, Happy
// Eyeballs, connect errors and aborts, the accept cap per turn, and the
// listener's socket file. Every test checks for leaked descriptors.

import assert from "node:assert/strict";
import { setImmediate } from "node:timers";
import type { StreamHandle } from "../_backend.ts";
import { connectAddresses, interleaveAddresses } from "../_native_backend.ts";
import {
  AF_INET,
  AF_INET6,
  IPPROTO_TCP,
  SO_KEEPALIVE,
  SOL_SOCKET,
  TCP_NODELAY,
} from "../_native_libc.ts";
import { pollNow } from "../_native_socket.ts";
import {
  Acceptor,
  backend,
  Collector,
  nativeTest,
  pattern,
  writeAll,
} from "./_native_fd_check.ts";

function tcpListener(backlog = 64) {
  return backend.listenTcp({
    hostname: "127.0.0.1",
    port: 0,
    backlog,
    reusePort: false,
  });
}

function portOf(addr: Deno.Addr): number {
  return (addr as Deno.NetAddr).port;
}

/** An echo server on `listener`: every accepted handle echoes until EOF. */
function echo(acceptor: Acceptor): void {
  const original = acceptor.accepted.bind(acceptor);
  acceptor.accepted = (handle: StreamHandle) => {
    original(handle);
    let writing = Promise.resolve();
    const buffer = new Uint8Array(16384);
    handle.readStart({
      readBuffer: () => buffer,
      readDone(data, n) {
        const copy = data.slice(0, n);
        writing = writing.then(() => writeAll(handle, copy));
      },
      readEof() {
        writing.then(() => handle.shutdownWrite()).catch(() => {});
      },
      readError() {},
    });
  };
}

nativeTest("TCP: a megabyte echoes back intact; EOF both ways", async () => {
  const listener = tcpListener();
  const acceptor = new Acceptor();
  echo(acceptor);
  listener.acceptStart(acceptor);
  const client = await backend.connectTcp({
    hostname: "127.0.0.1",
    port: portOf(listener.addr),
  });
  try {
    assert.equal(client.syncReads, true);
    assert.equal(client.resource, null);
    assert.ok(client.fd > 2);
    const collector = new Collector();
    client.readStart(collector);
    const data = pattern(1 << 20, 7);
    await writeAll(client, data);
    await client.shutdownWrite();
    await collector.ended();
    assert.equal(collector.error, null);
    assert.equal(collector.total, data.length);
    assert.deepEqual(collector.bytes(), data);
    await acceptor.count(1);
    assert.deepEqual(
      acceptor.handles[0].remoteAddr(),
      client.localAddr(),
    );
  } finally {
    await client.close();
    for (const handle of acceptor.handles) await handle.close();
    await listener.close();
  }
});

nativeTest(
  "Unix: echo over a path; the listener removes its socket file",
  async () => {
    const dir = await Deno.makeTempDir();
    const path = `${dir}/echo.sock`;
    const listener = backend.listenUnix(path, 8);
    const acceptor = new Acceptor();
    echo(acceptor);
    listener.acceptStart(acceptor);
    try {
      assert.equal((await Deno.lstat(path)).isSocket, true);
      const client = await backend.connectUnix(path);
      const collector = new Collector();
      client.readStart(collector);
      const data = pattern(200_000, 3);
      await writeAll(client, data);
      await client.shutdownWrite();
      await collector.ended();
      assert.deepEqual(collector.bytes(), data);
      assert.deepEqual(client.remoteAddr(), { transport: "unix", path });
      client.setNoDelay(true); // A no-op on Unix sockets.
      await client.close();
      for (const handle of acceptor.handles) await handle.close();
    } finally {
      await listener.close();
    }
    await assert.rejects(Deno.lstat(path), Deno.errors.NotFound);
    await Deno.remove(dir);
  },
);

nativeTest("Unix: an abstract name connects and leaves no file", async () => {
  const name = `\0aionet-test-${crypto.randomUUID()}`;
  const listener = backend.listenUnix(name, 8);
  const acceptor = new Acceptor();
  listener.acceptStart(acceptor);
  const client = await backend.connectUnix(name);
  await acceptor.count(1);
  assert.equal((client.remoteAddr() as Deno.UnixAddr).path, name);
  await client.close();
  await acceptor.handles[0].close();
  await listener.close();
});

nativeTest(
  "write returns counts at once, a promise when the socket is full",
  async () => {
    const listener = tcpListener();
    const acceptor = new Acceptor();
    listener.acceptStart(acceptor);
    const client = await backend.connectTcp({
      hostname: "127.0.0.1",
      port: portOf(listener.addr),
    });
    await acceptor.count(1);
    const server = acceptor.handles[0];
    try {
      const chunk = new Uint8Array(256 * 1024);
      let written = 0;
      let pending: Promise<number> | null = null;
      // The server reads nothing: the buffers fill (bounded at 256 MiB).
      for (let i = 0; i < 1024 && pending === null; i++) {
        const result = client.write(chunk);
        if (typeof result === "number") {
          assert.ok(result > 0 && result <= chunk.length);
          written += result;
        } else {
          pending = result;
        }
      }
      assert.ok(pending !== null, "the socket never filled");
      assert.throws(() => client.write(chunk), Deno.errors.Busy);
      const collector = new Collector(1 << 20);
      server.readStart(collector);
      const n = await pending;
      assert.ok(n > 0 && n <= chunk.length);
      written += n;
      await client.shutdownWrite();
      await collector.ended(20_000);
      assert.equal(collector.total, written);
    } finally {
      await client.close();
      await server.close();
      await listener.close();
    }
  },
);

nativeTest(
  "readStop holds data until readStart, even stopped from readDone",
  async () => {
    const listener = tcpListener();
    const acceptor = new Acceptor();
    listener.acceptStart(acceptor);
    const client = await backend.connectTcp({
      hostname: "127.0.0.1",
      port: portOf(listener.addr),
    });
    await acceptor.count(1);
    const server = acceptor.handles[0];
    // A second connection whose round trips prove the poller kept turning.
    const probeListener = tcpListener();
    const probeAcceptor = new Acceptor();
    echo(probeAcceptor);
    probeListener.acceptStart(probeAcceptor);
    const probe = await backend.connectTcp({
      hostname: "127.0.0.1",
      port: portOf(probeListener.addr),
    });
    const probeCollector = new Collector();
    probe.readStart(probeCollector);
    try {
      const collector = new Collector();
      const stopping = {
        readBuffer: () => collector.readBuffer(),
        readDone(buffer: Uint8Array, n: number) {
          collector.readDone(buffer, n);
          server.readStop();
        },
        readEof: () => collector.readEof(),
        readError: (e: Error) => collector.readError(e),
      };
      server.readStart(stopping);
      await writeAll(client, new Uint8Array([1, 2, 3]));
      await collector.bytesReceived(3);
      await writeAll(client, new Uint8Array([4, 5, 6]));
      // The bytes are in the server's kernel buffer…
      assert.ok(pollNow(server.fd) & 1, "the server socket is readable");
      // …and ten probe round trips later still undelivered.
      for (let i = 1; i <= 10; i++) {
        await writeAll(probe, new Uint8Array([i]));
        await probeCollector.bytesReceived(i);
      }
      assert.equal(collector.total, 3);
      server.readStart(stopping);
      await collector.bytesReceived(6);
      assert.deepEqual(collector.bytes(), new Uint8Array([1, 2, 3, 4, 5, 6]));
    } finally {
      await Promise.all([client.close(), server.close(), probe.close()]);
      for (const handle of probeAcceptor.handles) await handle.close();
      await listener.close();
      await probeListener.close();
    }
  },
);

nativeTest(
  "abort() resets: a raw Deno peer reads ConnectionReset",
  async () => {
    const listener = tcpListener();
    const acceptor = new Acceptor();
    listener.acceptStart(acceptor);
    const peer = await Deno.connect({
      hostname: "127.0.0.1",
      port: portOf(listener.addr),
    });
    try {
      await acceptor.count(1);
      await acceptor.handles[0].abort();
      await assert.rejects(
        peer.read(new Uint8Array(16)),
        Deno.errors.ConnectionReset,
      );
    } finally {
      peer.close();
      await listener.close();
    }
  },
);

nativeTest(
  "abort() resets: a native peer gets readError(ConnectionReset)",
  async () => {
    const listener = tcpListener();
    const acceptor = new Acceptor();
    listener.acceptStart(acceptor);
    const client = await backend.connectTcp({
      hostname: "127.0.0.1",
      port: portOf(listener.addr),
    });
    const collector = new Collector();
    client.readStart(collector);
    await acceptor.count(1);
    await acceptor.handles[0].abort();
    await collector.ended();
    assert.ok(collector.error instanceof Deno.errors.ConnectionReset);
    assert.match(collector.error.message, /os error 104/);
    await client.close();
    await listener.close();
  },
);

nativeTest(
  "close(): once, writes after it throw BadResource, fd reuse is safe",
  async () => {
    const listener = tcpListener();
    const acceptor = new Acceptor();
    listener.acceptStart(acceptor);
    const port = portOf(listener.addr);
    const first = await backend.connectTcp({ hostname: "127.0.0.1", port });
    const fd = first.fd;
    const closing = first.close();
    assert.equal(first.close(), closing, "closing twice is one close");
    await closing;
    assert.throws(
      () => first.write(new Uint8Array(1)),
      Deno.errors.BadResource,
    );
    await assert.rejects(first.shutdownWrite(), Deno.errors.BadResource);
    assert.throws(
      () => first.options!.get(SOL_SOCKET, SO_KEEPALIVE),
      Deno.errors.BadResource,
    );
    assert.deepEqual(first.localAddr()?.transport, "tcp", "still known");
    // The kernel hands out the lowest free number: likely `fd` again.
    const second = await backend.connectTcp({ hostname: "127.0.0.1", port });
    await first.close();
    await first.abort();
    assert.equal(
      pollNow(second.fd) & 0x20,
      0,
      "the new descriptor is still open",
    );
    if (second.fd === fd) {
      const collector = new Collector();
      second.readStart(collector);
      await acceptor.count(2);
      await writeAll(acceptor.handles[1], new Uint8Array([9]));
      await collector.bytesReceived(1);
    }
    await second.close();
    for (const handle of acceptor.handles) await handle.close();
    await listener.close();
  },
);

nativeTest(
  "options: TCP_NODELAY and SO_KEEPALIVE are the kernel's",
  async () => {
    const listener = tcpListener();
    const acceptor = new Acceptor();
    listener.acceptStart(acceptor);
    const client = await backend.connectTcp({
      hostname: "127.0.0.1",
      port: portOf(listener.addr),
    });
    try {
      const options = client.options!;
      client.setNoDelay(true);
      assert.equal(options.get(IPPROTO_TCP, TCP_NODELAY), 1);
      client.setNoDelay(false);
      assert.equal(options.get(IPPROTO_TCP, TCP_NODELAY), 0);
      client.setKeepAlive(true);
      assert.equal(options.get(SOL_SOCKET, SO_KEEPALIVE), 1);
      options.set(SOL_SOCKET, SO_KEEPALIVE, 0);
      assert.equal(options.get(SOL_SOCKET, SO_KEEPALIVE), 0);
      assert.throws(() => options.set(SOL_SOCKET, 9999, 1));
      assert.equal(
        listener.options!.get(SOL_SOCKET, 30 /* SO_ACCEPTCONN */),
        1,
      );
    } finally {
      await client.close();
      await acceptor.count(1);
      await acceptor.handles[0].close();
      await listener.close();
    }
  },
);

nativeTest("localAddr binds before connecting", async () => {
  const listener = tcpListener();
  const acceptor = new Acceptor();
  listener.acceptStart(acceptor);
  const client = await backend.connectTcp({
    hostname: "127.0.0.1",
    port: portOf(listener.addr),
    localAddr: { hostname: "127.0.0.2", port: 0 },
  });
  try {
    await acceptor.count(1);
    assert.equal(
      (acceptor.handles[0].remoteAddr() as Deno.NetAddr).hostname,
      "127.0.0.2",
    );
    assert.equal((client.localAddr() as Deno.NetAddr).hostname, "127.0.0.2");
  } finally {
    await client.close();
    await acceptor.handles[0].close();
    await listener.close();
  }
});

nativeTest("localAddr of the other family fails clearly", async () => {
  const listener = tcpListener();
  await assert.rejects(
    backend.connectTcp({
      hostname: "127.0.0.1",
      port: portOf(listener.addr),
      localAddr: { hostname: "::1" },
    }),
    Deno.errors.AddrNotAvailable,
  );
  await listener.close();
});

nativeTest("connect errors: refused, and an abort mid-connect", async () => {
  const listener = tcpListener();
  const port = portOf(listener.addr);
  await listener.close();
  await assert.rejects(
    backend.connectTcp({ hostname: "127.0.0.1", port }),
    Deno.errors.ConnectionRefused,
  );
  // A listener whose backlog is full drops SYNs: the connect hangs.
  const full = tcpListener(0);
  const filler = await backend.connectTcp({
    hostname: "127.0.0.1",
    port: portOf(full.addr),
  });
  const controller = new AbortController();
  const reason = new Error("given up");
  const connecting = backend.connectTcp({
    hostname: "127.0.0.1",
    port: portOf(full.addr),
    signal: controller.signal,
  });
  const timer = setTimeout(() => controller.abort(reason), 30);
  await assert.rejects(connecting, (error) => error === reason);
  clearTimeout(timer);
  const aborted = new AbortController();
  aborted.abort(reason);
  await assert.rejects(
    backend.connectTcp({
      hostname: "127.0.0.1",
      port: portOf(full.addr),
      signal: aborted.signal,
    }),
    (error) => error === reason,
  );
  await filler.close();
  await full.close();
});

nativeTest("interleaveAddresses follows asyncio", () => {
  const a = (address: string) => ({
    family: address.includes(":") ? AF_INET6 : AF_INET,
    address,
  });
  const list = [a("::1"), a("::2"), a("::3"), a("1.1.1.1"), a("2.2.2.2")];
  const order = (n: number) =>
    interleaveAddresses(list, n).map((x) => x.address);
  assert.deepEqual(order(1), ["::1", "1.1.1.1", "::2", "2.2.2.2", "::3"]);
  assert.deepEqual(order(2), ["::1", "::2", "1.1.1.1", "::3", "2.2.2.2"]);
});

nativeTest(
  "Happy Eyeballs: a hanging first address loses to the second",
  async () => {
    // 127.0.0.1:P never answers (full backlog); [::1]:P does.
    const full = tcpListener(0);
    const port = portOf(full.addr);
    const v6 = backend.listenTcp({
      hostname: "::1",
      port,
      backlog: 8,
      reusePort: false,
    });
    const acceptor = new Acceptor();
    v6.acceptStart(acceptor);
    const filler = await backend.connectTcp({ hostname: "127.0.0.1", port });
    try {
      const started = performance.now();
      const handle = await connectAddresses(
        [{ family: AF_INET, address: "127.0.0.1" }, {
          family: AF_INET6,
          address: "::1",
        }],
        port,
        { locals: null, localPort: 0, happyEyeballsDelay: 50, host: "test" },
      );
      const elapsed = performance.now() - started;
      assert.equal((handle.remoteAddr() as Deno.NetAddr).hostname, "::1");
      assert.ok(
        elapsed >= 45,
        `the second attempt waited the delay (${elapsed} ms)`,
      );
      await handle.close();
      // Sequential attempts (no delay) would wait for the first to fail.
      await acceptor.count(1);
    } finally {
      for (const handle of acceptor.handles) await handle.close();
      await filler.close();
      await full.close();
      await v6.close();
    }
  },
);

nativeTest(
  "Happy Eyeballs: a refused first address starts the next at once",
  async () => {
    const v6 = backend.listenTcp({
      hostname: "::1",
      port: 0,
      backlog: 8,
      reusePort: false,
    });
    const acceptor = new Acceptor();
    v6.acceptStart(acceptor);
    const port = portOf(v6.addr);
    const started = performance.now();
    const handle = await connectAddresses(
      [{ family: AF_INET, address: "127.0.0.1" }, {
        family: AF_INET6,
        address: "::1",
      }],
      port,
      { locals: null, localPort: 0, happyEyeballsDelay: 10_000, host: "test" },
    );
    assert.ok(performance.now() - started < 5000);
    assert.equal((handle.remoteAddr() as Deno.NetAddr).hostname, "::1");
    await handle.close();
    await acceptor.count(1);
    await acceptor.handles[0].close();
    await v6.close();
  },
);

nativeTest(
  "accepts are capped per turn (a storm cannot starve the loop)",
  async () => {
    const listener = tcpListener(256);
    const port = portOf(listener.addr);
    const clients: StreamHandle[] = [];
    for (let i = 0; i < 80; i++) {
      clients.push(await backend.connectTcp({ hostname: "127.0.0.1", port }));
    }
    const acceptor = new Acceptor();
    listener.acceptStart(acceptor);
    // Queued after the poller's first tick: runs after one turn of accepts.
    const afterFirstTurn = await new Promise<number>((resolve) =>
      setImmediate(() => resolve(acceptor.handles.length))
    );
    assert.ok(
      afterFirstTurn > 0 && afterFirstTurn < 80,
      `accepted ${afterFirstTurn} in the first turn`,
    );
    await acceptor.count(80);
    for (const handle of [...clients, ...acceptor.handles]) {
      await handle
        .close();
    }
    await listener.close();
  },
);

nativeTest(
  "acceptStop leaves connections in the backlog for acceptStart",
  async () => {
    const listener = tcpListener();
    const acceptor = new Acceptor();
    listener.acceptStart(acceptor);
    listener.acceptStop();
    const client = await backend.connectTcp({
      hostname: "127.0.0.1",
      port: portOf(listener.addr),
    });
    assert.ok(pollNow(listener.fd) & 1, "a connection waits in the backlog");
    assert.equal(acceptor.handles.length, 0);
    listener.acceptStart(acceptor);
    await acceptor.count(1);
    await client.close();
    await acceptor.handles[0].close();
    await listener.close();
  },
);

nativeTest(
  "listenTcp: AddrInUse, reusePort shares a port, ipv6Only",
  async () => {
    const first = backend.listenTcp({
      hostname: "127.0.0.1",
      port: 0,
      backlog: 4,
      reusePort: true,
    });
    const port = portOf(first.addr);
    assert.throws(
      () =>
        backend.listenTcp({
          hostname: "127.0.0.1",
          port,
          backlog: 4,
          reusePort: false,
        }),
      Deno.errors.AddrInUse,
    );
    const second = backend.listenTcp({
      hostname: "127.0.0.1",
      port,
      backlog: 4,
      reusePort: true,
    });
    assert.equal(portOf(second.addr), port);
    const v6only = backend.listenTcp({
      hostname: "::",
      port: 0,
      backlog: 4,
      reusePort: false,
      ipv6Only: true,
    });
    assert.equal(v6only.options!.get(41, 26 /* IPV6_V6ONLY */), 1);
    // An IPv4 listener can take the same port number: the v6 one is v6 only.
    const v4 = backend.listenTcp({
      hostname: "0.0.0.0",
      port: portOf(v6only.addr),
      backlog: 4,
      reusePort: false,
    });
    await Promise.all([
      first.close(),
      second.close(),
      v6only.close(),
      v4.close(),
    ]);
  },
);
