// Subprocess transports and pipes: Process (streams), the protocol API with
// its callback order, stdin flow control and broken pipes, and pipe
// transports over files. Every child is awaited; no sleeps.

import assert from "node:assert/strict";
import { BaseProtocol, Protocol, SubprocessProtocol } from "../protocols.ts";
import type { SubprocessTransport, WriteTransport } from "../transports.ts";
import {
  connectReadPipe,
  connectWritePipe,
  createSubprocessExec,
  createSubprocessShell,
  DEVNULL,
  PIPE,
  STDOUT,
  subprocessExec,
  subprocessShell,
} from "../subprocess.ts";
import { getEventLoop } from "../events.ts";
import {
  collectExceptions,
  concat,
  decode,
  encode,
  pattern,
  withTimeout,
} from "./_helpers.ts";
import { run } from "./_examples.ts";

const TIMEOUT = 20_000;

/** A SubprocessProtocol that records its callbacks. */
class Recorder extends SubprocessProtocol {
  readonly events: string[] = [];
  readonly out: Uint8Array[] = [];
  readonly err: Uint8Array[] = [];
  readonly pipeErrors = new Map<number, Error | null>();
  transport: SubprocessTransport | null = null;
  readonly lost = Promise.withResolvers<Error | null>();

  override connectionMade(transport: SubprocessTransport): void {
    this.transport = transport;
    this.events.push("made");
  }
  override pipeDataReceived(fd: 1 | 2, data: Uint8Array): void {
    if (this.events.at(-1) !== `data${fd}`) this.events.push(`data${fd}`);
    (fd === 1 ? this.out : this.err).push(data);
  }
  override pipeConnectionLost(fd: 0 | 1 | 2, exc: Error | null): void {
    this.events.push(`pipeLost${fd}`);
    this.pipeErrors.set(fd, exc);
  }
  override processExited(): void {
    this.events.push("exited");
  }
  override pauseWriting(): void {
    this.events.push("pauseWriting");
  }
  override resumeWriting(): void {
    this.events.push("resumeWriting");
  }
  override connectionLost(exc: Error | null): void {
    this.events.push("lost");
    this.lost.resolve(exc);
  }
}

Deno.test("communicate() round-trips 8 MiB through cat byte-exact", async () => {
  const input = pattern(8 << 20, 7);
  const proc = await createSubprocessExec("cat", [], {
    stdin: PIPE,
    stdout: PIPE,
    limit: 4096,
  });
  assert.equal(proc.stderr, null);
  const [out, err] = await withTimeout(proc.communicate(input), TIMEOUT);
  assert.equal(err, null);
  assert.equal(out!.length, input.length);
  assert.ok(out!.every((byte, i) => byte === input[i]), "bytes differ");
  assert.equal(proc.returncode, 0);
});

Deno.test("communicate() copies the input at the call", async () => {
  const input = encode("abc");
  const proc = await createSubprocessExec("cat", [], {
    stdin: PIPE,
    stdout: PIPE,
  });
  const done = proc.communicate(input);
  input.fill(0x7a);
  const [out] = await withTimeout(done, TIMEOUT);
  assert.equal(decode(out!), "abc");
});

Deno.test("shell: both streams and returncode 3", async () => {
  const proc = await createSubprocessShell(
    "echo out; echo err >&2; exit 3",
    { stdout: PIPE, stderr: PIPE },
  );
  assert.equal(proc.stdin, null);
  assert.ok(proc.pid > 0);
  const [out, err] = await withTimeout(proc.communicate(), TIMEOUT);
  assert.equal(decode(out!), "out\n");
  assert.equal(decode(err!), "err\n");
  assert.equal(proc.returncode, 3);
  assert.equal(await proc.wait(), 3);
});

Deno.test("stdout.readLine() reads a child's lines", async () => {
  const proc = await createSubprocessShell(
    "for i in 1 2 3; do echo line$i; done",
    { stdout: PIPE },
  );
  const lines: string[] = [];
  for (let i = 0; i < 4; i++) {
    lines.push(decode(await withTimeout(proc.stdout!.readLine(), TIMEOUT)));
  }
  assert.deepEqual(lines, ["line1\n", "line2\n", "line3\n", ""]);
  assert.ok(proc.stdout!.atEof());
  assert.equal(await withTimeout(proc.wait(), TIMEOUT), 0);
});

Deno.test("a stdin/stdout dialogue with write + drain + readLine", async () => {
  const proc = await createSubprocessExec("cat", [], {
    stdin: PIPE,
    stdout: PIPE,
  });
  for (const word of ["a", "bb", "ccc"]) {
    proc.stdin!.write(encode(`${word}\n`));
    await proc.stdin!.drain();
    assert.equal(
      decode(await withTimeout(proc.stdout!.readLine(), TIMEOUT)),
      `${word}\n`,
    );
  }
  proc.stdin!.close();
  await withTimeout(proc.stdin!.waitClosed(), TIMEOUT);
  assert.equal((await proc.stdout!.read()).length, 0);
  assert.equal(await withTimeout(proc.wait(), TIMEOUT), 0);
});

Deno.test("kill() then wait() gives returncode -9", async () => {
  const proc = await createSubprocessExec("sleep", ["30"], {
    stdin: DEVNULL,
    stdout: DEVNULL,
    stderr: DEVNULL,
  });
  assert.equal(proc.returncode, null);
  proc.kill();
  assert.equal(await withTimeout(proc.wait(), TIMEOUT), -9);
  assert.equal(proc.returncode, -9);
  // Once the process exited and its transport closed, a signal is
  // NotFound, as asyncio's ProcessLookupError (subprocess_parity_test.ts).
  assert.throws(() => proc.kill(), Deno.errors.NotFound);
  assert.throws(() => proc.terminate(), Deno.errors.NotFound);
});

Deno.test("terminate() gives -15 and sendSignal() sends any signal", async () => {
  const proc = await createSubprocessExec("sleep", ["30"], {
    stdout: PIPE,
  });
  proc.terminate();
  const [out] = await withTimeout(proc.communicate(), TIMEOUT);
  assert.equal(out!.length, 0);
  assert.equal(proc.returncode, -15);

  const other = await createSubprocessExec("sleep", ["30"]);
  assert.throws(
    () => other.sendSignal(9 as unknown as Deno.Signal),
    TypeError,
  );
  other.sendSignal("SIGINT");
  assert.equal(await withTimeout(other.wait(), TIMEOUT), -2);
});

Deno.test("protocol: callback order, fds and returncode", async () => {
  const [transport, protocol] = await subprocessShell(
    () => new Recorder(),
    "read x; echo out:$x; echo err >&2; exit 5",
  );
  assert.equal(protocol.transport, transport);
  assert.ok(transport.getPid() > 0);
  assert.equal(transport.getReturnCode(), null);
  const stdin = transport.getPipeTransport(0) as WriteTransport;
  assert.equal(typeof stdin.write, "function");
  assert.equal(typeof transport.getPipeTransport(1)!.pauseReading, "function");
  assert.equal(typeof transport.getPipeTransport(2)!.resumeReading, "function");
  assert.equal(stdin.getExtraInfo("toString", "none"), "none");
  assert.equal(
    transport.getPipeTransport(1)!.getExtraInfo("constructor", "none"),
    "none",
  );
  assert.throws(
    () => transport.getPipeTransport(3 as 0),
    TypeError,
  );
  stdin.write(encode("hi\n"));
  assert.equal(await withTimeout(protocol.lost.promise, TIMEOUT), null);
  assert.equal(transport.getReturnCode(), 5);
  assert.equal(decode(concat(protocol.out)), "out:hi\n");
  assert.equal(decode(concat(protocol.err)), "err\n");

  const events = protocol.events;
  assert.equal(events[0], "made");
  assert.deepEqual(events.slice(-2), ["exited", "lost"]);
  for (const name of ["pipeLost0", "pipeLost1", "pipeLost2"]) {
    assert.equal(events.filter((e) => e === name).length, 1, name);
  }
  // Data of a pipe comes before its pipeConnectionLost.
  assert.ok(events.indexOf("data1") < events.indexOf("pipeLost1"));
  assert.ok(events.indexOf("data2") < events.indexOf("pipeLost2"));
  assert.equal(protocol.pipeErrors.get(0), null);
  assert.equal(protocol.pipeErrors.get(1), null);
  assert.equal(protocol.pipeErrors.get(2), null);
  assert.ok(transport.getExtraInfo("subprocess") instanceof Deno.ChildProcess);
  assert.equal(transport.getExtraInfo("nope", 1), 1);
  transport.close();
  assert.ok(transport.isClosing());
});

Deno.test("protocol: stdio not piped gives null pipe transports", async () => {
  const [transport, protocol] = await subprocessExec(
    () => new Recorder(),
    "true",
    [],
    { stdin: "null", stdout: "null", stderr: "null" },
  );
  assert.equal(transport.getPipeTransport(0), null);
  assert.equal(transport.getPipeTransport(1), null);
  await withTimeout(protocol.lost.promise, TIMEOUT);
  assert.deepEqual(protocol.events, ["made", "exited", "lost"]);
  assert.equal(transport.getReturnCode(), 0);
});

Deno.test("protocol: close() kills a running child", async () => {
  const [transport, protocol] = await subprocessExec(
    () => new Recorder(),
    "sleep",
    ["30"],
  );
  transport.close();
  await withTimeout(protocol.lost.promise, TIMEOUT);
  assert.equal(transport.getReturnCode(), -9);
  assert.deepEqual(protocol.events.slice(-2), ["exited", "lost"]);
});

Deno.test("protocol: pauseReading() on a stdout pipe holds its data", async () => {
  const stderrLost = Promise.withResolvers<void>();
  class Paused extends Recorder {
    override connectionMade(transport: SubprocessTransport): void {
      super.connectionMade(transport);
      transport.getPipeTransport(1)!.pauseReading();
    }
    override pipeConnectionLost(fd: 0 | 1 | 2, exc: Error | null): void {
      super.pipeConnectionLost(fd, exc);
      if (fd === 2) stderrLost.resolve();
    }
  }
  const [transport, protocol] = await subprocessShell(
    () => new Paused(),
    "echo out; echo err >&2",
    { stdin: "null" },
  );
  const stdout = transport.getPipeTransport(1)!;
  await withTimeout(stderrLost.promise, TIMEOUT);
  // The child wrote stdout before stderr, yet nothing of it was delivered.
  assert.equal(stdout.isReading(), false);
  assert.equal(protocol.out.length, 0);
  assert.ok(!protocol.events.includes("exited"));
  stdout.resumeReading();
  assert.ok(stdout.isReading());
  await withTimeout(protocol.lost.promise, TIMEOUT);
  assert.equal(decode(concat(protocol.out)), "out\n");
  assert.deepEqual(protocol.events.slice(-3), ["pipeLost1", "exited", "lost"]);
});

Deno.test("an exception in a protocol callback goes to the exception handler", async () => {
  const loop = getEventLoop();
  const seen: unknown[] = [];
  loop.setExceptionHandler((_loop, context) => seen.push(context.exception));
  try {
    class Throws extends Recorder {
      override pipeDataReceived(fd: 1 | 2, data: Uint8Array): void {
        super.pipeDataReceived(fd, data);
        throw new Error("boom");
      }
    }
    const [, protocol] = await subprocessShell(() => new Throws(), "echo x", {
      stdin: "null",
      stderr: "null",
    });
    await withTimeout(protocol.lost.promise, TIMEOUT);
    assert.equal(seen.length, 1);
    assert.equal((seen[0] as Error).message, "boom");
    assert.equal((protocol.pipeErrors.get(1) as Error).message, "boom");
  } finally {
    loop.setExceptionHandler(null);
  }
});

Deno.test("protocol: stdin flow control pauses at 64 KiB and resumes", async () => {
  const [transport, protocol] = await subprocessExec(
    () => new Recorder(),
    "cat",
    [],
    { stderr: "null" },
  );
  const stdin = transport.getPipeTransport(0) as WriteTransport;
  assert.deepEqual(stdin.getWriteBufferLimits(), [16384, 65536]);
  stdin.write(new Uint8Array(65536));
  assert.ok(!protocol.events.includes("pauseWriting"));
  stdin.write(new Uint8Array(1));
  // Called inside the write that crossed the mark.
  assert.equal(protocol.events.at(-1), "pauseWriting");
  assert.equal(stdin.getWriteBufferSize(), 65537);
  stdin.close();
  assert.throws(() => stdin.write(encode("x")), Deno.errors.BadResource);
  await withTimeout(protocol.lost.promise, TIMEOUT);
  assert.ok(
    protocol.events.indexOf("resumeWriting") >
      protocol.events.indexOf("pauseWriting"),
  );
  assert.equal(concat(protocol.out).length, 65537);
  assert.equal(stdin.getWriteBufferSize(), 0);
});

Deno.test("drain() waits on a slow reader instead of buffering", async () => {
  const proc = await createSubprocessExec("cat", [], {
    stdin: PIPE,
    stdout: PIPE,
  });
  const stdin = proc.stdin!;
  stdin.write(new Uint8Array(1 << 20));
  // The drain may only finish once the buffer is down to the low mark, which
  // needs stdout to be read: note the buffer size at that moment.
  let sizeAtDrain = -1;
  const drain = stdin.drain().then(() => {
    sizeAtDrain = stdin.transport.getWriteBufferSize();
  });
  assert.ok(stdin.transport.getWriteBufferSize() > 65536);
  const reading = proc.stdout!.readExactly(1 << 20);
  await withTimeout(drain, TIMEOUT);
  assert.ok(
    sizeAtDrain >= 0 && sizeAtDrain <= 16384,
    `drained with ${sizeAtDrain} bytes buffered`,
  );
  assert.equal((await withTimeout(reading, TIMEOUT)).length, 1 << 20);
  const [rest] = await withTimeout(proc.communicate(), TIMEOUT);
  assert.equal(rest!.length, 0);
  assert.equal(proc.returncode, 0);
});

Deno.test("a child that exits with 4 MiB queued on stdin: BrokenPipe, no hang", async () => {
  const proc = await createSubprocessShell("exit 0", { stdin: PIPE });
  const stdin = proc.stdin!;
  stdin.write(new Uint8Array(4 << 20));
  await assert.rejects(
    withTimeout(stdin.drain(), TIMEOUT),
    Deno.errors.BrokenPipe,
  );
  // A later write is dropped, as asyncio's pipe transport does; drain() says so.
  stdin.write(encode("x"));
  assert.equal(stdin.transport.getWriteBufferSize(), 0);
  await assert.rejects(stdin.drain(), Deno.errors.BrokenPipe);
  assert.equal(await withTimeout(proc.wait(), TIMEOUT), 0);
  // communicate() ignores the broken pipe, as asyncio.
  assert.deepEqual(await withTimeout(proc.communicate(), TIMEOUT), [
    null,
    null,
  ]);
});

/** Counts unhandled promise rejections until disposed. */
function watchUnhandled(): { count(): number; [Symbol.dispose](): void } {
  let count = 0;
  const onUnhandled = (event: PromiseRejectionEvent) => {
    count++;
    event.preventDefault();
    console.error("unhandled rejection:", event.reason);
  };
  globalThis.addEventListener("unhandledrejection", onUnhandled);
  return {
    count: () => count,
    [Symbol.dispose]: () =>
      globalThis.removeEventListener("unhandledrejection", onUnhandled),
  };
}

Deno.test("communicate(input) after the child exited gives its output and returncode", async () => {
  using unhandled = watchUnhandled();
  using seen = collectExceptions();
  const proc = await createSubprocessExec("sh", ["-c", "echo early; exit 3"], {
    stdin: PIPE,
    stdout: PIPE,
  });
  assert.equal(await withTimeout(proc.wait(), TIMEOUT), 3);
  const [out, err] = await withTimeout(
    proc.communicate(new Uint8Array(1 << 20)),
    TIMEOUT,
  );
  assert.equal(decode(out!), "early\n");
  assert.equal(err, null);
  assert.equal(proc.returncode, 3);
  await withTimeout(proc.stdin!.waitClosed(), TIMEOUT);
  assert.equal(unhandled.count(), 0);
  assert.deepEqual(seen.messages(), []);
});

Deno.test("communicate(input) after a running child closed its stdin", async () => {
  using unhandled = watchUnhandled();
  using seen = collectExceptions();
  const proc = await createSubprocessShell(
    "exec 0<&-; echo closed; exec sleep 30",
    { stdin: PIPE, stdout: PIPE },
  );
  // The child has closed its end of stdin, and runs on.
  assert.equal(
    decode(await withTimeout(proc.stdout!.readLine(), TIMEOUT)),
    "closed\n",
  );
  const done = proc.communicate(new Uint8Array(1 << 20));
  // The write fails (EPIPE): stdin ends with BrokenPipe while the child runs.
  await assert.rejects(
    withTimeout(proc.stdin!.waitClosed(), TIMEOUT),
    Deno.errors.BrokenPipe,
  );
  assert.equal(proc.returncode, null);
  proc.terminate();
  const [out, err] = await withTimeout(done, TIMEOUT);
  assert.equal(decode(out!), "");
  assert.equal(err, null);
  assert.equal(proc.returncode, -15);
  assert.equal(unhandled.count(), 0);
  assert.deepEqual(seen.messages(), []);
});

Deno.test("communicate(8 MiB) to a child that reads nothing and exits", async () => {
  using unhandled = watchUnhandled();
  using seen = collectExceptions();
  for (let i = 0; i < 5; i++) {
    const proc = await createSubprocessShell("echo bye; echo err >&2; exit 2", {
      stdin: PIPE,
      stdout: PIPE,
      stderr: PIPE,
    });
    const [out, err] = await withTimeout(
      proc.communicate(pattern(8 << 20, i)),
      TIMEOUT,
    );
    assert.equal(decode(out!), "bye\n");
    assert.equal(decode(err!), "err\n");
    assert.equal(proc.returncode, 2);
  }
  assert.equal(unhandled.count(), 0);
  assert.deepEqual(seen.messages(), []);
});

Deno.test("stdin.write() after the child closed the pipe is dropped; drain() rejects with ConnectionReset", async () => {
  using unhandled = watchUnhandled();
  using seen = collectExceptions();
  const proc = await createSubprocessShell("exit 0", {
    stdin: PIPE,
    stdout: PIPE,
  });
  assert.equal(await withTimeout(proc.wait(), TIMEOUT), 0);
  const stdin = proc.stdin!;
  // Whether or not the end of the pipe was seen yet, the write is dropped.
  stdin.write(encode("lost"));
  assert.equal(stdin.transport.getWriteBufferSize(), 0);
  await assert.rejects(
    withTimeout(stdin.drain(), TIMEOUT),
    Deno.errors.ConnectionReset,
  );
  await withTimeout(stdin.waitClosed(), TIMEOUT);
  assert.ok(stdin.isClosing());
  // As asyncio: five dropped writes pass quietly; the sixth is reported
  // (once: the exception handler is not flooded by a writing loop).
  for (let i = 0; i < 4; i++) stdin.write(encode("lost"));
  stdin.write(new Uint8Array(0));
  assert.deepEqual(seen.messages(), []);
  for (let i = 0; i < 20; i++) stdin.write(encode("lost"));
  assert.equal(seen.contexts.length, 1);
  assert.match(seen.contexts[0].message, /6 writes were dropped/);
  assert.equal(seen.contexts[0].transport, stdin.transport);
  assert.equal(stdin.transport.getWriteBufferSize(), 0);
  await assert.rejects(stdin.drain(), Deno.errors.ConnectionReset);
  // Bad input is still refused at the call.
  assert.throws(() => stdin.write("text" as never), TypeError);
  // Closing our end after the child closed it is fine; writing after our own
  // close() is a caller's error.
  stdin.close();
  assert.throws(() => stdin.write(encode("x")), Deno.errors.BadResource);
  const [out] = await withTimeout(proc.communicate(), TIMEOUT);
  assert.equal(out!.length, 0);
  assert.equal(unhandled.count(), 0);
});

Deno.test("protocol: a stdin write after the child exited is dropped", async () => {
  const [transport, protocol] = await subprocessShell(
    () => new Recorder(),
    "exit 0",
    { stdout: "null", stderr: "null" },
  );
  await withTimeout(protocol.lost.promise, TIMEOUT);
  const stdin = transport.getPipeTransport(0) as WriteTransport;
  assert.ok(stdin.isClosing());
  stdin.write(encode("late"));
  stdin.writeLines([encode("a"), encode("b")]);
  assert.equal(stdin.getWriteBufferSize(), 0);
  assert.equal(protocol.pipeErrors.get(0), null);
  assert.deepEqual(protocol.events, ["made", "pipeLost0", "exited", "lost"]);
  // abort() is ours: a write after it is refused.
  stdin.abort();
  assert.throws(() => stdin.write(encode("x")), Deno.errors.BadResource);
  transport.close();
});

Deno.test("protocol: pipeConnectionLost(0, BrokenPipe) when the child leaves", async () => {
  const [transport, protocol] = await subprocessShell(
    () => new Recorder(),
    "exit 0",
    { stdout: "null", stderr: "null" },
  );
  const stdin = transport.getPipeTransport(0) as WriteTransport;
  stdin.write(new Uint8Array(4 << 20));
  await withTimeout(protocol.lost.promise, TIMEOUT);
  assert.ok(protocol.pipeErrors.get(0) instanceof Deno.errors.BrokenPipe);
  assert.deepEqual(protocol.events, [
    "made",
    "pauseWriting",
    "pipeLost0",
    "exited",
    "lost",
  ]);
});

Deno.test("env replaces the environment", async () => {
  const proc = await createSubprocessExec("/usr/bin/env", [], {
    stdout: PIPE,
    env: { AIONET_TEST: "yes" },
  });
  const [out] = await withTimeout(proc.communicate(), TIMEOUT);
  assert.equal(decode(out!), "AIONET_TEST=yes\n");
});

Deno.test("cwd sets the working directory", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const proc = await createSubprocessExec("pwd", [], {
      stdout: PIPE,
      cwd: dir,
    });
    const [out] = await withTimeout(proc.communicate(), TIMEOUT);
    assert.equal(decode(out!).trim(), await Deno.realPath(dir));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("what Deno cannot do throws NotSupported; bad types throw TypeError", async () => {
  await assert.rejects(
    createSubprocessExec("true", [], { stderr: STDOUT as "pipe" }),
    (e: Error) =>
      e instanceof Deno.errors.NotSupported && /stdout/.test(e.message),
  );
  await assert.rejects(
    createSubprocessExec("true", [], { stdout: 1 as unknown as "pipe" }),
    Deno.errors.NotSupported,
  );
  await assert.rejects(
    createSubprocessExec("true", [], { passFds: [3] } as never),
    (e: Error) =>
      e instanceof Deno.errors.NotSupported && /passFds/.test(e.message),
  );
  await assert.rejects(
    createSubprocessExec("true", [], { stdin: "piped" as "pipe" }),
    TypeError,
  );
  await assert.rejects(createSubprocessExec(42 as never, []), TypeError);
  await assert.rejects(createSubprocessExec("true", "x" as never), TypeError);
  await assert.rejects(createSubprocessShell(["ls"] as never), TypeError);
  await assert.rejects(
    createSubprocessExec("true", [], { env: { A: 1 } as never }),
    TypeError,
  );
  await assert.rejects(
    createSubprocessExec("true", [], { limit: 0 }),
    RangeError,
  );
  await assert.rejects(
    createSubprocessExec("/nonexistent/aionet-program", []),
    Deno.errors.NotFound,
  );
  await assert.rejects(
    subprocessExec("nope" as never, "true", []),
    TypeError,
  );
  const proc = await createSubprocessExec("true", [], { stdin: PIPE });
  await assert.rejects(proc.communicate("text" as never), TypeError);
  await withTimeout(proc.communicate(), TIMEOUT);
});

Deno.test("connectWritePipe/connectReadPipe over a file", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/data.bin`;
    const payload = pattern(300 * 1024, 3);

    const events: string[] = [];
    const writeLost = Promise.withResolvers<Error | null>();
    class Writer extends BaseProtocol {
      override pauseWriting() {
        events.push("pause");
      }
      override resumeWriting() {
        events.push("resume");
      }
      override connectionLost(exc: Error | null) {
        writeLost.resolve(exc);
      }
    }
    const file = await Deno.open(path, { write: true, create: true });
    const [wt] = await connectWritePipe(() => new Writer(), file);
    wt.write(payload.subarray(0, 1000));
    wt.writeLines([payload.subarray(1000, 2000), payload.subarray(2000)]);
    assert.deepEqual(events, ["pause"]);
    wt.close();
    assert.ok(wt.isClosing());
    assert.equal(await withTimeout(writeLost.promise, TIMEOUT), null);
    assert.deepEqual(events, ["pause", "resume"]);
    assert.throws(() => wt.write(payload), Deno.errors.BadResource);

    const chunks: Uint8Array[] = [];
    const readEvents: string[] = [];
    const readLost = Promise.withResolvers<Error | null>();
    class Reader extends Protocol {
      override connectionMade() {
        readEvents.push("made");
      }
      override dataReceived(data: Uint8Array) {
        if (readEvents.at(-1) !== "data") readEvents.push("data");
        chunks.push(data);
      }
      override eofReceived() {
        readEvents.push("eof");
      }
      override connectionLost(exc: Error | null) {
        readEvents.push("lost");
        readLost.resolve(exc);
      }
    }
    const [rt] = await connectReadPipe(
      () => new Reader(),
      await Deno.open(path),
    );
    assert.ok(rt.isReading());
    assert.equal(await withTimeout(readLost.promise, TIMEOUT), null);
    assert.deepEqual(readEvents, ["made", "data", "eof", "lost"]);
    assert.deepEqual(concat(chunks), payload);

    // Closing a read pipe early cancels the stream (and closes the file).
    const early = Promise.withResolvers<Error | null>();
    class Early extends Protocol {
      override connectionLost(exc: Error | null) {
        early.resolve(exc);
      }
    }
    const [rt2] = await connectReadPipe(
      () => new Early(),
      await Deno.open(path),
    );
    rt2.pauseReading();
    assert.equal(rt2.isReading(), false);
    rt2.close();
    assert.equal(await withTimeout(early.promise, TIMEOUT), null);

    await assert.rejects(
      connectReadPipe(() => new Reader(), {} as never),
      TypeError,
    );
    await assert.rejects(
      connectWritePipe(() => new Writer(), 3 as never),
      TypeError,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("connectReadPipe over a child's stdout ReadableStream", async () => {
  const child = new Deno.Command("sh", {
    args: ["-c", "echo piped"],
    stdout: "piped",
  }).spawn();
  const lost = Promise.withResolvers<void>();
  const chunks: Uint8Array[] = [];
  class Collect extends Protocol {
    override dataReceived(data: Uint8Array) {
      chunks.push(data);
    }
    override connectionLost() {
      lost.resolve();
    }
  }
  await connectReadPipe(() => new Collect(), child.stdout);
  await withTimeout(lost.promise, TIMEOUT);
  assert.equal(decode(concat(chunks)), "piped\n");
  assert.equal((await child.status).code, 0);
});

Deno.test("examples: subprocess_protocol.ts and subprocess_streams.ts", async () => {
  const runExample = async (name: string) => {
    const { code, stdout, stderr } = await run([`examples/${name}`], {
      permissions: ["--allow-run", "--allow-read"],
      timeout: 60_000,
    });
    assert.equal(code, 0, stderr);
    return stdout;
  };
  const [protocolOut, streamsOut] = await Promise.all([
    runExample("subprocess_protocol.ts"),
    runExample("subprocess_streams.ts"),
  ]);
  assert.match(protocolOut, /^date: \d{4}-\d\d-\d\dT[^\n]+\nexit code: 0\n$/);
  assert.equal(
    streamsOut,
    "got: one\ngot: two\ngot: three\nexit code: 0\n",
  );
});
