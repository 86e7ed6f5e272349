// Tests of the EventLoop of events.ts: scheduling, running and stopping,
// tasks, readers and writers, the loop.sock* functions, sendfile, signal
// handlers and the connection factories as methods.

import assert from "node:assert/strict";
import {
  CancelledError,
  EventLoop,
  type ExceptionContext,
  Future,
  getEventLoop,
  Handle,
  Task,
  TimerHandle,
} from "../events.ts";
import {
  AF_INET,
  SO_SNDBUF,
  SOCK_DGRAM,
  type Socket,
  socket,
  socketpair,
  SOL_SOCKET,
} from "../sockets.ts";
import {
  DatagramProtocol,
  Protocol,
  SubprocessProtocol,
} from "../protocols.ts";
import type { Transport } from "../transports.ts";
import {
  concat,
  decode,
  encode,
  pattern,
  readAll,
  RecordingProtocol,
  withTimeout,
} from "./_helpers.ts";

const LOCAL = "127.0.0.1";

/** A fresh loop that collects what reaches its exception handler. */
function newLoop(): [EventLoop, ExceptionContext[]] {
  const loop = new EventLoop();
  const errors: ExceptionContext[] = [];
  loop.setExceptionHandler((_loop, context) => errors.push(context));
  return [loop, errors];
}

async function tcpPair(loop: EventLoop): Promise<[Socket, Socket, Socket]> {
  const server = socket();
  server.bind({ hostname: LOCAL, port: 0 });
  server.listen();
  const client = socket();
  await withTimeout(
    loop.sockConnect(client, server.getSockName() as Deno.NetAddr),
  );
  const [conn] = await withTimeout(loop.sockAccept(server));
  return [client, conn, server];
}

Deno.test("callSoon runs callbacks in order with their arguments; cancel prevents", async () => {
  const [loop] = newLoop();
  const seen: string[] = [];
  const done = loop.createFuture<void>();
  loop.callSoon((a: string, b: number) => seen.push(`${a}${b}`), "x", 1);
  const cancelled = loop.callSoon(() => seen.push("cancelled"));
  loop.callSoon(() => seen.push("y"));
  loop.callSoon(() => done.setResult());
  assert.ok(cancelled instanceof Handle);
  cancelled.cancel();
  assert.equal(cancelled.cancelled(), true);
  await withTimeout(done);
  assert.deepEqual(seen, ["x1", "y"]);
  assert.throws(() => loop.callSoon("nope" as never), TypeError);
  loop.close();
});

Deno.test("timers run in time order, FIFO on ties, and cancel", async () => {
  const [loop] = newLoop();
  const order: string[] = [];
  const done = loop.createFuture<void>();
  loop.callLater(30, () => order.push("30"));
  loop.callLater(10, () => order.push("10a"));
  const cancelled = loop.callLater(15, () => order.push("15"));
  loop.callLater(10, () => order.push("10b"));
  loop.callAt(loop.time() + 20, () => order.push("20"));
  loop.callLater(-5, () => order.push("past"));
  loop.callLater(40, () => done.setResult());
  assert.ok(cancelled instanceof TimerHandle);
  cancelled.cancel();
  cancelled.cancel();
  const start = loop.time();
  await withTimeout(done);
  assert.deepEqual(order, ["past", "10a", "10b", "20", "30"]);
  assert.ok(loop.time() - start >= 39);
  assert.throws(() => loop.callLater("1" as never, () => {}), TypeError);
  assert.throws(() => loop.callAt(NaN, () => {}), TypeError);
  loop.close();
});

Deno.test("a timer never runs before its time", async () => {
  const [loop] = newLoop();
  const done = loop.createFuture<number>();
  const timer = loop.callLater(25, () => done.setResult(loop.time()));
  const ranAt = await withTimeout(done);
  assert.ok(ranAt >= timer.when(), `ran ${timer.when() - ranAt} ms early`);
  loop.close();
});

Deno.test("cancelling every timer leaves no timer behind", () => {
  const [loop] = newLoop();
  const handles = [50, 10, 30].map((ms) => loop.callLater(ms, () => {}));
  for (const h of handles) h.cancel();
  // The op sanitizer fails this test if a setTimeout is still pending.
  loop.close();
});

Deno.test("runUntilComplete returns the result, rejects with the error", async () => {
  const [loop] = newLoop();
  assert.equal(loop.isRunning(), false);
  const value = await loop.runUntilComplete((async () => {
    // A JS coroutine starts at once: the loop runs from its first await.
    await null;
    assert.equal(loop.isRunning(), true);
    return 42;
  })());
  assert.equal(value, 42);
  assert.equal(loop.isRunning(), false);
  const future = loop.createFuture<string>();
  loop.callLater(5, () => future.setResult("future"));
  assert.equal(await loop.runUntilComplete(future), "future");
  await assert.rejects(
    loop.runUntilComplete(Promise.reject(new RangeError("boom"))),
    RangeError,
  );
  await assert.rejects(loop.runUntilComplete(42 as never), TypeError);
  // Nested: the loop is already running.
  await loop.runUntilComplete((async () => {
    await null;
    await assert.rejects(
      loop.runUntilComplete(Promise.resolve(1)),
      Deno.errors.Busy,
    );
    await assert.rejects(loop.runForever(), Deno.errors.Busy);
    assert.throws(() => loop.close(), Deno.errors.Busy);
  })());
  loop.close();
});

Deno.test("stop() ends runForever, and runUntilComplete early", async () => {
  const [loop] = newLoop();
  loop.callLater(5, () => loop.stop());
  await withTimeout(loop.runForever());
  assert.equal(loop.isRunning(), false);
  // stop() before runForever: it returns after one turn.
  loop.stop();
  const ran: string[] = [];
  loop.callSoon(() => ran.push("soon"));
  await withTimeout(loop.runForever());
  assert.deepEqual(ran, ["soon"]);
  // stop() during runUntilComplete of a future that never completes.
  const never = loop.createFuture<void>();
  loop.callLater(5, () => loop.stop());
  await assert.rejects(
    withTimeout(loop.runUntilComplete(never)),
    /stopped before Future completed/,
  );
  loop.close();
});

Deno.test("close() cancels timers, then scheduling throws BadResource", async () => {
  const [loop] = newLoop();
  let ran = false;
  loop.callLater(10, () => ran = true);
  loop.close();
  loop.close();
  assert.equal(loop.isClosed(), true);
  assert.throws(() => loop.callSoon(() => {}), Deno.errors.BadResource);
  assert.throws(() => loop.callLater(1, () => {}), Deno.errors.BadResource);
  await assert.rejects(loop.runForever(), Deno.errors.BadResource);
  await assert.rejects(
    loop.runUntilComplete(Promise.resolve()),
    Deno.errors.BadResource,
  );
  // A negative check, on an event: a timer of another loop due after the
  // cancelled one has fired, so the cancelled one would have run by now.
  const [later] = newLoop();
  const past = later.createFuture<void>();
  later.callLater(20, () => past.setResult());
  await withTimeout(past);
  later.close();
  assert.equal(ran, false);
  // getEventLoop() makes a new loop once the default one is closed.
  const first = getEventLoop();
  assert.equal(getEventLoop(), first);
  {
    using disposable = new EventLoop();
    assert.equal(disposable.isClosed(), false);
  }
});

Deno.test("createTask returns an awaitable Task; unretrieved errors are reported", async () => {
  const [loop, errors] = newLoop();
  const task = loop.createTask(Promise.resolve("done"));
  assert.ok(task instanceof Task);
  assert.ok(task instanceof Future);
  assert.equal(await task, "done");
  assert.equal(task.result(), "done");
  assert.match(task.getName(), /^Task-\d+$/);
  // Awaited failure: not reported.
  const awaited = loop.createTask(Promise.reject(new Error("seen")));
  await assert.rejects(awaited, /seen/);
  // Unretrieved failure: reported to the exception handler.
  const reported = loop.createFuture<void>();
  loop.setExceptionHandler((_l, context) => {
    errors.push(context);
    reported.setResult();
  });
  loop.createTask(Promise.reject(new Error("lost")), { name: "lonely" });
  await withTimeout(reported);
  assert.equal(errors.length, 1);
  assert.equal(errors[0].message, "Task exception was never retrieved");
  assert.equal((errors[0].exception as Error).message, "lost");
  assert.equal((errors[0].task as Task).getName(), "lonely");
  // cancel() finishes the task with CancelledError.
  const inner = new Promise<void>((r) => setTimeout(r, 10));
  const slow = loop.createTask(inner);
  slow.cancel();
  await assert.rejects(slow, CancelledError);
  assert.equal(await slow.catch(() => "caught"), "caught");
  assert.throws(() => loop.createTask(42 as never), TypeError);
  await inner; // the promise itself goes on: JavaScript cannot cancel it
  loop.close();
});

Deno.test("addReader fires while readable (level-triggered) until removed", async () => {
  const [loop, errors] = newLoop();
  const [a, b] = socketpair();
  let calls = 0;
  const twice = loop.createFuture<void>();
  loop.addReader(b, (tag: string) => {
    assert.equal(tag, "tag");
    calls++;
    // Not consuming: the reader must fire again.
    if (calls === 3) twice.setResult();
  }, "tag");
  await loop.sockSendAll(a, encode("data"));
  await withTimeout(twice);
  assert.equal(loop.removeReader(b), true);
  assert.equal(loop.removeReader(b), false);
  const after = calls;
  // A negative check, on an event: the socket stays readable, so a reader
  // still registered would fire on every turn; a writer on the other end
  // (always writable) firing five times proves five turns went by.
  let turns = 0;
  const fiveTurns = loop.createFuture<void>();
  loop.addWriter(a, () => {
    if (++turns === 5) fiveTurns.setResult();
  });
  await withTimeout(fiveTurns);
  loop.removeWriter(a);
  assert.equal(calls, after, "no call after removeReader");
  assert.equal(decode(b.recv(100)), "data");
  assert.equal(errors.length, 0);
  a.close();
  b.close();
  loop.close();
});

Deno.test("addWriter fires for a writable socket; reader errors go to the handler", async () => {
  const [loop, errors] = newLoop();
  const [client, conn, server] = await tcpPair(loop);
  const wrote = loop.createFuture<void>();
  loop.addWriter(client, () => {
    client.send(encode("from writer"));
    loop.removeWriter(client);
    wrote.setResult();
  });
  await withTimeout(wrote);
  const failed = loop.createFuture<void>();
  loop.setExceptionHandler((_l, context) => {
    errors.push(context);
    if (!failed.done()) failed.setResult();
  });
  loop.addReader(conn, () => {
    loop.removeReader(conn);
    throw new Error("reader failed");
  });
  await withTimeout(failed);
  assert.equal(errors[0].message, "Exception in callback");
  assert.equal((errors[0].exception as Error).message, "reader failed");
  assert.equal(decode(conn.recv(100)), "from writer");
  assert.throws(() => loop.addReader({} as Socket, () => {}), TypeError);
  assert.throws(() => loop.addWriter(conn, null as never), TypeError);
  assert.equal(loop.removeWriter(conn), false);
  client.close();
  conn.close();
  server.close();
  loop.close();
});

Deno.test("a reader echoes with a writer, as the poetry loop examples do", async () => {
  const [loop] = newLoop();
  const [a, b] = socketpair();
  const pending: Uint8Array[] = [];
  const finished = loop.createFuture<void>();
  loop.addReader(b, () => {
    const data = b.recv(1024);
    if (data.length === 0) {
      loop.removeReader(b);
      finished.setResult();
      return;
    }
    pending.push(data);
    loop.addWriter(b, () => {
      while (pending.length > 0) b.send(pending.shift()!);
      loop.removeWriter(b);
    });
  });
  await loop.sockSendAll(a, encode("ping"));
  assert.equal(decode(await withTimeout(loop.sockRecv(a, 100))), "ping");
  a.shutdown(1);
  await withTimeout(finished);
  a.close();
  b.close();
  loop.close();
});

Deno.test("sock* functions: client and server over TCP", async () => {
  const loop = getEventLoop();
  const [client, conn, server] = await tcpPair(loop);
  await loop.sockSendAll(client, encode("hello server"));
  assert.equal(
    decode(await withTimeout(loop.sockRecv(conn, 1024))),
    "hello server",
  );
  await loop.sockSendAll(conn, encode("hello client"));
  const buffer = new Uint8Array(64);
  const n = await withTimeout(loop.sockRecvInto(client, buffer));
  assert.equal(decode(buffer.subarray(0, n)), "hello client");
  await loop.sockSendAll(client, encode("with address"));
  const [data, addr] = await withTimeout(loop.sockRecvFrom(conn, 100));
  assert.equal(decode(data), "with address");
  assert.equal(
    (addr as Deno.NetAddr).port,
    (client.getSockName() as Deno.NetAddr).port,
  );
  await loop.sockSendAll(client, encode("into"));
  const [m] = await withTimeout(loop.sockRecvFromInto(conn, buffer, 2));
  assert.equal(m, 2);
  assert.equal(decode(buffer.subarray(0, 2)), "in");
  assert.equal(decode(await withTimeout(loop.sockRecv(conn, 100))), "to");
  // A big transfer through a small send buffer.
  client.setsockopt(SOL_SOCKET, SO_SNDBUF, 1500);
  const big = pattern(300_000, 5);
  const sending = loop.sockSendAll(client, big);
  const got: number[] = [];
  while (got.length < big.length) {
    got.push(...await withTimeout(loop.sockRecv(conn, 65536)));
  }
  await sending;
  assert.deepEqual(Uint8Array.from(got), big);
  client.close();
  assert.equal((await withTimeout(loop.sockRecv(conn, 10))).length, 0);
  conn.close();
  server.close();
});

Deno.test("sock* functions reject bad input and honour AbortSignal", async () => {
  const loop = getEventLoop();
  const [a, b] = socketpair();
  await assert.rejects(loop.sockRecv({} as Socket, 1), TypeError);
  await assert.rejects(loop.sockRecv(b, -1), RangeError);
  await assert.rejects(loop.sockSendAll(a, "text" as never), TypeError);
  const controller = new AbortController();
  const waiting = loop.sockRecv(b, 10, { signal: controller.signal });
  controller.abort(new Error("gave up"));
  await assert.rejects(waiting, /gave up/);
  // An already-aborted signal rejects at once, even with data buffered.
  await loop.sockSendAll(a, encode("kept"));
  await assert.rejects(
    loop.sockRecv(b, 10, { signal: AbortSignal.abort(new Error("early")) }),
    /early/,
  );
  assert.equal(decode(await withTimeout(loop.sockRecv(b, 10))), "kept");
  // Closing a socket wakes its waiters with BadResource.
  const pending = loop.sockRecv(b, 10);
  b.close();
  await assert.rejects(pending, Deno.errors.BadResource);
  a.close();
});

Deno.test("sockConnect rejects with ConnectionRefused", async () => {
  const loop = getEventLoop();
  const listener = Deno.listen({ hostname: LOCAL, port: 0 });
  const { port } = listener.addr;
  listener.close();
  using s = socket();
  await assert.rejects(
    loop.sockConnect(s, { hostname: LOCAL, port }),
    Deno.errors.ConnectionRefused,
  );
});

Deno.test("sockSendTo and sockRecvFrom over UDP", async () => {
  const loop = getEventLoop();
  using a = socket(AF_INET, SOCK_DGRAM);
  using b = socket(AF_INET, SOCK_DGRAM);
  b.bind({ hostname: LOCAL, port: 0 });
  const target = b.getSockName() as Deno.NetAddr;
  assert.equal(await loop.sockSendTo(a, encode("udp"), target), 3);
  const [data, from] = await withTimeout(loop.sockRecvFrom(b, 100));
  assert.equal(decode(data), "udp");
  await loop.sockSendTo(b, encode("back"), from as Deno.NetAddr);
  const buffer = new Uint8Array(10);
  const [n] = await withTimeout(loop.sockRecvFromInto(a, buffer));
  assert.equal(decode(buffer.subarray(0, n)), "back");
});

Deno.test("sockSendfile sends a file range and moves its position", async () => {
  const loop = getEventLoop();
  const path = await Deno.makeTempFile();
  const content = pattern(200_000, 9);
  await Deno.writeFile(path, content);
  using file = await Deno.open(path, { read: true });
  const [a, b] = socketpair();
  const receiving = (async () => {
    const got: number[] = [];
    for (;;) {
      const chunk = await loop.sockRecv(b, 65536);
      if (chunk.length === 0) return Uint8Array.from(got);
      got.push(...chunk);
    }
  })();
  assert.equal(await loop.sockSendfile(a, file, 1000, 150_000), 150_000);
  assert.equal(await file.seek(0, Deno.SeekMode.Current), 151_000);
  assert.equal(await loop.sockSendfile(a, file, 199_990), 10);
  a.close();
  const got = await withTimeout(receiving);
  assert.deepEqual(got.subarray(0, 150_000), content.subarray(1000, 151_000));
  assert.deepEqual(got.subarray(150_000), content.subarray(199_990));
  await assert.rejects(loop.sockSendfile(b, file, -1), RangeError);
  await assert.rejects(loop.sockSendfile(b, file, 0, 0), RangeError);
  await assert.rejects(loop.sockSendfile(b, {} as Deno.FsFile), TypeError);
  using udp = socket(AF_INET, SOCK_DGRAM);
  await assert.rejects(loop.sockSendfile(udp, file), TypeError);
  b.close();
  await Deno.remove(path);
});

Deno.test("sendfile over a transport with flow control, then the protocol is back", async () => {
  const loop = getEventLoop();
  const path = await Deno.makeTempFile();
  const content = pattern(1_000_000, 13);
  await Deno.writeFile(path, content);
  using file = await Deno.open(path, { read: true });
  const listener = Deno.listen({ hostname: LOCAL, port: 0 });
  const accepting = listener.accept();
  const protocol = new RecordingProtocol();
  const [transport] = await loop.createConnection(() => protocol, {
    hostname: LOCAL,
    port: listener.addr.port,
  });
  const peer = await accepting;
  const reading = readAll(peer);
  const sent = await withTimeout(loop.sendfile(transport, file, 0, null));
  assert.equal(sent, content.length);
  assert.equal(transport.getProtocol(), protocol);
  assert.equal(transport.isReading(), true);
  transport.write(encode("tail"));
  transport.close();
  const got = await withTimeout(reading);
  assert.equal(got.length, content.length + 4);
  assert.deepEqual(got.subarray(0, content.length), content);
  await withTimeout(protocol.lost);
  peer.close();
  listener.close();
  await Deno.remove(path);
});

Deno.test("a signal handler fires on SIGUSR1 and is removed cleanly", async () => {
  const [loop] = newLoop();
  const fired = loop.createFuture<string>();
  loop.addSignalHandler("SIGUSR1", (tag: string) => {
    if (!fired.done()) fired.setResult(tag);
  }, "usr1");
  Deno.kill(Deno.pid, "SIGUSR1");
  assert.equal(await withTimeout(fired), "usr1");
  assert.equal(loop.removeSignalHandler("SIGUSR1"), true);
  assert.equal(loop.removeSignalHandler("SIGUSR1"), false);
  // Python's signal numbers work too.
  loop.addSignalHandler(10, () => {});
  assert.equal(loop.removeSignalHandler("SIGUSR1"), true);
  assert.throws(
    () => loop.addSignalHandler("SIGKILL", () => {}),
    Deno.errors.NotSupported,
  );
  assert.throws(
    () => loop.addSignalHandler("SIGNOPE" as Deno.Signal, () => {}),
    RangeError,
  );
  assert.throws(() => loop.addSignalHandler(99, () => {}), RangeError);
  assert.throws(() => loop.addSignalHandler({} as never, () => {}), TypeError);
  assert.throws(
    () => loop.addSignalHandler("SIGUSR2", "x" as never),
    TypeError,
  );
  // close() removes remaining handlers.
  loop.addSignalHandler("SIGUSR2", () => {});
  loop.close();
  assert.equal(loop.removeSignalHandler("SIGUSR2"), false);
});

Deno.test("connection factories as loop methods", async () => {
  const loop = getEventLoop();
  class Echo extends Protocol {
    #t?: Transport;
    override connectionMade(t: Transport) {
      this.#t = t;
    }
    override dataReceived(data: Uint8Array) {
      this.#t!.write(data);
    }
  }
  await using server = await loop.createServer(() => new Echo(), {
    hostname: LOCAL,
    port: 0,
  });
  const { port } = server.addrs[0] as Deno.NetAddr;
  const protocol = new RecordingProtocol();
  const [transport] = await loop.createConnection(() => protocol, {
    hostname: LOCAL,
    port,
  });
  transport.write(encode("echo me"));
  assert.equal(decode(await protocol.waitForBytes(7)), "echo me");
  transport.close();
  await withTimeout(protocol.lost);
  // Subprocesses and pipes through the loop, as asyncio's loop methods.
  class Collect extends SubprocessProtocol {
    out = "";
    done = Promise.withResolvers<void>();
    override pipeDataReceived(fd: 1 | 2, data: Uint8Array) {
      if (fd === 1) this.out += decode(data);
    }
    override connectionLost() {
      this.done.resolve();
    }
  }
  const [child, collected] = await loop.subprocessExec(
    () => new Collect(),
    "echo",
    ["exec"],
  );
  await withTimeout(collected.done.promise);
  assert.equal(collected.out, "exec\n");
  assert.equal(child.getReturnCode(), 0);
  child.close();
  const [shell, shellOut] = await loop.subprocessShell(
    () => new Collect(),
    "echo shell; exit 3",
  );
  await withTimeout(shellOut.done.promise);
  assert.equal(shellOut.out, "shell\n");
  assert.equal(shell.getReturnCode(), 3);
  shell.close();
  const reading = new RecordingProtocol();
  await loop.connectReadPipe(
    () => reading,
    new Blob(["piped in"]).stream(),
  );
  assert.equal(decode(await reading.waitForBytes(8)), "piped in");
  await withTimeout(reading.lost);
  const written: Uint8Array[] = [];
  const writing = new RecordingProtocol();
  const [pipe] = await loop.connectWritePipe(
    () => writing,
    new WritableStream<Uint8Array>({
      write: (chunk) => void written.push(chunk),
    }),
  );
  pipe.write(encode("piped out"));
  pipe.close();
  await withTimeout(writing.lost);
  assert.equal(decode(concat(written)), "piped out");
  const infos = await loop.getAddrInfo("localhost", 80, { family: AF_INET });
  assert.equal(infos[0][4].hostname, LOCAL);
  assert.deepEqual(await loop.getNameInfo({ hostname: LOCAL, port: 80 }, 3), [
    LOCAL,
    "80",
  ]);
});

Deno.test("loop.createConnection and createServer take over aionet Sockets", async () => {
  const loop = getEventLoop();
  // A socketpair end, with bytes already received before the take-over.
  const [rsock, wsock] = socketpair();
  await loop.sockSendAll(wsock, encode("early "));
  const protocol = new RecordingProtocol();
  const [transport] = await loop.createConnection(() => protocol, {
    sock: rsock,
  });
  assert.equal(rsock.fileno(), -1);
  loop.callSoon(() => wsock.send(encode("late")));
  assert.equal(decode(await protocol.waitForBytes(10)), "early late");
  transport.write(encode("reply"));
  assert.equal(decode(await withTimeout(loop.sockRecv(wsock, 100))), "reply");
  wsock.close();
  await withTimeout(protocol.lost);

  // A listening socket, with a connection already in its backlog.
  const listener = socket();
  listener.bind({ hostname: LOCAL, port: 0 });
  listener.listen(5);
  const client = socket();
  await loop.sockConnect(client, listener.getSockName() as Deno.NetAddr);
  const served = loop.createFuture<RecordingProtocol>();
  const server = await loop.createServer(() => {
    const p = new RecordingProtocol();
    served.setResult(p);
    return p;
  }, { sock: listener });
  await loop.sockSendAll(client, encode("hi server"));
  const accepted = await withTimeout(served);
  assert.equal(decode(await accepted.waitForBytes(9)), "hi server");
  client.close();
  await withTimeout(accepted.lost);
  server.close();
  await server.waitClosed();

  const fresh = socket();
  await assert.rejects(
    loop.createConnection(() => new Protocol(), { sock: fresh }),
    Deno.errors.NotConnected,
  );
  fresh.close();
});

Deno.test("loop.createDatagramEndpoint takes over a datagram Socket", async () => {
  const loop = getEventLoop();
  const udp = socket(AF_INET, SOCK_DGRAM);
  udp.bind({ hostname: LOCAL, port: 0 });
  const address = udp.getSockName() as Deno.NetAddr;
  const received = loop.createFuture<string>();
  class Receiver extends DatagramProtocol {
    override datagramReceived(data: Uint8Array) {
      if (!received.done()) received.setResult(decode(data));
    }
  }
  const [transport] = await loop.createDatagramEndpoint(
    () => new Receiver(),
    { sock: udp },
  );
  using sender = socket(AF_INET, SOCK_DGRAM);
  sender.sendTo(encode("to the endpoint"), address);
  assert.equal(await withTimeout(received), "to the endpoint");
  transport.close();
  using stream = socket();
  await assert.rejects(
    loop.createDatagramEndpoint(() => new Protocol(), { sock: stream }),
    Deno.errors.NotConnected,
  );
});
