// On the native backend the public readiness API is epoll's: a
// DefaultSelector and loop.addReader/addWriter watch aionet sockets and
// any descriptor (here a pipe), with true readiness, level-triggered as
// asyncio's selector loop.

import assert from "node:assert/strict";
import { DefaultSelector, EVENT_READ, EVENT_WRITE } from "../selectors.ts";
import { EventLoop } from "../events.ts";
import { socketpair } from "../sockets.ts";
import {
  closeRaw,
  nativeTest,
  rawPipe,
  rawRead,
  rawWrite,
  withBackend,
} from "./_native_fd_check.ts";
import { withTimeout } from "./_helpers.ts";

nativeTest(
  "native readiness: a selector watches a pipe: nothing ready, then readable, then writable",
  () =>
    withBackend("native", async () => {
      const [readFd, writeFd] = rawPipe();
      using selector = new DefaultSelector();
      try {
        selector.register(readFd, EVENT_READ, "reader");
        assert.deepEqual(await selector.select(0), [], "an empty pipe");
        rawWrite(writeFd, new Uint8Array([1, 2, 3]));
        const ready = await withTimeout(selector.select(5000), 6000, "select");
        assert.equal(ready.length, 1);
        assert.equal(ready[0][0].fd, readFd);
        assert.equal(ready[0][0].data, "reader");
        assert.equal(ready[0][1], EVENT_READ);
        // Level-triggered: still ready until read.
        assert.equal((await selector.select(0)).length, 1);
        assert.deepEqual(rawRead(readFd), new Uint8Array([1, 2, 3]));
        assert.deepEqual(await selector.select(0), [], "drained");
        selector.unregister(readFd);
        selector.register(writeFd, EVENT_WRITE);
        const writable = await withTimeout(
          selector.select(5000),
          6000,
          "select",
        );
        assert.equal(writable[0][1], EVENT_WRITE);
        selector.unregister(writeFd);
      } finally {
        closeRaw(readFd, writeFd);
      }
    }),
);

nativeTest(
  "native readiness: loop.addReader on a pipe fires while readable, stops when removed",
  () =>
    withBackend("native", async () => {
      const [readFd, writeFd] = rawPipe();
      using loop = new EventLoop();
      try {
        const got: number[] = [];
        const done = Promise.withResolvers<void>();
        loop.addReader(readFd, () => {
          const data = rawRead(readFd);
          if (data === null) return; // EAGAIN: not for us
          got.push(...data);
          if (got.length >= 6) done.resolve();
        });
        rawWrite(writeFd, new Uint8Array([1, 2, 3]));
        rawWrite(writeFd, new Uint8Array([4, 5, 6]));
        await withTimeout(done.promise, 5000, "the reader");
        assert.deepEqual(got, [1, 2, 3, 4, 5, 6]);
        assert.equal(loop.removeReader(readFd), true);
        assert.equal(loop.removeReader(readFd), false);
        const written = Promise.withResolvers<void>();
        loop.addWriter(writeFd, () => {
          loop.removeWriter(writeFd);
          written.resolve();
        });
        await withTimeout(written.promise, 5000, "the writer");
      } finally {
        closeRaw(readFd, writeFd);
      }
    }),
);

nativeTest(
  "native readiness: a selector on a socket pair sees writable at once and readable only after a send",
  () =>
    withBackend("native", async () => {
      const [a, b] = socketpair();
      using selector = new DefaultSelector();
      try {
        selector.register(a, EVENT_READ | EVENT_WRITE);
        const first = await selector.select(0);
        assert.equal(first.length, 1);
        assert.equal(first[0][1], EVENT_WRITE, "writable, nothing to read yet");
        b.send(new TextEncoder().encode("hi"));
        const second = await withTimeout(selector.select(5000), 6000, "select");
        assert.equal(second[0][1], EVENT_READ | EVENT_WRITE);
        assert.equal(new TextDecoder().decode(a.recv(10)), "hi");
        selector.unregister(a);
      } finally {
        a.close();
        b.close();
      }
    }),
);

Deno.test("Deno backend: watching a raw descriptor number is refused (no real descriptors there)", () =>
  withBackend("deno", () => {
    using selector = new DefaultSelector();
    assert.throws(() => selector.register(0, EVENT_READ), RangeError);
    using loop = new EventLoop();
    assert.throws(() => loop.addReader(0, () => {}), TypeError);
    return Promise.resolve();
  }));
