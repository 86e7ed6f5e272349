// Tests of the native poller inside Deno's event loop: it parks when idle
// and the kernel wakes it; closing the last handle wakes it and waits for
// the parked call (so the op sanitizer sees nothing pending); events of a
// descriptor closed and reused within one batch are dropped (generation
// tags); timers, file I/O and Deno's own sockets stay live under a flat-out
// echo load; and a process whose native handles are closed exits by itself
// while one with a listening handle stays up.

import assert from "node:assert/strict";
import { setImmediate } from "node:timers";
import type { StreamHandle } from "../_backend.ts";
import { EPOLLIN, errno, osError, sys } from "../_native_libc.ts";
import { type Pollable, poller } from "../_native_poller.ts";
import {
  Acceptor,
  backend,
  closeRaw,
  Collector,
  nativeTest,
  rawPipe,
  rawWrite,
  writeAll,
} from "./_native_fd_check.ts";

/** Waits (bounded, turn by turn) until `check()` holds. */
async function turnsUntil(
  check: () => boolean,
  what: string,
  maxTurns = 200_000,
): Promise<void> {
  for (let i = 0; i < maxTurns; i++) {
    if (check()) return;
    await new Promise((resolve) => setImmediate(resolve));
  }
  throw new Error(`${what} did not happen within ${maxTurns} turns`);
}

function listen() {
  return backend.listenTcp({
    hostname: "127.0.0.1",
    port: 0,
    backlog: 64,
    reusePort: false,
  });
}

nativeTest(
  "idle: the poller parks; a connection wakes it; the last close settles it",
  async () => {
    const listener = listen();
    const acceptor = new Acceptor();
    listener.acceptStart(acceptor);
    const before = poller().stats();
    await turnsUntil(() => poller().stats().state === "parked", "parking");
    assert.ok(poller().stats().parks > before.parks);
    // The kernel ends the park: a raw Deno client connects.
    const conn = await Deno.connect({
      hostname: "127.0.0.1",
      port: (listener.addr as Deno.NetAddr).port,
    });
    await acceptor.count(1);
    await acceptor.handles[0].close();
    conn.close();
    await turnsUntil(
      () => poller().stats().state === "parked",
      "parking again",
    );
    const wakes = poller().stats().wakes;
    // Closing the last active handle wakes the parked wait and resolves only
    // once it came back: nothing is pending when the test ends.
    await listener.close();
    const after = poller().stats();
    assert.equal(after.wakes, wakes + 1);
    assert.equal(after.state, "stopped");
    assert.equal(after.active, 0);
  },
);

/** A test pollable over a raw socketpair end. */
class Probe implements Pollable {
  pollGen = 0;
  pollEvents = 0;
  calls = 0;
  constructor(readonly fd: number, readonly onEvent: (probe: Probe) => void) {}
  onPoll(): void {
    this.calls++;
    this.onEvent(this);
  }
}

function rawPair(): [number, number] {
  const fds = new Int32Array(new ArrayBuffer(8));
  if (
    sys.socketpair(1, 1 | 0o4000 | 0o2000000, 0, new Uint8Array(fds.buffer)) < 0
  ) {
    throw osError(errno(), "socketpair");
  }
  return [fds[0], fds[1]];
}

nativeTest(
  "an event queued for a closed, reused descriptor is dropped",
  async () => {
    const p = poller();
    const [a0, a1] = rawPair();
    const [b0, b1] = rawPair();
    let replacement: Probe | null = null;
    let replacementPeer = -1;
    let batchOver = false;
    let misdelivered = false;
    const first = (self: Probe) => {
      if (replacement !== null) return;
      // Close the *other* probe's descriptor; a new pair takes its number.
      const other = self === probeA ? probeB : probeA;
      p.detach(other);
      sys.close(other.fd);
      const [c0, c1] = rawPair();
      assert.equal(c0, other.fd, "the kernel reused the lowest free number");
      replacementPeer = c1;
      replacement = new Probe(c0, () => {
        if (!batchOver) misdelivered = true;
      });
      p.attach(replacement);
      p.watch(replacement, EPOLLIN);
      rawWrite(c1, new Uint8Array([3]));
      queueMicrotask(() => batchOver = true);
    };
    const probeA = new Probe(a0, first);
    const probeB = new Probe(b0, first);
    const stale = p.stats().stale;
    try {
      rawWrite(a1, new Uint8Array([1]));
      rawWrite(b1, new Uint8Array([2]));
      // Both readable before the poller runs: one batch holds both events.
      p.attach(probeA);
      p.attach(probeB);
      p.watch(probeA, EPOLLIN);
      p.watch(probeB, EPOLLIN);
      await turnsUntil(
        () => replacement !== null && replacement.calls > 0,
        "the replacement's own event",
      );
      assert.equal(
        misdelivered,
        false,
        "the stale event reached the new registration",
      );
      assert.ok(p.stats().stale > stale, "the stale event was counted");
    } finally {
      for (const probe of [probeA, probeB, replacement as Probe | null]) {
        if (probe !== null && probe.pollGen !== 0) {
          p.detach(probe);
          sys.close(probe.fd);
        }
      }
      sys.close(a1);
      sys.close(b1);
      if (replacementPeer >= 0) sys.close(replacementPeer);
    }
  },
);

nativeTest(
  "timers, file I/O, Deno sockets, fetch and Deno.serve stay live under a flat-out echo",
  async () => {
    const listener = listen();
    const acceptor = new Acceptor();
    const port = (listener.addr as Deno.NetAddr).port;
    acceptor.accepted = (handle: StreamHandle) => {
      acceptor.handles.push(handle);
      const buffer = new Uint8Array(4096);
      handle.readStart({
        readBuffer: () => buffer,
        readDone: (data, n) => void handle.write(data.subarray(0, n)),
        readEof: () => void handle.shutdownWrite().catch(() => {}),
        readError: () => {},
      });
    };
    listener.acceptStart(acceptor);
    // Four native clients ping-pong 1 KiB as fast as they can.
    let roundTrips = 0;
    let running = true;
    const clients: StreamHandle[] = [];
    const message = new Uint8Array(1024);
    for (let i = 0; i < 4; i++) {
      const client = await backend.connectTcp({ hostname: "127.0.0.1", port });
      let got = 0;
      client.readStart({
        readBuffer: () => new Uint8Array(4096),
        readDone(_data, n) {
          got += n;
          if (got < message.length) return;
          got -= message.length;
          roundTrips++;
          if (running) client.write(message);
        },
        readEof() {},
        readError() {},
      });
      client.write(message);
      clients.push(client);
    }
    const file = await Deno.makeTempFile();
    await Deno.writeTextFile(file, "x".repeat(10_000));
    const denoListener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const http = Deno.serve(
      { hostname: "127.0.0.1", port: 0, onListen() {} },
      () => new Response("ok"),
    );
    try {
      // Timers: 20 timeouts of 5 ms in a row, each measured for lateness.
      let worstLateness = 0;
      for (let i = 0; i < 20; i++) {
        const start = performance.now();
        await new Promise((resolve) => setTimeout(resolve, 5));
        worstLateness = Math.max(worstLateness, performance.now() - start - 5);
      }
      // File I/O and Deno's own sockets.
      for (let i = 0; i < 20; i++) {
        assert.equal((await Deno.readTextFile(file)).length, 10_000);
      }
      const [accepted, dialed] = await Promise.all([
        denoListener.accept(),
        Deno.connect({ hostname: "127.0.0.1", port: denoListener.addr.port }),
      ]);
      await dialed.write(new Uint8Array([1, 2, 3]));
      const got = new Uint8Array(3);
      assert.equal(await accepted.read(got), 3);
      // fetch and Deno.serve in this process answer within a few breaths
      // (see BREATH_MS in _native_poller.ts; a fetch needs a handful of
      // Deno's I/O polls: request, handler, response). Without breaths
      // Deno's loop, kept busy by the ticks, polled its own sockets once per
      // ~60 turns: every fetch took 116-174 ticks and no breath (~70 ms per
      // fetch in bench/loop_liveness.ts under a full load).
      const breaths: number[] = [];
      for (let i = 0; i < 10; i++) {
        const before = poller().stats().breaths;
        const response = await fetch(`http://127.0.0.1:${http.addr.port}/`);
        assert.equal(await response.text(), "ok");
        breaths.push(poller().stats().breaths - before);
      }
      breaths.sort((a, b) => a - b);
      assert.ok(breaths[5] <= 8, `breaths per fetch: ${breaths.join(", ")}`);
      assert.ok(poller().stats().breaths > 0, "the busy poller breathes");
      accepted.close();
      dialed.close();
      assert.ok(
        roundTrips > 100,
        `the echo load ran (${roundTrips} round trips)`,
      );
      assert.ok(worstLateness < 250, `timers ran late by ${worstLateness} ms`);
    } finally {
      running = false;
      denoListener.close();
      await http.shutdown();
      await Deno.remove(file);
      for (const client of clients) await client.close();
      for (const handle of acceptor.handles) await handle.close();
      await listener.close();
    }
  },
);

/**
 * Runs `source` in a fresh Deno with -A (and `flags`); resolves to its
 * output (bounded).
 */
async function runScript(
  source: string,
  onLine?: (line: string, child: Deno.ChildProcess) => Promise<void> | void,
  flags: string[] = [],
): Promise<{ code: number; out: string; timedOut: boolean }> {
  const dir = await Deno.makeTempDir();
  const path = `${dir}/script.ts`;
  await Deno.writeTextFile(path, source);
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--quiet", ...flags, path],
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    child.kill("SIGKILL");
  }, 20_000);
  let out = "";
  try {
    const decoder = new TextDecoder();
    for await (const chunk of child.stdout) {
      const text = decoder.decode(chunk);
      out += text;
      for (const line of text.split("\n").filter(Boolean)) {
        await onLine?.(line, child);
      }
    }
    const status = await child.status;
    return { code: status.code, out, timedOut };
  } finally {
    clearTimeout(timer);
    await Deno.remove(dir, { recursive: true });
  }
}

const here = new URL("..", import.meta.url).href;

nativeTest(
  "a process whose native handles are closed exits by itself",
  async () => {
    const { code, out, timedOut } = await runScript(`
    import { createNativeBackend } from "${here}_native_backend.ts";
    import { poller } from "${here}_native_poller.ts";
    import { setImmediate } from "node:timers";
    const backend = createNativeBackend();
    const listener = backend.listenTcp({ hostname: "127.0.0.1", port: 0, backlog: 4, reusePort: false });
    const accepted = Promise.withResolvers();
    listener.acceptStart({ accepted: (h) => accepted.resolve(h), acceptError() {} });
    const client = await backend.connectTcp({ hostname: "127.0.0.1", port: listener.addr.port });
    const server = await accepted.promise;
    const got = Promise.withResolvers();
    server.readStart({ readBuffer: () => new Uint8Array(64), readDone: (_b, n) => got.resolve(n), readEof() {}, readError() {} });
    client.write(new Uint8Array([1, 2]));
    console.log("read", await got.promise);
    // Let the poller park, then close everything (no Deno.exit).
    for (let i = 0; i < 200000 && poller().stats().state !== "parked"; i++) {
      await new Promise((r) => setImmediate(r));
    }
    console.log(poller().stats().state);
    client.readStart({ readBuffer: () => new Uint8Array(64), readDone() {}, readEof() {}, readError() {} });
    client.readStop(); // stopped, not closed: keeps nothing alive either
    await server.close();
    await listener.close();
    console.log("closed");
  `);
    assert.equal(timedOut, false, "the process did not exit by itself");
    assert.equal(code, 0);
    assert.match(out, /read 2\nparked\nclosed\n/);
  },
);

nativeTest(
  "the poller holds registrations without interest weakly: a stopped handle nobody keeps is collected, a reading one is not",
  async () => {
    // As asyncio's selector forgets a transport that reads nothing: a
    // half-open or paused transport dropped unclosed must be collectable,
    // so debug mode can report it.
    const { code, out, timedOut } = await runScript(
      `
    import { createNativeBackend } from "${here}_native_backend.ts";
    const gc = (globalThis as unknown as { gc(): void }).gc;
    const backend = createNativeBackend();
    const listener = backend.listenTcp({ hostname: "127.0.0.1", port: 0, backlog: 4, reusePort: false });
    const accepted: unknown[] = [];
    const both = Promise.withResolvers<void>();
    listener.acceptStart({
      accepted(h) { accepted.push(h); if (accepted.length === 2) both.resolve(); },
      acceptError() {},
    });
    const port = (listener.addr as Deno.NetAddr).port;
    const clients = [
      await backend.connectTcp({ hostname: "127.0.0.1", port }),
      await backend.connectTcp({ hostname: "127.0.0.1", port }),
    ];
    await both.promise;
    const collected = new Set<string>();
    const registry = new FinalizationRegistry<string>((name) => collected.add(name));
    (() => {
      const [stopped, reading] = accepted.splice(0) as Array<{
        readStart(sink: unknown): void;
        readStop(): void;
      }>;
      const sink = () => ({
        readBuffer: () => new Uint8Array(64),
        readDone() {},
        readEof() {},
        readError() {},
      });
      stopped.readStart(sink());
      stopped.readStop();
      reading.readStart(sink());
      registry.register(stopped, "stopped");
      registry.register(reading, "reading");
    })();
    for (let i = 0; i < 100 && !collected.has("stopped"); i++) {
      gc();
      await new Promise((resolve) => setTimeout(resolve, 0));
    }
    console.log(JSON.stringify([...collected]), clients.length);
    Deno.exit(0);
  `,
      undefined,
      ["--v8-flags=--expose-gc"],
    );
    assert.equal(timedOut, false);
    assert.equal(code, 0, out);
    assert.equal(out.trim(), '["stopped"] 2');
  },
);

nativeTest(
  "a process with a listening native handle stays up until it closes",
  async () => {
    let conn: Deno.Conn | null = null;
    const { code, out, timedOut } = await runScript(
      `
    import { createNativeBackend } from "${here}_native_backend.ts";
    import { poller } from "${here}_native_poller.ts";
    import { setImmediate } from "node:timers";
    const backend = createNativeBackend();
    const listener = backend.listenTcp({ hostname: "127.0.0.1", port: 0, backlog: 4, reusePort: false });
    listener.acceptStart({
      accepted(handle) {
        handle.readStart({
          readBuffer: () => new Uint8Array(64),
          readDone: (b, n) => void handle.write(b.slice(0, n)),
          readEof: () => { handle.close(); listener.close(); },
          readError() {},
        });
      },
      acceptError() {},
    });
    // Announce once parked: the parked wait alone must keep us up.
    for (let i = 0; i < 200000 && poller().stats().state !== "parked"; i++) {
      await new Promise((r) => setImmediate(r));
    }
    console.log("port " + listener.addr.port + " " + poller().stats().state);
  `,
      async (line) => {
        const match = /^port (\d+) parked$/.exec(line);
        if (match === null) return;
        conn = await Deno.connect({
          hostname: "127.0.0.1",
          port: Number(match[1]),
        });
        await conn.write(new TextEncoder().encode("hi"));
        const buffer = new Uint8Array(2);
        assert.equal(await conn.read(buffer), 2);
        assert.equal(new TextDecoder().decode(buffer), "hi");
        await conn.closeWrite();
        assert.equal(await conn.read(buffer), null);
        conn.close();
        conn = null;
      },
    );
    assert.equal(timedOut, false);
    assert.equal(code, 0);
    assert.match(out, /^port \d+ parked\n$/);
    void (conn as Deno.Conn | null);
  },
);

nativeTest(
  "a collector's bytes survive a park in the middle of a transfer",
  async () => {
    const listener = listen();
    const acceptor = new Acceptor();
    listener.acceptStart(acceptor);
    const client = await backend.connectTcp({
      hostname: "127.0.0.1",
      port: (listener.addr as Deno.NetAddr).port,
    });
    await acceptor.count(1);
    const collector = new Collector();
    acceptor.handles[0].readStart(collector);
    await writeAll(client, new Uint8Array([1]));
    await collector.bytesReceived(1);
    await turnsUntil(() => poller().stats().state === "parked", "parking");
    await writeAll(client, new Uint8Array([2]));
    await collector.bytesReceived(2);
    assert.deepEqual(collector.bytes(), new Uint8Array([1, 2]));
    await client.close();
    await acceptor.handles[0].close();
    await listener.close();
  },
);

nativeTest(
  "a watched descriptor closed behind our back: its number's new owner wins",
  async () => {
    const [readFd, writeFd] = rawPipe();
    const readiness = backend.readinessOfFd(readFd)!;
    const unsubscribe = readiness.subscribe(() => {}, 1);
    const active = poller().stats().active;
    // The user closes the watched pipe without removing the watch; a native
    // socket pair then takes the lowest free numbers, this one among them.
    closeRaw(readFd);
    const [a, b] = backend.socketPair(1, 1);
    try {
      const reused = a.fd === readFd ? a : b.fd === readFd ? b : null;
      assert.ok(reused !== null, "the number was reused");
      assert.equal(
        poller().stats().active,
        active - 1,
        "the stale watch no longer counts",
      );
      const other = reused === a ? b : a;
      const got = Promise.withResolvers<void>();
      const stop = reused.readiness.subscribe(() => got.resolve(), 1);
      other.send(new Uint8Array([1]));
      const timer = setTimeout(
        () => got.reject(new Error("not notified")),
        5000,
      );
      await got.promise;
      clearTimeout(timer);
      stop();
      unsubscribe(); // The stale watch's removal must not touch the socket.
      assert.equal(reused.readiness.poll() & 1, 1);
    } finally {
      a.close();
      b.close();
      closeRaw(writeFd);
    }
  },
);

// A synchronous close (Socket.close(), an unsubscribe) of the last
// interest while parked cannot await the parked call; the poller waits
// for the kernel to return it before the close returns, so the sanitizer's
// one extra event-loop turn sees it complete. `settle: false`: nothing
// awaits the poller after the close.
for (let i = 0; i < 20; i++) {
  nativeTest(
    `a synchronous last close while parked leaves no op (${i})`,
    async () => {
      const [a, b] = backend.socketPair(1, 1);
      const unsubscribe = a.readiness.subscribe(() => {}, 1);
      await turnsUntil(() => poller().stats().state === "parked", "parking");
      unsubscribe();
      a.close();
      b.close();
    },
    { settle: false },
  );
}
