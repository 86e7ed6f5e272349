// Tests of events.ts: callSoon/callLater/callAt and their handles, Future,
// the exception handler (set/get/default/throwing) and the loop's
// lifecycle.

import assert from "node:assert/strict";
import {
  CancelledError,
  EventLoop,
  type ExceptionContext,
  Future,
  getEventLoop,
  getRunningLoop,
  Handle,
  InvalidStateError,
  TimerHandle,
} from "../events.ts";
import { decode, withTimeout } from "./_helpers.ts";

/** Passes a value of the wrong type past the type checker, on purpose. */
function bad(value: unknown): never {
  return value as never;
}

/** Runs `fn` with console.error captured; returns what it printed. */
async function captureConsoleError(
  fn: () => void | Promise<void>,
): Promise<unknown[][]> {
  const calls: unknown[][] = [];
  const original = console.error;
  console.error = (...args: unknown[]) => {
    calls.push(args);
  };
  try {
    await fn();
  } finally {
    console.error = original;
  }
  return calls;
}

/** Runs `fn` with a collecting exception handler, restored afterwards. */
async function withHandler(
  loop: EventLoop,
  fn: (contexts: ExceptionContext[]) => Promise<void> | void,
): Promise<void> {
  const contexts: ExceptionContext[] = [];
  loop.setExceptionHandler((_loop, context) => contexts.push(context));
  try {
    await fn(contexts);
  } finally {
    loop.setExceptionHandler(null);
  }
}

// ---- getEventLoop ----

Deno.test("events: getEventLoop() and getRunningLoop() return one loop", () => {
  const loop = getEventLoop();
  assert.ok(loop instanceof EventLoop);
  assert.equal(getEventLoop(), loop);
  assert.equal(getRunningLoop(), loop);
  const t1 = loop.time();
  const t2 = loop.time();
  assert.equal(typeof t1, "number");
  assert.ok(t2 >= t1, "time() is monotonic");
});

// ---- callSoon ----

Deno.test("events: callSoon() runs callbacks in order, with their arguments", async () => {
  const loop = getEventLoop();
  const order: unknown[] = [];
  const done = loop.createFuture<void>();
  const handle = loop.callSoon(
    (a: number, b: string) => order.push([a, b]),
    1,
    "x",
  );
  assert.ok(handle instanceof Handle);
  loop.callSoon(() => order.push(2));
  loop.callSoon(() => order.push(3));
  loop.callSoon(() => done.setResult());
  assert.deepEqual(order, [], "nothing runs synchronously");
  await withTimeout(done, 1000, "callSoon");
  assert.deepEqual(order, [[1, "x"], 2, 3]);
  assert.equal(handle.cancelled(), false);
});

Deno.test("events: a cancelled callSoon() handle never runs", async () => {
  const loop = getEventLoop();
  let ran = false;
  const handle = loop.callSoon(() => {
    ran = true;
  });
  handle.cancel();
  assert.equal(handle.cancelled(), true);
  const done = loop.createFuture<void>();
  loop.callSoon(() => done.setResult());
  await withTimeout(done, 1000, "callSoon");
  assert.equal(ran, false);
});

Deno.test("events: an exception in a callback goes to the exception handler", async () => {
  const loop = getEventLoop();
  await withHandler(loop, async (contexts) => {
    const boom = new Error("callback failed");
    const handle = loop.callSoon(() => {
      throw boom;
    });
    const rejected = new Error("async callback failed");
    loop.callSoon(() => Promise.reject(rejected));
    const done = loop.createFuture<void>();
    loop.callLater(5, () => done.setResult());
    await withTimeout(done, 1000, "callLater");
    assert.equal(contexts.length, 2);
    assert.equal(contexts[0].exception, boom);
    assert.equal(contexts[0].handle, handle);
    assert.equal(typeof contexts[0].message, "string");
    assert.equal(contexts[1].exception, rejected);
  });
});

// ---- callLater, callAt ----

Deno.test("events: callLater() runs callbacks in order of their delays; equal delays FIFO", async () => {
  const loop = getEventLoop();
  const order: string[] = [];
  const done = loop.createFuture<void>();
  loop.callLater(30, () => {
    order.push("30");
    done.setResult();
  });
  loop.callLater(10, () => order.push("10a"));
  loop.callLater(20, (tag: string) => order.push(tag), "20");
  loop.callLater(10, () => order.push("10b"));
  loop.callLater(-5, () => order.push("now"));
  await withTimeout(done, 2000, "callLater(30)");
  assert.deepEqual(order, ["now", "10a", "10b", "20", "30"]);
});

Deno.test("events: callLater() waits at least its delay; when() is the due time", async () => {
  const loop = getEventLoop();
  const start = loop.time();
  const done = loop.createFuture<number>();
  const timer = loop.callLater(20, () => done.setResult(loop.time()));
  assert.ok(timer instanceof TimerHandle);
  assert.ok(Math.abs(timer.when() - (start + 20)) < 5, `${timer.when()}`);
  const ranAt = await withTimeout(done, 2000, "callLater(20)");
  // Timers may fire up to a millisecond early because of rounding.
  assert.ok(ranAt - start >= 19, `ran after ${ranAt - start} ms`);
});

Deno.test("events: callAt() runs at a loop time, in order with callLater()", async () => {
  const loop = getEventLoop();
  const order: string[] = [];
  const done = loop.createFuture<void>();
  const now = loop.time();
  loop.callAt(now + 25, () => {
    order.push("at25");
    done.setResult();
  });
  const handle = loop.callAt(now + 5, (x: string) => order.push(x), "at5");
  assert.equal(handle.when(), now + 5);
  loop.callLater(15, () => order.push("later15"));
  loop.callAt(now - 100, () => order.push("past"));
  await withTimeout(done, 2000, "callAt");
  assert.deepEqual(order, ["past", "at5", "later15", "at25"]);
});

Deno.test("events: TimerHandle.cancel() prevents the call and frees the timer", async () => {
  const loop = getEventLoop();
  let ran = 0;
  // A long timer that is never cleared would fail the op sanitizer.
  const long = loop.callLater(60_000, () => ran++);
  long.cancel();
  assert.equal(long.cancelled(), true);
  const short = loop.callLater(1, () => ran++);
  short.cancel();
  const at = loop.callAt(loop.time() + 1, () => ran++);
  at.cancel();
  at.cancel(); // twice is fine
  const done = loop.createFuture<void>();
  loop.callLater(20, () => done.setResult());
  await withTimeout(done, 2000, "callLater(20)");
  assert.equal(ran, 0);
});

Deno.test("events: callLater/callAt reject a delay that is not a number", () => {
  const loop = getEventLoop();
  assert.throws(() => loop.callLater(bad("10"), () => {}), TypeError);
  assert.throws(() => loop.callLater(NaN, () => {}), TypeError);
  assert.throws(() => loop.callAt(bad(null), () => {}), TypeError);
});

// ---- Future ----

Deno.test("events: Future setResult/result/done/await", async () => {
  const future = getEventLoop().createFuture<number>();
  assert.ok(future instanceof Future);
  assert.equal(future.done(), false);
  assert.equal(future.cancelled(), false);
  assert.throws(() => future.result(), InvalidStateError);
  assert.throws(() => future.exception(), InvalidStateError);
  future.setResult(42);
  assert.equal(future.done(), true);
  assert.equal(future.result(), 42);
  assert.equal(future.exception(), null);
  assert.equal(await future, 42);
  assert.equal(await future, 42, "awaiting twice gives the same result");
  assert.throws(() => future.setResult(1), InvalidStateError);
  assert.throws(() => future.setException(new Error()), InvalidStateError);
  assert.equal(future.cancel(), false);
  assert.equal(future.result(), 42);
});

Deno.test("events: Future setException/exception/result/await", async () => {
  const future = new Future<string>();
  const error = new Error("nope");
  future.setException(error);
  assert.equal(future.done(), true);
  assert.equal(future.exception(), error);
  assert.throws(() => future.result(), (e) => e === error);
  await assert.rejects(Promise.resolve(future), (e) => e === error);
  assert.throws(() => future.setResult("x"), InvalidStateError);
});

Deno.test("events: an exception nobody retrieves is not an unhandled rejection", async () => {
  const future = new Future<void>();
  future.setException(new Error("ignored"));
  let callbackRan = false;
  future.addDoneCallback(() => {
    callbackRan = true;
  });
  const done = getEventLoop().createFuture<void>();
  getEventLoop().callLater(5, () => done.setResult());
  await withTimeout(done, 1000, "callLater");
  assert.equal(callbackRan, true);
});

Deno.test("events: Future cancel", async () => {
  const future = new Future<number>();
  assert.equal(future.cancel(), true);
  assert.equal(future.cancelled(), true);
  assert.equal(future.done(), true);
  assert.equal(future.cancel(), false);
  assert.throws(() => future.result(), CancelledError);
  assert.throws(() => future.exception(), CancelledError);
  await assert.rejects(Promise.resolve(future), CancelledError);
  assert.throws(() => future.setResult(1), InvalidStateError);
  assert.throws(() => future.setException(new Error()), InvalidStateError);
  const error = new CancelledError();
  assert.equal(error.name, "CancelledError");
  assert.ok(error instanceof Error);
  assert.equal(new InvalidStateError("x").name, "InvalidStateError");
});

Deno.test("events: Future addDoneCallback/removeDoneCallback", async () => {
  const future = new Future<string>();
  const calls: string[] = [];
  const first = (f: Future<string>) => calls.push(`first:${f.result()}`);
  const removed = () => calls.push("removed");
  future.addDoneCallback(first);
  future.addDoneCallback(removed);
  future.addDoneCallback(removed);
  assert.equal(future.removeDoneCallback(removed), 2);
  assert.equal(future.removeDoneCallback(removed), 0);
  future.setResult("ok");
  assert.deepEqual(calls, [], "callbacks run soon, not inside setResult");
  await future;
  assert.deepEqual(calls, ["first:ok"]);
  // Added after done: still called (soon), with the future. (A Future is
  // thenable, so it is passed through a box, not through resolve().)
  const late = Promise.withResolvers<{ arg: Future<string> }>();
  future.addDoneCallback((f) => late.resolve({ arg: f }));
  const { arg } = await withTimeout(late.promise, 1000, "late callback");
  assert.equal(arg, future);
  assert.deepEqual(calls, ["first:ok"], "each callback runs once");
});

// ---- exception handler ----

Deno.test("events: setExceptionHandler/getExceptionHandler; null restores the default", () => {
  const loop = new EventLoop();
  assert.equal(loop.getExceptionHandler(), null);
  const seen: Array<[EventLoop, ExceptionContext]> = [];
  const handler = (l: EventLoop, c: ExceptionContext) => {
    seen.push([l, c]);
  };
  loop.setExceptionHandler(handler);
  assert.equal(loop.getExceptionHandler(), handler);
  const context = { message: "m", exception: new Error("e"), extra: 1 };
  loop.callExceptionHandler(context);
  assert.equal(seen.length, 1);
  assert.equal(seen[0][0], loop);
  assert.deepEqual(seen[0][1], context);
  loop.setExceptionHandler(null);
  assert.equal(loop.getExceptionHandler(), null);
  assert.throws(() => loop.setExceptionHandler(bad("handler")), TypeError);
  assert.throws(() => loop.setExceptionHandler(bad(undefined)), TypeError);
});

Deno.test("events: the default exception handler logs message and exception to stderr (console.error)", async () => {
  const loop = new EventLoop();
  const error = new Error("kaboom");
  const calls = await captureConsoleError(() => {
    loop.callExceptionHandler({
      message: "something broke",
      exception: error,
      transport: { name: "t" },
    });
  });
  assert.equal(calls.length, 1);
  const text = calls[0].map((a) => a instanceof Error ? a.message : String(a))
    .join(" ");
  assert.match(text, /something broke/);
  assert.match(text, /kaboom/);
  assert.match(text, /transport/);
  // After setExceptionHandler(null) the default is back.
  loop.setExceptionHandler(() => {});
  loop.setExceptionHandler(null);
  const again = await captureConsoleError(() => {
    loop.callExceptionHandler({ message: "second" });
  });
  assert.equal(again.length, 1);
  assert.match(String(again[0][0]), /second/);
});

Deno.test("events: the default exception handler writes to the process's stderr", async () => {
  const events = new URL("../events.ts", import.meta.url).href;
  const code = `import { getEventLoop } from ${JSON.stringify(events)};
getEventLoop().callExceptionHandler({ message: "reported-message", exception: new Error("reported-error") });
console.log("done");`;
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["eval", "--no-config", code],
    env: { NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const stderr = decode(out.stderr);
  assert.equal(out.code, 0, stderr);
  assert.equal(decode(out.stdout).trim(), "done");
  assert.match(stderr, /reported-message/);
  assert.match(stderr, /reported-error/);
});

Deno.test("events: an exception handler that throws does not propagate", async () => {
  const loop = new EventLoop();
  const thrown = new Error("handler is broken");
  loop.setExceptionHandler(() => {
    throw thrown;
  });
  const calls = await captureConsoleError(() => {
    loop.callExceptionHandler({ message: "original problem" });
  });
  assert.equal(calls.length, 1, "the failure is logged by the default handler");
  const text = calls[0].map((a) => a instanceof Error ? a.message : String(a))
    .join(" ");
  assert.match(text, /handler is broken/);
});

Deno.test("events: a task exception never retrieved goes to the handler; a retrieved one does not", async () => {
  const loop = getEventLoop();
  await withHandler(loop, async (contexts) => {
    const ignored = new Error("nobody looks at me");
    loop.createTask(Promise.reject(ignored));
    const awaited = new Error("awaited");
    await assert.rejects(
      Promise.resolve(loop.createTask(Promise.reject(awaited))),
      (e) => e === awaited,
    );
    const done = loop.createFuture<void>();
    loop.callLater(20, () => done.setResult());
    await withTimeout(done, 2000, "callLater");
    assert.equal(contexts.length, 1);
    assert.equal(contexts[0].exception, ignored);
    assert.equal(typeof contexts[0].message, "string");
  });
});

// ---- loop lifecycle ----

Deno.test("events: a closed loop refuses to schedule; Symbol.dispose closes it", () => {
  const loop = new EventLoop();
  assert.equal(loop.isClosed(), false);
  loop.close();
  assert.equal(loop.isClosed(), true);
  assert.throws(() => loop.callSoon(() => {}), Deno.errors.BadResource);
  assert.throws(() => loop.callLater(1, () => {}), Deno.errors.BadResource);
  assert.throws(() => loop.callAt(0, () => {}), Deno.errors.BadResource);
  let disposed: EventLoop;
  {
    using scoped = new EventLoop();
    disposed = scoped;
    assert.equal(scoped.isClosed(), false);
  }
  assert.equal(disposed.isClosed(), true);
});
