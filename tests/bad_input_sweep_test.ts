// Bad input sweep: the public calls that tests/bad_input_test.ts and
// tests/option_bags_test.ts do not reach (sockets.ts, selectors.ts,
// testing.ts, Future/Task, the loop's reader/exception calls, getAddrInfo
// and getNameInfo), called with undefined, null, NaN, 1.5, 2**53, a string
// for a number, a bare object for a protocol, and so on. Each row names the
// call, what it gave before its fix (each of the 29 rows failed then;
// RELIABILITY.md, finding 39) and what it gives now: a TypeError or
// RangeError naming the parameter, at the call — not a silent acceptance,
// an internal crash logged later, or an unrelated error class.
//
// Calling with the wrong types is the point here, hence `any`.
// deno-lint-ignore-file no-explicit-any

import {
  AF_INET,
  EventLoop,
  Future,
  getAddrInfo,
  getEventLoop,
  getNameInfo,
  SO_REUSEADDR,
  SOCK_STREAM,
  socket,
  SOL_SOCKET,
  StreamReader,
} from "../mod.ts";
import {
  createStreamPair,
  createTransportPair,
  RecordingTransport,
} from "../testing.ts";
import { type BadInputRow, runBadInputRows } from "./_bad_input.ts";

type Row = BadInputRow;

/** Runs `fn` on a fresh TCP socket, closing it after. */
function withSocket(fn: (sock: ReturnType<typeof socket>) => unknown) {
  return () => {
    const sock = socket(AF_INET, SOCK_STREAM);
    try {
      return fn(sock);
    } finally {
      sock.close();
    }
  };
}

const address = { hostname: "127.0.0.1", port: 80 } as any;

Deno.test("bad input: getAddrInfo and getNameInfo flags, family and type", async (t) => {
  await runBadInputRows(t, [
    {
      call:
        'getAddrInfo("127.0.0.1", 80, {flags: NaN}): resolves (NaN taken as 0) → RangeError naming flags',
      run: () => getAddrInfo("127.0.0.1", 80, { flags: NaN }),
      error: [TypeError, RangeError],
      names: /flags/,
    },
    {
      call:
        'getAddrInfo("127.0.0.1", 80, {flags: 1.5}): resolves → RangeError naming flags',
      run: () => getAddrInfo("127.0.0.1", 80, { flags: 1.5 }),
      error: RangeError,
      names: /flags/,
    },
    {
      call:
        'getAddrInfo("127.0.0.1", 80, {flags: -1}): resolves (every flag set) → RangeError naming flags',
      run: () => getAddrInfo("127.0.0.1", 80, { flags: -1 }),
      error: RangeError,
      names: /flags/,
    },
    {
      call:
        'getAddrInfo("127.0.0.1", 80, {family: "2"}): NotSupported → TypeError naming family',
      run: () => getAddrInfo("127.0.0.1", 80, { family: "2" as any }),
      error: TypeError,
      names: /family/,
    },
    {
      call:
        'getAddrInfo("127.0.0.1", 80, {type: NaN}): NotSupported → TypeError naming type',
      run: () => getAddrInfo("127.0.0.1", 80, { type: NaN }),
      error: [TypeError, RangeError],
      names: /type/,
    },
    {
      call:
        'getAddrInfo("127.0.0.1", 80, new Uint8Array(0)): resolves (typed array taken as an option bag) → TypeError naming options',
      run: () => getAddrInfo("127.0.0.1", 80, new Uint8Array(0) as any),
      error: TypeError,
      names: /options/,
    },
    {
      call:
        "getNameInfo(addr, NaN): resolves (NaN taken as 0) → TypeError/RangeError naming flags",
      run: () => getNameInfo(address, NaN),
      error: [TypeError, RangeError],
      names: /flags/,
    },
    {
      call:
        "getNameInfo(addr, 1.5): resolves (1.5 truncated to NI_NUMERICHOST) → RangeError naming flags",
      run: () => getNameInfo(address, 1.5),
      error: RangeError,
      names: /flags/,
    },
    {
      call: "getNameInfo(addr, -1): resolves → RangeError naming flags",
      run: () => getNameInfo(address, -1),
      error: RangeError,
      names: /flags/,
    },
  ]);
});

Deno.test("bad input: Socket setBlocking, listen, setsockopt, getsockopt", async (t) => {
  await runBadInputRows(t, [
    {
      call:
        "sock.setBlocking(undefined): returns, socket made non-blocking → TypeError naming the flag",
      run: withSocket((s) => (s as any).setBlocking(undefined)),
      error: TypeError,
      names: /flag|blocking/i,
    },
    {
      call:
        "sock.setBlocking(NaN): returns, taken as false → TypeError naming the flag",
      run: withSocket((s) => (s as any).setBlocking(NaN)),
      error: TypeError,
      names: /flag|blocking/i,
    },
    {
      call:
        'sock.setBlocking("1"): NotSupported (taken as true) → TypeError naming the flag',
      run: withSocket((s) => (s as any).setBlocking("1")),
      error: TypeError,
      names: /flag/i,
    },
    {
      call: "sock.listen(2**53): returns → RangeError naming backlog",
      run: withSocket((s) => {
        s.bind({ hostname: "127.0.0.1", port: 0 });
        s.listen(2 ** 53);
      }),
      error: RangeError,
      names: /backlog/,
    },
    {
      call:
        "sock.setsockopt(SOL_SOCKET, NaN, 1): NotSupported (deno) / TypeError 'Invalid FFI i32 type' (native) → RangeError naming option",
      run: withSocket((s) => s.setsockopt(SOL_SOCKET, NaN, 1)),
      error: [TypeError, RangeError],
      names: /option/,
    },
    {
      call:
        "sock.setsockopt(1.5, SO_REUSEADDR, 1): NotSupported / FFI error → RangeError naming level",
      run: withSocket((s) => s.setsockopt(1.5, SO_REUSEADDR, 1)),
      error: RangeError,
      names: /level/,
    },
    {
      call:
        "sock.getsockopt(NaN, SO_REUSEADDR): NotSupported / FFI error → RangeError naming level",
      run: withSocket((s) => s.getsockopt(NaN, SO_REUSEADDR)),
      error: [TypeError, RangeError],
      names: /level/,
    },
    {
      call:
        'sock.getsockopt(SOL_SOCKET, SO_REUSEADDR, "4"): RangeError "got 4" → TypeError naming buflen',
      run: withSocket((s) =>
        s.getsockopt(SOL_SOCKET, SO_REUSEADDR, "4" as any)
      ),
      error: TypeError,
      names: /buflen/,
    },
    {
      call:
        'sock.recv(undefined): message says "got undefined undefined" → a clear message',
      run: withSocket((s) => (s as any).recv(undefined)),
      error: TypeError,
      names: /^(?!.*undefined undefined).*\bn\b/,
    },
  ]);
});

Deno.test("bad input: StreamReader limit, Future, Task name, loop.callExceptionHandler, removeReader", async (t) => {
  const loop = getEventLoop();
  await runBadInputRows(t, [
    {
      call: "new StreamReader({limit: 1.5}): returns → RangeError naming limit",
      run: () => new StreamReader({ limit: 1.5 }),
      error: RangeError,
      names: /limit/,
    },
    {
      call: "createStreamPair({limit: 1.5}): returns → RangeError naming limit",
      run: () => createStreamPair({ limit: 1.5 }),
      error: RangeError,
      names: /limit/,
      release: async (pair: any) => {
        for (const [, writer] of pair) writer.close();
        for (const [, writer] of pair) await writer.waitClosed();
      },
    },
    {
      call:
        "new Future(5): returns a Future whose getLoop() is 5 → TypeError naming loop",
      run: () => new Future(5 as any),
      error: TypeError,
      names: /loop/,
    },
    {
      call:
        'future.addDoneCallback(5): returns, then "callback is not a function" is logged at setResult → TypeError naming callback',
      run: () => new EventLoop().createFuture().addDoneCallback(5 as any),
      error: TypeError,
      names: /callback/,
    },
    {
      call:
        "loop.createTask(p, {name: 5}): getName() returns the number 5 → TypeError naming name",
      run: () => loop.createTask(Promise.resolve(1), { name: 5 as any }),
      error: TypeError,
      names: /name/,
      release: async (task: any) => {
        await task;
      },
    },
    {
      call:
        "task.setName(5): getName() returns the number 5 → TypeError naming name",
      run: () => {
        const task = loop.createTask(Promise.resolve(1));
        try {
          task.setName(5 as any);
          return task;
        } catch (e) {
          task.then(() => {}, () => {});
          throw e;
        }
      },
      error: TypeError,
      names: /name/,
      release: async (task: any) => {
        await task;
      },
    },
    {
      call:
        "loop.callExceptionHandler(undefined): returns, logs \"Cannot destructure property 'message' of 'context'\" → TypeError naming context",
      run: () => new EventLoop().callExceptionHandler(undefined as any),
      error: TypeError,
      names: /context/,
    },
    {
      call:
        "loop.removeReader({}): returns false (addReader({}) throws TypeError) → TypeError naming fileobj",
      run: () => loop.removeReader({} as any),
      error: TypeError,
      names: /fileobj/,
    },
    {
      call:
        "loop.removeWriter(new Uint8Array(0)): returns false → TypeError naming fileobj",
      run: () => loop.removeWriter(new Uint8Array(0) as any),
      error: TypeError,
      names: /fileobj/,
    },
  ]);
});

Deno.test("bad input: testing helpers accept a protocol without protocol methods", async (t) => {
  await runBadInputRows(t, [
    {
      call:
        'createTransportPair({}, {}): returns, logs "connectionMade is not a function" → TypeError naming the protocol',
      run: () => createTransportPair({} as any, {} as any),
      error: TypeError,
      names: /[Pp]rotocol/,
      release: (pair: any) => {
        for (const transport of pair) transport.abort();
      },
    },
    {
      call:
        'new RecordingTransport({}): returns, logs "connectionMade is not a function" → TypeError naming the protocol',
      run: () => new RecordingTransport({} as any),
      error: TypeError,
      names: /protocol/,
      release: (transport: any) => transport.abort(),
    },
  ]);
});
