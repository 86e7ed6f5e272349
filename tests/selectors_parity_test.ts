// Parity of selectors.DefaultSelector and the loop's readers/writers with
// CPython (Lib/selectors.py EpollSelector, Lib/asyncio/selector_events.py
// add_reader/remove_reader/add_writer/remove_writer), on whichever backend
// the run uses.
//
// Tests named "parity: ..." pin a difference from CPython found in an
// audit; each says what CPython does (checked with CPython 3 scripts) and
// what aionet did: each failed before its fix (RELIABILITY.md, finding 34).
// The other tests pin behaviour that already matches.
// On the native backend every test runs with the descriptor-leak and
// idle-poller checks of _native_fd_check.ts.
//
// Run: deno test -A --sanitize-ops --sanitize-resources tests/selectors_parity_test.ts
//      (and with AIONET_BACKEND=native in front)

import assert from "node:assert/strict";
import { DefaultSelector, EVENT_READ, EVENT_WRITE } from "../selectors.ts";
import {
  SHUT_RD,
  SHUT_WR,
  SO_ERROR,
  type Socket,
  socket,
  socketpair,
  SOL_SOCKET,
} from "../sockets.ts";
import { getEventLoop, Handle } from "../events.ts";
import {
  encode,
  leakCheckedTest as parityTest,
  nativeBackendTest,
  newLoop,
  timerPassed,
  withTimeout,
} from "./_helpers.ts";

const LOCAL = "127.0.0.1";
const BOTH = EVENT_READ | EVENT_WRITE;

/** A listening TCP socket on 127.0.0.1 and its port. */
function listening(): [Socket, number] {
  const server = socket();
  server.bind({ hostname: LOCAL, port: 0 });
  server.listen();
  return [server, (server.getSockName() as Deno.NetAddr).port];
}

/** A connected TCP pair: [client, accepted, listener]. */
async function tcpPair(): Promise<[Socket, Socket, Socket]> {
  const loop = getEventLoop();
  const [server, port] = listening();
  const client = socket();
  await withTimeout(loop.sockConnect(client, { hostname: LOCAL, port }));
  const [conn] = await withTimeout(loop.sockAccept(server));
  return [client, conn, server];
}

/**
 * Waits (bounded) until the only registered socket is ready for `first`,
 * then returns what it is ready for among `EVENT_READ | EVENT_WRITE`.
 */
async function readyAfter(
  sel: DefaultSelector,
  sock: Socket,
  first: number,
): Promise<number> {
  sel.modify(sock, first);
  const ready = await withTimeout(sel.select(5000), 6000, "select");
  assert.equal(ready.length, 1, `ready for ${first}`);
  sel.modify(sock, BOTH);
  const both = await sel.select(0);
  assert.equal(both.length, 1);
  return both[0][1];
}

/** A port nobody listens on (bound, then released). */
function freePort(): number {
  const listener = Deno.listen({ hostname: LOCAL, port: 0 });
  const { port } = listener.addr;
  listener.close();
  return port;
}

// ---- parity: differences from CPython ----

// CPython: EpollSelector.select(timeout) hands the timeout to epoll.poll,
// which refuses one beyond INT_MAX milliseconds with OverflowError
// ("timeout is too large", Modules/selectmodule.c select_epoll_poll_impl;
// verified: sel.select(2**31 / 1000) raises); a smaller one really waits.
// Never does it return [] at once. aionet: select(2 ** 31) resolves [] after
// about 1 ms (Deno's setTimeout overflows to 1 ms and warns
// TimeoutOverflowWarning), though nothing was ready and the time has not
// passed; a socket made readable later is missed.
parityTest(
  "parity: select() with a timeout beyond 2**31-1 ms never returns [] early (CPython: OverflowError)",
  async () => {
    const loop = getEventLoop();
    const [a, b] = socketpair();
    using sel = new DefaultSelector();
    try {
      const key = sel.register(b, EVENT_READ, "b");
      const outcome = sel.select(2 ** 31).then(
        (ready) => ({ ready }),
        (error: unknown) => ({ error }),
      );
      // Time enough for an overflowed (1 ms) timer to have fired.
      await timerPassed(loop, 30);
      a.send(encode("x"));
      const result = await withTimeout(outcome, 5000, "select(2 ** 31)");
      if ("error" in result) {
        assert.ok(result.error instanceof RangeError, String(result.error));
      } else {
        assert.deepEqual(result.ready, [[key, EVENT_READ]]);
      }
    } finally {
      sel.close();
      a.close();
      b.close();
    }
  },
);

// CPython: loop.remove_reader(fd) / remove_writer(fd) look the number up in
// the selector (BaseSelectorEventLoop._remove_reader → selector.get_key(fd))
// and return True when a callback was registered for it, even if the
// socket behind it was closed meanwhile; verified: add_reader(fd, cb),
// sock.close(), remove_reader(fd) → True. aionet: the Deno backend returns
// false (the number no longer maps to a socket, _readiness.ts forgetFd)
// and keeps the watch; the native backend throws BadResource ("File
// descriptor N is not open") from readinessOfFd.
parityTest(
  "parity: removeReader(fd)/removeWriter(fd) after the fd's socket was closed return true",
  async () => {
    const [loop] = newLoop();
    const [a, b] = socketpair();
    const results: unknown[] = [];
    const attempt = (fn: () => boolean) => {
      try {
        results.push(fn());
      } catch (error) {
        results.push(error);
      }
    };
    try {
      const fd = a.fileno();
      loop.addReader(fd, () => {});
      loop.addWriter(fd, () => {});
      a.close();
      attempt(() => loop.removeReader(fd));
      attempt(() => loop.removeWriter(fd));
      attempt(() => loop.removeReader(fd));
      // The peer sees the close: every operation of the pair settled.
      const eof = await withTimeout(getEventLoop().sockRecv(b, 10));
      assert.equal(eof.length, 0);
    } finally {
      a.close();
      b.close();
      loop.close();
    }
    assert.deepEqual(results, [true, true, false]);
  },
);

// CPython: remove_reader/remove_writer of a number with no callback return
// False, whatever the number (selector.get_key(fd) → KeyError → False;
// verified: loop.remove_writer(12345) → False). aionet, native backend:
// BadResource "File descriptor 1000000 is not open" (_io.ts readinessFor →
// _native_socket.ts readinessOfFd). The Deno backend returns false.
parityTest(
  "parity: removeReader/removeWriter of a number never watched return false",
  () => {
    const [loop] = newLoop();
    try {
      assert.equal(loop.removeReader(1_000_000), false);
      assert.equal(loop.removeWriter(1_000_000), false);
    } finally {
      loop.close();
    }
  },
);

// A regular file's descriptor: CPython's epoll selector and add_reader
// refuse it (PermissionError, EPERM). The native backend accepts it and
// reports it always ready, as poll(2) does (README, "Differences from
// asyncio"; tests/native_socket_test.ts pins it).
// CPython: a fileobj is anything with a fileno() method
// (Lib/selectors.py _fileobj_to_fd; asyncio's add_reader too); verified: a
// small class whose fileno() returns a pipe's read end registers with
// key.fd == that descriptor. aionet (native backend, where any descriptor
// can be watched): TypeError "Invalid file object: ... is not an aionet
// Socket" (selectors.ts DefaultSelector#readinessOf, _loop_watches.ts add →
// _io.ts readinessFor never calls fileno()).
nativeBackendTest(
  "parity: an object with fileno() is watched by that descriptor (selector and addReader)",
  async () => {
    const { rawPipe, rawWrite, rawRead, closeRaw } = await import(
      "./_native_fd_check.ts"
    );
    const [readFd, writeFd] = rawPipe();
    const wrapper = { fileno: () => readFd };
    const [loop] = newLoop();
    const sel = new DefaultSelector();
    try {
      const key = sel.register(wrapper, EVENT_READ, "w");
      assert.equal(key.fd, readFd);
      assert.equal(key.fileobj, wrapper);
      rawWrite(writeFd, encode("x"));
      assert.deepEqual(await withTimeout(sel.select(5000)), [[
        key,
        EVENT_READ,
      ]]);
      sel.unregister(wrapper);
      const fired = loop.createFuture<void>();
      loop.addReader(wrapper as never, () => {
        loop.removeReader(wrapper as never);
        fired.setResult();
      });
      await withTimeout(fired);
      assert.deepEqual(rawRead(readFd), encode("x"));
    } finally {
      sel.close();
      loop.close();
      closeRaw(readFd, writeFd);
    }
  },
);

// ---- behaviour that matches CPython ----

// CPython (verified): a TCP socket whose peer closed reports READ|WRITE;
// a refused non-blocking connect reports READ|WRITE (EPOLLERR|EPOLLHUP map
// to both in EpollSelector.select).
parityTest(
  "select() reports READ|WRITE for a socket whose peer closed and for a refused connect",
  async () => {
    const [client, conn, server] = await tcpPair();
    using sel = new DefaultSelector();
    try {
      conn.close();
      sel.register(client, BOTH);
      assert.equal(await readyAfter(sel, client, EVENT_READ), BOTH);
      assert.equal(client.recv(10).length, 0, "EOF");
      sel.unregister(client);
    } finally {
      client.close();
      conn.close();
      server.close();
    }
    const refused = socket();
    try {
      assert.equal(
        refused.connectEx({ hostname: LOCAL, port: freePort() }),
        115,
      );
      sel.register(refused, BOTH);
      assert.equal(await readyAfter(sel, refused, EVENT_WRITE), BOTH);
      assert.equal(refused.getsockopt(SOL_SOCKET, SO_ERROR), 111);
      sel.unregister(refused);
    } finally {
      refused.close();
    }
  },
);

// CPython (verified): after its own shutdown(SHUT_WR) a connected socket is
// writable only (no EOF to read); after SHUT_RD as well it is readable too.
parityTest(
  "select() after shutdown(SHUT_WR) reports WRITE only, after SHUT_RD also READ",
  async () => {
    const [client, conn, server] = await tcpPair();
    using sel = new DefaultSelector();
    try {
      client.shutdown(SHUT_WR);
      sel.register(client, BOTH);
      assert.equal(await readyAfter(sel, client, EVENT_WRITE), EVENT_WRITE);
      client.shutdown(SHUT_RD);
      assert.equal(await readyAfter(sel, client, EVENT_READ), BOTH);
      sel.unregister(client);
    } finally {
      client.close();
      conn.close();
      server.close();
    }
  },
);

// CPython (verified): modify() by fd keeps the registered fileobj; modify()
// without data sets data to None; registering the number of a registered
// socket is a KeyError; select(None) waits until ready; results stay
// valid when a key is unregistered while iterating them.
parityTest(
  "modify by fd keeps the fileobj, data resets, select() without timeout waits, unregister while iterating",
  async () => {
    const [a, b] = socketpair();
    using sel = new DefaultSelector();
    try {
      const first = sel.register(b, EVENT_READ, "first");
      assert.throws(
        () => sel.register(b.fileno(), EVENT_WRITE),
        (e: Error) =>
          e.name === "KeyError" && /already registered/.test(e.message),
      );
      const second = sel.modify(b.fileno(), EVENT_READ);
      assert.notEqual(second, first);
      assert.equal(second.fileobj, b);
      assert.equal(second.data, undefined);
      sel.register(a, EVENT_READ, "a");
      const waiting = sel.select();
      a.send(encode("to b"));
      b.send(encode("to a"));
      const ready = await withTimeout(waiting, 6000, "select()");
      const seen: unknown[] = [];
      for (const [key, mask] of ready) {
        assert.equal(mask, EVENT_READ);
        // Unregistering every key, the current one included.
        for (const other of [a, b]) {
          if (sel.getMap().has(other.fileno())) sel.unregister(other);
        }
        seen.push(key.fileobj);
      }
      assert.ok(seen.length >= 1);
      assert.equal(sel.getMap().size, 0);
    } finally {
      a.close();
      b.close();
    }
  },
);

// asyncio (verified): a second add_reader replaces the first (its handle is
// cancelled, only the new callback runs, with the new args); a reader on
// a socket at EOF keeps firing (level-triggered); an exception reaches the
// exception handler with message, exception and the Handle.
parityTest(
  "addReader replaces the reader and its args; a reader at EOF keeps firing; errors carry the handle",
  async () => {
    const [loop, contexts] = newLoop();
    const [a, b] = socketpair();
    try {
      const calls: string[] = [];
      loop.addReader(b, (tag: string) => {
        calls.push(tag);
      }, "old");
      const replaced = loop.createFuture<void>();
      loop.addReader(
        b,
        (tag: string, n: number) => {
          calls.push(`${tag}${n}`);
          if (!replaced.done()) replaced.setResult();
        },
        "new",
        1,
      );
      a.send(encode("x"));
      await withTimeout(replaced);
      assert.ok(calls.length >= 1);
      assert.ok(calls.every((c) => c === "new1"), calls.join());
      assert.equal(loop.removeReader(b), true);
      assert.equal(b.recv(10).length, 1);
      a.close();
      let eofCalls = 0;
      const fiveTimes = loop.createFuture<void>();
      loop.addReader(b, () => {
        if (++eofCalls === 5) {
          loop.removeReader(b);
          fiveTimes.setResult();
        }
      });
      await withTimeout(fiveTimes, 5000, "five calls at EOF");
      assert.equal(b.recv(10).length, 0);
      const failed = loop.createFuture<void>();
      loop.setExceptionHandler((_l, context) => {
        contexts.push(context);
        if (!failed.done()) failed.setResult();
      });
      loop.addWriter(b, () => {
        loop.removeWriter(b);
        throw new Error("writer failed");
      });
      await withTimeout(failed);
      assert.equal(contexts.length, 1);
      assert.equal(contexts[0].message, "Exception in callback");
      assert.equal((contexts[0].exception as Error).message, "writer failed");
      assert.ok(contexts[0].handle instanceof Handle);
      assert.equal((contexts[0].handle as Handle).cancelled(), true);
    } finally {
      a.close();
      b.close();
      loop.close();
    }
  },
);

// CPython (verified with os.pipe): a pipe's read end whose writer closed
// (EPOLLHUP) and a write end whose reader closed (EPOLLOUT|EPOLLERR) both
// report READ|WRITE when registered for both (EpollSelector.select maps
// anything but EPOLLIN to WRITE and anything but EPOLLOUT to READ).
nativeBackendTest(
  "a pipe's hang-up and error report READ|WRITE, as EpollSelector (native backend)",
  async () => {
    const { rawPipe, closeRaw } = await import("./_native_fd_check.ts");
    const [r1, w1] = rawPipe();
    const [r2, w2] = rawPipe();
    const sel = new DefaultSelector();
    try {
      const hup = sel.register(r1, BOTH, "hup");
      const err = sel.register(w2, BOTH, "err");
      assert.deepEqual(await sel.select(0), [[err, EVENT_WRITE]]);
      closeRaw(w1, r2);
      assert.deepEqual(await sel.select(0), [[hup, BOTH], [err, BOTH]]);
      sel.unregister(r1);
      sel.unregister(w2);
    } finally {
      sel.close();
      closeRaw(r1, w2);
    }
  },
);
