// Tests of Server (_server.ts) and createServer/createUnixServer
// (transports.ts) over real sockets: accepting and closing, waitClosed,
// closeClients/abortClients, serveForever, startServing: false, several
// hostnames, backlog, keepAlive, reusePort, disposal, signals, Unix paths.

import assert from "node:assert/strict";
import {
  createServer,
  createUnixServer,
  type Server,
  type Transport,
} from "../transports.ts";
import { Protocol } from "../protocols.ts";
import { type ExceptionContext, getEventLoop } from "../events.ts";
import {
  BACKEND,
  decode,
  encode,
  getTcpSockOpt,
  hasIpv6Loopback,
  listenBacklog,
  pattern,
  readAll,
  readExactly,
  RecordingProtocol,
  SO_KEEPALIVE,
  SO_REUSEPORT,
  SOL_SOCKET,
  startEchoServer,
  transportSockOpt,
  withTimeout,
  writeAll,
} from "./_helpers.ts";

const MiB = 1024 * 1024;

/** Passes a value of the wrong type past the type checker, on purpose. */
function bad(value: unknown): never {
  return value as never;
}

/** An echo protocol that records its callbacks. */
class Echo extends RecordingProtocol {
  override dataReceived(data: Uint8Array) {
    super.dataReceived(data);
    this.transport!.write(data);
  }
}

/**
 * A protocol factory that keeps every protocol it made and lets a test wait
 * for the next `connectionMade`.
 */
class Factory<P extends RecordingProtocol = Echo> {
  readonly protocols: P[] = [];
  #waiters: Array<(p: P) => void> = [];
  #make: () => P;
  constructor(make?: () => P) {
    this.#make = make ?? (() => new Echo() as unknown as P);
  }
  readonly create = (): P => {
    const p = this.#make();
    this.protocols.push(p);
    p.made.then(() => this.#waiters.shift()?.(p));
    return p;
  };
  /** Resolves at the next connectionMade (call before connecting). */
  nextMade(ms = 5000): Promise<P> {
    const { promise, resolve } = Promise.withResolvers<P>();
    this.#waiters.push(resolve);
    return withTimeout(promise, ms, "server connectionMade");
  }
}

function portOf(server: Server, index = 0): number {
  return (server.addrs[index] as Deno.NetAddr).port;
}

function connect(port: number, hostname = "127.0.0.1"): Promise<Deno.TcpConn> {
  return Deno.connect({ hostname, port });
}

async function roundTrip(conn: Deno.Conn, text: string): Promise<void> {
  await writeAll(conn, encode(text));
  const got = await withTimeout(
    readExactly(conn, encode(text).length),
    5000,
    "echo",
  );
  assert.equal(decode(got), text);
}

async function shutdown(server: Server): Promise<void> {
  server.close();
  server.abortClients();
  await withTimeout(server.waitClosed(), 5000, "waitClosed");
}

// ---- close, waitClosed ----

Deno.test("server: close() stops accepting, live connections go on, waitClosed() waits for them", async () => {
  const factory = new Factory();
  const server = await createServer(factory.create, {
    hostname: "127.0.0.1",
    port: 0,
  });
  const port = portOf(server);
  try {
    assert.equal(server.isServing(), true);
    const made = factory.nextMade();
    const live = await connect(port);
    await made;
    await roundTrip(live, "before");

    server.close();
    assert.equal(server.isServing(), false);
    assert.deepEqual(server.sockets, []);
    let waited = false;
    const waiting = server.waitClosed().then(() => {
      waited = true;
    });
    // No new connection gets through (Deno may still complete the handshake
    // of a connect that races the close, then resets it).
    await assert.rejects(
      connect(port),
      (e) =>
        e instanceof Deno.errors.ConnectionRefused ||
        e instanceof Deno.errors.ConnectionReset,
    );
    assert.equal(factory.protocols.length, 1);

    // The live connection still works and waitClosed() has not resolved.
    await roundTrip(live, "after close");
    assert.equal(waited, false);

    live.close();
    assert.equal(
      await withTimeout(factory.protocols[0].lost, 5000, "connectionLost"),
      null,
    );
    await withTimeout(waiting, 5000, "waitClosed");
    assert.equal(waited, true);
    // Once waitClosed() resolved, the address is released.
    await assert.rejects(connect(port), Deno.errors.ConnectionRefused);
    server.close(); // idempotent
  } finally {
    await shutdown(server);
  }
});

Deno.test("server: closeClients() flushes what each connection buffered", async () => {
  const data = pattern(4 * MiB, 21);
  class Sender extends RecordingProtocol {
    override connectionMade(t: Transport) {
      super.connectionMade(t);
      t.write(data);
    }
  }
  const factory = new Factory(() => new Sender());
  const server = await createServer(factory.create, {
    hostname: "127.0.0.1",
    port: 0,
  });
  try {
    const made = factory.nextMade();
    const client = await connect(portOf(server));
    try {
      const p = await made;
      assert.ok(p.transport!.getWriteBufferSize() > 0);
      server.close();
      server.closeClients();
      const got = await withTimeout(readAll(client), 10000, "4 MiB then EOF");
      assert.equal(got.length, data.length);
      assert.ok(got.every((b, i) => b === data[i]), "bytes intact");
      assert.equal(await withTimeout(p.lost, 5000, "connectionLost"), null);
      await withTimeout(server.waitClosed(), 5000, "waitClosed");
    } finally {
      client.close();
    }
  } finally {
    await shutdown(server);
  }
});

Deno.test("server: abortClients() drops buffers and ends every connection", async () => {
  class Sender extends RecordingProtocol {
    override connectionMade(t: Transport) {
      super.connectionMade(t);
      t.write(pattern(4 * MiB));
    }
  }
  const factory = new Factory(() => new Sender());
  const server = await createServer(factory.create, {
    hostname: "127.0.0.1",
    port: 0,
  });
  const clients: Deno.Conn[] = [];
  try {
    for (let i = 0; i < 2; i++) {
      const made = factory.nextMade();
      clients.push(await connect(portOf(server)));
      await made;
    }
    server.abortClients();
    for (const p of factory.protocols) {
      assert.equal(await withTimeout(p.lost, 5000, "connectionLost"), null);
    }
    for (const client of clients) {
      let got = 0;
      try {
        got = (await withTimeout(readAll(client), 5000, "EOF")).length;
      } catch (e) {
        assert.ok(e instanceof Deno.errors.ConnectionReset, String(e));
      }
      assert.ok(got < 4 * MiB, `client got ${got} bytes`);
    }
    // The server itself is still serving.
    assert.equal(server.isServing(), true);
    server.close();
    await withTimeout(server.waitClosed(), 5000, "waitClosed");
  } finally {
    for (const client of clients) client.close();
    await shutdown(server);
  }
});

// ---- serveForever, startServing ----

Deno.test("server: serveForever() resolves after close(); a second one at the same time rejects", async () => {
  const server = await createServer(() => new Echo(), {
    hostname: "127.0.0.1",
    port: 0,
    startServing: false,
  });
  try {
    assert.equal(server.isServing(), false);
    let resolved = false;
    const forever = server.serveForever().then(() => {
      resolved = true;
    });
    assert.equal(server.isServing(), true);
    await assert.rejects(server.serveForever(), Error);
    // Serving for real: a client is echoed.
    const client = await connect(portOf(server));
    try {
      await roundTrip(client, "serving");
    } finally {
      client.close();
    }
    assert.equal(resolved, false);
    server.close();
    await withTimeout(forever, 5000, "serveForever");
    assert.equal(resolved, true);
    assert.equal(server.isServing(), false);
    // A closed server cannot serve again.
    await assert.rejects(server.serveForever(), Deno.errors.BadResource);
    assert.throws(() => server.startServing(), Deno.errors.BadResource);
  } finally {
    await shutdown(server);
  }
});

Deno.test("server: startServing: false binds at once and accepts nothing until startServing()", async () => {
  await using echo = startEchoServer();
  const factory = new Factory();
  const server = await createServer(factory.create, {
    hostname: "127.0.0.1",
    port: 0,
    startServing: false,
  });
  try {
    const port = portOf(server);
    assert.ok(port > 0);
    assert.equal(server.addrs.length, 1);
    assert.equal(server.addrs[0].transport, "tcp");
    assert.equal(server.sockets.length, 1);
    assert.deepEqual(
      { ...server.sockets[0].getSockName() },
      { ...server.addrs[0] },
    );
    assert.equal(server.isServing(), false);

    // The kernel completes the handshake (backlog) ...
    const client = await connect(port);
    try {
      await writeAll(client, encode("queued"));
      // ... but the server does not accept: let I/O run through another
      // connection's round trip and check nothing was made.
      const clock = await connect(echo.port);
      try {
        await roundTrip(clock, "tick");
        await roundTrip(clock, "tock");
      } finally {
        clock.close();
      }
      assert.equal(factory.protocols.length, 0);

      const made = factory.nextMade();
      server.startServing();
      assert.equal(server.isServing(), true);
      server.startServing(); // no-op when serving
      await made;
      assert.equal(
        decode(await withTimeout(readExactly(client, 6), 5000, "echo")),
        "queued",
      );
    } finally {
      client.close();
    }
  } finally {
    await shutdown(server);
  }
});

// ---- addresses and options ----

Deno.test("server: sockets[0].getSockName() and addrs match the bound address", async () => {
  const server = await createServer(() => new Echo(), {
    hostname: "127.0.0.1",
    port: 0,
  });
  try {
    const addr = server.addrs[0] as Deno.NetAddr;
    assert.equal(addr.hostname, "127.0.0.1");
    assert.ok(addr.port > 0);
    const name = server.sockets[0].getSockName() as Deno.NetAddr;
    assert.deepEqual({ ...name }, { ...addr });
    assert.equal(typeof server.sockets[0].fileno(), "number");
    // addrs is a copy: changing it changes nothing.
    server.addrs.pop();
    assert.equal(server.addrs.length, 1);
  } finally {
    await shutdown(server);
  }
});

Deno.test("server: a list of hostnames listens on each", async () => {
  const hosts = hasIpv6Loopback()
    ? ["127.0.0.1", "::1"]
    : ["127.0.0.1", "127.0.0.2"];
  const factory = new Factory();
  const server = await createServer(factory.create, {
    hostname: hosts,
    port: 0,
  });
  try {
    assert.equal(server.addrs.length, 2);
    assert.equal(server.sockets.length, 2);
    for (let i = 0; i < hosts.length; i++) {
      const addr = server.addrs[i] as Deno.NetAddr;
      assert.equal(addr.hostname, hosts[i]);
      assert.ok(addr.port > 0);
      const client = await connect(addr.port, hosts[i]);
      try {
        await roundTrip(client, `via ${hosts[i]}`);
      } finally {
        client.close();
      }
    }
    assert.equal(factory.protocols.length, 2);
  } finally {
    await shutdown(server);
  }
});

Deno.test("server: backlog sets the listen queue size (default 100)", async () => {
  const small = await createServer(() => new Echo(), {
    hostname: "127.0.0.1",
    port: 0,
    backlog: 7,
  });
  const byDefault = await createServer(() => new Echo(), {
    hostname: "127.0.0.1",
    port: 0,
  });
  try {
    assert.equal(listenBacklog(portOf(small)), 7);
    assert.equal(listenBacklog(portOf(byDefault)), 100);
  } finally {
    await shutdown(small);
    await shutdown(byDefault);
  }
  const f = () => new Protocol();
  await assert.rejects(createServer(f, { port: 0, backlog: -1 }), RangeError);
  await assert.rejects(createServer(f, { port: 0, backlog: 1.5 }), RangeError);
  await assert.rejects(
    createServer(f, { port: 0, backlog: bad("10") }),
    TypeError,
  );
});

Deno.test("server: keepAlive turns SO_KEEPALIVE on for accepted connections", async () => {
  for (const keepAlive of [true, false]) {
    const factory = new Factory();
    const server = await createServer(factory.create, {
      hostname: "127.0.0.1",
      port: 0,
      keepAlive,
    });
    try {
      const made = factory.nextMade();
      const client = await connect(portOf(server));
      try {
        const p = await made;
        assert.equal(
          transportSockOpt(p.transport!, SOL_SOCKET, SO_KEEPALIVE),
          keepAlive ? 1 : 0,
          `keepAlive: ${keepAlive}`,
        );
      } finally {
        client.close();
      }
    } finally {
      await shutdown(server);
    }
  }
});

Deno.test("server: reusePort lets two servers share a port", async () => {
  const factory = new Factory();
  const first = await createServer(factory.create, {
    hostname: "127.0.0.1",
    port: 0,
    reusePort: true,
  });
  const port = portOf(first);
  let second: Server | undefined;
  try {
    assert.equal(getTcpSockOpt(port, 0, SOL_SOCKET, SO_REUSEPORT), 1);
    second = await createServer(factory.create, {
      hostname: "127.0.0.1",
      port,
      reusePort: true,
    });
    assert.equal(portOf(second), port);
    const client = await connect(port);
    try {
      await roundTrip(client, "shared");
    } finally {
      client.close();
    }
    // Without the flag the port is taken.
    await assert.rejects(
      createServer(() => new Echo(), { hostname: "127.0.0.1", port }),
      Deno.errors.AddrInUse,
    );
  } finally {
    await shutdown(first);
    if (second) await shutdown(second);
  }
});

Deno.test("server: reusePort without --unstable-net fails with a clear NotSupported error, not a crash", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const script = `${dir}/reuse.ts`;
    const transports = new URL("../transports.ts", import.meta.url).href;
    const protocols = new URL("../protocols.ts", import.meta.url).href;
    await Deno.writeTextFile(
      script,
      `import { createServer } from ${JSON.stringify(transports)};
import { Protocol } from ${JSON.stringify(protocols)};
const server = await createServer(() => new Protocol(), {
  hostname: "127.0.0.1",
  port: 0,
  reusePort: true,
});
console.log("listening");
server.close();
`,
    );
    const out = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "--no-config",
        "--no-lock",
        "--allow-net=127.0.0.1",
        "--allow-read",
        script,
      ],
      env: { NO_COLOR: "1" },
      stdout: "piped",
      stderr: "piped",
    }).output();
    const stdout = decode(out.stdout);
    const stderr = decode(out.stderr);
    assert.equal(out.signal, null, `killed by a signal: ${stderr}`);
    assert.equal(out.code, 1, `exit code ${out.code}: ${stderr}`);
    assert.doesNotMatch(stdout, /listening/);
    assert.match(stderr, /NotSupported/);
    assert.match(stderr, /--unstable-net/);
    assert.doesNotMatch(stderr, /panicked/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

// ---- disposal, signals, sock ----

Deno.test("server: await using closes the server and waits", async () => {
  let port = 0;
  let ref: Server | undefined;
  const factory = new Factory();
  {
    await using server = await createServer(factory.create, {
      hostname: "127.0.0.1",
      port: 0,
    });
    ref = server;
    port = portOf(server);
    const client = await connect(port);
    await roundTrip(client, "disposable");
    client.close();
    await withTimeout(factory.protocols[0].lost, 5000, "connectionLost");
  }
  assert.equal(ref.isServing(), false);
  await assert.rejects(connect(port), Deno.errors.ConnectionRefused);
});

Deno.test("server: aborting its signal closes the server", async () => {
  const controller = new AbortController();
  const server = await createServer(() => new Echo(), {
    hostname: "127.0.0.1",
    port: 0,
    signal: controller.signal,
  });
  try {
    const port = portOf(server);
    const client = await connect(port);
    try {
      await roundTrip(client, "before abort");
    } finally {
      client.close();
    }
    controller.abort();
    assert.equal(server.isServing(), false);
    await withTimeout(server.waitClosed(), 5000, "waitClosed");
    await assert.rejects(connect(port), Deno.errors.ConnectionRefused);
  } finally {
    await shutdown(server);
  }
});

Deno.test("server: an already aborted signal rejects with its reason and binds nothing", async () => {
  const reason = new Error("no server today");
  await assert.rejects(
    createServer(() => new Echo(), {
      hostname: "127.0.0.1",
      port: 0,
      signal: AbortSignal.abort(reason),
    }),
    (e) => e === reason,
  );
});

Deno.test("server: sock serves an existing Deno.Listener", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const server = await createServer(() => new Echo(), { sock: listener });
  try {
    assert.deepEqual({ ...server.addrs[0] }, { ...listener.addr });
    const client = await connect(listener.addr.port);
    try {
      await roundTrip(client, "on my listener");
    } finally {
      client.close();
    }
  } finally {
    await shutdown(server);
  }
  await assert.rejects(
    connect(listener.addr.port),
    Deno.errors.ConnectionRefused,
  );
});

Deno.test("server: bad arguments throw TypeError, RangeError", async () => {
  const f = () => new Protocol();
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  try {
    await assert.rejects(
      createServer(f, { sock: listener, hostname: "127.0.0.1" }),
      TypeError,
    );
    await assert.rejects(
      createServer(f, { sock: listener, port: 0 }),
      TypeError,
    );
  } finally {
    listener.close();
  }
  await assert.rejects(createServer(f, { port: 65536 }), RangeError);
  await assert.rejects(createServer(f, { port: -1 }), RangeError);
  await assert.rejects(createServer(f, { port: bad("0") }), TypeError);
  await assert.rejects(createServer(f, { hostname: [] }), RangeError);
  await assert.rejects(createServer(f, { hostname: bad(5) }), TypeError);
  await assert.rejects(createServer(bad(null), { port: 0 }), TypeError);
  await assert.rejects(createServer(f, bad("opts")), TypeError);
  await assert.rejects(createServer(f, { signal: bad({}) }), TypeError);
});

Deno.test("server: an exception in the protocol factory is reported; the server goes on", async () => {
  const loop = getEventLoop();
  const contexts: ExceptionContext[] = [];
  loop.setExceptionHandler((_loop, context) => contexts.push(context));
  const failure = new Error("factory failed");
  let calls = 0;
  const factory = new Factory(() => {
    if (calls++ === 0) throw failure;
    return new Echo();
  });
  const server = await createServer(factory.create, {
    hostname: "127.0.0.1",
    port: 0,
  });
  try {
    const first = await connect(portOf(server));
    try {
      let tail: Uint8Array = new Uint8Array(0);
      try {
        tail = await withTimeout(readAll(first), 5000, "EOF");
      } catch (e) {
        assert.ok(e instanceof Deno.errors.ConnectionReset, String(e));
      }
      assert.equal(tail.length, 0);
    } finally {
      first.close();
    }
    assert.equal(contexts.length, 1);
    assert.equal(contexts[0].exception, failure);
    const second = await connect(portOf(server));
    try {
      await roundTrip(second, "still here");
    } finally {
      second.close();
    }
  } finally {
    loop.setExceptionHandler(null);
    await shutdown(server);
  }
});

// ---- Unix servers ----

Deno.test("unix server: a stale socket file is removed before listening", async () => {
  const dir = await Deno.makeTempDir();
  const path = `${dir}/stale.sock`;
  try {
    // A process that dies without closing its listener leaves the file.
    const out = await new Deno.Command(Deno.execPath(), {
      args: [
        "eval",
        `Deno.listen({ transport: "unix", path: ${
          JSON.stringify(path)
        } }); Deno.kill(Deno.pid, "SIGKILL");`,
      ],
      stdout: "null",
      stderr: "null",
    }).output();
    assert.equal(out.signal, "SIGKILL");
    assert.equal(Deno.lstatSync(path).isSocket, true);
    await assert.rejects(
      Deno.connect({ transport: "unix", path }),
      Deno.errors.ConnectionRefused,
    );

    const server = await createUnixServer(() => new Echo(), { path });
    try {
      const client = await Deno.connect({ transport: "unix", path });
      try {
        await roundTrip(client, "fresh");
      } finally {
        client.close();
      }
    } finally {
      await shutdown(server);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("unix server: a regular file at the path is never deleted (AddrInUse)", async () => {
  const dir = await Deno.makeTempDir();
  const path = `${dir}/precious.txt`;
  try {
    await Deno.writeTextFile(path, "keep me");
    await assert.rejects(
      createUnixServer(() => new Echo(), { path }),
      Deno.errors.AddrInUse,
    );
    assert.equal(await Deno.readTextFile(path), "keep me");
    await Deno.mkdir(`${dir}/adir`);
    await assert.rejects(
      createUnixServer(() => new Echo(), { path: `${dir}/adir` }),
      Deno.errors.AddrInUse,
    );
    assert.equal(Deno.statSync(`${dir}/adir`).isDirectory, true);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("unix server: the socket file is removed when the server closes", async () => {
  const dir = await Deno.makeTempDir();
  const path = `${dir}/gone.sock`;
  try {
    const factory = new Factory();
    const server = await createUnixServer(factory.create, { path });
    assert.equal(Deno.lstatSync(path).isSocket, true);
    assert.deepEqual({ ...server.addrs[0] }, { transport: "unix", path });
    assert.equal(
      (server.sockets[0].getSockName() as Deno.UnixAddr).path,
      path,
    );
    const client = await Deno.connect({ transport: "unix", path });
    await roundTrip(client, "unix");
    client.close();
    await withTimeout(factory.protocols[0].lost, 5000, "connectionLost");
    server.close();
    await withTimeout(server.waitClosed(), 5000, "waitClosed");
    assert.throws(() => Deno.lstatSync(path), Deno.errors.NotFound);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("unix server: cleanupSocket: false is NotSupported; bad paths are rejected", async () => {
  const dir = await Deno.makeTempDir();
  const path = `${dir}/kept.sock`;
  try {
    await assert.rejects(
      createUnixServer(() => new Echo(), { path, cleanupSocket: false }),
      Deno.errors.NotSupported,
    );
    assert.throws(() => Deno.lstatSync(path), Deno.errors.NotFound);
    await assert.rejects(
      createUnixServer(() => new Echo(), { path: "" }),
      RangeError,
    );
    await assert.rejects(
      createUnixServer(() => new Echo(), { path: bad(1) }),
      TypeError,
    );
    await assert.rejects(createUnixServer(bad(1), { path }), TypeError);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("unix server: startServing: false binds the path but accepts nothing yet", async () => {
  await using echo = startEchoServer();
  const dir = await Deno.makeTempDir();
  const path = `${dir}/later.sock`;
  try {
    const factory = new Factory();
    const server = await createUnixServer(factory.create, {
      path,
      startServing: false,
    });
    try {
      assert.equal(server.isServing(), false);
      assert.equal(Deno.lstatSync(path).isSocket, true);
      const client = await Deno.connect({ transport: "unix", path });
      try {
        await writeAll(client, encode("wait"));
        const clock = await connect(echo.port);
        try {
          await roundTrip(clock, "tick");
        } finally {
          clock.close();
        }
        assert.equal(factory.protocols.length, 0);
        const made = factory.nextMade();
        server.startServing();
        await made;
        assert.equal(
          decode(await withTimeout(readExactly(client, 4), 5000, "echo")),
          "wait",
        );
      } finally {
        client.close();
      }
    } finally {
      await shutdown(server);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("server: shutdown() waits for clients that end by themselves", async () => {
  const protocol = new RecordingProtocol();
  const server = await createServer(() => protocol, {
    hostname: "127.0.0.1",
    port: 0,
  });
  const { port } = server.addrs[0] as Deno.NetAddr;
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  await withTimeout(protocol.made, 2000, "connectionMade");
  const shutdown = server.shutdown({ timeout: 5000 });
  assert.equal(server.isServing(), false);
  conn.close();
  assert.equal(await withTimeout(shutdown, 3000, "shutdown"), true);
  assert.equal(await protocol.lost, null);
});

Deno.test("server: shutdown() aborts the clients still open at the deadline", async () => {
  const server = await createServer(() => new RecordingProtocol(), {
    hostname: "127.0.0.1",
    port: 0,
  });
  const { port } = server.addrs[0] as Deno.NetAddr;
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  await writeAll(conn, encode("hello"));
  const graceful = await withTimeout(
    server.shutdown({ timeout: 100 }),
    3000,
    "shutdown",
  );
  assert.equal(graceful, false);
  if (BACKEND === "deno") {
    // The server side was aborted: Deno's close sends FIN, the client reads EOF.
    const rest = await withTimeout(readAll(conn), 2000, "EOF");
    assert.equal(rest.length, 0);
  } else {
    // The native abort() resets the connection: the client reads ECONNRESET.
    await assert.rejects(
      withTimeout(readAll(conn), 2000, "the reset"),
      Deno.errors.ConnectionReset,
    );
  }
  conn.close();
  await assert.rejects(server.shutdown({ timeout: -1 }), RangeError);
});

Deno.test("server and transport: Deno.inspect shows the live state", async () => {
  let serverTransport: Transport | undefined;
  const made = Promise.withResolvers<void>();
  class Keep extends Protocol {
    override connectionMade(transport: Transport) {
      serverTransport = transport;
      made.resolve();
    }
  }
  await using server = await createServer(() => new Keep(), {
    hostname: "127.0.0.1",
    port: 0,
  });
  const { port } = server.addrs[0] as Deno.NetAddr;
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  await withTimeout(made.promise, 2000, "connectionMade");
  const shown = Deno.inspect(server);
  assert.match(shown, /^Server \{/);
  assert.match(shown, /serving: true/);
  assert.match(shown, /connections: 1/);
  const transportShown = Deno.inspect(serverTransport);
  assert.match(transportShown, /^StreamTransport \{/);
  assert.match(transportShown, /reading: true/);
  assert.match(transportShown, /writeBufferSize: 0/);
  assert.match(transportShown, /protocol: "Keep"/);
  serverTransport!.pauseReading();
  assert.match(Deno.inspect(serverTransport), /reading: false/);
  conn.close();
  server.closeClients();
});
