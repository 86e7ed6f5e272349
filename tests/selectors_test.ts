// Tests of selectors.ts: key semantics and errors, select() timing, and
// that readiness is true readiness (a socket reported ready never throws
// WouldBlock), including a select-style echo server with 50 clients.

import assert from "node:assert/strict";
import {
  DefaultSelector,
  EVENT_READ,
  EVENT_WRITE,
  SelectorKey,
} from "../selectors.ts";
import {
  AF_INET,
  SO_RCVBUF,
  SO_SNDBUF,
  SOCK_DGRAM,
  type Socket,
  socket,
  socketpair,
  SOL_SOCKET,
} from "../sockets.ts";
import { getEventLoop } from "../events.ts";
import { BACKEND, decode, encode, pattern, withTimeout } from "./_helpers.ts";

const loop = getEventLoop();
const LOCAL = "127.0.0.1";

/** Deterministic PRNG (mulberry32). */
function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function listening(backlog = 128): [Socket, number] {
  const server = socket();
  server.bind({ hostname: LOCAL, port: 0 });
  server.listen(backlog);
  return [server, (server.getSockName() as Deno.NetAddr).port];
}

Deno.test("EVENT_READ and EVENT_WRITE have Python's values", () => {
  assert.equal(EVENT_READ, 1);
  assert.equal(EVENT_WRITE, 2);
});

Deno.test("register, getKey, modify, unregister and the live map", () => {
  using sel = new DefaultSelector();
  using a = socket();
  using b = socket();
  const map = sel.getMap();
  assert.equal(map.size, 0);
  const key = sel.register(a, EVENT_READ, { name: "a" });
  assert.ok(key instanceof SelectorKey);
  assert.equal(key.fileobj, a);
  assert.equal(key.fd, a.fileno());
  assert.equal(key.events, EVENT_READ);
  assert.deepEqual(key.data, { name: "a" });
  assert.ok(Object.isFrozen(key));
  assert.equal(sel.getKey(a), key);
  assert.equal(map.size, 1, "the map is live");
  assert.equal(map.get(a.fileno()), key);
  sel.register(b, EVENT_READ | EVENT_WRITE);
  assert.deepEqual([...map.keys()], [a.fileno(), b.fileno()]);
  assert.deepEqual([...map.values()].map((k) => k.fileobj), [a, b]);
  const modified = sel.modify(a, EVENT_WRITE, "new data");
  assert.notEqual(modified, key);
  assert.equal(modified.events, EVENT_WRITE);
  assert.equal(modified.data, "new data");
  assert.equal(sel.getKey(a), modified);
  assert.equal(sel.getKey(a.fileno()), modified, "lookup by fd works too");
  assert.equal(sel.unregister(a), modified);
  assert.equal(map.size, 1);
  assert.equal(map.has(a.fileno()), false);
  let seen = 0;
  map.forEach((k, fd) => {
    assert.equal(k.fd, fd);
    seen++;
  });
  assert.equal(seen, 1);
  assert.equal("set" in map, false, "the map is read-only");
});

Deno.test("selector errors: KeyError, RangeError, TypeError, BadResource", async () => {
  const sel = new DefaultSelector();
  using a = socket();
  using b = socket();
  sel.register(a, EVENT_READ);
  assert.throws(
    () => sel.register(a, EVENT_WRITE),
    (e: Error) =>
      e.name === "KeyError" && e.message.includes(`fd=${a.fileno()}`) &&
      /already registered/.test(e.message),
  );
  for (
    const fn of [
      () => sel.unregister(b),
      () => sel.getKey(b),
      () => sel.modify(b, EVENT_READ),
    ]
  ) {
    assert.throws(
      fn,
      (e: Error) =>
        e.name === "KeyError" && /not registered/.test(e.message) &&
        e.message.includes("Socket"),
    );
  }
  for (const events of [0, 4, 7, 1.5, -1]) {
    assert.throws(() => sel.register(b, events), RangeError);
    assert.throws(() => sel.modify(a, events), RangeError);
  }
  assert.throws(() => sel.register(b, "1" as never), TypeError);
  assert.throws(() => sel.register({}, EVENT_READ), TypeError);
  assert.throws(() => sel.register(null, EVENT_READ), TypeError);
  if (BACKEND === "deno") {
    // Only aionet sockets can be watched: any other number is out of range.
    assert.throws(() => sel.register(123456, EVENT_READ), RangeError);
  } else {
    // Any descriptor can be watched; one that is not open is EBADF, as for
    // Python's epoll selector.
    assert.throws(
      () => sel.register(123456, EVENT_READ),
      (e: Error) =>
        e instanceof Deno.errors.BadResource && /123456/.test(e.message),
    );
  }
  await assert.rejects(sel.select("1" as never), TypeError);
  sel.close();
  sel.close();
  assert.throws(() => sel.register(b, EVENT_READ), Deno.errors.BadResource);
  assert.throws(() => sel.unregister(a), Deno.errors.BadResource);
  assert.throws(() => sel.modify(a, EVENT_READ), Deno.errors.BadResource);
  assert.throws(() => sel.getKey(a), Deno.errors.BadResource);
  assert.throws(() => sel.getMap(), Deno.errors.BadResource);
  await assert.rejects(sel.select(0), Deno.errors.BadResource);
});

Deno.test("select(0) returns at once and select(timeout) clears its timer", async () => {
  using sel = new DefaultSelector();
  {
    // A fresh TCP socket: the emulation reports it not ready; a kernel
    // socket polls as readable and writable (EPOLLOUT|EPOLLHUP), and Python's
    // epoll selector reports it so too.
    using fresh = socket();
    const key = sel.register(fresh, EVENT_READ | EVENT_WRITE);
    assert.deepEqual(
      await sel.select(0),
      BACKEND === "deno" ? [] : [[key, EVENT_READ | EVENT_WRITE]],
    );
    sel.unregister(fresh);
  }
  // A listening socket with nobody connecting is ready for nothing.
  using s = listening()[0];
  sel.register(s, EVENT_READ | EVENT_WRITE);
  let start = performance.now();
  assert.deepEqual(await sel.select(0), []);
  assert.ok(performance.now() - start < 100, "select(0) did not wait");
  assert.deepEqual(await sel.select(-5), []);
  start = performance.now();
  assert.deepEqual(await sel.select(30), []);
  assert.ok(performance.now() - start >= 25, "select(30) waited");
  // Nothing registered, no timeout: would wait forever; with one it ends.
  using empty = new DefaultSelector();
  assert.deepEqual(await empty.select(5), []);
});

Deno.test("select() wakes when a socket becomes ready, with the ready events only", async () => {
  using sel = new DefaultSelector();
  const [a, b] = socketpair();
  sel.register(b, EVENT_READ, "b");
  const waiting = sel.select(5000);
  await loop.sockSendAll(a, encode("wake"));
  const events = await withTimeout(waiting);
  assert.equal(events.length, 1);
  const [key, mask] = events[0];
  assert.equal(key.data, "b");
  assert.equal(mask, EVENT_READ);
  assert.equal(decode(b.recv(100)), "wake");
  // A second select while one waits is refused.
  const pending = sel.select(20);
  await assert.rejects(sel.select(0), Deno.errors.Busy);
  await pending;
  a.close();
  b.close();
});

Deno.test("select() sees sockets registered while it waits, not closed ones", async () => {
  using sel = new DefaultSelector();
  const [a, b] = socketpair();
  const waiting = sel.select(5000);
  sel.register(a, EVENT_WRITE, "late");
  const events = await withTimeout(waiting);
  assert.equal(events[0][0].data, "late");
  a.close();
  assert.deepEqual(await sel.select(0), [], "a closed socket is never ready");
  assert.equal(sel.unregister(a).data, "late");
  b.close();
});

Deno.test("readiness is true readiness (randomized, seeded)", async () => {
  const rand = random(20240601);
  const [server, port] = listening();
  server.setsockopt(SOL_SOCKET, SO_RCVBUF, 2048);
  const CLIENTS = 8;
  const clients: Socket[] = [];
  const toSend: Uint8Array[] = [];
  const sent: number[] = [];
  const received = new Map<Socket, number[]>();
  const sel = new DefaultSelector();
  sel.register(server, EVENT_READ, { role: "listener" });
  for (let i = 0; i < CLIENTS; i++) {
    const client = socket(AF_INET);
    client.setsockopt(SOL_SOCKET, SO_SNDBUF, 1 + Math.floor(rand() * 4096));
    client.connectEx({ hostname: LOCAL, port });
    clients.push(client);
    toSend.push(pattern(20_000 + Math.floor(rand() * 30_000), i + 1));
    sent.push(0);
    sel.register(client, EVENT_WRITE, { role: "client", index: i });
  }
  const conns: Socket[] = [];
  let finished = 0;
  let readyChecks = 0;
  const deadline = performance.now() + 20_000;
  while (finished < CLIENTS) {
    assert.ok(performance.now() < deadline, "the select loop took too long");
    for (const [key, mask] of await sel.select(5000)) {
      const data = key.data as { role: string; index: number };
      const sock = key.fileobj as Socket;
      readyChecks++;
      if (data.role === "listener") {
        assert.ok(mask & EVENT_READ);
        const [conn] = server.accept(); // must not throw WouldBlock
        conns.push(conn);
        received.set(conn, []);
        sel.register(conn, EVENT_READ, { role: "conn", index: -1 });
      } else if (data.role === "client") {
        assert.ok(mask & EVENT_WRITE);
        const i = data.index;
        const size = 1 + Math.floor(rand() * 8000);
        const chunk = toSend[i].subarray(sent[i], sent[i] + size);
        const n = sock.send(chunk); // must not throw WouldBlock
        assert.ok(n >= 1);
        sent[i] += n;
        if (sent[i] === toSend[i].length) {
          sel.unregister(sock);
          sock.close();
        }
      } else {
        assert.ok(mask & EVENT_READ);
        const chunk = sock.recv(1 + Math.floor(rand() * 6000)); // no WouldBlock
        if (chunk.length === 0) {
          sel.unregister(sock);
          finished++;
        } else {
          received.get(sock)!.push(...chunk);
        }
      }
    }
  }
  assert.ok(readyChecks > CLIENTS * 4);
  // Each connection got exactly one client's bytes, in order.
  const expected = toSend.map((d) => d.join(",")).sort();
  const got = conns.map((c) => received.get(c)!.join(",")).sort();
  assert.deepEqual(got, expected);
  sel.close();
  for (const c of conns) c.close();
  server.close();
});

Deno.test("a select-style echo server serves 50 clients at once", async () => {
  const [server, port] = listening();
  const sel = new DefaultSelector();
  sel.register(server, EVENT_READ, null);
  const pending = new Map<Socket, Uint8Array[]>();
  let served = 0;
  const serve = (async () => {
    while (served < 50) {
      for (const [key, mask] of await sel.select(100)) {
        const sock = key.fileobj as Socket;
        if (sock === server) {
          const [conn] = server.accept();
          pending.set(conn, []);
          sel.register(conn, EVENT_READ);
          continue;
        }
        if (mask & EVENT_READ) {
          const data = sock.recv(4096);
          if (data.length === 0) {
            sel.unregister(sock);
            sock.close();
            pending.delete(sock);
            served++;
            continue;
          }
          pending.get(sock)!.push(data);
          sel.modify(sock, EVENT_READ | EVENT_WRITE);
        }
        if (mask & EVENT_WRITE) {
          const queue = pending.get(sock)!;
          while (queue.length > 0) {
            let n: number;
            try {
              n = sock.send(queue[0]);
            } catch (error) {
              if (error instanceof Deno.errors.WouldBlock) break;
              throw error;
            }
            if (n === queue[0].length) queue.shift();
            else queue[0] = queue[0].subarray(n);
          }
          if (queue.length === 0) sel.modify(sock, EVENT_READ);
        }
      }
    }
  })();
  const client = async (i: number) => {
    const sock = socket();
    await loop.sockConnect(sock, { hostname: LOCAL, port });
    const message = pattern(1000 + i * 37, i + 100);
    await loop.sockSendAll(sock, message);
    const echoed: number[] = [];
    while (echoed.length < message.length) {
      const chunk = await loop.sockRecv(sock, 65536);
      assert.ok(chunk.length > 0, "EOF before the echo");
      echoed.push(...chunk);
    }
    assert.deepEqual(Uint8Array.from(echoed), message);
    sock.close();
  };
  await withTimeout(
    Promise.all(Array.from({ length: 50 }, (_, i) => client(i))),
    20_000,
    "50 echo clients",
  );
  // The server loop ends once it has seen the 50 clients' EOFs.
  await withTimeout(serve, 10_000, "the server to see every EOF");
  assert.equal(served, 50);
  sel.close();
  server.close();
});

Deno.test("a datagram socket is writable at once and readable when a datagram waits", async () => {
  using sel = new DefaultSelector();
  using a = socket(AF_INET, SOCK_DGRAM);
  using b = socket(AF_INET, SOCK_DGRAM);
  b.bind({ hostname: LOCAL, port: 0 });
  sel.register(a, EVENT_WRITE, "a");
  sel.register(b, EVENT_READ, "b");
  const first = await sel.select(0);
  assert.deepEqual(first.map(([k, m]) => [k.data, m]), [["a", EVENT_WRITE]]);
  a.sendTo(encode("dgram"), b.getSockName() as Deno.NetAddr);
  sel.unregister(a);
  const second = await sel.select(5000);
  assert.deepEqual(second.map(([k, m]) => [k.data, m]), [["b", EVENT_READ]]);
  assert.equal(decode(b.recv(100)), "dgram");
});
