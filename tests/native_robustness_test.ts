// Robustness of the native backend (epoll and libc through FFI) where a
// C-level mistake would show: descriptor numbers reused while events for the
// old owner may still be queued, transports closed from inside their own
// callbacks, descriptor exhaustion (a child process under `ulimit -n`),
// partial writes of views and of buffers the caller mutates, Unix socket
// names at the length limit, and a program that closed everything exiting
// by itself. Every test runs with the descriptor-leak checks of
// `nativeBackendTest` and is ignored on the Deno backend.
//
// One test, about a Deno panic under EMFILE (not aionet's), is ignored
// until Deno fixes it; it says what should happen and how we know.

import assert from "node:assert/strict";
import {
  createConnection,
  createServer,
  createUnixConnection,
  createUnixServer,
  type Server,
  type Transport,
} from "../transports.ts";
import { Protocol } from "../protocols.ts";
import { getEventLoop } from "../events.ts";
import { AF_UNIX, SOCK_STREAM, type Socket, socketpair } from "../sockets.ts";
import {
  bytesEqual,
  collectExceptions,
  concat,
  decode,
  encode,
  nativeBackendTest,
  pattern,
  RecordingProtocol,
  withTimeout,
} from "./_helpers.ts";

// ---- small helpers ----

/** A one-shot signal to await (`fire()` resolves it). */
function oneShot(): { promise: Promise<void>; fire: () => void } {
  const { promise, resolve } = Promise.withResolvers<void>();
  return { promise, fire: () => resolve() };
}

/** The OS descriptor of a native transport. */
function fdOf(transport: Transport): number {
  const sock = transport.getExtraInfo("socket") as { fileno(): number };
  return sock.fileno();
}

/** A server-side protocol that keeps its transport and what it got. */
class Kept extends RecordingProtocol {}

/** A listening aionet server on 127.0.0.1:0 whose protocols are kept. */
async function keptServer(): Promise<{
  server: Server;
  port: number;
  sides: Kept[];
}> {
  const sides: Kept[] = [];
  const server = await createServer(() => {
    const p = new Kept();
    sides.push(p);
    return p;
  }, { hostname: "127.0.0.1", port: 0 });
  return { server, port: (server.addrs[0] as Deno.NetAddr).port, sides };
}

/** Waits (bounded) until `check()` holds, testing after every macrotask. */
async function until(
  check: () => boolean,
  what: string,
  ms = 5000,
): Promise<void> {
  const deadline = performance.now() + ms;
  while (!check()) {
    if (performance.now() > deadline) {
      throw new Error(`Timed out after ${ms} ms waiting for ${what}`);
    }
    // One macrotask turn (I/O completions run), not a sleep as a sync point.
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
}

/** Reads `n` bytes from a raw Deno connection (bounded by `withTimeout`). */
async function readN(conn: Deno.Conn, n: number): Promise<Uint8Array> {
  const out = new Uint8Array(n);
  let got = 0;
  while (got < n) {
    const r = await conn.read(out.subarray(got));
    if (r === null) break;
    got += r;
  }
  return out.subarray(0, got);
}

/** A raw Deno TCP listener and the aionet client connected to it. */
async function rawPeer<P extends Protocol>(
  factory: () => P,
): Promise<
  {
    listener: Deno.TcpListener;
    peer: Deno.Conn;
    transport: Transport;
    protocol: P;
  }
> {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const accepted = listener.accept();
  const [transport, protocol] = await createConnection(factory, {
    hostname: "127.0.0.1",
    port: listener.addr.port,
  });
  const peer = await accepted;
  return { listener, peer, transport, protocol };
}

const childEnv = { AIONET_BACKEND: "native", NO_COLOR: "1" };
const moduleUrl = (name: string) => new URL(`../${name}`, import.meta.url).href;

/** Runs a child `deno` script (text) under `sh -c`, bounded by `ms`. */
async function runChild(
  script: string,
  options: {
    ulimit?: number;
    ms: number;
    onStdoutLine?: (line: string) => void;
    /** Runs alongside the child; its stdin is closed when this settles. */
    drive?: (child: Deno.ChildProcess) => Promise<void>;
  },
): Promise<
  { code: number | null; stdout: string; stderr: string; timedOut: boolean }
> {
  const dir = await Deno.makeTempDir({ prefix: "aionet_robust_" });
  try {
    const file = `${dir}/child.ts`;
    await Deno.writeTextFile(file, script);
    const limit = options.ulimit !== undefined
      ? `ulimit -n ${options.ulimit}; `
      : "";
    const child = new Deno.Command("sh", {
      args: ["-c", `${limit}exec "${Deno.execPath()}" run -A "${file}"`],
      env: childEnv,
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    let stdout = "";
    let stderr = "";
    const readOut = (async () => {
      const decoder = new TextDecoder();
      let pending = "";
      for await (const chunk of child.stdout) {
        const text = decoder.decode(chunk, { stream: true });
        stdout += text;
        pending += text;
        let nl: number;
        while ((nl = pending.indexOf("\n")) >= 0) {
          const line = pending.slice(0, nl);
          pending = pending.slice(nl + 1);
          options.onStdoutLine?.(line);
        }
      }
    })();
    const readErr = (async () => {
      const decoder = new TextDecoder();
      for await (const chunk of child.stderr) {
        stderr += decoder.decode(chunk, { stream: true });
      }
    })();
    const driving = (options.drive?.(child) ?? Promise.resolve()).finally(
      () => child.stdin.close().catch(() => {}),
    );
    let timedOut = false;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const status = await Promise.race([
      child.status,
      new Promise<null>((resolve) => {
        timer = setTimeout(() => resolve(null), options.ms);
      }),
    ]);
    clearTimeout(timer);
    if (status === null) {
      timedOut = true;
      child.kill("SIGKILL");
    }
    const final = await child.status;
    await readOut;
    await readErr;
    await driving.catch(() => {});
    return { code: timedOut ? null : final.code, stdout, stderr, timedOut };
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

// ---- descriptor reuse ----

nativeBackendTest(
  "fd reuse: a transport closed by another's dataReceived in the same batch, its number reused at once, gets nothing; the new owner gets only its own bytes",
  async () => {
    const { server, port, sides } = await keptServer();
    const loop = getEventLoop();
    const reused: Socket[] = [];
    const spare: Socket[] = [];
    const readerGot: Uint8Array[] = [];
    let first: "a" | "b" | null = null;
    let reusedFd = -1;
    const done = oneShot();
    class Client extends RecordingProtocol {
      constructor(readonly name: "a" | "b", readonly other: () => Client) {
        super();
      }
      override dataReceived(data: Uint8Array): void {
        super.dataReceived(data);
        if (first !== null) return;
        first = this.name;
        const other = this.other();
        const otherFd = fdOf(other.transport!);
        other.transport!.abort();
        // Take descriptors until one is the number just freed (the kernel
        // gives the lowest free number; holes below it are taken first).
        for (let i = 0; i < 64 && reusedFd < 0; i++) {
          const [x, y] = socketpair(AF_UNIX, SOCK_STREAM);
          if (x.fileno() === otherFd || y.fileno() === otherFd) {
            const mine = x.fileno() === otherFd ? x : y;
            const partner = mine === x ? y : x;
            reused.push(mine, partner);
            reusedFd = otherFd;
            partner.send(encode("pair"));
            loop.addReader(mine, () => {
              try {
                readerGot.push(mine.recv(100));
              } catch (error) {
                if (!(error instanceof Deno.errors.WouldBlock)) throw error;
              }
              if (decode(concat(readerGot)) === "pair") done.fire();
            });
          } else {
            spare.push(x, y);
          }
        }
      }
    }
    let a!: Client;
    let b!: Client;
    try {
      [, a] = await createConnection(() => new Client("a", () => b), {
        hostname: "127.0.0.1",
        port,
      });
      [, b] = await createConnection(() => new Client("b", () => a), {
        hostname: "127.0.0.1",
        port,
      });
      await until(
        () => sides.length === 2 && sides.every((s) => s.transport !== null),
        "2 accepted",
      );
      // Both client descriptors turn readable in the same instant.
      sides[0].transport!.write(encode("to-first"));
      sides[1].transport!.write(encode("to-second"));
      await withTimeout(done.promise, 5000, "the reused descriptor's reader");
      assert.ok(reusedFd >= 0, "a new socket took the freed descriptor number");
      const victim = first === "a" ? b : a;
      await withTimeout(
        victim.lost,
        5000,
        "the aborted transport's connectionLost",
      );
      assert.equal(
        victim.receivedLength,
        0,
        "nothing delivered to the aborted transport",
      );
      assert.equal(victim.events.filter((e) => e === "lost").length, 1);
      assert.equal(
        decode(concat(readerGot)),
        "pair",
        "the new owner got only its own bytes",
      );
    } finally {
      if (reused.length > 0) loop.removeReader(reused[0]);
      for (const s of [...reused, ...spare]) s.close();
      a?.transport?.close();
      b?.transport?.close();
      for (const s of sides) s.transport?.close();
      server.close();
      await server.waitClosed();
      await Promise.all(
        [a?.lost, b?.lost, ...sides.map((s) => s.lost)].filter(Boolean),
      );
    }
  },
);

// ---- closing inside callbacks ----

nativeBackendTest(
  "abort() inside dataReceived with more data queued: no further dataReceived, one connectionLost",
  async () => {
    class AbortOnData extends RecordingProtocol {
      override dataReceived(data: Uint8Array): void {
        super.dataReceived(data);
        this.transport!.abort();
      }
    }
    const { listener, peer, protocol } = await rawPeer(() => new AbortOnData());
    try {
      // Several reads' worth, queued before the client reads anything.
      const big = pattern(1 << 20);
      const writing = peer.write(big).catch(() => 0);
      await withTimeout(protocol.lost, 5000, "connectionLost");
      await writing;
      assert.equal(protocol.events.filter((e) => e === "data").length, 1);
      assert.deepEqual(protocol.events, ["made", "data", "lost"]);
    } finally {
      peer.close();
      listener.close();
    }
  },
);

nativeBackendTest(
  "close() inside eofReceived and inside a write's pauseWriting: one connectionLost, no error reported",
  async () => {
    using seen = collectExceptions();
    class CloseOnEof extends RecordingProtocol {
      override eofReceived(): boolean {
        super.eofReceived();
        this.transport!.close();
        return true;
      }
    }
    const one = await rawPeer(() => new CloseOnEof());
    try {
      await one.peer.closeWrite();
      await withTimeout(one.protocol.lost, 5000, "connectionLost after EOF");
      assert.deepEqual(one.protocol.events, ["made", "eof", "lost"]);
      assert.equal(
        await one.peer.read(new Uint8Array(8)),
        null,
        "the peer sees EOF",
      );
    } finally {
      one.peer.close();
      one.listener.close();
    }
    class AbortOnPause extends RecordingProtocol {
      override pauseWriting(): void {
        super.pauseWriting();
        this.transport!.abort();
      }
    }
    const two = await rawPeer(() => new AbortOnPause());
    try {
      // Until above the high-water mark (the kernel takes megabytes first);
      // the peer does not read.
      const chunk = pattern(1 << 20);
      for (
        let i = 0;
        i < 256 && !two.protocol.events.includes("pauseWriting");
        i++
      ) {
        two.transport.write(chunk);
      }
      await withTimeout(two.protocol.lost, 5000, "connectionLost after abort");
      assert.deepEqual(two.protocol.events, ["made", "pauseWriting", "lost"]);
      assert.throws(
        () => two.transport.write(encode("x")),
        Deno.errors.BadResource,
      );
    } finally {
      two.peer.close();
      two.listener.close();
    }
    assert.deepEqual(seen.messages(), []);
  },
);

nativeBackendTest(
  "server.close() inside connectionMade with more clients in the backlog: nothing crashes or leaks; the backlog's clients see their connection end",
  async () => {
    using seen = collectExceptions();
    let made = 0;
    const lost: Promise<Error | null>[] = [];
    const server: Server = await createServer(() => {
      const p = new (class extends RecordingProtocol {
        override connectionMade(t: Transport): void {
          super.connectionMade(t);
          made++;
          server.close();
          t.close();
        }
      })();
      lost.push(p.lost);
      return p;
    }, { hostname: "127.0.0.1", port: 0, startServing: false });
    const port = (server.addrs[0] as Deno.NetAddr).port;
    const clients: Deno.Conn[] = [];
    try {
      // Five clients wait in the backlog before accepting starts.
      for (let i = 0; i < 5; i++) {
        clients.push(await Deno.connect({ hostname: "127.0.0.1", port }));
      }
      server.startServing();
      await withTimeout(server.waitClosed(), 5000, "the server to close");
      await withTimeout(Promise.all(lost), 5000, "connectionLost");
      assert.equal(made, 1, "one connection served before the close");
      // Every client's connection ends (EOF or reset), none hangs.
      for (const c of clients) {
        const end = await withTimeout(
          c.read(new Uint8Array(8)).catch((e) => e),
          5000,
          "the client's end",
        );
        assert.ok(
          end === null || end instanceof Deno.errors.ConnectionReset,
          `got ${end}`,
        );
      }
      assert.deepEqual(seen.messages(), []);
    } finally {
      for (const c of clients) c.close();
      server.close();
    }
  },
);

nativeBackendTest(
  "loop.removeReader from inside its own callback: never called again, even while still readable",
  async () => {
    const loop = getEventLoop();
    const [x, y] = socketpair(AF_UNIX, SOCK_STREAM);
    try {
      let calls = 0;
      const first = oneShot();
      loop.addReader(x, () => {
        calls++;
        assert.equal(loop.removeReader(x), true);
        first.fire();
      });
      y.send(encode("still readable"));
      await withTimeout(first.promise, 5000, "the reader");
      // x stays readable (nothing read); a second dispatch would call again.
      // Run a writer on y for a few turns to give the loop every chance.
      let writerTurns = 0;
      const turns = oneShot();
      loop.addWriter(y, () => {
        if (++writerTurns === 20) {
          loop.removeWriter(y);
          turns.fire();
        }
      });
      await withTimeout(turns.promise, 5000, "20 writer turns");
      assert.equal(calls, 1);
      assert.equal(decode(x.recv(100)), "still readable");
    } finally {
      loop.removeReader(x);
      loop.removeWriter(y);
      x.close();
      y.close();
    }
  },
);

// ---- writes: views, mutation, many small buffers ----

nativeBackendTest(
  "write() of a view with a non-zero byteOffset sends the view's bytes, sent at once and queued alike",
  async () => {
    const { listener, peer, transport, protocol } = await rawPeer(() =>
      new RecordingProtocol()
    );
    try {
      const big = pattern(3 << 20, 7);
      // Small, sent at once by trySend.
      const small = big.subarray(1000, 1100);
      // Large, most of it queued (the peer does not read yet).
      const large = big.subarray(12345, 12345 + (2 << 20));
      transport.write(small);
      transport.write(large);
      transport.writeLines([big.subarray(5, 9), big.subarray(77, 80)]);
      const expected = concat([
        small,
        large,
        big.subarray(5, 9),
        big.subarray(77, 80),
      ]);
      const got = await withTimeout(
        readN(peer, expected.length),
        10000,
        "the peer's read",
      );
      assert.equal(got.length, expected.length);
      assert.ok(
        bytesEqual(got, expected),
        "the bytes are the views', not the buffer's start",
      );
    } finally {
      transport.close();
      await protocol.lost;
      peer.close();
      listener.close();
    }
  },
);

nativeBackendTest(
  "a buffer mutated right after write() returns (partial send, rest queued) does not change what is sent",
  async () => {
    const { listener, peer, transport, protocol } = await rawPeer(() =>
      new RecordingProtocol()
    );
    try {
      const size = 4 << 20;
      const data = pattern(size, 3);
      const original = data.slice();
      transport.write(data);
      data.fill(0xee); // the caller reuses its buffer at once
      const second = pattern(100000, 9);
      const secondOriginal = second.slice();
      transport.write(second); // queued behind the first
      second.fill(0x11);
      const got = await withTimeout(
        readN(peer, size + 100000),
        15000,
        "the peer's read",
      );
      assert.ok(
        bytesEqual(got.subarray(0, size), original),
        "first buffer intact",
      );
      assert.ok(
        bytesEqual(got.subarray(size), secondOriginal),
        "second buffer intact",
      );
    } finally {
      transport.close();
      await protocol.lost;
      peer.close();
      listener.close();
    }
  },
);

nativeBackendTest(
  "writeLines of 20000 small buffers to a peer that reads slowly: every byte in order, flow control balanced",
  async () => {
    const { listener, peer, transport, protocol } = await rawPeer(() =>
      new RecordingProtocol()
    );
    try {
      const chunks: Uint8Array[] = [];
      for (let i = 0; i < 20000; i++) {
        const c = new Uint8Array(37 + (i % 50));
        c.fill(i & 0xff);
        c[0] = (i >> 8) & 0xff;
        chunks.push(c);
      }
      const expected = concat(chunks);
      transport.writeLines(chunks);
      transport.writeLines(chunks.slice(0, 10).map((c) => c.subarray(1)));
      const tail = concat(chunks.slice(0, 10).map((c) => c.subarray(1)));
      // Mutate every chunk after the call: the transport must own its copy.
      for (const c of chunks) c.fill(0);
      // Read slowly: small reads, a turn between them.
      const total = expected.length + tail.length;
      const out = new Uint8Array(total);
      let got = 0;
      const deadline = performance.now() + 20000;
      while (got < total && performance.now() < deadline) {
        const n = await peer.read(
          out.subarray(got, Math.min(total, got + 1500)),
        );
        if (n === null) break;
        got += n;
      }
      assert.equal(got, total);
      assert.ok(
        bytesEqual(out.subarray(0, expected.length), expected),
        "in order, intact",
      );
      assert.ok(bytesEqual(out.subarray(expected.length), tail));
      await until(
        () => transport.getWriteBufferSize() === 0,
        "the buffer to drain",
      );
      // Flow control, if it paused (the kernel may take it all), resumed.
      const pauses = protocol.events.filter((e) => e === "pauseWriting").length;
      const resumes = protocol.events.filter((e) =>
        e === "resumeWriting"
      ).length;
      assert.equal(pauses, resumes);
    } finally {
      transport.close();
      await protocol.lost;
      peer.close();
      listener.close();
    }
  },
);

// ---- Unix socket names ----

nativeBackendTest(
  "Unix: an abstract name serves, both ends report it, and no file appears",
  async () => {
    const name = `\0aionet-robust-${Deno.pid}-${
      Math.random().toString(36).slice(2)
    }`;
    const sides: RecordingProtocol[] = [];
    const server = await createUnixServer(() => {
      const p = new RecordingProtocol();
      sides.push(p);
      return p;
    }, { path: name });
    try {
      assert.equal((server.addrs[0] as Deno.UnixAddr).path, name);
      const [t, p] = await createUnixConnection(() => new RecordingProtocol(), {
        path: name,
      });
      await until(
        () => sides.length === 1 && sides[0].transport !== null,
        "accept",
      );
      t.write(encode("abstract"));
      await withTimeout(sides[0].waitForBytes(8), 5000, "data");
      assert.equal(sides[0].text(), "abstract");
      assert.equal((t.getExtraInfo("peername") as Deno.UnixAddr).path, name);
      assert.equal(
        (sides[0].transport!.getExtraInfo("sockname") as Deno.UnixAddr).path,
        name,
      );
      t.close();
      await p.lost;
      await sides[0].lost;
    } finally {
      server.close();
      await server.waitClosed();
    }
  },
);

nativeBackendTest(
  "Unix: a path of exactly 107 bytes works and its file is removed on close; 108 bytes is a RangeError that opens nothing",
  async () => {
    const dir = await Deno.makeTempDir({ prefix: "aionet_un_" });
    try {
      const base = `${dir}/`;
      const path = base + "s".repeat(107 - base.length);
      assert.equal(new TextEncoder().encode(path).length, 107);
      const sides: RecordingProtocol[] = [];
      const server = await createUnixServer(() => {
        const p = new RecordingProtocol();
        sides.push(p);
        return p;
      }, { path });
      try {
        assert.equal((server.addrs[0] as Deno.UnixAddr).path, path);
        assert.ok(Deno.lstatSync(path).isSocket);
        const [t, p] = await createUnixConnection(
          () => new RecordingProtocol(),
          { path },
        );
        await until(
          () => sides.length === 1 && sides[0].transport !== null,
          "accept",
        );
        assert.equal(
          (sides[0].transport!.getExtraInfo("sockname") as Deno.UnixAddr).path,
          path,
        );
        assert.equal((t.getExtraInfo("peername") as Deno.UnixAddr).path, path);
        t.close();
        await p.lost;
        await sides[0].lost;
      } finally {
        server.close();
        await server.waitClosed();
      }
      assert.throws(
        () => Deno.lstatSync(path),
        Deno.errors.NotFound,
        "socket file removed",
      );
      const over = path + "x";
      await assert.rejects(
        createUnixServer(() => new Protocol(), { path: over }),
        RangeError,
      );
      await assert.rejects(
        createUnixConnection(() => new Protocol(), { path: over }),
        RangeError,
      );
      assert.throws(
        () => Deno.lstatSync(over),
        Deno.errors.NotFound,
        "nothing created",
      );
      // A multi-byte name: 107 bytes but fewer characters.
      const wide = base + "é".repeat(Math.floor((107 - base.length) / 2));
      const wideOk = wide +
        "s".repeat(107 - new TextEncoder().encode(wide).length);
      assert.equal(new TextEncoder().encode(wideOk).length, 107);
      const s2 = await createUnixServer(() => new Protocol(), { path: wideOk });
      assert.equal((s2.addrs[0] as Deno.UnixAddr).path, wideOk);
      s2.close();
      await s2.waitClosed();
      assert.throws(() => Deno.lstatSync(wideOk), Deno.errors.NotFound);
      // 108 bytes with multi-byte characters. (Replacing the last character
      // by "é" made 108 only when it was an ASCII one: it depended on the
      // temporary directory's name, a flaky test.)
      const wideOver = wide +
        "s".repeat(108 - new TextEncoder().encode(wide).length);
      assert.equal(new TextEncoder().encode(wideOver).length, 108);
      await assert.rejects(
        createUnixServer(() => new Protocol(), { path: wideOver }),
        RangeError,
      );
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
);

// ---- descriptor exhaustion ----

/** The server child of the EMFILE tests: echoes; reports; exits on stdin EOF. */
function emfileChild(warmSignals: boolean): string {
  return `
import { createServer } from "${moduleUrl("transports.ts")}";
import { Protocol } from "${moduleUrl("protocols.ts")}";
import { getEventLoop } from "${moduleUrl("events.ts")}";
import { activeBackend } from "${moduleUrl("native.ts")}";
${
    warmSignals
      ? `const warm = () => {}; Deno.addSignalListener("SIGUSR2", warm); Deno.removeSignalListener("SIGUSR2", warm);`
      : ""
  }
let errors = 0;
getEventLoop().setExceptionHandler(() => { errors++; });
const fds = () => { const m = new Map(); for (const e of Deno.readDirSync("/proc/self/fd")) { try { m.set(e.name, Deno.readLinkSync("/proc/self/fd/" + e.name)); } catch { /* its own */ } } return m; };
class Echo extends Protocol {
  t = null;
  connectionMade(t) { this.t = t; }
  dataReceived(d) { this.t.write(d); }
}
const server = await createServer(() => new Echo(), { hostname: "127.0.0.1", port: 0, backlog: 256 });
const before = fds();
const port = server.addrs[0].port;
await Deno.stdout.write(new TextEncoder().encode("port " + port + " " + activeBackend() + "\\n"));
const buf = new Uint8Array(16);
while ((await Deno.stdin.read(buf)) !== null) { /* until EOF */ }
server.close();
server.closeClients();
await server.waitClosed();
const after = fds();
const extra = [...after].filter(([k, v]) => before.get(k) !== v).map(([k, v]) => k + "->" + v);
await Deno.stdout.write(new TextEncoder().encode("done errors=" + errors + " extra=" + JSON.stringify(extra) + "\\n"));
`;
}

/**
 * Drives an EMFILE child: 100 clients against a server holding < 64
 * descriptors. Returns what it saw.
 */
async function driveEmfile(warmSignals: boolean) {
  const CLIENTS = 100;
  const served = new Set<number>();
  const portSeen = Promise.withResolvers<number>();
  let cpuTicks = -1;
  let servedFirst = 0;
  let servedAll = false;
  let driveError: unknown = null;
  const drive = async (child: Deno.ChildProcess) => {
    const conns: Deno.Conn[] = [];
    const freed = new Set<number>();
    const reads: Promise<void>[] = [];
    try {
      const port = await Promise.race([
        portSeen.promise,
        child.status.then(() => {
          throw new Error("the child ended before listening");
        }),
      ]);
      for (let i = 0; i < CLIENTS; i++) {
        conns.push(await Deno.connect({ hostname: "127.0.0.1", port }));
      }
      conns.forEach((c, i) =>
        reads.push(
          c.write(new Uint8Array([i])).then(() => c.read(new Uint8Array(4)))
            .then((n) => {
              if (n === 1) served.add(i);
            }, () => {}),
        )
      );
      // The server takes what it can hold, then hits EMFILE.
      await until(() => served.size > 0, "the first echoes", 10000);
      const ticks = () => {
        const fields = Deno.readTextFileSync(`/proc/${child.pid}/stat`)
          .split(") ")[1].split(" ");
        return Number(fields[11]) + Number(fields[12]);
      };
      const c0 = ticks();
      // Saturated for a second: it must not spin a core.
      await new Promise((resolve) => setTimeout(resolve, 1000));
      cpuTicks = ticks() - c0;
      servedFirst = served.size;
      // Free the served connections: the rest must be served, in rounds.
      const deadline = performance.now() + 20000;
      while (served.size < CLIENTS && performance.now() < deadline) {
        for (const i of served) {
          if (!freed.has(i)) {
            freed.add(i);
            conns[i].close();
          }
        }
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      servedAll = served.size === CLIENTS;
    } catch (error) {
      driveError = error;
    } finally {
      conns.forEach((c, i) => {
        if (!freed.has(i)) c.close();
      });
      await Promise.all(reads);
    }
  };
  const child = await runChild(emfileChild(warmSignals), {
    ulimit: 64,
    ms: 45000,
    onStdoutLine: (line) => {
      const m = line.match(/^port (\d+) (\w+)/);
      if (m) portSeen.resolve(Number(m[1]));
    },
    drive,
  });
  return { child, cpuTicks, servedFirst, servedAll, driveError };
}

nativeBackendTest(
  "EMFILE: a server out of descriptors (ulimit -n 64) does not spin, keeps serving as descriptors free up, and leaks nothing (Deno's signal setup warmed first)",
  async () => {
    const { child, cpuTicks, servedFirst, servedAll, driveError } =
      await driveEmfile(true);
    assert.ok(!child.timedOut, `the child hung:\n${child.stderr}`);
    assert.equal(driveError, null);
    assert.equal(child.code, 0, child.stderr);
    assert.ok(
      servedFirst > 0 && servedFirst < 100,
      `served ${servedFirst} at first`,
    );
    // 100 ticks = one core for a second; an accept loop spinning on EMFILE
    // would use most of it.
    assert.ok(
      cpuTicks >= 0 && cpuTicks <= 25,
      `child used ${cpuTicks} ticks in 1 s while saturated`,
    );
    assert.ok(servedAll, "every client served once descriptors were freed");
    const m = child.stdout.match(/done errors=(\d+) extra=(.*)/);
    assert.ok(m, child.stdout);
    assert.ok(Number(m[1]) > 0, "accept errors reached the exception handler");
    assert.deepEqual(
      JSON.parse(m[2]),
      [],
      "no descriptor left open in the child",
    );
  },
);

// What should happen: a server that runs out of descriptors keeps running
// (asyncio logs the accept error, pauses accepting, retries).
// What happens: ~100 ms after the first EMFILE the child dies with a Deno
// panic "ext/signals/lib.rs:58: ... Too many open files": strace shows
// Deno lazily opening the CA bundle and a socketpair for its signal driver
// right then. It is Deno's own: a plain-Deno child (Deno.listen, accept,
// retry after 100 ms on error, no aionet at all) under `ulimit -n 64` with
// 100 clients panics the same way, and survives once Deno's signal driver
// was set up first (add and remove a signal listener at start, as the test
// above does). RELIABILITY.md, finding 25 (open upstream). Ignored: it
// fails until Deno sets its signal driver up without panicking; run it by
// name to see whether a new Deno does.
Deno.test({
  name:
    "Deno bug (ignored until Deno fixes it): a server out of descriptors (ulimit -n 64) without Deno's signal driver set up first dies in a Deno panic",
  ignore: true,
  fn: async () => {
    const { child } = await driveEmfile(false);
    assert.ok(!child.timedOut, `the child hung:\n${child.stderr}`);
    assert.ok(
      !child.stderr.includes("panicked"),
      `the child panicked:\n${child.stderr.slice(0, 600)}`,
    );
    assert.equal(child.code, 0, child.stderr);
  },
});

// ---- process exit ----

nativeBackendTest(
  "process exit: a program that used servers, connections, readers, selectors, datagrams and closed them exits by itself",
  async () => {
    const script = `
import { createServer, createConnection, createDatagramEndpoint } from "${
      moduleUrl("transports.ts")
    }";
import { Protocol, DatagramProtocol } from "${moduleUrl("protocols.ts")}";
import { getEventLoop } from "${moduleUrl("events.ts")}";
import { socketpair, AF_UNIX, SOCK_STREAM } from "${moduleUrl("sockets.ts")}";
import { DefaultSelector, EVENT_READ } from "${moduleUrl("selectors.ts")}";
import { activeBackend } from "${moduleUrl("native.ts")}";
const loop = getEventLoop();
class Echo extends Protocol { t = null; connectionMade(t) { this.t = t; } dataReceived(d) { this.t.write(d); } }
const server = await createServer(() => new Echo(), { hostname: "127.0.0.1", port: 0 });
const got = Promise.withResolvers();
class C extends Protocol { dataReceived() { got.resolve(); } }
const [t] = await createConnection(() => new C(), { hostname: "127.0.0.1", port: server.addrs[0].port });
t.write(new Uint8Array([1]));
await got.promise;
t.pauseReading();
t.close();
server.close();
server.closeClients();
await server.waitClosed();
const [x, y] = socketpair(AF_UNIX, SOCK_STREAM);
const fired = Promise.withResolvers();
loop.addReader(x, () => { loop.removeReader(x); fired.resolve(); });
y.send(new Uint8Array([2]));
await fired.promise;
const sel = new DefaultSelector();
sel.register(x, EVENT_READ);
await sel.select(0);
sel.close();
x.close(); y.close();
const [dt] = await createDatagramEndpoint(() => new DatagramProtocol(), { localAddr: { hostname: "127.0.0.1", port: 0 } });
dt.close();
// A connect that is refused, and one aborted mid-way.
await createConnection(() => new Protocol(), { hostname: "127.0.0.1", port: 1 }).catch(() => {});
console.log("closed " + activeBackend());
`;
    const r = await runChild(script, { ms: 15000 });
    assert.ok(
      !r.timedOut,
      `the child did not exit within 15 s:\n${r.stdout}\n${r.stderr}`,
    );
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /closed native/);
  },
);
