// Tests of streams.ts: StreamReader fed by hand (every read kind, limits,
// separators split across chunks, cancellation, a seeded randomized
// chunking test), and reader/writer pairs over real TCP and Unix sockets
// (8 MiB echo, half-close, pausing at 2 × limit, drain after loss,
// startServer callback errors, `await using`).

import assert from "node:assert/strict";
import {
  IncompleteReadError,
  LimitOverrunError,
  openConnection,
  openUnixConnection,
  startServer,
  startUnixServer,
  StreamReader,
  type StreamWriter,
} from "../streams.ts";
import { feedOwnedData } from "../_stream_reader.ts";
import { createConnection, createServer } from "../transports.ts";
import { Protocol } from "../protocols.ts";
import { type ExceptionContext, getEventLoop } from "../events.ts";
import { socketpair } from "../sockets.ts";
import {
  bytesEqual,
  concat,
  decode,
  encode,
  pattern,
  withTimeout,
} from "./_helpers.ts";

const HOST = "127.0.0.1";

/** A reader holding `chunks` (each fed separately), then EOF if `eof`. */
function fed(chunks: Array<string | Uint8Array>, eof = true): StreamReader {
  const reader = new StreamReader();
  for (const chunk of chunks) {
    reader.feedData(typeof chunk === "string" ? encode(chunk) : chunk);
  }
  if (eof) reader.feedEof();
  return reader;
}

/** Lets pending reads run until they wait again (microtasks only). */
async function settle(turns = 10): Promise<void> {
  for (let i = 0; i < turns; i++) await Promise.resolve();
}

/** Whether `promise` is settled after the pending microtasks ran. */
async function isSettled(promise: Promise<unknown>): Promise<boolean> {
  let settled = false;
  promise.then(() => settled = true, () => settled = true);
  await settle();
  return settled;
}

/** Collects what the loop's exception handler gets while `fn` runs. */
async function withExceptionHandler<T>(
  fn: (contexts: ExceptionContext[]) => Promise<T>,
): Promise<T> {
  const contexts: ExceptionContext[] = [];
  const loop = getEventLoop();
  loop.setExceptionHandler((_loop, context) => contexts.push(context));
  try {
    return await fn(contexts);
  } finally {
    loop.setExceptionHandler(null);
  }
}

// ---- StreamReader fed by hand ----

Deno.test("StreamReader: limit is validated as asyncio (64 KiB default)", async () => {
  assert.throws(() => new StreamReader({ limit: 0 }), RangeError);
  assert.throws(() => new StreamReader({ limit: -1 }), RangeError);
  assert.throws(
    () => new StreamReader({ limit: "10" as unknown as number }),
    TypeError,
  );
  assert.throws(() => new StreamReader({ limit: NaN }), TypeError);
  assert.throws(
    () => new StreamReader(null as unknown as { limit: number }),
    TypeError,
  );
  // Default limit: 65536 bytes without a separator are fine...
  const ok = fed([new Uint8Array(65536).fill(97)]);
  const incomplete = await ok.readUntil("\n").catch((e) => e);
  assert.ok(incomplete instanceof IncompleteReadError);
  assert.equal(incomplete.partial.length, 65536);
  // ...one more byte overruns it.
  const over = fed([new Uint8Array(65537).fill(97)]);
  const error = await over.readUntil("\n").catch((e) => e);
  assert.ok(error instanceof LimitOverrunError);
  assert.equal(error.consumed, 65537);
});

Deno.test("StreamReader: read(n) returns what is buffered, up to n", async () => {
  const reader = fed(["hello ", "world"]);
  assert.equal((await reader.read(0)).length, 0);
  assert.equal(decode(await reader.read(3)), "hel");
  assert.equal(decode(await reader.read(100)), "lo world");
  assert.equal((await reader.read(5)).length, 0);
  assert.ok(reader.atEof());
  await assert.rejects(() => reader.read(1.5), RangeError);
  await assert.rejects(
    () => reader.read("1" as unknown as number),
    TypeError,
  );
});

Deno.test("StreamReader: chunks that continue each other in memory (one slab) are read as one view", async () => {
  const slab = pattern(256 * 1024, 5);
  const reader = new StreamReader();
  // Three reads back to back in one slab, then one elsewhere.
  feedOwnedData(reader, slab.subarray(0, 70_000));
  feedOwnedData(reader, slab.subarray(70_000, 150_000));
  feedOwnedData(reader, slab.subarray(150_000, 200_000));
  const other = pattern(10_000, 6);
  feedOwnedData(reader, other);
  const first = await reader.read(65_536);
  assert.deepEqual(first, slab.subarray(0, 65_536));
  // Spans the first two reads: a view of the slab, no copy.
  const spanning = await reader.read(65_536);
  assert.equal(spanning.buffer, slab.buffer, "a view, not a copy");
  assert.equal(spanning.byteOffset, 65_536);
  assert.ok(bytesEqual(spanning, slab.subarray(65_536, 131_072)));
  const rest = await reader.read(200_000 - 131_072);
  assert.equal(rest.buffer, slab.buffer);
  assert.ok(bytesEqual(rest, slab.subarray(131_072, 200_000)));
  // A chunk from another buffer is not joined, whatever its offset.
  assert.ok(bytesEqual(await reader.read(20_000), other));
  reader.feedEof();
  assert.equal((await reader.read()).length, 0);
});

Deno.test("StreamReader: read(n) waits for the first byte, then returns at once", async () => {
  const reader = new StreamReader();
  const pending = reader.read(10);
  assert.equal(await isSettled(pending), false);
  reader.feedData(encode("abc"));
  assert.equal(decode(await pending), "abc");
});

Deno.test("StreamReader: read(-1) and any negative n read to EOF", async () => {
  for (const n of [undefined, -1, -5]) {
    const reader = new StreamReader({ limit: 4 });
    const pending = n === undefined ? reader.read() : reader.read(n);
    reader.feedData(encode("0123456789"));
    reader.feedData(encode("abcdefghij"));
    assert.equal(await isSettled(pending), false);
    reader.feedData(encode("!"));
    reader.feedEof();
    assert.equal(decode(await pending), "0123456789abcdefghij!");
    assert.ok(reader.atEof());
  }
});

Deno.test("StreamReader: readLine returns lines, the partial last line, then empty", async () => {
  const reader = fed(["one\ntw", "o\n", "three"]);
  assert.equal(decode(await reader.readLine()), "one\n");
  assert.equal(decode(await reader.readLine()), "two\n");
  assert.equal(decode(await reader.readLine()), "three");
  assert.equal((await reader.readLine()).length, 0);
  assert.equal((await reader.readLine()).length, 0);
});

Deno.test("StreamReader: readLine over the limit drops through the newline when found", async () => {
  const reader = fed(["0123456789\nnext\n"]);
  const small = new StreamReader({ limit: 5 });
  small.feedData(encode("0123456789\nnext\n"));
  small.feedEof();
  const error = await small.readLine().catch((e) => e);
  assert.ok(error instanceof LimitOverrunError);
  assert.equal(error.consumed, 10);
  assert.equal(decode(await small.readLine()), "next\n");
  // The default limit reads it fine.
  assert.equal(decode(await reader.readLine()), "0123456789\n");
});

Deno.test("StreamReader: readLine over the limit without a newline clears the buffer", async () => {
  const reader = new StreamReader({ limit: 5 });
  reader.feedData(encode("0123456789"));
  const error = await reader.readLine().catch((e) => e);
  assert.ok(error instanceof LimitOverrunError);
  assert.equal(error.consumed, 10);
  reader.feedData(encode("xy\n"));
  assert.equal(decode(await reader.readLine()), "xy\n");
});

Deno.test("StreamReader: readExactly", async () => {
  const reader = fed(["abc", "defg"]);
  assert.equal((await reader.readExactly(0)).length, 0);
  assert.equal(decode(await reader.readExactly(5)), "abcde");
  const error = await reader.readExactly(5).catch((e) => e);
  assert.ok(error instanceof IncompleteReadError);
  assert.equal(decode(error.partial), "fg");
  assert.equal(error.expected, 5);
  assert.match(error.message, /2 bytes read on a total of 5 expected bytes/);
  assert.ok(reader.atEof());
  await assert.rejects(() => reader.readExactly(-1), RangeError);
  await assert.rejects(
    () => reader.readExactly(undefined as unknown as number),
    TypeError,
  );
});

Deno.test("StreamReader: readExactly beyond the limit waits for all of it", async () => {
  const reader = new StreamReader({ limit: 4 });
  const pending = reader.readExactly(20);
  for (let i = 0; i < 20; i++) reader.feedData(new Uint8Array([i]));
  assert.deepEqual([...await pending], [...Array(20).keys()]);
});

Deno.test("StreamReader: readUntil with bytes or string separators", async () => {
  const reader = fed(["a--b", "--c|d"]);
  assert.equal(decode(await reader.readUntil("--")), "a--");
  assert.equal(decode(await reader.readUntil(encode("--"))), "b--");
  assert.equal(decode(await reader.readUntil("|")), "c|");
  const error = await reader.readUntil("|").catch((e) => e);
  assert.ok(error instanceof IncompleteReadError);
  assert.equal(decode(error.partial), "d");
  assert.equal(error.expected, null);
  assert.ok(reader.atEof());
  // Default separator "\n"; UTF-8 separator.
  const text = fed(["x\ny→z"]);
  assert.equal(decode(await text.readUntil()), "x\n");
  assert.equal(decode(await text.readUntil("→")), "y→");
});

Deno.test("StreamReader: readUntil rejects bad separators", async () => {
  const reader = fed(["abc"]);
  await assert.rejects(() => reader.readUntil(""), RangeError);
  await assert.rejects(() => reader.readUntil(new Uint8Array(0)), RangeError);
  await assert.rejects(() => reader.readUntil([]), RangeError);
  await assert.rejects(() => reader.readUntil(["a", ""]), RangeError);
  await assert.rejects(
    () => reader.readUntil(5 as unknown as string),
    TypeError,
  );
  await assert.rejects(
    () => reader.readUntil([null as unknown as string]),
    TypeError,
  );
  assert.equal(decode(await reader.read()), "abc");
});

Deno.test("StreamReader: several separators, the earliest end wins", async () => {
  // "abc" ends before "cd" does, though it is longer.
  assert.equal(
    decode(await fed(["abcd"]).readUntil(["cd", "abc"])),
    "abc",
  );
  // "bc" ends before "abcd".
  assert.equal(decode(await fed(["xabcd"]).readUntil(["abcd", "bc"])), "xabc");
  // Mixed bytes and strings; the next call goes on after the match.
  const reader = fed(["one\r\ntwo\nthree;"]);
  const seps = [encode("\r\n"), "\n", ";"];
  assert.equal(decode(await reader.readUntil(seps)), "one\r\n");
  assert.equal(decode(await reader.readUntil(seps)), "two\n");
  assert.equal(decode(await reader.readUntil(seps)), "three;");
});

Deno.test("StreamReader: several separators ending together, the shorter wins", async () => {
  // "\r\n" and "\n" both end at 4. With "\r\n" the data before it is 2
  // bytes (within limit 2); with "\n" it is 3: the shorter separator is the
  // one that matched, so the limit is overrun at 3 (as CPython 3.13).
  const reader = new StreamReader({ limit: 2 });
  reader.feedData(encode("xx\r\n"));
  const error = await reader.readUntil(["\r\n", "\n"]).catch((e) => e);
  assert.ok(error instanceof LimitOverrunError);
  assert.equal(error.consumed, 3);
  // The data stays in the buffer.
  assert.equal(decode(await reader.readExactly(4)), "xx\r\n");
});

Deno.test("StreamReader: readUntil overrun leaves the data and reports consumed", async () => {
  // Not found within the limit: consumed = buffered + 1 - separator length.
  const reader = new StreamReader({ limit: 8 });
  reader.feedData(encode("0123456789"));
  const notFound = await reader.readUntil("!!").catch((e) => e);
  assert.ok(notFound instanceof LimitOverrunError);
  assert.equal(notFound.consumed, 9);
  assert.match(notFound.message, /not found/);
  // Found, but further than the limit: consumed = where it starts.
  reader.feedData(encode("!!"));
  const found = await reader.readUntil("!!").catch((e) => e);
  assert.ok(found instanceof LimitOverrunError);
  assert.equal(found.consumed, 10);
  assert.match(found.message, /is found/);
  // Nothing was consumed.
  assert.equal(decode(await reader.readExactly(12)), "0123456789!!");
});

Deno.test("StreamReader: readUntil overrun is detected while data trickles in", async () => {
  const reader = new StreamReader({ limit: 8 });
  const pending = reader.readUntil("\n").catch((e) => e);
  for (let i = 0; i < 12; i++) {
    reader.feedData(encode("a"));
    await settle();
  }
  const error = await pending;
  assert.ok(error instanceof LimitOverrunError);
  assert.equal(error.consumed, 9);
});

Deno.test("StreamReader: a separator split at every chunk boundary", async () => {
  const text = "hello<SEP>world<SEP>";
  for (let cut = 0; cut <= text.length; cut++) {
    const reader = new StreamReader();
    const first = reader.readUntil("<SEP>");
    reader.feedData(encode(text.slice(0, cut)));
    await settle();
    reader.feedData(encode(text.slice(cut)));
    reader.feedEof();
    assert.equal(decode(await first), "hello<SEP>", `cut at ${cut}`);
    assert.equal(decode(await reader.readUntil("<SEP>")), "world<SEP>");
  }
});

Deno.test("StreamReader: a long separator spanning several large chunks", async () => {
  const random = prng(99);
  const sep = Uint8Array.from({ length: 1300 }, () => random() * 256);
  const data = concat([pattern(700, 5), sep, encode("tail")]);
  for (const size of [513, 600, 1000, 1301]) {
    const reader = new StreamReader();
    const pending = reader.readUntil(sep);
    for (let at = 0; at < data.length; at += size) {
      reader.feedData(data.subarray(at, at + size));
      await settle();
    }
    reader.feedEof();
    assert.deepEqual(await pending, data.subarray(0, 2000), `size ${size}`);
    assert.equal(decode(await reader.read()), "tail");
  }
});

Deno.test("StreamReader: separators fed one byte at a time", async () => {
  const text = "a\r\nbb;;ccc\r\n;;dd";
  const reader = new StreamReader();
  const results: string[] = [];
  const done = (async () => {
    for (;;) {
      try {
        results.push(decode(await reader.readUntil(["\r\n", ";;"])));
      } catch (error) {
        assert.ok(error instanceof IncompleteReadError);
        results.push(`partial:${decode(error.partial)}`);
        return;
      }
    }
  })();
  for (const byte of encode(text)) {
    reader.feedData(new Uint8Array([byte]));
    await settle(3);
  }
  reader.feedEof();
  await done;
  assert.deepEqual(results, ["a\r\n", "bb;;", "ccc\r\n", ";;", "partial:dd"]);
});

Deno.test("StreamReader: for await yields lines until EOF", async () => {
  const reader = fed(["a\nb", "\n", "c"]);
  const lines: string[] = [];
  for await (const line of reader) lines.push(decode(line));
  assert.deepEqual(lines, ["a\n", "b\n", "c"]);
});

Deno.test("StreamReader: feedData checks its input; feedData after feedEof throws", () => {
  const reader = new StreamReader();
  assert.throws(
    () => reader.feedData("text" as unknown as Uint8Array),
    TypeError,
  );
  reader.feedData(new Uint8Array(0));
  assert.equal(reader.atEof(), false);
  reader.feedEof();
  assert.ok(reader.atEof());
  assert.throws(() => reader.feedData(encode("x")), Deno.errors.BadResource);
});

Deno.test("StreamReader: feedData copies, so the caller may reuse its array", async () => {
  const reader = new StreamReader();
  const data = encode("abc");
  reader.feedData(data);
  data.fill(0);
  assert.equal(decode(await reader.read(3)), "abc");
});

Deno.test("StreamReader: atEof only when EOF was fed and the buffer is empty", async () => {
  const reader = new StreamReader();
  reader.feedData(encode("x"));
  reader.feedEof();
  assert.equal(reader.atEof(), false);
  await reader.read(1);
  assert.equal(reader.atEof(), true);
});

Deno.test("StreamReader: setException fails the waiting and later reads", async () => {
  const reader = new StreamReader();
  reader.feedData(encode("buffered"));
  const waiting = reader.readExactly(100);
  await settle();
  const error = new Deno.errors.ConnectionReset("gone");
  reader.setException(error);
  await assert.rejects(waiting, (e) => e === error);
  assert.equal(reader.exception(), error);
  // asyncio checks the exception first, even with data buffered.
  await assert.rejects(() => reader.read(1), (e) => e === error);
  await assert.rejects(() => reader.readLine(), (e) => e === error);
  await assert.rejects(() => reader.readUntil("x"), (e) => e === error);
  await assert.rejects(() => reader.readExactly(1), (e) => e === error);
  assert.equal(await reader.read(0).catch((e) => e), error);
  assert.throws(
    () => reader.setException("no" as unknown as Error),
    TypeError,
  );
});

Deno.test("StreamReader: a second read waiting at the same time throws Busy", async () => {
  const reader = new StreamReader();
  const first = reader.readLine();
  for (
    const second of [
      () => reader.read(1),
      () => reader.readLine(),
      () => reader.readExactly(1),
      () => reader.readUntil("x"),
    ]
  ) {
    await assert.rejects(second, (e) => {
      assert.ok(e instanceof Deno.errors.Busy);
      assert.match(e.message, /already waiting/);
      return true;
    });
  }
  reader.feedData(encode("line\n"));
  assert.equal(decode(await first), "line\n");
});

Deno.test("StreamReader: an already-aborted signal rejects at once, data buffered", async () => {
  const reader = fed(["line\nmore"]);
  const signal = AbortSignal.abort(new Error("stop"));
  for (
    const op of [
      () => reader.read(10, { signal }),
      () => reader.read(-1, { signal }),
      () => reader.readLine({ signal }),
      () => reader.readExactly(2, { signal }),
      () => reader.readUntil("\n", { signal }),
    ]
  ) {
    await assert.rejects(op, (e) => (e as Error).message === "stop");
  }
  assert.equal(decode(await reader.read()), "line\nmore");
  await assert.rejects(
    () => reader.read(1, { signal: "x" as unknown as AbortSignal }),
    TypeError,
  );
});

Deno.test("StreamReader: an aborted wait consumes nothing, for each read kind", async () => {
  const kinds: Array<[string, (r: StreamReader, s: AbortSignal) => unknown]> = [
    ["read(n)", (r, signal) => r.read(10, { signal })],
    ["read(-1)", (r, signal) => r.read(-1, { signal })],
    ["readLine", (r, signal) => r.readLine({ signal })],
    ["readExactly", (r, signal) => r.readExactly(50, { signal })],
    ["readUntil", (r, signal) => r.readUntil(["\r\n", "END"], { signal })],
  ];
  for (const [name, op] of kinds) {
    const reader = new StreamReader();
    // read(n) waits only on an empty buffer; the others see partial data.
    if (name !== "read(n)") reader.feedData(encode("partial "));
    const controller = new AbortController();
    const pending = op(reader, controller.signal) as Promise<unknown>;
    reader.feedData(name === "read(n)" ? new Uint8Array(0) : encode("data "));
    assert.equal(await isSettled(pending), false, name);
    const reason = new Error(`cancel ${name}`);
    controller.abort(reason);
    await assert.rejects(pending, (e) => e === reason);
    reader.feedData(encode("tail\n"));
    reader.feedEof();
    const expected = name === "read(n)" ? "tail\n" : "partial data tail\n";
    assert.equal(decode(await reader.read()), expected, name);
  }
});

Deno.test("StreamReader: data and abort in the same turn: the abort wins, nothing consumed", async () => {
  const reader = new StreamReader();
  const controller = new AbortController();
  const pending = reader.readLine({ signal: controller.signal });
  await settle();
  reader.feedData(encode("line\n"));
  controller.abort(new Error("late"));
  await assert.rejects(pending, (e) => (e as Error).message === "late");
  assert.equal(decode(await reader.readLine()), "line\n");
});

Deno.test("StreamReader: after an aborted read the next read may wait", async () => {
  const reader = new StreamReader();
  const controller = new AbortController();
  const first = reader.readLine({ signal: controller.signal });
  controller.abort();
  await assert.rejects(first, (e) => (e as Error).name === "AbortError");
  const second = reader.readLine();
  reader.feedData(encode("ok\n"));
  assert.equal(decode(await second), "ok\n");
});

// ---- Seeded randomized chunking ----

/** mulberry32: a small, fixed-seed PRNG. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

type Op =
  | { kind: "readLine" }
  | { kind: "readUntil"; seps: string[] }
  | { kind: "readExactly"; n: number }
  | { kind: "read"; n: number };

type Outcome = { kind: "ok" | "incomplete"; bytes: string };

/** What asyncio would return for `op` at `pos` of `data` (all of it fed). */
function model(data: string, pos: number, op: Op): [Outcome, number] {
  const rest = data.slice(pos);
  switch (op.kind) {
    case "read": {
      throw new Error("read(n) depends on chunking");
    }
    case "readExactly":
      if (rest.length < op.n) {
        return [{ kind: "incomplete", bytes: rest }, data.length];
      }
      return [{ kind: "ok", bytes: rest.slice(0, op.n) }, pos + op.n];
    case "readLine":
    case "readUntil": {
      const seps = op.kind === "readLine" ? ["\n"] : op.seps;
      for (let end = 1; end <= rest.length; end++) {
        if (
          seps.some((s) =>
            end >= s.length && rest.slice(end - s.length, end) === s
          )
        ) {
          return [{ kind: "ok", bytes: rest.slice(0, end) }, pos + end];
        }
      }
      if (op.kind === "readLine") {
        return [{ kind: "ok", bytes: rest }, data.length];
      }
      return [{ kind: "incomplete", bytes: rest }, data.length];
    }
  }
}

async function run(reader: StreamReader, op: Op): Promise<Outcome> {
  try {
    let bytes: Uint8Array;
    switch (op.kind) {
      case "read":
        bytes = await reader.read(op.n);
        break;
      case "readExactly":
        bytes = await reader.readExactly(op.n);
        break;
      case "readLine":
        bytes = await reader.readLine();
        break;
      case "readUntil":
        bytes = await reader.readUntil(op.seps);
        break;
    }
    return { kind: "ok", bytes: latin1(bytes) };
  } catch (error) {
    if (error instanceof IncompleteReadError) {
      return { kind: "incomplete", bytes: latin1(error.partial) };
    }
    throw error;
  }
}

function latin1(bytes: Uint8Array): string {
  let s = "";
  for (const b of bytes) s += String.fromCharCode(b);
  return s;
}

function fromLatin1(text: string): Uint8Array {
  return Uint8Array.from(text, (c) => c.charCodeAt(0));
}

Deno.test("StreamReader: 250 random chunkings give every read the same result", async () => {
  const random = prng(20240613);
  const alphabet = "ab\n\r;XY-";
  let data = "";
  while (data.length < 4000) {
    data += random() < 0.05
      ? "x".repeat(Math.floor(random() * 900)) // long runs cross chunk stores
      : alphabet[Math.floor(random() * alphabet.length)];
  }
  const sepChoices = [["\r\n"], ["XY", ";"], [";;", "\n", "ab"], ["-Y-X"]];
  const ops: Op[] = [];
  for (let i = 0; i < 600; i++) {
    const r = random();
    if (r < 0.25) ops.push({ kind: "readLine" });
    else if (r < 0.55) {
      ops.push({
        kind: "readUntil",
        seps: sepChoices[Math.floor(random() * sepChoices.length)],
      });
    } else if (r < 0.8) {
      ops.push({ kind: "readExactly", n: 1 + Math.floor(random() * 60) });
    } else ops.push({ kind: "read", n: 1 + Math.floor(random() * 80) });
  }
  const bytes = fromLatin1(data);
  for (let round = 0; round < 250; round++) {
    // Chunk sizes: single bytes, small, around the 512-byte packing
    // threshold, and large.
    const chunks: Uint8Array[] = [];
    const style = round % 4;
    for (let at = 0; at < bytes.length;) {
      const size = style === 0
        ? 1 + Math.floor(random() * 3)
        : style === 1
        ? 1 + Math.floor(random() * 40)
        : style === 2
        ? 400 + Math.floor(random() * 300)
        : 1 + Math.floor(random() * 3000);
      // Views of one buffer, back to back, as consecutive reads into a
      // transport's slab; or separate copies.
      chunks.push(
        random() < 0.5
          ? bytes.subarray(at, at + size)
          : bytes.slice(at, at + size),
      );
      at += size;
    }
    const reader = new StreamReader();
    const feeder = (async () => {
      for (const chunk of chunks) {
        // Both the copying path and the owned (transport) path.
        if (random() < 0.5) reader.feedData(chunk);
        else feedOwnedData(reader, chunk);
        const turns = Math.floor(random() * 4);
        for (let t = 0; t < turns; t++) await Promise.resolve();
      }
      reader.feedEof();
    })();
    let pos = 0;
    for (const [index, op] of ops.entries()) {
      const got = await run(reader, op);
      if (op.kind === "read") {
        const want = data.slice(pos, pos + got.bytes.length);
        assert.equal(got.bytes, want, `round ${round} op ${index} read`);
        assert.ok(
          got.bytes.length <= op.n &&
            (got.bytes.length > 0 || pos === data.length),
          `round ${round} op ${index}: read(${op.n}) gave ${got.bytes.length}`,
        );
        pos += got.bytes.length;
        continue;
      }
      const [want, next] = model(data, pos, op);
      assert.deepEqual(got, want, `round ${round} op ${index} ${op.kind}`);
      pos = next;
    }
    await feeder;
    assert.equal(decode(await reader.read()), data.slice(pos));
  }
});

// ---- Over TCP ----

/** A server running `handler` and a client connected to it. */
async function connectedPair(
  handler: (
    reader: StreamReader,
    writer: StreamWriter,
  ) => void | Promise<void>,
  options: { serverLimit?: number; clientLimit?: number } = {},
) {
  const server = await startServer(handler, {
    hostname: HOST,
    port: 0,
    limit: options.serverLimit,
  });
  const { port } = server.addrs[0] as Deno.NetAddr;
  const [reader, writer] = await openConnection({
    hostname: HOST,
    port,
    limit: options.clientLimit,
  });
  return { server, reader, writer, port };
}

async function echoHandler(reader: StreamReader, writer: StreamWriter) {
  for (;;) {
    const data = await reader.read(65536);
    if (data.length === 0) break;
    writer.write(data);
    await writer.drain();
  }
  writer.close();
}

Deno.test("streams over TCP: 8 MiB echo is byte-exact", async () => {
  const { server, reader, writer } = await connectedPair(echoHandler);
  const payload = pattern(8 * 1024 * 1024, 7);
  const sending = (async () => {
    for (let at = 0; at < payload.length; at += 100_000) {
      writer.write(payload.subarray(at, at + 100_000));
      await writer.drain();
    }
    writer.writeEof();
  })();
  const received = await withTimeout(reader.read(), 20_000, "the echo");
  await sending;
  assert.equal(received.length, payload.length);
  assert.ok(received.every((b, i) => b === payload[i]), "bytes differ");
  writer.close();
  await writer.waitClosed();
  server.close();
  await server.waitClosed();
});

Deno.test("streams over TCP: half-close, the server reads to EOF and still answers", async () => {
  const { server, reader, writer } = await connectedPair(async (r, w) => {
    const all = await r.read();
    assert.ok(r.atEof());
    w.write(encode(`got ${all.length} bytes: ${decode(all)}\n`));
    await w.drain();
    w.close();
    await w.waitClosed();
  });
  assert.equal(writer.canWriteEof(), true);
  writer.writeLines([encode("hello "), encode("world")]);
  writer.writeEof();
  assert.throws(() => writer.write(encode("late")), Deno.errors.BadResource);
  const answer = await withTimeout(reader.readLine(), 5000, "the answer");
  assert.equal(decode(answer), "got 11 bytes: hello world\n");
  assert.equal((await reader.read()).length, 0);
  writer.close();
  await writer.waitClosed();
  server.close();
  await server.waitClosed();
});

Deno.test("streams over TCP: openConnection and startServer options", async () => {
  await assert.rejects(
    () => openConnection({ hostname: HOST, port: 1, limit: 0 }),
    RangeError,
  );
  await assert.rejects(
    () =>
      openConnection({
        hostname: HOST,
        port: 1,
        limit: "1" as unknown as number,
      }),
    TypeError,
  );
  await assert.rejects(
    () => startServer(() => {}, { hostname: HOST, port: 0, limit: -1 }),
    RangeError,
  );
  await assert.rejects(
    () => startServer("no" as unknown as () => void, { port: 0 }),
    TypeError,
  );
  await assert.rejects(
    () => openConnection(undefined as unknown as { port: number }),
    TypeError,
  );
});

Deno.test("streams over TCP: writer basics and getExtraInfo", async () => {
  const peer = Promise.withResolvers<unknown>();
  const { server, reader, writer, port } = await connectedPair((r, w) => {
    peer.resolve(w.getExtraInfo("peername"));
    void r;
    w.close();
  });
  assert.throws(() => writer.write("text" as unknown as Uint8Array), TypeError);
  const sockname = writer.getExtraInfo("sockname") as Deno.NetAddr;
  const peername = writer.getExtraInfo("peername") as Deno.NetAddr;
  assert.equal(peername.port, port);
  assert.equal(peername.hostname, HOST);
  assert.equal((await peer.promise as Deno.NetAddr).port, sockname.port);
  assert.equal(writer.getExtraInfo("nope", 42), 42);
  assert.ok(writer.transport.getWriteBufferLimits()[1] > 0);
  // The server closed: EOF, and the transport stays open for writing.
  assert.equal((await withTimeout(reader.read(), 5000, "EOF")).length, 0);
  assert.equal(writer.isClosing(), false);
  writer.close();
  assert.equal(writer.isClosing(), true);
  await writer.waitClosed();
  server.close();
  await server.waitClosed();
});

Deno.test("streams over TCP: await using closes the writer and waits", async () => {
  const sawEof = Promise.withResolvers<number>();
  const server = await startServer(async (r, w) => {
    sawEof.resolve((await r.read()).length);
    w.close();
  }, { hostname: HOST, port: 0 });
  const { port } = server.addrs[0] as Deno.NetAddr;
  let kept: StreamWriter;
  {
    await using writer = (await openConnection({ hostname: HOST, port }))[1];
    kept = writer;
    writer.write(encode("12345"));
  }
  assert.equal(kept.isClosing(), true);
  assert.equal(await withTimeout(sawEof.promise, 5000, "the server"), 5);
  await assert.rejects(() => kept.drain(), Deno.errors.ConnectionReset);
  server.close();
  await server.waitClosed();
});

Deno.test("streams over TCP: the reader pauses its transport above 2 × limit", async () => {
  // A real transport whose reading the reader controls; the data is fed by
  // hand so the buffered amount is exact.
  const server = await createServer(() => new Protocol(), {
    hostname: HOST,
    port: 0,
  });
  const { port } = server.addrs[0] as Deno.NetAddr;
  const [transport] = await createConnection(() => new Protocol(), {
    hostname: HOST,
    port,
  });
  const reader = new StreamReader({ limit: 10 });
  reader.setTransport(transport);
  assert.throws(
    () => reader.setTransport(transport),
    Deno.errors.AlreadyExists,
  );
  assert.throws(
    () => new StreamReader().setTransport({} as typeof transport),
    TypeError,
  );
  reader.feedData(new Uint8Array(20));
  assert.equal(transport.isReading(), true, "20 bytes is not above 2 × 10");
  reader.feedData(new Uint8Array(1));
  assert.equal(transport.isReading(), false, "21 bytes pause");
  await reader.read(10);
  assert.equal(transport.isReading(), false, "11 bytes left: still paused");
  await reader.read(1);
  assert.equal(transport.isReading(), true, "10 bytes left: resumed");
  // Waiting for more than is buffered resumes a paused transport.
  reader.feedData(new Uint8Array(20));
  assert.equal(transport.isReading(), false);
  const waiting = reader.readExactly(100);
  await settle();
  assert.equal(transport.isReading(), true, "a waiting read resumes");
  reader.feedEof();
  await assert.rejects(waiting, IncompleteReadError);
  transport.close();
  server.close();
  await server.waitClosed();
});

Deno.test("streams over TCP: a reader that is not read stops the sender", async () => {
  const paused = Promise.withResolvers<void>();
  const go = Promise.withResolvers<void>();
  let serverReading: () => boolean = () => true;
  const result = Promise.withResolvers<[number, boolean]>();
  const { server, writer } = await connectedPair(async (r, w) => {
    const transport = w.transport;
    serverReading = () => transport.isReading();
    const pause = transport.pauseReading.bind(transport);
    transport.pauseReading = () => {
      pause();
      paused.resolve();
    };
    await go.promise;
    let got = 0;
    for (;;) {
      const data = await r.read(4096);
      if (data.length === 0) break;
      got += data.length;
    }
    // Everything was read: reading resumed (checked before close()).
    result.resolve([got, w.transport.isReading()]);
    w.close();
  }, { serverLimit: 4096 });
  // Write until the client's drain has to wait: the server stopped reading.
  const chunk = new Uint8Array(256 * 1024);
  let total = 0;
  let drained: Promise<void> | null = null;
  for (let i = 0; i < 400 && drained === null; i++) {
    writer.write(chunk);
    total += chunk.length;
    const d = writer.drain();
    if (!await isSettled(d)) drained = d;
    else await d;
  }
  assert.ok(drained !== null, "writing never paused");
  await withTimeout(paused.promise, 5000, "the server to pause reading");
  assert.equal(serverReading(), false);
  go.resolve();
  await withTimeout(drained, 10_000, "drain");
  writer.writeEof();
  assert.deepEqual(
    await withTimeout(result.promise, 10_000, "the server"),
    [total, true],
  );
  writer.close();
  await writer.waitClosed();
  server.close();
  await server.waitClosed();
});

Deno.test("streams over TCP: drain rejects when the connection is lost while paused", async () => {
  const serverWriter = Promise.withResolvers<StreamWriter>();
  const { server, writer, reader } = await connectedPair((_r, w) => {
    serverWriter.resolve(w);
  });
  const peer = await serverWriter.promise;
  // The server never reads: fill the socket buffers until writing pauses.
  const chunk = new Uint8Array(256 * 1024);
  let drained: Promise<void> | null = null;
  for (let i = 0; i < 200 && drained === null; i++) {
    writer.write(chunk);
    const d = writer.drain();
    if (!await isSettled(d)) drained = d;
    else await d;
  }
  assert.ok(drained !== null, "writing never paused");
  // Closing with unread data makes the kernel reset the connection.
  peer.transport.abort();
  const error = await withTimeout(
    drained.then(() => null, (e) => e),
    10_000,
    "drain to reject",
  );
  assert.ok(
    error instanceof Deno.errors.ConnectionReset ||
      error instanceof Deno.errors.BrokenPipe,
    `drain rejected with ${error}`,
  );
  // Never resolves afterwards either; reads fail with the same error.
  await assert.rejects(() => writer.drain(), (e) => e === error);
  await assert.rejects(() => reader.read(), (e) => e === error);
  await assert.rejects(() => writer.waitClosed(), (e) => e === error);
  server.close();
  await server.waitClosed();
});

Deno.test("streams over TCP: drain after a clean close rejects with ConnectionReset", async () => {
  const { server, writer } = await connectedPair((_r, w) => w.close());
  await writer.drain();
  writer.close();
  await writer.waitClosed();
  await assert.rejects(() => writer.drain(), Deno.errors.ConnectionReset);
  await assert.rejects(
    () => writer.drain({ signal: "x" as unknown as AbortSignal }),
    TypeError,
  );
  server.close();
  await server.waitClosed();
});

Deno.test("streams over TCP: drain waits while paused and can be cancelled", async () => {
  const go = Promise.withResolvers<void>();
  const { server, writer } = await connectedPair(async (r, w) => {
    await go.promise;
    await r.read();
    w.close();
  });
  const chunk = new Uint8Array(256 * 1024);
  const controller = new AbortController();
  let drained: Promise<void> | null = null;
  for (let i = 0; i < 200 && drained === null; i++) {
    writer.write(chunk);
    const d = writer.drain({ signal: controller.signal });
    if (!await isSettled(d)) drained = d;
    else await d;
  }
  assert.ok(drained !== null, "writing never paused");
  const reason = new Error("enough");
  controller.abort(reason);
  await assert.rejects(drained, (e) => e === reason);
  await assert.rejects(
    () => writer.drain({ signal: controller.signal }),
    (e) => e === reason,
  );
  // Another drain still waits, and resolves once the peer reads.
  const again = writer.drain();
  assert.equal(await isSettled(again), false);
  go.resolve();
  await withTimeout(again, 10_000, "drain");
  writer.close();
  await writer.waitClosed();
  server.close();
  await server.waitClosed();
});

/** Counts the bytes a stream's transport delivers; `until(n)` waits for n. */
function countArrivals(writer: StreamWriter) {
  const protocol = writer.transport.getProtocol() as Protocol;
  const dataReceived = protocol.dataReceived.bind(protocol);
  let total = 0;
  let waiter: { n: number; resolve: () => void } | null = null;
  protocol.dataReceived = (data: Uint8Array) => {
    dataReceived(data);
    total += data.length;
    if (waiter !== null && total >= waiter.n) waiter.resolve();
  };
  return {
    until(n: number): Promise<void> {
      if (total >= n) return Promise.resolve();
      const { promise, resolve } = Promise.withResolvers<void>();
      waiter = { n, resolve };
      return withTimeout(promise, 5000, `${n} bytes to arrive`);
    },
  };
}

Deno.test("streams over TCP: a cancelled read consumes nothing, for each read kind", async () => {
  const serverWriter = Promise.withResolvers<StreamWriter>();
  const { server, reader, writer } = await connectedPair((_r, w) => {
    serverWriter.resolve(w);
  });
  const peer = await serverWriter.promise;
  const arrivals = countArrivals(writer);
  let sent = 0;
  const send = (text: string) => {
    peer.write(encode(text));
    sent += encode(text).length;
  };
  const kinds: Array<[string, (s: AbortSignal) => Promise<unknown>]> = [
    ["readLine", (signal) => reader.readLine({ signal })],
    ["readUntil", (signal) => reader.readUntil("\r\n", { signal })],
    ["readExactly", (signal) => reader.readExactly(40, { signal })],
    ["read(-1)", (signal) => reader.read(-1, { signal })],
  ];
  for (const [name, op] of kinds) {
    const controller = new AbortController();
    const pending = op(controller.signal);
    send(`${name} first half `);
    // The first half is in the reader's buffer, the read still waits.
    await arrivals.until(sent);
    assert.equal(await isSettled(pending), false, name);
    controller.abort(new Error(name));
    await assert.rejects(pending, (e) => (e as Error).message === name);
    send(`second half\r\n${"z".repeat(30)}`);
    assert.equal(
      decode(await withTimeout(reader.readUntil("\r\n"), 5000, name)),
      `${name} first half second half\r\n`,
    );
    assert.equal(decode(await reader.readExactly(30)), "z".repeat(30));
  }
  // read(n) waits only on an empty buffer: cancelled there, the bytes that
  // come next go to the next read.
  const controller = new AbortController();
  const pending = reader.read(100, { signal: controller.signal });
  assert.equal(await isSettled(pending), false);
  controller.abort();
  await assert.rejects(pending, (e) => (e as Error).name === "AbortError");
  send("after");
  assert.equal(
    decode(await withTimeout(reader.readExactly(5), 5000, "read")),
    "after",
  );
  peer.close();
  assert.equal((await withTimeout(reader.read(), 5000, "EOF")).length, 0);
  writer.close();
  await writer.waitClosed();
  server.close();
  await server.waitClosed();
});

Deno.test("streams over TCP: an error in the startServer callback closes that connection only", async () => {
  await withExceptionHandler(async (contexts) => {
    let calls = 0;
    const boom = new Error("sync boom");
    const rejected = new Error("async boom");
    const server = await startServer(async (r, w) => {
      calls++;
      if (calls === 1) throw boom; // before any await: still a rejection
      if (calls === 2) {
        await r.readLine();
        throw rejected;
      }
      w.write(await r.readLine());
      w.close();
    }, { hostname: HOST, port: 0 });
    const { port } = server.addrs[0] as Deno.NetAddr;

    const [r1, w1] = await openConnection({ hostname: HOST, port });
    assert.equal((await withTimeout(r1.read(), 5000, "EOF 1")).length, 0);
    const [r2, w2] = await openConnection({ hostname: HOST, port });
    w2.write(encode("go\n"));
    assert.equal((await withTimeout(r2.read(), 5000, "EOF 2")).length, 0);
    // The server goes on.
    const [r3, w3] = await openConnection({ hostname: HOST, port });
    w3.write(encode("still here\n"));
    assert.equal(
      decode(await withTimeout(r3.read(), 5000, "echo")),
      "still here\n",
    );

    const reported = contexts.map((c) => c.exception);
    assert.deepEqual(reported, [boom, rejected]);
    for (const context of contexts) {
      assert.match(context.message, /client_connected_cb/);
      assert.ok(context.transport !== undefined);
    }
    for (const w of [w1, w2, w3]) {
      w.close();
      await w.waitClosed();
    }
    server.close();
    await server.waitClosed();
  });
});

Deno.test("streams over TCP: a synchronous callback that throws is reported too", async () => {
  await withExceptionHandler(async (contexts) => {
    const boom = new Error("plain function");
    const server = await startServer(() => {
      throw boom;
    }, { hostname: HOST, port: 0 });
    const { port } = server.addrs[0] as Deno.NetAddr;
    const [reader, writer] = await openConnection({ hostname: HOST, port });
    assert.equal((await withTimeout(reader.read(), 5000, "EOF")).length, 0);
    assert.equal(contexts.length, 1);
    assert.equal(contexts[0].exception, boom);
    writer.close();
    await writer.waitClosed();
    server.close();
    await server.waitClosed();
  });
});

Deno.test("streams over TCP: for await over lines from a peer", async () => {
  const { server, reader, writer } = await connectedPair(async (_r, w) => {
    w.write(encode("alpha\nbeta\ngam"));
    await w.drain();
    w.write(encode("ma\ndelta"));
    w.close();
  });
  const lines: string[] = [];
  for await (const line of reader) lines.push(decode(line));
  assert.deepEqual(lines, ["alpha\n", "beta\n", "gamma\n", "delta"]);
  writer.close();
  await writer.waitClosed();
  server.close();
  await server.waitClosed();
});

// ---- Unix sockets ----

Deno.test("streams over Unix sockets: echo, half-close and limit", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/streams.sock`;
    const server = await startUnixServer(async (r, w) => {
      const line = await r.readLine();
      w.write(concat([encode("echo: "), line]));
      const rest = await r.read();
      w.write(encode(`rest ${rest.length}\n`));
      await w.drain();
      w.close();
    }, { path, limit: 1024 });
    assert.equal((server.addrs[0] as Deno.UnixAddr).path, path);
    const [reader, writer] = await openUnixConnection({ path });
    writer.write(encode("hello unix\n"));
    writer.write(new Uint8Array(5000));
    writer.writeEof();
    assert.equal(
      decode(await withTimeout(reader.readLine(), 5000, "echo")),
      "echo: hello unix\n",
    );
    assert.equal(decode(await reader.readLine()), "rest 5000\n");
    assert.equal((await reader.read()).length, 0);
    writer.close();
    await writer.waitClosed();
    server.close();
    await server.waitClosed();
    await assert.rejects(
      () => openUnixConnection({ path, limit: 0 }),
      RangeError,
    );
    await assert.rejects(
      () => startUnixServer(() => {}, { path, limit: 0 }),
      RangeError,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("streams over Unix sockets: 1 MiB echo with a small limit", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/echo.sock`;
    const server = await startUnixServer(echoHandler, { path, limit: 2048 });
    const [reader, writer] = await openUnixConnection({ path, limit: 2048 });
    const payload = pattern(1024 * 1024, 3);
    writer.write(payload);
    writer.writeEof();
    const received = await withTimeout(reader.read(), 10_000, "the echo");
    assert.equal(received.length, payload.length);
    assert.ok(received.every((b, i) => b === payload[i]));
    writer.close();
    await writer.waitClosed();
    server.close();
    await server.waitClosed();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("openConnection({ sock }) takes an aionet Socket: a socketpair end, as seed S004-j", async () => {
  const loop = getEventLoop();
  const [rsock, wsock] = socketpair();
  try {
    const [reader, writer] = await openConnection({ sock: rsock });
    assert.equal(rsock.fileno(), -1, "the stream owns it now");
    loop.callSoon(() => wsock.send(encode("This is a test.")));
    assert.equal(
      decode(await withTimeout(reader.read(100), 5000, "the data")),
      "This is a test.",
    );
    writer.close();
    await withTimeout(writer.waitClosed(), 5000, "the close");
  } finally {
    wsock.close();
  }
});

Deno.test("StreamReader: short results (pooled) stay intact and separate while later reads go on", async () => {
  const reader = new StreamReader();
  const encoder = new TextEncoder();
  const expected: string[] = [];
  // 3,000 lines of varied length, fed in odd-sized chunks so that some
  // lines lie within one chunk (copied out) and some across two (joined).
  let text = "";
  for (let i = 0; i < 3000; i++) {
    const line = `${i}:${"x".repeat(i % 97)}\n`;
    expected.push(line);
    text += line;
  }
  const bytes = encoder.encode(text);
  for (
    let at = 0, size = 1;
    at < bytes.length;
    at += size, size = size * 7 % 1000 + 1
  ) {
    feedOwnedData(reader, bytes.slice(at, at + size));
  }
  reader.feedEof();
  const lines: Uint8Array[] = [];
  for await (const line of reader) lines.push(line);
  // Every kept result still holds its own bytes.
  const decoder = new TextDecoder();
  assert.deepEqual(lines.map((line) => decoder.decode(line)), expected);
  // Writing into one result changes no other.
  lines[0].fill(0x21);
  assert.equal(decoder.decode(lines[1]), expected[1]);
  assert.equal(decoder.decode(lines[2999]), expected[2999]);
});

Deno.test("StreamReader: readUntil with many different string separators (past the encoding cache's bound) finds each", async () => {
  const reader = new StreamReader();
  const encoder = new TextEncoder();
  const separators = Array.from({ length: 150 }, (_, i) => `<${i}>`);
  reader.feedData(
    encoder.encode(separators.map((s, i) => `part${i}${s}`).join("")),
  );
  reader.feedEof();
  const decoder = new TextDecoder();
  for (const [i, separator] of separators.entries()) {
    assert.equal(
      decoder.decode(await reader.readUntil(separator)),
      `part${i}${separator}`,
    );
  }
  assert.equal((await reader.read()).length, 0);
  // The first separators again, after they left the bounded cache.
  const again = new StreamReader();
  again.feedData(encoder.encode("x<0>y<1>"));
  assert.equal(decoder.decode(await again.readUntil("<0>")), "x<0>");
  assert.equal(decoder.decode(await again.readUntil("<1>")), "y<1>");
});
