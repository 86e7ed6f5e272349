// Tests of the native datagram handle over real loopback UDP and Unix
// datagram sockets: synchronous sends, senders' addresses, kernel
// connect (peer filtering, ICMP port unreachable as a non-fatal receive
// error), SO_BROADCAST left off, real SO_REUSEPORT, multicast options,
// bound and unbound Unix datagram sockets, a send that waits for room,
// and closing. Every test checks for leaked descriptors.

import assert from "node:assert/strict";
import type { DatagramHandle, DatagramSink } from "../_backend.ts";
import {
  IP_MULTICAST_LOOP,
  IP_MULTICAST_TTL,
  IPPROTO_IP,
  SO_BROADCAST,
  SO_REUSEPORT,
  SOL_SOCKET,
} from "../_native_libc.ts";
import { backend, Condition, nativeTest } from "./_native_fd_check.ts";

/** A datagram sink that records what it gets. */
class Received implements DatagramSink {
  readonly datagrams: Array<[Uint8Array, Deno.Addr]> = [];
  readonly errors: Array<[Error, boolean]> = [];
  readonly changed = new Condition();

  datagram(data: Uint8Array, addr: Deno.Addr): void {
    this.datagrams.push([data.slice(), addr]);
    this.changed.poke();
  }

  receiveError(error: Error, fatal: boolean): void {
    this.errors.push([error, fatal]);
    this.changed.poke();
  }

  count(n: number): Promise<void> {
    return this.changed.until(
      () => this.datagrams.length >= n,
      `${n} datagrams (have ${this.datagrams.length})`,
    );
  }

  errorCount(n: number): Promise<void> {
    return this.changed.until(
      () => this.errors.length >= n,
      `${n} receive errors (have ${this.errors.length})`,
    );
  }
}

function udp(
  hostname = "127.0.0.1",
  options: Partial<
    { reusePort: boolean; allowBroadcast: boolean; port: number }
  > = {},
): DatagramHandle {
  return backend.bindUdp({
    hostname,
    port: options.port ?? 0,
    reuseAddress: false,
    reusePort: options.reusePort ?? false,
    allowBroadcast: options.allowBroadcast ?? false,
    loopback: true,
  });
}

const bytes = (...values: number[]) => new Uint8Array(values);

nativeTest(
  "UDP: sends complete at once; the receiver sees the sender",
  async () => {
    const a = udp();
    const b = udp();
    try {
      assert.equal(a.canConnect, true);
      assert.equal(a.resource, null);
      assert.equal(a.addr.transport, "udp");
      const received = new Received();
      b.receiveStart(received);
      assert.equal(a.send(bytes(1, 2, 3), b.addr), 3);
      assert.equal(a.send(new Uint8Array(0), b.addr), 0);
      await received.count(2);
      assert.deepEqual(received.datagrams[0], [bytes(1, 2, 3), a.addr]);
      assert.deepEqual(received.datagrams[1][0], new Uint8Array(0));
      assert.equal(
        received.datagrams[1][1],
        received.datagrams[0][1],
        "sender address reused",
      );
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  },
);

nativeTest("UDP over IPv6 loopback", async () => {
  const a = udp("::1");
  const b = udp("::1");
  const received = new Received();
  b.receiveStart(received);
  a.send(bytes(6), b.addr);
  await received.count(1);
  assert.equal((received.datagrams[0][1] as Deno.NetAddr).hostname, "::1");
  await Promise.all([a.close(), b.close()]);
});

nativeTest("connect(): the kernel filters other peers", async () => {
  const a = udp();
  const b = udp();
  const stranger = udp();
  try {
    b.connect(a.addr);
    const received = new Received();
    b.receiveStart(received);
    stranger.send(bytes(66), b.addr);
    a.send(bytes(1), b.addr);
    await received.count(1);
    assert.deepEqual(received.datagrams.map(([d]) => [...d]), [[1]]);
    // The connected socket sends to its peer without an address.
    const back = new Received();
    a.receiveStart(back);
    assert.equal(b.send(bytes(2), null), 1);
    await back.count(1);
    assert.deepEqual(back.datagrams[0][1], b.addr);
  } finally {
    await Promise.all([a.close(), b.close(), stranger.close()]);
  }
});

nativeTest(
  "connect(): ICMP port unreachable is a non-fatal ConnectionRefused",
  async () => {
    const gone = udp();
    const port = (gone.addr as Deno.NetAddr).port;
    await gone.close();
    const a = udp();
    const peer = udp();
    try {
      a.connect({ transport: "udp", hostname: "127.0.0.1", port });
      const received = new Received();
      a.receiveStart(received);
      a.send(bytes(1), null);
      await received.errorCount(1);
      const [error, fatal] = received.errors[0];
      assert.ok(error instanceof Deno.errors.ConnectionRefused, String(error));
      assert.equal(fatal, false);
      // Receiving goes on: connect to a live peer and get its datagram.
      a.connect(peer.addr);
      peer.send(bytes(7), a.addr);
      await received.count(1);
      assert.deepEqual(received.datagrams[0][0], bytes(7));
    } finally {
      await Promise.all([a.close(), peer.close()]);
    }
  },
);

nativeTest("send() without an address needs a connected socket", async () => {
  const a = udp();
  assert.throws(() => a.send(bytes(1), null), Deno.errors.NotConnected);
  await a.close();
});

nativeTest(
  "SO_BROADCAST only when allowed; SO_REUSEPORT for real",
  async () => {
    const quiet = udp();
    const loud = udp("127.0.0.1", { allowBroadcast: true });
    assert.equal(quiet.options!.get(SOL_SOCKET, SO_BROADCAST), 0);
    assert.equal(loud.options!.get(SOL_SOCKET, SO_BROADCAST), 1);
    const first = udp("127.0.0.1", { reusePort: true });
    const port = (first.addr as Deno.NetAddr).port;
    assert.equal(first.options!.get(SOL_SOCKET, SO_REUSEPORT), 1);
    const second = udp("127.0.0.1", { reusePort: true, port });
    assert.equal((second.addr as Deno.NetAddr).port, port);
    assert.throws(() => udp("127.0.0.1", { port }), Deno.errors.AddrInUse);
    // As on the Deno backend, reusePort implies address reuse: an endpoint
    // with reuseAddress alone joins the port too.
    const third = backend.bindUdp({
      hostname: "127.0.0.1",
      port,
      reuseAddress: true,
      reusePort: false,
      allowBroadcast: false,
      loopback: true,
    });
    await third.close();
    await Promise.all([
      quiet.close(),
      loud.close(),
      first.close(),
      second.close(),
    ]);
  },
);

nativeTest(
  "multicast: TTL, loopback and membership reach the kernel",
  async () => {
    const socket = udp("0.0.0.0");
    try {
      await socket.setMulticastTtl(5);
      assert.equal(socket.options!.get(IPPROTO_IP, IP_MULTICAST_TTL), 5);
      await socket.setMulticastLoopback(false);
      assert.equal(socket.options!.get(IPPROTO_IP, IP_MULTICAST_LOOP), 0);
      await socket.setMulticastLoopback(true);
      assert.equal(socket.options!.get(IPPROTO_IP, IP_MULTICAST_LOOP), 1);
      await socket.addMembership("239.255.77.1", "127.0.0.1");
      await socket.dropMembership("239.255.77.1", "127.0.0.1");
      // Leaving a group not joined is the kernel's EADDRNOTAVAIL.
      await assert.rejects(
        socket.dropMembership("239.255.77.1", "127.0.0.1"),
        Deno.errors.AddrNotAvailable,
      );
      await assert.rejects(socket.addMembership("not-a-group"), TypeError);
      await assert.rejects(socket.addMembership("10.0.0.1"), RangeError);
    } finally {
      await socket.close();
    }
  },
);

nativeTest(
  "multicast: bad arguments are TypeError or RangeError before any setsockopt",
  async () => {
    const v4 = udp("127.0.0.1");
    const v6 = udp("::1");
    // deno-lint-ignore no-explicit-any
    const a = v4 as any;
    // deno-lint-ignore no-explicit-any
    const b = v6 as any;
    const cases: Array<[string, () => Promise<void>, typeof TypeError]> = [
      ["group 5", () => a.addMembership(5), TypeError],
      ["group null (drop)", () => a.dropMembership(null), TypeError],
      ["IPv4 iface true", () => a.addMembership("239.1.1.1", true), TypeError],
      ["IPv4 iface 1.5", () => a.addMembership("239.1.1.1", 1.5), RangeError],
      ["IPv4 iface -1", () => a.addMembership("239.1.1.1", -1), RangeError],
      ["IPv6 iface 1.5", () => b.addMembership("ff02::1:7", 1.5), RangeError],
      [
        "IPv6 iface 2**32",
        () => b.addMembership("ff02::1:7", 2 ** 32),
        RangeError,
      ],
      ["IPv6 iface {}", () => b.addMembership("ff02::1:7", {}), TypeError],
      ["TTL 256", () => a.setMulticastTtl(256), RangeError],
      ["TTL -1", () => a.setMulticastTtl(-1), RangeError],
      ["TTL 1.5", () => a.setMulticastTtl(1.5), RangeError],
      ["TTL '1'", () => a.setMulticastTtl("1"), TypeError],
      ["IPv6 hops 1.5", () => b.setMulticastTtl(1.5), RangeError],
      ["loopback 'yes'", () => a.setMulticastLoopback("yes"), TypeError],
      ["loopback 1", () => b.setMulticastLoopback(1), TypeError],
    ];
    try {
      for (const [what, call, expected] of cases) {
        await assert.rejects(call, (error: unknown) => {
          assert.ok(
            error instanceof expected,
            `${what}: expected ${expected.name}, got ${error}`,
          );
          // Said by aionet, not by an FFI call or the kernel.
          assert.doesNotMatch(
            (error as Error).message,
            /os error|is not a function|FFI/,
            what,
          );
          return true;
        });
      }
      // Nothing reached the kernel: the defaults are untouched.
      assert.equal(v4.options!.get(IPPROTO_IP, IP_MULTICAST_TTL), 1);
      assert.equal(v4.options!.get(IPPROTO_IP, IP_MULTICAST_LOOP), 1);
    } finally {
      await Promise.all([v4.close(), v6.close()]);
    }
  },
);

nativeTest(
  "Unix datagrams: bound endpoints and an unbound sender",
  async () => {
    const dir = await Deno.makeTempDir();
    const a = backend.openUnixDatagram(`${dir}/a.sock`);
    const b = backend.openUnixDatagram(`${dir}/b.sock`);
    const anonymous = backend.openUnixDatagram();
    try {
      assert.deepEqual(a.addr, {
        transport: "unixpacket",
        path: `${dir}/a.sock`,
      });
      assert.deepEqual(anonymous.addr, { transport: "unixpacket", path: null });
      const received = new Received();
      b.receiveStart(received);
      assert.equal(a.send(bytes(1, 2), b.addr), 2);
      assert.equal(anonymous.send(bytes(3), b.addr), 1);
      await received.count(2);
      assert.deepEqual(received.datagrams[0], [bytes(1, 2), a.addr]);
      assert.deepEqual(received.datagrams[1], [bytes(3), {
        transport: "unixpacket",
        path: null,
      }]);
      await assert.rejects(a.setMulticastTtl(2), Deno.errors.NotSupported);
      await assert.rejects(
        a.addMembership("239.1.1.1"),
        Deno.errors.NotSupported,
      );
      // Reply to the bound sender.
      const replies = new Received();
      a.receiveStart(replies);
      b.send(bytes(4), received.datagrams[0][1]);
      await replies.count(1);
    } finally {
      await Promise.all([a.close(), b.close(), anonymous.close()]);
      await Deno.remove(dir, { recursive: true });
    }
  },
);

nativeTest(
  "a send into a full queue waits for room, then completes",
  async () => {
    const name = `\0aionet-dgram-${crypto.randomUUID()}`;
    const receiver = backend.openUnixDatagram(name);
    const sender = backend.openUnixDatagram();
    try {
      sender.connect({ transport: "unixpacket", path: name });
      const chunk = new Uint8Array(1024);
      let sent = 0;
      let pending: Promise<number> | null = null;
      for (let i = 0; i < 100_000 && pending === null; i++) {
        const result = sender.send(chunk, null);
        if (typeof result === "number") sent++;
        else pending = result;
      }
      assert.ok(pending !== null, "the receiver's queue never filled");
      assert.throws(() => sender.send(chunk, null), Deno.errors.Busy);
      const received = new Received();
      receiver.receiveStart(received);
      assert.equal(await pending, chunk.length);
      await received.count(sent + 1);
    } finally {
      await Promise.all([receiver.close(), sender.close()]);
    }
  },
);

nativeTest("close(): once; sends after it throw BadResource", async () => {
  const a = udp();
  const closing = a.close();
  assert.equal(a.close(), closing);
  await closing;
  assert.throws(() => a.send(bytes(1), a.addr), Deno.errors.BadResource);
  assert.throws(() => a.connect(a.addr), Deno.errors.BadResource);
  await assert.rejects(a.setMulticastTtl(2), Deno.errors.BadResource);
});

nativeTest(
  "an IPv6 wildcard socket reaches IPv4 peers (mapped addresses)",
  async () => {
    const v6 = udp("::");
    const v4 = udp("127.0.0.1");
    try {
      const received = new Received();
      v4.receiveStart(received);
      v6.send(bytes(4), v4.addr);
      await received.count(1);
      const port = (v6.addr as Deno.NetAddr).port;
      assert.deepEqual(received.datagrams[0][1], {
        transport: "udp",
        hostname: "127.0.0.1",
        port,
      });
      const back = new Received();
      v6.receiveStart(back);
      v4.send(bytes(5), { transport: "udp", hostname: "127.0.0.1", port });
      await back.count(1);
      assert.equal(
        (back.datagrams[0][1] as Deno.NetAddr).hostname,
        "::ffff:127.0.0.1",
      );
    } finally {
      await Promise.all([v6.close(), v4.close()]);
    }
  },
);
