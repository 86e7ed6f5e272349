// Parity of the pipe transports (connectReadPipe / connectWritePipe) with
// asyncio's _UnixReadPipeTransport / _UnixWritePipeTransport. CPython's
// behaviour was checked with small os.pipe() scripts under python3. The
// "parity:" tests failed before their fix (RELIABILITY.md, finding 40).

import assert from "node:assert/strict";
import { BaseProtocol, Protocol } from "../protocols.ts";
import { getEventLoop } from "../events.ts";
import {
  collectExceptions,
  concat,
  decode,
  encode,
  leakCheckedTest,
  pattern,
  withTimeout,
} from "./_helpers.ts";

const TIMEOUT = 20_000;

function describeValue(value: unknown): string {
  return (value as object | null)?.constructor?.name ?? String(value);
}

function python(code: string, stdin: "piped" | "null" = "null") {
  return new Deno.Command("python3", {
    args: ["-c", code],
    stdin,
    stdout: "piped",
    stderr: "null",
  }).spawn();
}

// CPython: transport.get_extra_info('pipe') is the very object given to
// connect_read_pipe (checked: `t.get_extra_info('pipe') is rf` -> True).
// aionet returns the ReadableStream taken from it (file.readable), not the
// FsFile that was passed.
leakCheckedTest(
  "parity: read pipe getExtraInfo('pipe') is the pipe given",
  async () => {
    const path = await Deno.makeTempFile();
    try {
      await Deno.writeFile(path, encode("abc"));
      const file = await Deno.open(path);
      const lost = Promise.withResolvers<Error | null>();
      class P extends Protocol {
        override connectionLost(exc: Error | null) {
          lost.resolve(exc);
        }
      }
      const [t] = await getEventLoop().connectReadPipe(() => new P(), file);
      const extra = t.getExtraInfo("pipe");
      t.close();
      assert.equal(await withTimeout(lost.promise, TIMEOUT), null);
      assert.ok(
        extra === file,
        `getExtraInfo("pipe") is ${describeValue(extra)}`,
      );
    } finally {
      await Deno.remove(path);
    }
  },
);

// CPython: get_extra_info('pipe') of a write pipe is the object passed
// (checked: `is wf` -> True). aionet returns file.writable.
leakCheckedTest(
  "parity: write pipe getExtraInfo('pipe') is the pipe given",
  async () => {
    const path = await Deno.makeTempFile();
    try {
      const file = await Deno.open(path, { write: true });
      const lost = Promise.withResolvers<Error | null>();
      class P extends BaseProtocol {
        override connectionLost(exc: Error | null) {
          lost.resolve(exc);
        }
      }
      const [t] = await getEventLoop().connectWritePipe(() => new P(), file);
      const extra = t.getExtraInfo("pipe");
      t.close();
      assert.equal(await withTimeout(lost.promise, TIMEOUT), null);
      assert.ok(
        extra === file,
        `getExtraInfo("pipe") is ${describeValue(extra)}`,
      );
    } finally {
      await Deno.remove(path);
    }
  },
);

// CPython: abort() clears the buffer at once, so get_write_buffer_size()
// is 0 right after abort() (checked: 135168 before, 0 after; no
// resume_writing, then connection_lost(None)). aionet still counts the
// write in flight (#inflight) until the aborted write settles.
leakCheckedTest(
  "parity: write pipe getWriteBufferSize() is 0 right after abort()",
  async () => {
    const child = python("import sys, time; time.sleep(30)", "piped");
    try {
      const events: string[] = [];
      const lost = Promise.withResolvers<Error | null>();
      class P extends BaseProtocol {
        override pauseWriting() {
          events.push("pause");
        }
        override resumeWriting() {
          events.push("resume");
        }
        override connectionLost(exc: Error | null) {
          events.push("lost");
          lost.resolve(exc);
        }
      }
      const [t] = await getEventLoop().connectWritePipe(
        () => new P(),
        child.stdin,
      );
      t.write(pattern(1000));
      // Let the first write go in flight (the child never reads: it stays).
      await Promise.resolve();
      await Promise.resolve();
      t.write(pattern(200_000));
      assert.deepEqual(events, ["pause"]);
      t.abort();
      const sizeAfterAbort = t.getWriteBufferSize();
      assert.ok(t.isClosing());
      assert.equal(await withTimeout(lost.promise, TIMEOUT), null);
      assert.deepEqual(events, ["pause", "lost"]);
      assert.equal(sizeAfterAbort, 0);
    } finally {
      child.kill();
      await child.stdout.cancel();
      await child.status;
    }
  },
);

leakCheckedTest(
  "read pipe over a child's stdout: made, data, eof, lost(null)",
  async () => {
    const child = python(
      "import sys; sys.stdout.write('hello'); sys.stdout.flush(); sys.stdout.write(' world')",
    );
    const events: string[] = [];
    const chunks: Uint8Array[] = [];
    const lost = Promise.withResolvers<Error | null>();
    class P extends Protocol {
      override connectionMade() {
        events.push("made");
      }
      override dataReceived(data: Uint8Array) {
        if (events.at(-1) !== "data") events.push("data");
        chunks.push(data);
      }
      override eofReceived() {
        events.push("eof");
        return true; // ignored by pipes, as in asyncio
      }
      override connectionLost(exc: Error | null) {
        events.push("lost");
        lost.resolve(exc);
      }
    }
    const [t] = await getEventLoop().connectReadPipe(
      () => new P(),
      child.stdout,
    );
    assert.equal(t.getExtraInfo("pipe"), child.stdout);
    assert.equal(await withTimeout(lost.promise, TIMEOUT), null);
    assert.deepEqual(events, ["made", "data", "eof", "lost"]);
    assert.equal(decode(concat(chunks)), "hello world");
    assert.equal(t.isClosing(), true);
    assert.equal(t.isReading(), false);
    assert.equal((await child.status).code, 0);
  },
);

leakCheckedTest(
  "read pipe: throwing dataReceived reports and closes once",
  async () => {
    const child = python("import sys; sys.stdout.write('x' * 10)");
    using seen = collectExceptions();
    const lost: (Error | null)[] = [];
    const done = Promise.withResolvers<void>();
    class P extends Protocol {
      override dataReceived() {
        throw new Error("boom");
      }
      override connectionLost(exc: Error | null) {
        lost.push(exc);
        done.resolve();
      }
    }
    const [t] = await getEventLoop().connectReadPipe(
      () => new P(),
      child.stdout,
    );
    await withTimeout(done.promise, TIMEOUT);
    assert.equal(lost.length, 1);
    assert.equal(lost[0]?.message, "boom");
    assert.deepEqual(seen.messages(), ["Exception in protocol.dataReceived()"]);
    assert.ok(t.isClosing());
    t.close();
    await child.status;
  },
);

leakCheckedTest(
  "write pipe to a child: close() flushes, limits as asyncio",
  async () => {
    const child = python(
      "import sys; d = sys.stdin.buffer.read(); sys.stdout.write(str(len(d)))",
      "piped",
    );
    const lost = Promise.withResolvers<Error | null>();
    class P extends BaseProtocol {
      override connectionLost(exc: Error | null) {
        lost.resolve(exc);
      }
    }
    const [t] = await getEventLoop().connectWritePipe(
      () => new P(),
      child.stdin,
    );
    assert.equal(t.canWriteEof(), true);
    assert.throws(() => t.setWriteBufferLimits({ high: 1, low: 2 }));
    assert.throws(() => t.setWriteBufferLimits({ high: -1 }));
    t.setWriteBufferLimits({ high: 100 });
    assert.deepEqual(t.getWriteBufferLimits(), [25, 100]);
    t.setWriteBufferLimits({ low: 10 });
    assert.deepEqual(t.getWriteBufferLimits(), [10, 40]);
    t.write(pattern(300_000));
    t.writeEof();
    assert.ok(t.isClosing());
    assert.equal(await withTimeout(lost.promise, TIMEOUT), null);
    const out = decode(
      concat(await Array.fromAsync(child.stdout)),
    );
    assert.equal(out, "300000");
    assert.equal((await child.status).code, 0);
  },
);
