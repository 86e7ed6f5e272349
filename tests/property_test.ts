// Property tests with seeded random cases (replay a failure from the seed
// printed in the assertion message):
//
// 1. StreamReader against a small reference model of asyncio's
//    StreamReader (3.13 semantics): random feedData chunkings, read(n),
//    readLine, readExactly, readUntil with 1–3 separators, feedEof,
//    aborted reads, concurrent reads, setException, and the pause/resume
//    calls it makes on its transport.
// 2. Transport callback order (made → data* → eof? → lost once) on real
//    loopback sockets under random writes, pauses, half-closes, closes
//    and aborts on both ends, with byte-exact delivery when nothing was
//    cut short.

import assert from "node:assert/strict";
import {
  createConnection,
  createServer,
  IncompleteReadError,
  LimitOverrunError,
  Protocol,
  StreamReader,
  type Transport,
} from "../mod.ts";
import { SO_SNDBUF, SOL_SOCKET } from "../sockets.ts";
import { BACKEND, bytesEqual, concat, Prng, withTimeout } from "./_helpers.ts";

// ---------------------------------------------------------------------------
// 1. StreamReader vs a reference model
// ---------------------------------------------------------------------------

const READER_CASES = 300;
const STEPS_PER_CASE = 40;
const ALPHABET = [0x61, 0x62, 0x0a, 0x0d, 0x78]; // a b \n \r x

/** Lets every pending promise chain inside StreamReader run (no I/O). */
async function flushMicrotasks(): Promise<void> {
  for (let i = 0; i < 64; i++) await Promise.resolve();
}

/** A transport stub that records the reader's flow-control calls. */
class FlowRecorder {
  paused = false;
  calls: string[] = [];
  violations: string[] = [];
  pauseReading(): void {
    if (this.paused) this.violations.push("pause while paused");
    this.paused = true;
    this.calls.push("pause");
  }
  resumeReading(): void {
    if (!this.paused) this.violations.push("resume while not paused");
    this.paused = false;
    this.calls.push("resume");
  }
}

type ReadOp =
  | { kind: "read"; n: number }
  | { kind: "readLine" }
  | { kind: "readExactly"; n: number }
  | { kind: "readUntil"; seps: Uint8Array[]; arg: unknown };

/** What the model expects from a read right now. */
type Outcome =
  | { kind: "block" }
  | { kind: "value"; value: Uint8Array; commit: () => void }
  | {
    kind: "error";
    check: (e: unknown) => boolean;
    commit: () => void;
    /** readuntil() ran out of limit: the `consumed` it reports. */
    overrun?: number;
    /** readuntil() hit EOF without a separator. */
    incomplete?: boolean;
  };

/** asyncio's StreamReader, as plainly as possible. */
class ReaderModel {
  buffer: number[] = [];
  eof = false;
  exception: Error | null = null;
  paused = false;
  readonly limit: number;

  constructor(limit: number) {
    this.limit = limit;
  }

  feed(bytes: Uint8Array): void {
    if (bytes.length === 0) return;
    this.buffer.push(...bytes);
    if (!this.paused && this.buffer.length > 2 * this.limit) {
      this.paused = true;
    }
  }

  /** Called when a read has to wait: waiting while paused resumes. */
  onWait(): void {
    this.paused = false;
  }

  #maybeResume(): void {
    if (this.paused && this.buffer.length <= this.limit) this.paused = false;
  }

  #take(n: number): Uint8Array {
    const out = new Uint8Array(this.buffer.slice(0, n));
    this.buffer.splice(0, n);
    return out;
  }

  #value(n: number, resume = true): Outcome {
    const value = new Uint8Array(this.buffer.slice(0, n));
    return {
      kind: "value",
      value,
      commit: () => {
        this.#take(n);
        if (resume) this.#maybeResume();
      },
    };
  }

  #error(check: (e: unknown) => boolean, commit = () => {}): Outcome {
    return { kind: "error", check, commit };
  }

  #find(sep: Uint8Array): number {
    const b = this.buffer;
    outer: for (let i = 0; i + sep.length <= b.length; i++) {
      for (let j = 0; j < sep.length; j++) {
        if (b[i + j] !== sep[j]) continue outer;
      }
      return i;
    }
    return -1;
  }

  /** readuntil() as CPython 3.13 evaluates it on the current buffer. */
  #readUntil(separators: Uint8Array[]): Outcome {
    const seps = [...separators].sort((a, b) => a.length - b.length);
    const minLength = seps[0].length;
    const maxLength = seps[seps.length - 1].length;
    const size = this.buffer.length;
    if (size >= minLength) {
      let matchStart = -1;
      let matchEnd = -1;
      for (const sep of seps) {
        const at = this.#find(sep);
        if (at !== -1 && (matchEnd === -1 || at + sep.length < matchEnd)) {
          matchStart = at;
          matchEnd = at + sep.length;
        }
      }
      if (matchEnd !== -1) {
        if (matchStart > this.limit) {
          return {
            ...this.#error((e) =>
              e instanceof LimitOverrunError && e.consumed === matchStart
            ),
            overrun: matchStart,
          } as Outcome;
        }
        return this.#value(matchEnd);
      }
      const offset = Math.max(0, size + 1 - maxLength);
      if (offset > this.limit) {
        return {
          ...this.#error((e) =>
            e instanceof LimitOverrunError && e.consumed === offset
          ),
          overrun: offset,
        } as Outcome;
      }
    }
    if (this.eof) {
      const partial = new Uint8Array(this.buffer);
      return {
        ...this.#error(
          (e) =>
            e instanceof IncompleteReadError && e.expected === null &&
            bytesEqual(e.partial, partial),
          () => this.#take(size),
        ),
        incomplete: true,
      } as Outcome;
    }
    return { kind: "block" };
  }

  evaluate(op: ReadOp, aborted: boolean): Outcome {
    if (op.kind === "readExactly" && op.n < 0) {
      return this.#error((e) => e instanceof RangeError);
    }
    if (aborted) return this.#error((e) => e === ABORT_REASON);
    if (this.exception !== null) {
      const exc = this.exception;
      return this.#error((e) => e === exc);
    }
    const size = this.buffer.length;
    switch (op.kind) {
      case "read":
        if (op.n === 0) return this.#value(0, false);
        if (op.n < 0) return this.eof ? this.#value(size) : { kind: "block" };
        if (size === 0 && !this.eof) return { kind: "block" };
        return this.#value(Math.min(op.n, size));
      case "readExactly":
        if (op.n === 0) return this.#value(0, false);
        if (size >= op.n) return this.#value(op.n);
        if (this.eof) {
          const partial = new Uint8Array(this.buffer);
          const n = op.n;
          return this.#error(
            (e) =>
              e instanceof IncompleteReadError && e.expected === n &&
              bytesEqual(e.partial, partial),
            () => this.#take(size),
          );
        }
        return { kind: "block" };
      case "readUntil":
        return this.#readUntil(op.seps);
      case "readLine": {
        const outcome = this.#readUntil([NEWLINE]);
        if (outcome.kind !== "error") return outcome;
        if (outcome.incomplete) {
          // readLine() returns the partial last line instead.
          return {
            kind: "value",
            value: new Uint8Array(this.buffer),
            commit: () => this.#take(size),
          };
        }
        // LimitOverrunError: cut through the newline, or clear.
        const consumed = outcome.overrun!;
        return this.#error(
          (e) => e instanceof LimitOverrunError && e.consumed === consumed,
          () => {
            const cut = this.buffer[consumed] === 0x0a ? consumed + 1 : size;
            this.buffer.splice(0, cut);
            this.#maybeResume();
          },
        );
      }
    }
  }
}

const NEWLINE = new Uint8Array([0x0a]);
/** How often each interesting path was taken (the generator must reach them). */
const readerStats = {
  overrun: 0,
  incomplete: 0,
  waited: 0,
  busy: 0,
  abortedWaits: 0,
  preAborted: 0,
  pauses: 0,
  multiSeparator: 0,
};
const ABORT_REASON = new Error("aborted by the test");

function randomBytes(rng: Prng, max: number): Uint8Array {
  const out = new Uint8Array(rng.int(0, max));
  for (let i = 0; i < out.length; i++) out[i] = rng.pick(ALPHABET);
  return out;
}

function randomOp(rng: Prng): ReadOp {
  switch (rng.int(0, 3)) {
    case 0:
      return { kind: "read", n: rng.pick([-1, 0, 1, 2, 5, 17, 64]) };
    case 1:
      return { kind: "readLine" };
    case 2:
      return { kind: "readExactly", n: rng.pick([0, 1, 3, 8, 20, 50]) };
    default: {
      const seps: Uint8Array[] = [];
      const count = rng.int(1, 3);
      while (seps.length < count) {
        const sep = new Uint8Array(rng.int(1, 3));
        for (let i = 0; i < sep.length; i++) {
          sep[i] = rng.pick([0x61, 0x62, 0x0a, 0x0d]);
        }
        seps.push(sep);
      }
      // Pass them in every accepted form.
      const asText = (s: Uint8Array) => new TextDecoder().decode(s);
      const arg = count === 1 && rng.chance(0.5)
        ? (rng.chance(0.5) ? seps[0] : asText(seps[0]))
        : seps.map((s) => rng.chance(0.5) ? s : asText(s));
      return { kind: "readUntil", seps, arg };
    }
  }
}

function start(
  reader: StreamReader,
  op: ReadOp,
  signal?: AbortSignal,
): Promise<Uint8Array> {
  const options = signal === undefined ? undefined : { signal };
  switch (op.kind) {
    case "read":
      return reader.read(op.n, options);
    case "readLine":
      return reader.readLine(options);
    case "readExactly":
      return reader.readExactly(op.n, options);
    case "readUntil":
      return reader.readUntil(
        op.arg as Parameters<StreamReader["readUntil"]>[0],
        options,
      );
  }
}

/** A read under way, with its settlement recorded. */
interface Running {
  op: ReadOp;
  settled: boolean;
  value?: Uint8Array;
  error?: unknown;
  controller: AbortController;
}

function run(
  reader: StreamReader,
  op: ReadOp,
  controller: AbortController,
): Running {
  const running: Running = { op, settled: false, controller };
  start(reader, op, controller.signal).then(
    (value) => {
      running.settled = true;
      running.value = value;
    },
    (error) => {
      running.settled = true;
      running.error = error;
    },
  );
  return running;
}

function describeOp(op: ReadOp): string {
  switch (op.kind) {
    case "read":
    case "readExactly":
      return `${op.kind}(${op.n})`;
    case "readLine":
      return "readLine()";
    case "readUntil":
      return `readUntil(${
        JSON.stringify(op.seps.map((s) => new TextDecoder().decode(s)))
      })`;
  }
}

/** Checks a settled read against the outcome the model predicted. */
function checkSettled(running: Running, outcome: Outcome, where: string) {
  assert.ok(running.settled, `${where}: should have settled`);
  if (running.error instanceof LimitOverrunError) readerStats.overrun++;
  if (running.error instanceof IncompleteReadError) readerStats.incomplete++;
  if (running.error === ABORT_REASON) readerStats.preAborted++;
  if (outcome.kind === "value") {
    assert.equal(running.error, undefined, `${where}: ${running.error}`);
    assert.deepEqual(
      Array.from(running.value!),
      Array.from(outcome.value),
      where,
    );
  } else if (outcome.kind === "error") {
    assert.ok(
      running.value === undefined && outcome.check(running.error),
      `${where}: unexpected ${
        running.value ? `value ${running.value}` : running.error
      }`,
    );
  }
}

async function readerCase(seed: number): Promise<void> {
  const rng = new Prng(seed);
  const limit = rng.pick([1, 2, 3, 5, 8, 16, 64]);
  const reader = new StreamReader({ limit });
  const flow = new FlowRecorder();
  reader.setTransport(flow as unknown as Transport);
  const model = new ReaderModel(limit);
  const log: string[] = [];
  let pending: Running | null = null;
  const where = () =>
    `seed ${seed}, limit ${limit}: ${log.join("; ")}${
      pending === null ? "" : ` [waiting: ${describeOp(pending.op)}]`
    }`;

  /** Re-evaluates a pending read after an event that may wake it. */
  const recheck = async () => {
    await flushMicrotasks();
    if (pending === null) return;
    const outcome = model.evaluate(pending.op, false);
    if (outcome.kind === "block") {
      assert.equal(pending.settled, false, `${where()}: settled too early`);
      // The read went back to waiting: waiting while paused resumes.
      if (model.paused) model.onWait();
      return;
    }
    checkSettled(pending, outcome, where());
    outcome.commit();
    pending = null;
  };

  for (let step = 0; step < STEPS_PER_CASE; step++) {
    const choice = rng.next();
    if (choice < 0.4) {
      // Feed a random number of random chunks.
      const chunks = rng.int(1, 3);
      for (let i = 0; i < chunks; i++) {
        const data = randomBytes(rng, 24);
        log.push(`feed(${JSON.stringify(new TextDecoder().decode(data))})`);
        if (model.eof) {
          assert.throws(() => reader.feedData(data), Deno.errors.BadResource);
          continue;
        }
        reader.feedData(data);
        model.feed(data);
        await recheck();
      }
    } else if (choice < 0.45) {
      log.push("feedEof");
      reader.feedEof();
      model.eof = true;
      await recheck();
    } else if (choice < 0.47 && step > STEPS_PER_CASE / 2) {
      const exc = new Error(`failure at step ${step}`);
      log.push("setException");
      reader.setException(exc);
      model.exception = exc;
      await flushMicrotasks();
      if (pending !== null) {
        checkSettled(pending, {
          kind: "error",
          check: (e) => e === exc,
          commit: () => {},
        }, where());
        pending = null;
      }
    } else if (choice < 0.55 && pending !== null) {
      // Abort the waiting read: it rejects and consumes nothing.
      log.push(`abort ${describeOp(pending.op)}`);
      pending.controller.abort(ABORT_REASON);
      readerStats.abortedWaits++;
      await flushMicrotasks();
      checkSettled(pending, {
        kind: "error",
        check: (e) => e === ABORT_REASON,
        commit: () => {},
      }, where());
      pending = null;
    } else {
      const op = randomOp(rng);
      const preAborted = rng.chance(0.1);
      const waitingForSeparator = pending !== null &&
        (pending.op.kind === "readUntil" || pending.op.kind === "readLine");
      if (
        waitingForSeparator &&
        model.evaluate(op, preAborted).kind === "value"
      ) {
        // Bytes taken from under a waiting readUntil() make it skip a
        // separator in asyncio too (its search offset goes stale), so
        // the model does not go there; see RELIABILITY.md.
        log.push(`(skipped ${describeOp(op)})`);
        continue;
      }
      log.push(`${preAborted ? "aborted " : ""}${describeOp(op)}`);
      const controller = new AbortController();
      if (preAborted) controller.abort(ABORT_REASON);
      const running = run(reader, op, controller);
      await flushMicrotasks();
      const outcome = model.evaluate(op, preAborted);
      if (outcome.kind === "block") {
        if (pending !== null) {
          // Only one read may wait at a time.
          assert.ok(
            running.settled && running.error instanceof Deno.errors.Busy,
            `${where()}: expected Busy, got ${running.error ?? running.value}`,
          );
          readerStats.busy++;
        } else {
          assert.equal(running.settled, false, `${where()}: should wait`);
          readerStats.waited++;
          if (op.kind === "readUntil" && op.seps.length > 1) {
            readerStats.multiSeparator++;
          }
          model.onWait();
          pending = running;
        }
      } else {
        checkSettled(running, outcome, where());
        outcome.commit();
        // Consuming bytes never completes the read that waits.
        if (pending !== null) {
          await flushMicrotasks();
          assert.equal((pending as Running).settled, false, where());
        }
      }
    }
    assert.equal(flow.paused, model.paused, `${where()}: paused state`);
    assert.deepEqual(flow.violations, [], where());
    assert.equal(reader.atEof(), model.eof && model.buffer.length === 0);
  }
  readerStats.pauses += flow.calls.filter((c) => c === "pause").length;
  // End the case: abort any read still waiting.
  if (pending !== null) {
    const waiting = pending as Running;
    waiting.controller.abort(ABORT_REASON);
    await flushMicrotasks();
    assert.ok(waiting.settled);
  }
}

Deno.test(`property: StreamReader matches the asyncio model over ${READER_CASES} random operation sequences`, async () => {
  for (let seed = 1; seed <= READER_CASES; seed++) await readerCase(seed);
  console.log(`reader paths: ${JSON.stringify(readerStats)}`);
  // The random sequences reached every interesting path, many times.
  for (const [path, count] of Object.entries(readerStats)) {
    assert.ok(count >= 20, `only ${count} cases of ${path}`);
  }
});

// ---------------------------------------------------------------------------
// 2. Transport callback order under random faults, on real sockets
// ---------------------------------------------------------------------------

const TRANSPORT_CASES = 50;
const transportStats = {
  graceful: 0,
  faulted: 0,
  eof: 0,
  lostWithError: 0,
  writesRefused: 0,
  writePauses: 0,
  bytes: 0,
};

/** Records callbacks and checks them as they come. */
class Tracked extends Protocol {
  transport: Transport | null = null;
  events: string[] = [];
  violations: string[] = [];
  chunks: Uint8Array[] = [];
  received = 0;
  /** Set by the driver around pauseReading()/resumeReading(). */
  readingPaused = false;
  writePaused = false;
  eofResult: boolean;
  lostError: Error | null | undefined = undefined;
  lost = Promise.withResolvers<Error | null>();
  eof = Promise.withResolvers<void>();

  constructor(eofResult: boolean) {
    super();
    this.eofResult = eofResult;
  }

  #check(name: string): void {
    if (this.lostError !== undefined) {
      this.violations.push(`${name} after lost`);
    }
    if (name !== "made" && this.transport === null) {
      this.violations.push(`${name} before made`);
    }
  }
  override connectionMade(transport: Transport): void {
    if (this.transport !== null) this.violations.push("made twice");
    this.#check("made");
    this.transport = transport;
    this.events.push("made");
  }
  override dataReceived(data: Uint8Array): void {
    this.#check("data");
    if (this.readingPaused) this.violations.push("data while paused");
    if (this.events.includes("eof")) this.violations.push("data after eof");
    this.events.push("data");
    this.chunks.push(data);
    this.received += data.length;
  }
  override eofReceived(): boolean {
    this.#check("eof");
    if (this.readingPaused) this.violations.push("eof while paused");
    if (this.events.includes("eof")) this.violations.push("eof twice");
    this.events.push("eof");
    this.eof.resolve();
    return this.eofResult;
  }
  override pauseWriting(): void {
    transportStats.writePauses++;
    this.#check("pauseWriting");
    if (this.writePaused) this.violations.push("pauseWriting twice");
    this.writePaused = true;
  }
  override resumeWriting(): void {
    this.#check("resumeWriting");
    if (!this.writePaused) this.violations.push("resumeWriting unpaused");
    this.writePaused = false;
  }
  override connectionLost(exc: Error | null): void {
    this.#check("lost");
    this.lostError = exc;
    this.events.push("lost");
    this.lost.resolve(exc);
  }
  order(): string {
    return this.events.join(" ").replace(/data( data)*/g, "data*");
  }
}

interface Side {
  name: string;
  protocol: Tracked;
  sent: Uint8Array[];
  /** Errors writes threw other than BadResource/BrokenPipe. */
  refusals: unknown[];
  /** close() or abort() called by the driver. */
  ended: "close" | "abort" | null;
  eofWritten: boolean;
}

function randomPayload(rng: Prng): Uint8Array {
  const size = rng.pick([1, 100, 4096, 60_000, 200_000]);
  const out = new Uint8Array(size);
  let x = rng.int(1, 2 ** 31);
  for (let i = 0; i < size; i++) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    out[i] = x >>> 24;
  }
  return out;
}

/** One turn of the event loop, so that I/O can happen between actions. */
function turn(): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, 0));
}

async function transportCase(
  seed: number,
  port: number,
  accepted: () => Promise<Tracked>,
): Promise<void> {
  const rng = new Prng(seed * 7919);
  const client = new Tracked(rng.chance(0.5));
  const serverSide = accepted();
  await createConnection(() => client, { port });
  const server = await withTimeout(serverSide, 5000, "accept");
  server.eofResult = rng.chance(0.5);
  if (BACKEND === "native") {
    // Native sends go straight to the kernel, whose loopback buffers take
    // every payload here: small send buffers make writes queue (partial
    // sends, pauseWriting) as they do on the Deno backend.
    for (const { transport } of [client, server]) {
      const socket = transport!.getExtraInfo("socket") as {
        setsockopt(level: number, option: number, value: number): void;
      };
      socket.setsockopt(SOL_SOCKET, SO_SNDBUF, 4096);
    }
  }
  const sides: Side[] = [
    {
      name: "client",
      protocol: client,
      sent: [],
      refusals: [],
      ended: null,
      eofWritten: false,
    },
    {
      name: "server",
      protocol: server,
      sent: [],
      refusals: [],
      ended: null,
      eofWritten: false,
    },
  ];
  const log: string[] = [];
  const where = () => `seed ${seed}: ${log.join("; ")}`;
  const faults = rng.chance(0.6);

  for (let step = 0, steps = rng.int(4, 16); step < steps; step++) {
    const side = rng.pick(sides);
    const t = side.protocol.transport!;
    const action = rng.next();
    if (action < 0.45) {
      const data = randomPayload(rng);
      const lines = rng.chance(0.2);
      log.push(
        `${side.name}.${lines ? "writeLines" : "write"}(${data.length})`,
      );
      const closing = t.isClosing() || side.eofWritten;
      try {
        if (lines) {
          t.writeLines([data.subarray(0, 7), data.subarray(7)]);
        } else t.write(data);
        assert.ok(!closing, `${where()}: write on a closing transport passed`);
        side.sent.push(data.slice());
      } catch (error) {
        assert.ok(closing, `${where()}: write threw ${error}`);
        transportStats.writesRefused++;
        // The connection's own error may be thrown before connectionLost
        // has run (a synchronous send failed): checked once it has.
        if (
          !(error instanceof Deno.errors.BadResource) &&
          !(error instanceof Deno.errors.BrokenPipe)
        ) {
          side.refusals.push(error);
        }
      }
    } else if (action < 0.6) {
      const pause = !side.protocol.readingPaused;
      log.push(`${side.name}.${pause ? "pause" : "resume"}Reading`);
      side.protocol.readingPaused = pause && !t.isClosing();
      if (pause) t.pauseReading();
      else t.resumeReading();
    } else if (action < 0.7) {
      log.push(`${side.name}.writeEof`);
      t.writeEof();
      if (!t.isClosing()) side.eofWritten = true;
    } else if (action < 0.8 && faults) {
      const how = rng.chance(0.5) ? "close" : "abort";
      log.push(`${side.name}.${how}`);
      side.ended ??= how;
      t[how]();
    } else {
      log.push("turn");
      await turn();
    }
  }

  // Shut down: resume reading, and end gracefully unless a fault did.
  const graceful = sides.every((s) => s.ended === null);
  for (const side of sides) {
    side.protocol.readingPaused = false;
    side.protocol.transport!.resumeReading();
  }
  if (graceful) {
    // Half-close both ways and wait for each EOF: all bytes are in.
    for (const side of sides) {
      if (!side.protocol.transport!.isClosing()) {
        side.protocol.transport!.writeEof();
      }
    }
    for (const side of sides) {
      const done = Promise.race([
        side.protocol.eof.promise,
        side.protocol.lost.promise,
      ]);
      await withTimeout(done, 10_000, `${side.name} EOF (${where()})`);
    }
  }
  for (const side of sides) side.protocol.transport!.close();
  if (!graceful) {
    // Both ends closing means neither reads (a closing transport stops
    // reading, as asyncio's), so a close still flushing may wait for a peer
    // that never will: small send buffers (native) make that happen. End
    // such a standoff as an application would, with abort().
    for (const side of sides) {
      const t = side.protocol.transport!;
      if (t.getWriteBufferSize() > 0) t.abort();
    }
  }
  for (const side of sides) {
    await withTimeout(
      side.protocol.lost.promise,
      10_000,
      `${side.name} lost (${where()})`,
    );
  }
  await turn();

  for (const [index, side] of sides.entries()) {
    const p = side.protocol;
    const peer = sides[1 - index];
    assert.deepEqual(p.violations, [], `${side.name}, ${where()}`);
    assert.match(
      p.order(),
      /^made( data\*)?( eof)? lost$/,
      `${side.name} order, ${where()}`,
    );
    assert.ok(
      p.lostError === null || p.lostError instanceof Error,
      `${side.name} lost with ${p.lostError}`,
    );
    for (const error of side.refusals) {
      assert.equal(
        error,
        p.lostError,
        `${side.name}: a write threw ${error}, not the connection's error, ${where()}`,
      );
    }
    const got = concat(p.chunks);
    const sent = concat(peer.sent);
    assert.ok(
      got.length <= sent.length &&
        bytesEqual(got, sent.subarray(0, got.length)),
      `${side.name} received ${got.length} bytes that are not a prefix of the ${sent.length} sent, ${where()}`,
    );
    if (graceful) {
      assert.equal(
        got.length,
        sent.length,
        `${side.name} lost bytes, ${where()}`,
      );
    }
    transportStats.bytes += got.length;
    if (p.events.includes("eof")) transportStats.eof++;
    if (p.lostError) transportStats.lostWithError++;
  }
  transportStats[graceful ? "graceful" : "faulted"]++;
}

Deno.test(`property: transport order made → data* → eof? → lost once under random faults, ${TRANSPORT_CASES} cases on loopback`, async () => {
  const queue: Tracked[] = [];
  let waiting: ((p: Tracked) => void) | null = null;
  const server = await createServer(() => {
    const protocol = new Tracked(false);
    if (waiting !== null) {
      const wake = waiting;
      waiting = null;
      queueMicrotask(() => wake(protocol));
    } else queue.push(protocol);
    return protocol;
  }, { hostname: "127.0.0.1", port: 0 });
  const accepted = () =>
    queue.length > 0
      ? Promise.resolve(queue.shift()!)
      : new Promise<Tracked>((resolve) => (waiting = resolve));
  try {
    const { port } = server.addrs[0] as Deno.NetAddr;
    for (let seed = 1; seed <= TRANSPORT_CASES; seed++) {
      await transportCase(seed, port, accepted);
    }
    server.close();
    await withTimeout(server.waitClosed(), 5000, "waitClosed");
    console.log(`transport cases: ${JSON.stringify(transportStats)}`);
    assert.ok(transportStats.graceful >= 10 && transportStats.faulted >= 10);
    assert.ok(transportStats.eof >= 10 && transportStats.writesRefused >= 5);
    assert.ok(transportStats.writePauses >= 5);
  } finally {
    server.close();
    server.abortClients();
    await server.waitClosed();
  }
});
