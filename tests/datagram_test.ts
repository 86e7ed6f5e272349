// Datagram endpoints: UDP over loopback, send-only Unix datagrams, multicast
// on the loopback interface, and the missing --unstable-net error.
// Run: deno test -A --sanitize-ops --sanitize-resources tests/datagram_test.ts

import assert from "node:assert/strict";
import {
  createDatagramEndpoint,
  DatagramConnTransport,
} from "../transports.ts";
import { MAX_UDP4_PAYLOAD, MAX_UDP6_PAYLOAD } from "../_ip.ts";
import { getMulticastOptions, parseMembershipRequest } from "../_multicast.ts";
import { DatagramProtocol } from "../protocols.ts";
import type { DatagramTransport } from "../transports.ts";
import { type ExceptionContext, getEventLoop } from "../events.ts";
import {
  AF_UNIX,
  IP_MULTICAST_LOOP,
  IP_MULTICAST_TTL,
  IPPROTO_IP,
  SOCK_DGRAM,
  socket,
} from "../sockets.ts";
import {
  BACKEND,
  fdSockOpt,
  nativeBackendTest,
  onBackend,
  socketOfFd,
} from "./_helpers.ts";

const LOOPBACK = "127.0.0.1";
const encoder = new TextEncoder();
const decoder = new TextDecoder();
const bytes = (text: string) => encoder.encode(text);
const text = (data: Uint8Array) => decoder.decode(data);

/** Waits for `promise`, failing after `ms`; the timer is always cleared. */
async function within<T>(
  promise: Promise<T>,
  what: string,
  ms = 5000,
): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`Timed out after ${ms} ms: ${what}`)),
      ms,
    );
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Records every callback, with count-based waits. */
class Recorder extends DatagramProtocol {
  transport!: DatagramConnTransport;
  events: string[] = [];
  datagrams: Array<[Uint8Array, Deno.Addr]> = [];
  errors: Error[] = [];
  lostWith: Error | null | undefined = undefined;
  #lost = Promise.withResolvers<Error | null>();
  #waiters: Array<{ check: () => boolean; resolve: () => void }> = [];

  override connectionMade(transport: DatagramTransport): void {
    this.transport = transport as DatagramConnTransport;
    this.events.push("made");
  }
  override datagramReceived(data: Uint8Array, addr: Deno.Addr): void {
    this.events.push("datagram");
    this.datagrams.push([data, addr]);
    this.#wake();
  }
  override errorReceived(exc: Error): void {
    this.events.push("error");
    this.errors.push(exc);
    this.#wake();
  }
  override pauseWriting(): void {
    this.events.push("pause");
  }
  override resumeWriting(): void {
    this.events.push("resume");
    this.#wake();
  }
  override connectionLost(exc: Error | null): void {
    this.events.push("lost");
    this.lostWith = exc;
    this.#lost.resolve(exc);
  }

  /** Resolves with the error `connectionLost` got. */
  lost(): Promise<Error | null> {
    return within(this.#lost.promise, "connectionLost");
  }
  /** Resolves once `n` datagrams have arrived. */
  received(n: number): Promise<void> {
    return this.#until(() => this.datagrams.length >= n, `${n} datagrams`);
  }
  /** Resolves once `n` send/receive errors were reported. */
  erred(n: number): Promise<void> {
    return this.#until(() => this.errors.length >= n, `${n} errors`);
  }
  /** Resolves once `resumeWriting` was called. */
  resumed(): Promise<void> {
    return this.#until(() => this.events.includes("resume"), "resumeWriting");
  }
  #until(check: () => boolean, what: string): Promise<void> {
    if (check()) return Promise.resolve();
    const { promise, resolve } = Promise.withResolvers<void>();
    this.#waiters.push({ check, resolve });
    return within(promise, what);
  }
  #wake(): void {
    this.#waiters = this.#waiters.filter((waiter) => {
      if (!waiter.check()) return true;
      waiter.resolve();
      return false;
    });
  }
}

/** Echoes each datagram back to its sender. */
class Echo extends Recorder {
  override datagramReceived(data: Uint8Array, addr: Deno.Addr): void {
    super.datagramReceived(data, addr);
    this.transport.sendTo(data, addr as Deno.NetAddr);
  }
}

async function endpoint<P extends Recorder>(
  factory: () => P,
  options: Parameters<typeof createDatagramEndpoint>[1],
): Promise<[DatagramConnTransport, P]> {
  return await createDatagramEndpoint(factory, options);
}

async function closeAll(...protocols: Recorder[]): Promise<void> {
  for (const protocol of protocols) protocol.transport.close();
  for (const protocol of protocols) await protocol.lost();
}

function portOf(transport: DatagramConnTransport): number {
  return (transport.getExtraInfo("sockname") as Deno.NetAddr).port;
}

/** A raw Deno UDP socket for the far side of a test. */
function rawUdp(): Deno.DatagramConn {
  return Deno.listenDatagram({
    transport: "udp",
    hostname: LOOPBACK,
    port: 0,
  });
}

/** Receives one datagram on a raw socket, with a timeout. */
function rawReceive(
  conn: Deno.DatagramConn,
  what = "raw receive",
): Promise<[Uint8Array, Deno.Addr]> {
  return within(conn.receive(), what);
}

/** What the far side's queue is filled with (never a test's datagram). */
const FILLER = bytes("filler");

/**
 * A far side that an endpoint's sends queue up for, in the transport.
 * Deno backend: a UDP peer (every send is an async op, so a queue builds
 * at once). Native backend: UDP sends complete at once, so a Unix datagram
 * receiver whose queue was filled first: the endpoint's sends wait for
 * room, which `next()` makes by reading.
 */
interface StalledFar {
  /** The `remoteAddr` of the endpoint under test. */
  remoteAddr: { hostname: string; port: number } | { path: string };
  /** The next datagram the endpoint sent (the filling skipped). */
  next(what?: string): Promise<Uint8Array>;
  close(): Promise<void>;
}

async function stalledFar(): Promise<StalledFar> {
  if (BACKEND === "deno") {
    const far = rawUdp();
    return {
      remoteAddr: { hostname: LOOPBACK, port: (far.addr as Deno.NetAddr).port },
      next: async (what) => (await rawReceive(far, what))[0],
      close: () => Promise.resolve(far.close()),
    };
  }
  const dir = await Deno.makeTempDir();
  const path = `${dir}/far.sock`;
  const far = Deno.listenDatagram({ transport: "unixpacket", path });
  // Nobody reads yet: fill the receiver's queue until the kernel says wait.
  {
    using filler = socket(AF_UNIX, SOCK_DGRAM);
    for (let sent = 0;; sent++) {
      assert.ok(sent < 100_000, "the far side's queue never filled");
      try {
        filler.sendTo(FILLER, { path });
      } catch (error) {
        if (error instanceof Deno.errors.WouldBlock) break;
        throw error;
      }
    }
  }
  return {
    remoteAddr: { path },
    async next(what = "the far side") {
      for (;;) {
        const [data] = await rawReceive(far, what);
        if (text(data) !== text(FILLER)) return data;
      }
    },
    async close() {
      far.close();
      await Deno.remove(dir, { recursive: true });
    },
  };
}

Deno.test("echo: localAddr server, remoteAddr client, callbacks in order", async () => {
  const [server, echo] = await endpoint(() => new Echo(), {
    localAddr: { hostname: LOOPBACK, port: 0 },
  });
  const port = portOf(server);
  const [client, recorder] = await endpoint(() => new Recorder(), {
    remoteAddr: { hostname: LOOPBACK, port },
  });
  assert.deepEqual(recorder.events, ["made"]);
  client.sendTo(bytes("hello"));
  client.sendTo(bytes("world"));
  await recorder.received(2);
  assert.deepEqual(recorder.datagrams.map(([data]) => text(data)), [
    "hello",
    "world",
  ]);
  // The client saw the server's address; the server saw the client's.
  const [, from] = recorder.datagrams[0];
  assert.equal(from.transport, "udp");
  assert.deepEqual(
    {
      hostname: (from as Deno.NetAddr).hostname,
      port: (from as Deno.NetAddr).port,
    },
    { hostname: LOOPBACK, port },
  );
  const [, clientAddr] = echo.datagrams[0];
  assert.equal((clientAddr as Deno.NetAddr).port, portOf(client));
  assert.equal(echo.datagrams[0][0] instanceof Uint8Array, true);

  // Extra info.
  const sockname = client.getExtraInfo("sockname") as Deno.NetAddr;
  assert.equal(sockname.hostname, LOOPBACK); // loopback remote → loopback bind
  assert.deepEqual(client.getExtraInfo("peername"), {
    transport: "udp",
    hostname: LOOPBACK,
    port,
  });
  assert.equal(server.getExtraInfo("peername"), undefined);
  assert.equal(server.getExtraInfo("peername", "none"), "none");
  assert.equal(server.getExtraInfo("toString", "none"), "none");
  assert.equal(server.getExtraInfo("nonsense", 42), 42);
  const socket = client.getExtraInfo("socket") as {
    getSockName(): Deno.Addr;
    getPeerName(): Deno.Addr;
    fileno(): number;
  };
  assert.deepEqual(socket.getSockName(), sockname);
  assert.equal((socket.getPeerName() as Deno.NetAddr).port, port);
  assert.equal(typeof socket.fileno(), "number");
  if (BACKEND === "deno") {
    const conn = client.getExtraInfo("conn") as Deno.DatagramConn;
    assert.equal(typeof conn.receive, "function");
  } else {
    // No Deno resource underneath; fileno() is the OS descriptor.
    assert.equal(client.getExtraInfo("conn"), undefined);
    assert.notEqual(socketOfFd(socket.fileno()), null, "a real socket fd");
  }
  const serverSocket = server.getExtraInfo("socket") as {
    getPeerName(): Deno.Addr;
  };
  assert.throws(() => serverSocket.getPeerName(), Deno.errors.NotConnected);
  assert.equal(client.getProtocol(), recorder);

  assert.equal(client.isClosing(), false);
  await closeAll(recorder, echo);
  assert.equal(client.isClosing(), true);
  assert.equal(recorder.lostWith, null);
  assert.deepEqual(recorder.events, ["made", "datagram", "datagram", "lost"]);
  // Closing again changes nothing: connectionLost came once.
  client.close();
  client.abort();
  await Promise.resolve();
  assert.equal(recorder.events.filter((e) => e === "lost").length, 1);
});

Deno.test("200 datagrams of 1 B to 60 KiB arrive whole and unmerged", async () => {
  const sizes: number[] = [];
  for (let i = 0; i < 200; i++) {
    // 1, 2, 3, then spread up to 60 KiB, with the extremes included.
    sizes.push(
      i < 3 ? i + 1 : i === 199 ? 60 * 1024 : 1 + ((i * 7919) % (60 * 1024)),
    );
  }
  const fill = (index: number, size: number) => {
    const data = new Uint8Array(size);
    for (let j = 0; j < size; j++) data[j] = (index * 31 + j) & 255;
    return data;
  };
  // The receiver acknowledges each datagram with its count so far; the
  // sender keeps at most 2 in flight so the receive buffer never overflows.
  class Acker extends Recorder {
    override datagramReceived(data: Uint8Array, addr: Deno.Addr): void {
      super.datagramReceived(data, addr);
      const ack = new Uint8Array(4);
      new DataView(ack.buffer).setUint32(0, this.datagrams.length);
      this.transport.sendTo(ack, addr as Deno.NetAddr);
    }
  }
  const [receiver, acker] = await endpoint(() => new Acker(), {
    localAddr: { hostname: LOOPBACK, port: 0 },
  });
  const [sender, recorder] = await endpoint(() => new Recorder(), {
    remoteAddr: { hostname: LOOPBACK, port: portOf(receiver) },
  });
  let sent = 0;
  const window = 2;
  while (sent < sizes.length) {
    while (sent < sizes.length && sent - recorder.datagrams.length < window) {
      sender.sendTo(fill(sent, sizes[sent]));
      sent++;
    }
    await recorder.received(sent - window + 1);
  }
  await acker.received(sizes.length);
  // Every datagram was kept by the protocol (the transport must not reuse
  // the memory it handed over) and is intact: each equals exactly one of
  // the datagrams sent, whole. (Sends go out one at a time, so they arrive
  // in order; two in flight could only swap if the kernel deferred one.)
  assert.equal(acker.datagrams.length, sizes.length);
  const matched = new Set<number>();
  for (let k = 0; k < sizes.length; k++) {
    const [data] = acker.datagrams[k];
    const index = [k, k - 1, k + 1].find((i) =>
      i >= 0 && i < sizes.length && !matched.has(i) &&
      data.length === sizes[i] &&
      data.every((byte, j) => byte === ((i * 31 + j) & 255))
    );
    assert.notEqual(index, undefined, `datagram ${k} (${data.length} B)`);
    matched.add(index!);
  }
  assert.equal(matched.size, sizes.length);
  await closeAll(recorder, acker);
});

Deno.test("sendTo: with and without remoteAddr", async () => {
  const far = rawUdp();
  const farAddr = far.addr as Deno.NetAddr;
  const other = rawUdp();
  try {
    // No remoteAddr: an address is required.
    const [free, freeRecorder] = await endpoint(() => new Recorder(), {
      localAddr: { hostname: LOOPBACK, port: 0 },
    });
    assert.throws(() => free.sendTo(bytes("x")), TypeError);
    free.sendTo(bytes("to far"), { hostname: LOOPBACK, port: farAddr.port });
    const [data, from] = await rawReceive(far);
    assert.equal(text(data), "to far");
    assert.equal((from as Deno.NetAddr).port, portOf(free));
    // Any address goes; a full Deno.NetAddr works too.
    free.sendTo(bytes("to other"), other.addr as Deno.NetAddr);
    assert.equal(text((await rawReceive(other))[0]), "to other");

    // remoteAddr: default target; the same address may be repeated (also
    // as the name it was given as); any other address is a RangeError.
    const [connected, recorder] = await endpoint(() => new Recorder(), {
      remoteAddr: { hostname: "localhost", port: farAddr.port },
    });
    assert.equal(
      (connected.getExtraInfo("peername") as Deno.NetAddr).hostname,
      LOOPBACK,
    );
    connected.sendTo(bytes("one"));
    connected.sendTo(bytes("two"), { hostname: LOOPBACK, port: farAddr.port });
    connected.sendTo(bytes("three"), {
      hostname: "localhost",
      port: farAddr.port,
    });
    for (const expected of ["one", "two", "three"]) {
      assert.equal(text((await rawReceive(far))[0]), expected);
    }
    assert.throws(
      () =>
        connected.sendTo(bytes("no"), {
          hostname: LOOPBACK,
          port: (other.addr as Deno.NetAddr).port,
        }),
      RangeError,
    );
    assert.throws(
      () =>
        connected.sendTo(bytes("no"), {
          hostname: "127.0.0.2",
          port: farAddr.port,
        }),
      RangeError,
    );
    // An empty datagram is a datagram.
    connected.sendTo(new Uint8Array(0));
    assert.equal((await rawReceive(far))[0].length, 0);
    await closeAll(freeRecorder, recorder);
  } finally {
    far.close();
    other.close();
  }
});

Deno.test("remoteAddr: datagrams from other peers are dropped", async () => {
  const peer = rawUdp();
  const stranger = rawUdp();
  try {
    const [client, recorder] = await endpoint(() => new Recorder(), {
      remoteAddr: {
        hostname: LOOPBACK,
        port: (peer.addr as Deno.NetAddr).port,
      },
    });
    const clientAddr = client.getExtraInfo("sockname") as Deno.NetAddr;
    // On loopback a send is queued at the receiver when it returns, so the
    // stranger's datagram is ahead of the peer's.
    await stranger.send(bytes("stranger"), clientAddr);
    await peer.send(bytes("peer"), clientAddr);
    await recorder.received(1);
    await stranger.send(bytes("stranger again"), clientAddr);
    await peer.send(bytes("peer again"), clientAddr);
    await recorder.received(2);
    assert.deepEqual(recorder.datagrams.map(([data]) => text(data)), [
      "peer",
      "peer again",
    ]);
    await closeAll(recorder);
  } finally {
    peer.close();
    stranger.close();
  }
});

Deno.test("close() sends the queued datagrams first; then sendTo is BadResource", async () => {
  const far = await stalledFar();
  try {
    const [transport, recorder] = await endpoint(() => new Recorder(), {
      remoteAddr: far.remoteAddr,
    });
    for (let i = 0; i < 5; i++) transport.sendTo(bytes(`d${i}`));
    assert.ok(transport.getWriteBufferSize() > 0);
    transport.close();
    assert.equal(transport.isClosing(), true);
    assert.throws(
      () => transport.sendTo(bytes("late")),
      Deno.errors.BadResource,
    );
    for (let i = 0; i < 5; i++) {
      assert.equal(text(await far.next(`d${i}`)), `d${i}`);
    }
    assert.equal(await recorder.lost(), null);
    assert.equal(transport.getWriteBufferSize(), 0);
    assert.deepEqual(recorder.events, ["made", "lost"]);
    await assert.rejects(
      transport.addMembership("239.255.0.1", LOOPBACK),
      Deno.errors.BadResource,
    );
  } finally {
    await far.close();
  }
});

Deno.test("abort() discards the queue and reports connectionLost(null)", async () => {
  const far = await stalledFar();
  try {
    const [transport, recorder] = await endpoint(() => new Recorder(), {
      remoteAddr: far.remoteAddr,
    });
    for (let i = 0; i < 70; i++) transport.sendTo(new Uint8Array(1000));
    // 8 bytes of header counted per datagram, as CPython 3.13.
    assert.equal(transport.getWriteBufferSize(), 70 * 1008);
    transport.abort();
    assert.equal(transport.getWriteBufferSize(), 0);
    assert.throws(() => transport.sendTo(bytes("x")), Deno.errors.BadResource);
    assert.equal(await recorder.lost(), null);
    assert.deepEqual(recorder.events, ["made", "pause", "lost"]);
  } finally {
    await far.close();
  }
});

Deno.test("sendTo copies the bytes", async () => {
  const far = rawUdp();
  try {
    const [transport, recorder] = await endpoint(() => new Recorder(), {
      remoteAddr: { hostname: LOOPBACK, port: (far.addr as Deno.NetAddr).port },
    });
    const data = bytes("original");
    transport.sendTo(data);
    transport.sendTo(data);
    data.fill(0x2a);
    assert.equal(text((await rawReceive(far))[0]), "original");
    assert.equal(text((await rawReceive(far))[0]), "original");
    await closeAll(recorder);
  } finally {
    far.close();
  }
});

Deno.test("write flow control: pauseWriting above high, resumeWriting at low", async () => {
  const far = await stalledFar();
  try {
    const [transport, recorder] = await endpoint(() => new Recorder(), {
      remoteAddr: far.remoteAddr,
    });
    assert.deepEqual(transport.getWriteBufferLimits(), [16 * 1024, 64 * 1024]);
    transport.setWriteBufferLimits({ high: 1000 });
    assert.deepEqual(transport.getWriteBufferLimits(), [250, 1000]);
    transport.sendTo(new Uint8Array(600));
    assert.deepEqual(recorder.events, ["made"]);
    assert.equal(transport.getWriteBufferSize(), 608); // + 8 per datagram
    transport.sendTo(new Uint8Array(600)); // 1200 > 1000: pause, at once
    assert.deepEqual(recorder.events, ["made", "pause"]);
    transport.sendTo(new Uint8Array(600)); // no second pause
    assert.deepEqual(recorder.events, ["made", "pause"]);
    // Read (one receive at a time) while waiting: on the native backend
    // that is what makes room.
    const received = (async () => {
      const sizes: number[] = [];
      for (let i = 0; i < 3; i++) sizes.push((await far.next()).length);
      return sizes;
    })();
    await recorder.resumed();
    assert.ok(transport.getWriteBufferSize() <= 250);
    assert.deepEqual(recorder.events, ["made", "pause", "resume"]);
    assert.deepEqual(await received, [600, 600, 600]);

    transport.setWriteBufferLimits({ high: 100, low: 10 });
    assert.deepEqual(transport.getWriteBufferLimits(), [10, 100]);
    transport.setWriteBufferLimits();
    assert.deepEqual(transport.getWriteBufferLimits(), [16 * 1024, 64 * 1024]);
    transport.setWriteBufferLimits({ low: 100 });
    assert.deepEqual(transport.getWriteBufferLimits(), [100, 400]);
    assert.throws(
      () => transport.setWriteBufferLimits({ high: 10, low: 20 }),
      RangeError,
    );
    assert.throws(
      () => transport.setWriteBufferLimits({ high: -1 }),
      RangeError,
    );
    assert.throws(
      // deno-lint-ignore no-explicit-any
      () => transport.setWriteBufferLimits({ high: "1" as any }),
      TypeError,
    );
    await closeAll(recorder);
  } finally {
    await far.close();
  }
});

Deno.test("oversized UDP datagrams are a RangeError at the call", async () => {
  const [server, echo] = await endpoint(() => new Echo(), {
    localAddr: { hostname: LOOPBACK, port: 0 },
  });
  const [client, recorder] = await endpoint(() => new Recorder(), {
    remoteAddr: { hostname: LOOPBACK, port: portOf(server) },
  });
  assert.throws(
    () => client.sendTo(new Uint8Array(MAX_UDP4_PAYLOAD + 1)),
    (error: unknown) =>
      error instanceof RangeError && error.message.includes("65507"),
  );
  assert.equal(client.getWriteBufferSize(), 0);
  client.sendTo(new Uint8Array(MAX_UDP4_PAYLOAD).fill(7));
  await recorder.received(1);
  assert.equal(recorder.datagrams[0][0].length, MAX_UDP4_PAYLOAD);
  assert.equal(recorder.errors.length, 0);
  await closeAll(recorder, echo);

  // IPv6: 65527.
  const [v6, v6Recorder] = await endpoint(() => new Recorder(), {
    remoteAddr: { hostname: "::1", port: 9 },
  });
  assert.equal((v6.getExtraInfo("sockname") as Deno.NetAddr).hostname, "::1");
  assert.throws(
    () => v6.sendTo(new Uint8Array(MAX_UDP6_PAYLOAD + 1)),
    RangeError,
  );
  await closeAll(v6Recorder);
});

Deno.test("IPv6 echo on ::1", async () => {
  const [server, echo] = await endpoint(() => new Echo(), {
    localAddr: { hostname: "::1", port: 0 },
  });
  const [, recorder] = await endpoint(() => new Recorder(), {
    remoteAddr: { hostname: "0:0:0:0:0:0:0:1", port: portOf(server) },
  });
  recorder.transport.sendTo(bytes("six"));
  await recorder.received(1);
  assert.equal(text(recorder.datagrams[0][0]), "six");
  assert.equal((recorder.datagrams[0][1] as Deno.NetAddr).hostname, "::1");
  await closeAll(recorder, echo);
});

Deno.test("send errors go to errorReceived and the endpoint goes on", async () => {
  const far = rawUdp();
  try {
    const [transport, recorder] = await endpoint(() => new Recorder(), {
      localAddr: { hostname: LOOPBACK, port: 0 },
    });
    // An IPv4 socket cannot send to an IPv6 address: EAFNOSUPPORT.
    transport.sendTo(bytes("nowhere"), { hostname: "::1", port: 9 });
    transport.sendTo(bytes("after"), far.addr as Deno.NetAddr);
    await recorder.erred(1);
    assert.ok(recorder.errors[0] instanceof Error);
    assert.match(recorder.errors[0].message, /family/i);
    assert.equal(text((await rawReceive(far))[0]), "after");
    assert.equal(transport.isClosing(), false);
    await closeAll(recorder);
    assert.deepEqual(recorder.events, ["made", "error", "lost"]);
  } finally {
    far.close();
  }
});

Deno.test("a protocol exception goes to the exception handler and aborts the transport", async () => {
  const contexts: ExceptionContext[] = [];
  const loop = getEventLoop();
  loop.setExceptionHandler((_loop, context) => contexts.push(context));
  const far = rawUdp();
  try {
    const boom = new Error("boom");
    class Failing extends Recorder {
      override datagramReceived(data: Uint8Array, addr: Deno.Addr): void {
        super.datagramReceived(data, addr);
        throw boom;
      }
    }
    const [transport, failing] = await endpoint(() => new Failing(), {
      localAddr: { hostname: LOOPBACK, port: 0 },
    });
    await far.send(bytes("x"), transport.getExtraInfo("sockname") as Deno.Addr);
    assert.equal(await failing.lost(), boom);
    assert.equal(transport.isClosing(), true);
    assert.equal(contexts.length, 1);
    assert.equal(contexts[0].exception, boom);
    assert.equal(contexts[0].transport, transport);
    assert.equal(contexts[0].protocol, failing);
    assert.match(contexts[0].message, /datagramReceived/);
    assert.throws(
      () => transport.sendTo(bytes("y"), far.addr as Deno.NetAddr),
      Deno.errors.BadResource,
    );

    // connectionMade throwing: reported, closed; the endpoint still resolves.
    class FailingMade extends Recorder {
      override connectionMade(t: DatagramTransport): void {
        super.connectionMade(t);
        throw boom;
      }
    }
    const [made, failingMade] = await endpoint(() => new FailingMade(), {
      localAddr: { hostname: LOOPBACK, port: 0 },
    });
    assert.equal(await failingMade.lost(), boom);
    assert.equal(made.isClosing(), true);
    assert.equal(contexts.length, 2);
    assert.match(contexts[1].message, /connectionMade/);
  } finally {
    loop.setExceptionHandler(null);
    far.close();
  }
});

Deno.test("a duck-typed protocol (plain object, as the Python seeds) works", async () => {
  const far = rawUdp();
  try {
    const got = Promise.withResolvers<string>();
    let transport: DatagramTransport | undefined;
    const [t] = await createDatagramEndpoint(() => ({
      connectionMade(tr: DatagramTransport) {
        transport = tr;
      },
      datagramReceived(data: Uint8Array) {
        got.resolve(text(data));
      },
    } as unknown as DatagramProtocol), {
      localAddr: { hostname: LOOPBACK, port: 0 },
    });
    assert.equal(transport, t);
    await far.send(bytes("duck"), t.getExtraInfo("sockname") as Deno.Addr);
    assert.equal(await within(got.promise, "duck datagram"), "duck");
    const fd = (t.getExtraInfo("socket") as { fileno(): number }).fileno();
    const before = socketOfFd(fd);
    t.close();
    // No connectionLost method: closing must still release everything.
    if (BACKEND === "deno") {
      const conn = t.getExtraInfo("conn") as Deno.DatagramConn;
      await assert.rejects(conn.send(bytes("x"), far.addr));
    } else {
      assert.notEqual(before, null);
      assert.notEqual(socketOfFd(fd), before, "the descriptor was closed");
    }
  } finally {
    far.close();
  }
});

Deno.test("sock: wraps an existing Deno.DatagramConn and owns it", async () => {
  const conn = rawUdp();
  const far = rawUdp();
  try {
    const [transport, recorder] = await endpoint(() => new Recorder(), {
      sock: conn,
    });
    assert.equal(transport.getExtraInfo("conn"), conn);
    assert.deepEqual(transport.getExtraInfo("sockname"), conn.addr);
    await far.send(bytes("via sock"), conn.addr);
    await recorder.received(1);
    assert.equal(text(recorder.datagrams[0][0]), "via sock");
    await closeAll(recorder);
    await assert.rejects(
      conn.send(bytes("x"), far.addr),
      Deno.errors.BadResource,
    );
  } finally {
    far.close();
  }
});

Deno.test("bad input: TypeError and RangeError", async () => {
  const factory = () => new Recorder();
  const rejects = (options: unknown, error: typeof TypeError) =>
    assert.rejects(
      // deno-lint-ignore no-explicit-any
      createDatagramEndpoint(factory, options as any),
      error,
      JSON.stringify(options),
    );
  // deno-lint-ignore no-explicit-any
  await assert.rejects(createDatagramEndpoint("nope" as any), TypeError);
  await rejects("options", TypeError);
  await rejects({ localAddr: "127.0.0.1:0" }, TypeError);
  await rejects({ localAddr: { hostname: 127, port: 0 } }, TypeError);
  await rejects({ localAddr: { hostname: LOOPBACK, port: 70000 } }, RangeError);
  await rejects({ localAddr: { hostname: LOOPBACK, port: "0" } }, TypeError);
  await rejects({ localAddr: { path: "/tmp/x" } }, TypeError);
  await rejects({ remoteAddr: null }, TypeError);
  await rejects({ remoteAddr: { hostname: LOOPBACK } }, TypeError);
  await rejects({ remoteAddr: { hostname: LOOPBACK, port: 0 } }, RangeError);
  await rejects({ remoteAddr: { hostname: LOOPBACK, port: -1 } }, RangeError);
  await rejects({ remoteAddr: { hostname: 1, port: 9 } }, TypeError);
  await rejects({ reuseAddress: "yes" }, TypeError);
  await rejects({ reusePort: 1 }, TypeError);
  await rejects({ allowBroadcast: "true" }, TypeError);
  await rejects({ sock: {} }, TypeError);
  await rejects({ path: "" }, RangeError);
  await rejects({ path: 5 }, TypeError);
  await rejects({ remoteAddr: { path: "" } }, RangeError);
  await rejects(
    { path: "/tmp/x.sock", remoteAddr: { hostname: LOOPBACK, port: 9 } },
    TypeError,
  );
  const conn = rawUdp();
  await rejects({ sock: conn, localAddr: { port: 0 } }, TypeError);
  await rejects({ sock: conn, reusePort: true }, TypeError);
  await rejects({ sock: conn, remoteAddr: { port: 9 } }, TypeError);
  // As asyncio, false flags are no socket modifiers.
  const [withFalse, falseRecorder] = await endpoint(factory, {
    sock: conn,
    reusePort: false,
    allowBroadcast: false,
  });
  assert.equal(withFalse.getExtraInfo("conn"), conn);
  await closeAll(falseRecorder);

  const [transport, recorder] = await endpoint(factory, {
    localAddr: { hostname: LOOPBACK, port: 0 },
  });
  // deno-lint-ignore no-explicit-any
  const t = transport as any;
  assert.throws(() => t.sendTo("text", { port: 9 }), TypeError);
  assert.throws(() => t.sendTo([1, 2], { port: 9 }), TypeError);
  assert.throws(() => t.sendTo(bytes("x"), "127.0.0.1:9"), TypeError);
  assert.throws(() => t.sendTo(bytes("x"), { port: -1 }), RangeError);
  assert.throws(() => t.sendTo(bytes("x"), { port: 65536 }), RangeError);
  assert.throws(() => t.sendTo(bytes("x"), { port: 0 }), RangeError);
  assert.throws(() => t.sendTo(bytes("x"), { port: "9" }), TypeError);
  assert.throws(
    () => t.sendTo(bytes("x"), { hostname: 1, port: 9 }),
    TypeError,
  );
  assert.throws(() => t.sendTo(bytes("x"), { path: "/tmp/x" }), TypeError);
  assert.equal(transport.getWriteBufferSize(), 0);
  await closeAll(recorder);
});

Deno.test("reusePort / reuseAddress: two endpoints share one port", async () => {
  const [first, a] = await endpoint(() => new Recorder(), {
    localAddr: { hostname: LOOPBACK, port: 0 },
    reusePort: true,
  });
  const port = portOf(first);
  const [second, b] = await endpoint(() => new Recorder(), {
    localAddr: { hostname: LOOPBACK, port },
    reusePort: true,
  });
  assert.equal(portOf(second), port);
  const [third, c] = await endpoint(() => new Recorder(), {
    localAddr: { hostname: LOOPBACK, port },
    reuseAddress: true,
    allowBroadcast: true,
  });
  assert.equal(portOf(third), port);
  // Without either flag the port is taken.
  await assert.rejects(
    createDatagramEndpoint(() => new Recorder(), {
      localAddr: { hostname: LOOPBACK, port },
    }),
    Deno.errors.AddrInUse,
  );
  await closeAll(a, b, c);
});

// ---- Unix datagrams ----

Deno.test("Deno limit (canary): a unixpacket socket cannot send while a receive is pending", async () => {
  const dir = await Deno.makeTempDir();
  const conn = Deno.listenDatagram({
    transport: "unixpacket",
    path: `${dir}/canary.sock`,
  });
  const pending = conn.receive();
  try {
    // If this starts to succeed, Deno lifted the limit: Unix datagram
    // endpoints bound to a path can then be enabled (UNIX_RECEIVE_UNSUPPORTED).
    await assert.rejects(conn.send(bytes("x"), conn.addr), Deno.errors.Busy);
  } finally {
    conn.close();
    await assert.rejects(pending, Deno.errors.Interrupted);
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test(
  "Unix datagrams: a bound endpoint is NotSupported, with the reason (Deno backend: a unixpacket socket cannot send while a receive is pending)",
  onBackend("deno"),
  async () => {
    const dir = await Deno.makeTempDir();
    try {
      let made = 0;
      const factory = () => {
        made++;
        return new Recorder();
      };
      await assert.rejects(
        createDatagramEndpoint(factory, { path: `${dir}/echo.sock` }),
        (error: unknown) =>
          error instanceof Deno.errors.NotSupported &&
          /receive is pending/.test(error.message) &&
          /Busy/.test(error.message),
      );
      // Also for a bound socket passed as sock (left open: not ours).
      const bound = Deno.listenDatagram({
        transport: "unixpacket",
        path: `${dir}/bound.sock`,
      });
      await assert.rejects(
        createDatagramEndpoint(factory, { sock: bound }),
        Deno.errors.NotSupported,
      );
      assert.throws(
        () => new DatagramConnTransport(bound, new Recorder()),
        Deno.errors.NotSupported,
      );
      assert.equal(made, 0);
      bound.close();
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
);

Deno.test("Unix datagrams: a send-only endpoint (remoteAddr: { path })", async () => {
  const dir = await Deno.makeTempDir();
  const path = `${dir}/receiver.sock`;
  // The far side only receives, which Deno can do.
  const receiver = Deno.listenDatagram({ transport: "unixpacket", path });
  try {
    const [transport, recorder] = await endpoint(() => new Recorder(), {
      remoteAddr: { path },
    });
    assert.deepEqual(transport.getExtraInfo("peername"), {
      transport: "unixpacket",
      path,
    });
    assert.deepEqual(transport.getExtraInfo("sockname"), {
      transport: "unixpacket",
      path: null,
    });
    transport.sendTo(bytes("first"));
    transport.sendTo(bytes("second"), { path });
    transport.sendTo(new Uint8Array(100_000).fill(1)); // no UDP size limit
    const first = await within(receiver.receive(), "first");
    assert.equal(text(first[0]), "first");
    assert.equal((first[1] as Deno.UnixAddr).path, null);
    assert.equal(
      text((await within(receiver.receive(), "second"))[0]),
      "second",
    );
    const big = await within(
      receiver.receive(new Uint8Array(200_000)),
      "big",
    );
    assert.equal(big[0].length, 100_000);
    assert.throws(
      () => transport.sendTo(bytes("x"), { path: `${dir}/other.sock` }),
      RangeError,
    );
    assert.throws(
      () => transport.sendTo(bytes("x"), { hostname: LOOPBACK, port: 9 }),
      TypeError,
    );
    await closeAll(recorder);
    if (BACKEND === "deno") {
      // 100 000 bytes queued (sends are async ops): above the 64 KiB mark,
      // then drained.
      assert.deepEqual(recorder.events, ["made", "pause", "resume", "lost"]);
      // Sending to a path nobody listens on: errorReceived(NotFound).
      const [lonely, lonelyRecorder] = await endpoint(() => new Recorder(), {
        remoteAddr: { path: `${dir}/nobody.sock` },
      });
      lonely.sendTo(bytes("anyone?"));
      await lonelyRecorder.erred(1);
      assert.ok(lonelyRecorder.errors[0] instanceof Deno.errors.NotFound);
      await closeAll(lonelyRecorder);
    } else {
      // The receiver had room: every send went out at once, nothing queued.
      assert.deepEqual(recorder.events, ["made", "lost"]);
      // The socket is connected to the path when made, as asyncio's: a
      // path nobody listens on fails the call.
      await assert.rejects(
        endpoint(() => new Recorder(), {
          remoteAddr: { path: `${dir}/nobody.sock` },
        }),
        Deno.errors.NotFound,
      );
    }
  } finally {
    receiver.close();
    await Deno.remove(dir, { recursive: true });
  }
});

nativeBackendTest(
  "Unix datagrams: a bound endpoint receives and answers (native backend)",
  async () => {
    const dir = await Deno.makeTempDir();
    try {
      const path = `${dir}/echo.sock`;
      const [server, echo] = await endpoint(() => new Echo(), { path });
      assert.deepEqual(server.getExtraInfo("sockname"), {
        transport: "unixpacket",
        path,
      });
      // A bound client: the echo goes back to it.
      const clientPath = `${dir}/client.sock`;
      const [client, recorder] = await endpoint(() => new Recorder(), {
        path: clientPath,
      });
      client.sendTo(bytes("ping"), { path });
      await recorder.received(1);
      assert.equal(text(recorder.datagrams[0][0]), "ping");
      assert.deepEqual(recorder.datagrams[0][1], {
        transport: "unixpacket",
        path,
      });
      assert.equal((echo.datagrams[0][1] as Deno.UnixAddr).path, clientPath);
      await closeAll(recorder, echo);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
);

// ---- Multicast on the loopback interface ----

/**
 * The multicast TTL and loopback of an endpoint: as recorded for its
 * Deno.DatagramConn (the Deno backend), or as the kernel has them (native).
 */
function multicastOptions(
  transport: DatagramConnTransport,
): { ttl: number; loopback: boolean | undefined } {
  if (BACKEND === "deno") {
    const { ttl, loopback } = getMulticastOptions(
      transport.getExtraInfo("conn") as Deno.DatagramConn,
    );
    return { ttl, loopback };
  }
  const fd = (transport.getExtraInfo("socket") as { fileno(): number })
    .fileno();
  return {
    ttl: fdSockOpt(fd, IPPROTO_IP, IP_MULTICAST_TTL),
    loopback: fdSockOpt(fd, IPPROTO_IP, IP_MULTICAST_LOOP) === 1,
  };
}

function randomGroup(): string {
  const n = crypto.getRandomValues(new Uint8Array(2));
  return `239.255.${1 + (n[0] % 250)}.${1 + (n[1] % 250)}`;
}

Deno.test("multicast on loopback: join, receive, TTL, loopback, leave", async () => {
  const group = randomGroup();
  // Bound to the group address: only that group's datagrams arrive, and
  // nothing listens on a real interface.
  const [receiver, members] = await endpoint(() => new Recorder(), {
    localAddr: { hostname: group, port: 0 },
  });
  const port = portOf(receiver);
  await receiver.addMembership(group, LOOPBACK);
  if (BACKEND === "deno") {
    assert.deepEqual(
      getMulticastOptions(receiver.getExtraInfo("conn") as Deno.DatagramConn)
        .groups,
      [{ group, iface: LOOPBACK }],
    );
  }
  // Sent from 127.0.0.1, the datagram leaves through the loopback interface.
  const [sender, senderRecorder] = await endpoint(() => new Recorder(), {
    localAddr: { hostname: LOOPBACK, port: 0 },
  });
  await sender.setMulticastTtl(2);
  await sender.setMulticastLoopback(true);
  assert.deepEqual(multicastOptions(sender), { ttl: 2, loopback: true });
  if (BACKEND === "deno") {
    const senderConn = sender.getExtraInfo("conn") as Deno.DatagramConn;
    assert.deepEqual(getMulticastOptions(senderConn).groups, []);
  }
  sender.sendTo(bytes("to the group"), { hostname: group, port });
  await members.received(1);
  assert.equal(text(members.datagrams[0][0]), "to the group");
  assert.equal((members.datagrams[0][1] as Deno.NetAddr).port, portOf(sender));

  // Joining twice is AddrInUse, as setsockopt.
  await assert.rejects(
    receiver.addMembership(group, LOOPBACK),
    Deno.errors.AddrInUse,
  );
  // After leaving, the group's datagrams no longer arrive: the one sent
  // while not a member is gone; the next after re-joining is the next seen.
  await receiver.dropMembership(group, LOOPBACK);
  await assert.rejects(
    receiver.dropMembership(group, LOOPBACK),
    Deno.errors.AddrNotAvailable,
  );
  // Limits of 0: pauseWriting now, resumeWriting once the kernel has it
  // (on loopback, delivered or dropped by then).
  sender.setWriteBufferLimits({ high: 0 });
  sender.sendTo(bytes("while away"), { hostname: group, port });
  if (BACKEND === "deno") {
    await senderRecorder.resumed();
  } else {
    // The native send went to the kernel at once: nothing was queued.
    assert.equal(sender.getWriteBufferSize(), 0);
  }
  await receiver.addMembership(group, LOOPBACK);
  sender.sendTo(bytes("back again"), { hostname: group, port });
  await members.received(2);
  assert.deepEqual(members.datagrams.map(([data]) => text(data)), [
    "to the group",
    "back again",
  ]);
  await receiver.setMulticastLoopback(false);
  await receiver.setMulticastTtl(0);
  assert.deepEqual(multicastOptions(receiver), { ttl: 0, loopback: false });
  await closeAll(members, senderRecorder);
});

Deno.test("multicast: the seed's prepared socket (sock=) and two members sharing the port", async () => {
  const group = randomGroup();
  // As make_sock(): bind, SO_REUSEADDR, join the group; then sock=.
  const makeSock = async (port: number) => {
    const conn = Deno.listenDatagram({
      transport: "udp",
      hostname: group,
      port,
      reuseAddress: true,
      loopback: true,
    });
    await conn.joinMulticastV4(group, LOOPBACK);
    return conn;
  };
  const first = await makeSock(0);
  const port = (first.addr as Deno.NetAddr).port;
  const second = await makeSock(port);
  const [t1, m1] = await endpoint(() => new Recorder(), { sock: first });
  const [t2, m2] = await endpoint(() => new Recorder(), { sock: second });
  const [sender, s] = await endpoint(() => new Recorder(), {
    localAddr: { hostname: LOOPBACK, port: 0 },
  });
  sender.sendTo(bytes("M-SEARCH"), { hostname: group, port });
  await m1.received(1);
  await m2.received(1);
  assert.equal(text(m1.datagrams[0][0]), "M-SEARCH");
  assert.equal(text(m2.datagrams[0][0]), "M-SEARCH");
  // A membership made on the raw socket can be dropped through the transport.
  await t1.dropMembership(group, LOOPBACK);
  await assert.rejects(
    t1.dropMembership(group, LOOPBACK),
    Deno.errors.AddrNotAvailable,
  );
  // TTL before any membership tracked by aionet.
  await t2.setMulticastTtl(4);
  await closeAll(m1, m2, s);
});

Deno.test("multicast: bad input and membership requests", async () => {
  const [transport, recorder] = await endpoint(() => new Recorder(), {
    localAddr: { hostname: LOOPBACK, port: 0 },
  });
  // deno-lint-ignore no-explicit-any
  const t = transport as any;
  await assert.rejects(t.addMembership(5), TypeError);
  await assert.rejects(t.addMembership("not an address"), TypeError);
  await assert.rejects(t.addMembership("10.0.0.1"), RangeError);
  if (BACKEND === "deno") {
    // Deno joins an IPv4 group by the interface's address only.
    await assert.rejects(t.addMembership("239.1.1.1", 3), TypeError);
  } else {
    // The native backend also takes an interface index (ip_mreqn): 1 is
    // the loopback interface.
    await t.addMembership("239.1.1.1", 1);
    await t.dropMembership("239.1.1.1", 1);
    await assert.rejects(t.addMembership("239.1.1.1", 1.5), RangeError);
  }
  await assert.rejects(t.addMembership("239.1.1.1", "eth0"), TypeError);
  await assert.rejects(t.addMembership("ff02::1", "127.0.0.1"), TypeError);
  await assert.rejects(t.addMembership("ff02::1", -1), RangeError);
  await assert.rejects(t.setMulticastTtl(256), RangeError);
  await assert.rejects(t.setMulticastTtl(1.5), RangeError);
  await assert.rejects(t.setMulticastTtl("1"), TypeError);
  await assert.rejects(t.setMulticastLoopback("yes"), TypeError);
  await closeAll(recorder);

  // setsockopt(IPPROTO_IP, IP_ADD_MEMBERSHIP, mreq) values, as Linux reads them.
  assert.deepEqual(
    parseMembershipRequest(new Uint8Array([239, 255, 255, 250, 127, 0, 0, 1])),
    { group: "239.255.255.250", iface: "127.0.0.1" },
  );
  // Python's struct.pack('4sL', inet_aton(group), INADDR_ANY): 16 bytes.
  const packed = new Uint8Array(16);
  packed.set([239, 255, 255, 250]);
  assert.deepEqual(parseMembershipRequest(packed), {
    group: "239.255.255.250",
    iface: "0.0.0.0",
  });
  const byIndex = new Uint8Array(12);
  byIndex.set([239, 1, 2, 3]);
  byIndex[8] = 1; // ip_mreqn.imr_ifindex = 1, no address
  assert.throws(
    () => parseMembershipRequest(byIndex),
    Deno.errors.NotSupported,
  );
  assert.throws(() => parseMembershipRequest(new Uint8Array(4)), RangeError);
  // deno-lint-ignore no-explicit-any
  assert.throws(() => parseMembershipRequest("mreq" as any), TypeError);
});

Deno.test("multicast is NotSupported on a Unix datagram endpoint", async () => {
  const dir = await Deno.makeTempDir();
  // A receiver at the path (the native backend connects to it when made).
  const receiver = Deno.listenDatagram({
    transport: "unixpacket",
    path: `${dir}/x.sock`,
  });
  try {
    const [transport, recorder] = await endpoint(() => new Recorder(), {
      remoteAddr: { path: `${dir}/x.sock` },
    });
    await assert.rejects(
      transport.addMembership("239.1.2.3"),
      Deno.errors.NotSupported,
    );
    await closeAll(recorder);
  } finally {
    receiver.close();
    await Deno.remove(dir, { recursive: true });
  }
});

// ---- Without --unstable-net ----

Deno.test("without --unstable-net: a clear NotSupported naming the flag", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const module = new URL("../transports.ts", import.meta.url).href;
    const script = `${dir}/no_flag.ts`;
    await Deno.writeTextFile(
      script,
      `import { createDatagramEndpoint } from ${JSON.stringify(module)};
for (const options of [
  { localAddr: { hostname: "127.0.0.1", port: 0 } },
  { localAddr: { hostname: "127.0.0.1", port: 0 }, reusePort: true },
]) {
  try {
    await createDatagramEndpoint(() => ({}), options);
    console.log("created");
  } catch (error) {
    console.log(error instanceof Deno.errors.NotSupported, error.message);
  }
}
await createDatagramEndpoint(() => ({}), {});
`,
    );
    const output = await new Deno.Command(Deno.execPath(), {
      args: ["run", "--no-config", "--allow-net", "--allow-read", script],
      stdout: "piped",
      stderr: "piped",
      cwd: dir,
    }).output();
    const stdout = text(output.stdout);
    const stderr = text(output.stderr);
    const lines = stdout.trim().split("\n");
    assert.equal(lines.length, 2, stdout + stderr);
    for (const line of lines) {
      assert.match(line, /^true createDatagramEndpoint needs .*--unstable-net/);
    }
    // Uncaught, it is an ordinary error exit naming the flag, not a crash.
    assert.equal(output.code, 1);
    assert.match(stderr, /NotSupported/);
    assert.match(stderr, /--unstable-net/);
    assert.doesNotMatch(stderr, /is not a function/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
