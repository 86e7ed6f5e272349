// Bad option values, table-driven: the known options of every factory and
// option bag (not unknown keys: tests/option_bags_test.ts; not the rows of
// tests/bad_input_test.ts and tests/bad_input_sweep_test.ts) given NaN, -1,
// 1.5, Infinity, 2**53, a string for a number, a number for a string, null,
// an object for a boolean, an empty array, an array with a non-string.
// Each row names the call, what it should give (a TypeError or RangeError
// naming the option, at the call) and, for the 26 rows that failed before
// their fix (RELIABILITY.md, finding 41), what it gave instead. A call that
// succeeds has what it made released. Values asyncio itself accepts are not
// here: `interleave: 0` (no reordering), `stdin: null` (inherit).
//
// Calling with the wrong types is the point here, hence `any`.
// deno-lint-ignore-file no-explicit-any

import {
  createConnection,
  createDatagramEndpoint,
  createServer,
  createSubprocessExec,
  createSubprocessShell,
  createUnixConnection,
  createUnixServer,
  DatagramProtocol,
  getEventLoop,
  openConnection,
  openUnixConnection,
  Protocol,
  startServer,
  startUnixServer,
  StreamReader,
  SubprocessProtocol,
} from "../mod.ts";
import {
  createStreamPair,
  createTransportPair,
  FakeClock,
  withFakeClock,
} from "../testing.ts";
import { withTimeout } from "./_helpers.ts";
import {
  type BadInputRow,
  type ErrorClass,
  runBadInputRows,
} from "./_bad_input.ts";

type Row = BadInputRow;

const protocol = () => new Protocol();
const noop = () => {};
const fixtures = new URL("./fixtures/", import.meta.url);
const cert = Deno.readTextFileSync(new URL("tls_cert.pem", fixtures));
const key = Deno.readTextFileSync(new URL("tls_key.pem", fixtures));
const H = "127.0.0.1";

/** A raw listener on 127.0.0.1:0 that closes every connection it accepts. */
function sink(): { port: number; close(): Promise<void> } {
  const listener = Deno.listen({ hostname: H, port: 0 });
  const conns: Deno.Conn[] = [];
  const loop = (async () => {
    try {
      for await (const conn of listener) conns.push(conn);
    } catch {
      // Closed.
    }
  })();
  return {
    port: listener.addr.port,
    async close() {
      listener.close();
      await loop;
      for (const c of conns) {
        try {
          c.close();
        } catch {
          // Already closed.
        }
      }
    },
  };
}

// ---- createConnection / openConnection ----

Deno.test("bad option value: createConnection and openConnection", async (t) => {
  const peer = sink();
  const port = peer.port;
  const cc = (o: any) => () => createConnection(protocol, o);
  const oc = (o: any) => () => openConnection(o);
  try {
    await runBadInputRows(t, [
      {
        call: "createConnection({hostname: [H], port}) → TypeError hostname",
        run: cc({ hostname: [H], port }),
        error: TypeError,
        names: /hostname/,
      },
      {
        call: "createConnection({hostname: null, port}) → TypeError hostname",
        run: cc({ hostname: null, port }),
        error: TypeError,
        names: /hostname/,
      },
      {
        call: "createConnection({port: Infinity}) → RangeError port",
        run: cc({ hostname: H, port: Infinity }),
        error: RangeError,
        names: /port/,
      },
      {
        call: "createConnection({port: null}) → TypeError port",
        run: cc({ hostname: H, port: null }),
        error: TypeError,
        names: /port/,
      },
      {
        call:
          "createConnection({localAddr: {hostname: 5, port: 0}}) → TypeError localAddr hostname",
        run: cc({ hostname: H, port, localAddr: { hostname: 5, port: 0 } }),
        error: TypeError,
        names: /hostname|localAddr/,
      },
      {
        call:
          "createConnection({localAddr: {hostname: H, port: -1}}) → RangeError port",
        run: cc({ hostname: H, port, localAddr: { hostname: H, port: -1 } }),
        error: RangeError,
        names: /port|localAddr/,
      },
      {
        call:
          "createConnection({localAddr: {hostname: H, port: 1.5}}) → RangeError port",
        run: cc({ hostname: H, port, localAddr: { hostname: H, port: 1.5 } }),
        error: RangeError,
        names: /port|localAddr/,
      },
      {
        call:
          'createConnection({localAddr: {hostname: H, port: "0"}}) → TypeError port',
        run: cc({ hostname: H, port, localAddr: { hostname: H, port: "0" } }),
        error: TypeError,
        names: /port|localAddr/,
      },
      {
        call: "createConnection({localAddr: null}) → TypeError localAddr",
        run: cc({ hostname: H, port, localAddr: null }),
        error: TypeError,
        names: /localAddr/,
      },
      {
        call: "createConnection({localAddr: []}) → TypeError localAddr",
        run: cc({ hostname: H, port, localAddr: [] }),
        error: TypeError,
        names: /localAddr/,
      },
      {
        call:
          'createConnection({localAddr: "127.0.0.1"}) → TypeError localAddr',
        run: cc({ hostname: H, port, localAddr: H }),
        error: TypeError,
        names: /localAddr/,
      },
      {
        call:
          "createConnection({happyEyeballsDelay: NaN}) → TypeError happyEyeballsDelay",
        run: cc({ hostname: H, port, happyEyeballsDelay: NaN }),
        error: [TypeError, RangeError],
        names: /happyEyeballsDelay/,
      },
      {
        call:
          "createConnection({happyEyeballsDelay: Infinity}) → RangeError happyEyeballsDelay",
        run: cc({ hostname: H, port, happyEyeballsDelay: Infinity }),
        error: RangeError,
        names: /happyEyeballsDelay/,
      },
      {
        call:
          "createConnection({happyEyeballsDelay: null}) → TypeError happyEyeballsDelay",
        run: cc({ hostname: H, port, happyEyeballsDelay: null }),
        error: [TypeError, Deno.errors.NotSupported],
        names: /happyEyeballsDelay/,
      },
      {
        call: "createConnection({interleave: -1}) → RangeError interleave",
        run: cc({ hostname: H, port, interleave: -1 }),
        error: [RangeError, Deno.errors.NotSupported],
        names: /interleave/,
      },
      {
        call:
          "createConnection({interleave: 1.5}): native: connects (ignored); Deno: NotSupported → RangeError interleave",
        run: cc({ hostname: H, port, interleave: 1.5 }),
        error: [RangeError, Deno.errors.NotSupported],
        names: /interleave/,
      },
      {
        call: "createConnection({interleave: NaN}) → TypeError interleave",
        run: cc({ hostname: H, port, interleave: NaN }),
        error: [TypeError, RangeError, Deno.errors.NotSupported],
        names: /interleave/,
      },
      {
        call: 'createConnection({interleave: "1"}) → TypeError interleave',
        run: cc({ hostname: H, port, interleave: "1" }),
        error: [TypeError, Deno.errors.NotSupported],
        names: /interleave/,
      },
      {
        call: 'createConnection({noDelay: "no"}) → TypeError noDelay',
        run: cc({ hostname: H, port, noDelay: "no" }),
        error: TypeError,
        names: /noDelay/,
      },
      {
        call: "createConnection({noDelay: 0}) → TypeError noDelay",
        run: cc({ hostname: H, port, noDelay: 0 }),
        error: TypeError,
        names: /noDelay/,
      },
      {
        call: "createConnection({keepAlive: {}}) → TypeError keepAlive",
        run: cc({ hostname: H, port, keepAlive: {} }),
        error: TypeError,
        names: /keepAlive/,
      },
      {
        call: 'createConnection({keepAlive: "yes"}) → TypeError keepAlive',
        run: cc({ hostname: H, port, keepAlive: "yes" }),
        error: TypeError,
        names: /keepAlive/,
      },
      {
        call: "createConnection({sock: 5}) → TypeError sock",
        run: cc({ sock: 5 }),
        error: TypeError,
        names: /sock/,
      },
      {
        call: "createConnection({sock: []}) → TypeError sock",
        run: cc({ sock: [] }),
        error: TypeError,
        names: /sock/,
      },
      {
        call: "createConnection({signal: {}}) → TypeError signal",
        run: cc({ hostname: H, port, signal: {} }),
        error: TypeError,
        names: /signal/,
      },
      {
        call: "createConnection({signal: null}) → TypeError signal",
        run: cc({ hostname: H, port, signal: null }),
        error: TypeError,
        names: /signal/,
      },
      {
        call: "createConnection({tls: 1}) → TypeError tls",
        run: cc({ hostname: H, port, tls: 1 }),
        error: TypeError,
        names: /tls/i,
      },
      {
        call: "createConnection({tls: []}) → TypeError tls",
        run: cc({ hostname: H, port, tls: [] }),
        error: TypeError,
        names: /tls/i,
      },
      {
        call:
          "createConnection({tls: {handshakeTimeout: NaN}}) → TypeError handshakeTimeout",
        run: cc({ hostname: H, port, tls: { handshakeTimeout: NaN } }),
        error: [TypeError, RangeError],
        names: /handshakeTimeout/,
      },
      {
        call:
          'createConnection({tls: {handshakeTimeout: "1"}}) → TypeError handshakeTimeout',
        run: cc({ hostname: H, port, tls: { handshakeTimeout: "1" } }),
        error: TypeError,
        names: /handshakeTimeout/,
      },
      {
        call:
          "createConnection({tls: {handshakeTimeout: Infinity}}) → RangeError handshakeTimeout",
        run: cc({ hostname: H, port, tls: { handshakeTimeout: Infinity } }),
        error: RangeError,
        names: /handshakeTimeout/,
      },
      {
        call: "createConnection({tls: {caCerts: [5]}}) → TypeError caCerts",
        run: cc({ hostname: H, port, tls: { caCerts: [5] } }),
        error: TypeError,
        names: /caCerts/,
      },
      {
        call:
          "createConnection({tls: {alpnProtocols: [5]}}) → TypeError alpnProtocols",
        run: cc({ hostname: H, port, tls: { alpnProtocols: [5] } }),
        error: TypeError,
        names: /alpnProtocols/,
      },
      {
        call:
          'createConnection({tls: {alpnProtocols: "h2"}}) → TypeError alpnProtocols',
        run: cc({ hostname: H, port, tls: { alpnProtocols: "h2" } }),
        error: TypeError,
        names: /alpnProtocols/,
      },
      {
        call:
          'createConnection({tls: {minVersion: "TLSv9"}}) → TypeError minVersion',
        run: cc({ hostname: H, port, tls: { minVersion: "TLSv9" } }),
        error: [TypeError, RangeError],
        names: /minVersion/,
      },
      {
        call: "openConnection({limit: 1.5}) → RangeError limit",
        run: oc({ hostname: H, port, limit: 1.5 }),
        error: RangeError,
        names: /limit/,
      },
      {
        call:
          "openConnection({limit: Infinity}): connects (unbounded buffer) → RangeError limit",
        run: oc({ hostname: H, port, limit: Infinity }),
        error: RangeError,
        names: /limit/,
      },
      {
        call: "openConnection({limit: NaN}) → TypeError limit",
        run: oc({ hostname: H, port, limit: NaN }),
        error: [TypeError, RangeError],
        names: /limit/,
      },
      {
        call: "openConnection({limit: null}) → TypeError limit",
        run: oc({ hostname: H, port, limit: null }),
        error: TypeError,
        names: /limit/,
      },
      {
        call: 'openConnection({noDelay: "x"}) → TypeError noDelay',
        run: oc({ hostname: H, port, noDelay: "x" }),
        error: TypeError,
        names: /noDelay/,
      },
      {
        call: "openConnection({port: 1.5}) → RangeError port",
        run: oc({ hostname: H, port: 1.5 }),
        error: RangeError,
        names: /port/,
      },
    ]);
  } finally {
    await peer.close();
  }
});

// ---- createServer / startServer ----

Deno.test("bad option value: createServer and startServer", async (t) => {
  const cs = (o: any) => () =>
    createServer(protocol, { hostname: H, port: 0, ...o });
  const ss = (o: any) => () =>
    startServer(noop, { hostname: H, port: 0, ...o });
  await runBadInputRows(t, [
    {
      call: "createServer({hostname: [H, 5]}) → TypeError hostname",
      run: cs({ hostname: [H, 5] }),
      error: TypeError,
      names: /hostname/,
    },
    {
      call: "createServer({hostname: [null]}) → TypeError hostname",
      run: cs({ hostname: [null] }),
      error: TypeError,
      names: /hostname/,
    },
    {
      call: 'createServer({hostname: [""]}) → TypeError/RangeError hostname',
      run: cs({ hostname: [""] }),
      error: [TypeError, RangeError],
      names: /hostname/,
    },
    {
      call: "createServer({hostname: null}) → TypeError hostname",
      run: cs({ hostname: null }),
      error: TypeError,
      names: /hostname/,
    },
    {
      call: "createServer({hostname: {}}) → TypeError hostname",
      run: cs({ hostname: {} }),
      error: TypeError,
      names: /hostname/,
    },
    {
      call: "createServer({port: 1.5}) → RangeError port",
      run: cs({ port: 1.5 }),
      error: RangeError,
      names: /port/,
    },
    {
      call: "createServer({port: NaN}) → RangeError port",
      run: cs({ port: NaN }),
      error: [TypeError, RangeError],
      names: /port/,
    },
    {
      call: "createServer({port: Infinity}) → RangeError port",
      run: cs({ port: Infinity }),
      error: RangeError,
      names: /port/,
    },
    {
      call: "createServer({port: 2**53}) → RangeError port",
      run: cs({ port: 2 ** 53 }),
      error: RangeError,
      names: /port/,
    },
    {
      call: "createServer({port: null}) → TypeError port",
      run: cs({ port: null }),
      error: TypeError,
      names: /port/,
    },
    {
      call: "createServer({backlog: NaN}) → RangeError backlog",
      run: cs({ backlog: NaN }),
      error: [TypeError, RangeError],
      names: /backlog/,
    },
    {
      call: "createServer({backlog: Infinity}) → RangeError backlog",
      run: cs({ backlog: Infinity }),
      error: RangeError,
      names: /backlog/,
    },
    {
      call:
        "createServer({backlog: 2**53}): Deno: listens; native: TypeError 'Invalid FFI i32 type' → RangeError backlog",
      run: cs({ backlog: 2 ** 53 }),
      error: RangeError,
      names: /backlog/,
    },
    {
      call: "createServer({backlog: null}) → TypeError backlog",
      run: cs({ backlog: null }),
      error: TypeError,
      names: /backlog/,
    },
    {
      call: 'createServer({reusePort: "yes"}) → TypeError reusePort',
      run: cs({ reusePort: "yes" }),
      error: TypeError,
      names: /reusePort/,
    },
    {
      call: "createServer({reusePort: 1}) → TypeError reusePort",
      run: cs({ reusePort: 1 }),
      error: TypeError,
      names: /reusePort/,
    },
    {
      call: 'createServer({keepAlive: "yes"}) → TypeError keepAlive',
      run: cs({ keepAlive: "yes" }),
      error: TypeError,
      names: /keepAlive/,
    },
    {
      call: "createServer({keepAlive: {}}) → TypeError keepAlive",
      run: cs({ keepAlive: {} }),
      error: TypeError,
      names: /keepAlive/,
    },
    {
      call:
        'createServer({startServing: "no"}): serves (truthy) → TypeError startServing',
      run: cs({ startServing: "no" }),
      error: TypeError,
      names: /startServing/,
    },
    {
      call:
        "createServer({startServing: 0}): listens (falsy) → TypeError startServing",
      run: cs({ startServing: 0 }),
      error: TypeError,
      names: /startServing/,
    },
    {
      call: "createServer({sock: 5}) → TypeError sock",
      run: () => createServer(protocol, { sock: 5 } as any),
      error: TypeError,
      names: /sock/,
    },
    {
      call: "createServer({signal: {}}) → TypeError signal",
      run: cs({ signal: {} }),
      error: TypeError,
      names: /signal/,
    },
    {
      call: "createServer({signal: null}) → TypeError signal",
      run: cs({ signal: null }),
      error: TypeError,
      names: /signal/,
    },
    {
      call: "createServer({tls: null}) → TypeError tls",
      run: cs({ tls: null }),
      error: TypeError,
      names: /tls/i,
    },
    {
      call:
        "createServer({tls: {cert, key, handshakeTimeout: NaN}}) → TypeError handshakeTimeout",
      run: cs({ tls: { cert, key, handshakeTimeout: NaN } }),
      error: [TypeError, RangeError],
      names: /handshakeTimeout/,
    },
    {
      call:
        "createServer({tls: {cert, key, alpnProtocols: [1]}}) → TypeError alpnProtocols",
      run: cs({ tls: { cert, key, alpnProtocols: [1] } }),
      error: TypeError,
      names: /alpnProtocols/,
    },
    {
      call:
        'createServer({tls: {cert, key, clientCert: "maybe"}}) → TypeError clientCert',
      run: cs({ tls: { cert, key, clientCert: "maybe" } }),
      error: [TypeError, RangeError],
      names: /clientCert/,
    },
    {
      call: "startServer({limit: 1.5}) → RangeError limit",
      run: ss({ limit: 1.5 }),
      error: RangeError,
      names: /limit/,
    },
    {
      call: "startServer({limit: Infinity}): listens → RangeError limit",
      run: ss({ limit: Infinity }),
      error: RangeError,
      names: /limit/,
    },
    {
      call: 'startServer({limit: "1"}) → TypeError limit',
      run: ss({ limit: "1" }),
      error: TypeError,
      names: /limit/,
    },
    {
      call: "startServer({limit: null}) → TypeError limit",
      run: ss({ limit: null }),
      error: TypeError,
      names: /limit/,
    },
    {
      call:
        'startServer({startServing: "no"}): serves (truthy) → TypeError startServing',
      run: ss({ startServing: "no" }),
      error: TypeError,
      names: /startServing/,
    },
  ]);
});

// ---- Unix variants ----

Deno.test("bad option value: createUnixServer, startUnixServer, createUnixConnection, openUnixConnection", async (t) => {
  const dir = await Deno.makeTempDir();
  let n = 0;
  const path = () => `${dir}/s${n++}.sock`;
  const cus = (o: any) => () =>
    createUnixServer(protocol, { path: path(), ...o });
  const live = path();
  const server = await createUnixServer(protocol, { path: live });
  try {
    await runBadInputRows(t, [
      {
        call: "createUnixServer({path: null}) → TypeError path",
        run: () => createUnixServer(protocol, { path: null } as any),
        error: TypeError,
        names: /path/,
      },
      {
        call: "createUnixServer({path: [p]}) → TypeError path",
        run: () => createUnixServer(protocol, { path: [path()] } as any),
        error: TypeError,
        names: /path/,
      },
      {
        call: "createUnixServer({backlog: NaN}) → RangeError backlog",
        run: cus({ backlog: NaN }),
        error: [TypeError, RangeError],
        names: /backlog/,
      },
      {
        call: "createUnixServer({backlog: 1.5}) → RangeError backlog",
        run: cus({ backlog: 1.5 }),
        error: RangeError,
        names: /backlog/,
      },
      {
        call: 'createUnixServer({backlog: "1"}) → TypeError backlog',
        run: cus({ backlog: "1" }),
        error: TypeError,
        names: /backlog/,
      },
      {
        call: "createUnixServer({backlog: -1}) → RangeError backlog",
        run: cus({ backlog: -1 }),
        error: RangeError,
        names: /backlog/,
      },
      {
        call:
          'createUnixServer({cleanupSocket: "no"}): listens (truthy) → TypeError cleanupSocket',
        run: cus({ cleanupSocket: "no" }),
        error: TypeError,
        names: /cleanupSocket/,
      },
      {
        call:
          "createUnixServer({cleanupSocket: 0}): listens (falsy) → TypeError cleanupSocket",
        run: cus({ cleanupSocket: 0 }),
        error: TypeError,
        names: /cleanupSocket/,
      },
      {
        call:
          'createUnixServer({startServing: "no"}): serves (truthy) → TypeError startServing',
        run: cus({ startServing: "no" }),
        error: TypeError,
        names: /startServing/,
      },
      {
        call: "createUnixServer({signal: {}}) → TypeError signal",
        run: cus({ signal: {} }),
        error: TypeError,
        names: /signal/,
      },
      {
        call: "createUnixServer({sock: 5}) → TypeError sock",
        run: () => createUnixServer(protocol, { sock: 5 } as any),
        error: TypeError,
        names: /sock/,
      },
      {
        call: "startUnixServer({limit: NaN}) → TypeError limit",
        run: () => startUnixServer(noop, { path: path(), limit: NaN } as any),
        error: [TypeError, RangeError],
        names: /limit/,
      },
      {
        call: "startUnixServer({limit: 1.5}) → RangeError limit",
        run: () => startUnixServer(noop, { path: path(), limit: 1.5 } as any),
        error: RangeError,
        names: /limit/,
      },
      {
        call: "createUnixConnection({path: null}) → TypeError path",
        run: () => createUnixConnection(protocol, { path: null } as any),
        error: TypeError,
        names: /path/,
      },
      {
        call: "createUnixConnection({path: [p]}) → TypeError path",
        run: () => createUnixConnection(protocol, { path: [live] } as any),
        error: TypeError,
        names: /path/,
      },
      {
        call: "createUnixConnection({path, signal: {}}) → TypeError signal",
        run: () =>
          createUnixConnection(protocol, { path: live, signal: {} } as any),
        error: TypeError,
        names: /signal/,
      },
      {
        call: "createUnixConnection({path, tls: 1}) → TypeError tls",
        run: () =>
          createUnixConnection(protocol, { path: live, tls: 1 } as any),
        error: TypeError,
        names: /tls/i,
      },
      {
        call: "openUnixConnection({path, limit: 1.5}) → RangeError limit",
        run: () => openUnixConnection({ path: live, limit: 1.5 } as any),
        error: RangeError,
        names: /limit/,
      },
      {
        call:
          "openUnixConnection({path, limit: Infinity}): connects → RangeError limit",
        run: () => openUnixConnection({ path: live, limit: Infinity } as any),
        error: RangeError,
        names: /limit/,
      },
    ]);
  } finally {
    server.close();
    await server.waitClosed();
    await Deno.remove(dir, { recursive: true });
  }
});

// ---- createDatagramEndpoint ----

Deno.test("bad option value: createDatagramEndpoint", async (t) => {
  const ep = (o: any) => () =>
    createDatagramEndpoint(() => new DatagramProtocol(), o);
  const local = (o: any) => ep({ localAddr: { hostname: H, port: 0 }, ...o });
  await runBadInputRows(t, [
    {
      call:
        "createDatagramEndpoint({localAddr: {hostname: H, port: 1.5}}) → RangeError port",
      run: ep({ localAddr: { hostname: H, port: 1.5 } }),
      error: RangeError,
      names: /port/,
    },
    {
      call:
        "createDatagramEndpoint({localAddr: {hostname: H, port: NaN}}) → RangeError port",
      run: ep({ localAddr: { hostname: H, port: NaN } }),
      error: [TypeError, RangeError],
      names: /port/,
    },
    {
      call:
        "createDatagramEndpoint({localAddr: {hostname: H, port: -1}}) → RangeError port",
      run: ep({ localAddr: { hostname: H, port: -1 } }),
      error: RangeError,
      names: /port/,
    },
    {
      call:
        "createDatagramEndpoint({localAddr: {hostname: 5, port: 0}}) → TypeError hostname",
      run: ep({ localAddr: { hostname: 5, port: 0 } }),
      error: TypeError,
      names: /hostname|localAddr/,
    },
    {
      call: "createDatagramEndpoint({localAddr: null}) → TypeError localAddr",
      run: ep({ localAddr: null }),
      error: TypeError,
      names: /localAddr/,
    },
    {
      call: "createDatagramEndpoint({localAddr: []}) → TypeError localAddr",
      run: ep({ localAddr: [] }),
      error: TypeError,
      names: /localAddr/,
    },
    {
      call:
        "createDatagramEndpoint({remoteAddr: {hostname: H, port: 1.5}}) → RangeError port",
      run: ep({ remoteAddr: { hostname: H, port: 1.5 } }),
      error: RangeError,
      names: /port/,
    },
    {
      call:
        "createDatagramEndpoint({remoteAddr: {hostname: H, port: NaN}}) → RangeError port",
      run: ep({ remoteAddr: { hostname: H, port: NaN } }),
      error: [TypeError, RangeError],
      names: /port/,
    },
    {
      call:
        "createDatagramEndpoint({remoteAddr: {hostname: 5, port: 9}}) → TypeError hostname",
      run: ep({ remoteAddr: { hostname: 5, port: 9 } }),
      error: TypeError,
      names: /hostname|remoteAddr/,
    },
    {
      call: "createDatagramEndpoint({remoteAddr: null}) → TypeError remoteAddr",
      run: local({ remoteAddr: null }),
      error: TypeError,
      names: /remoteAddr/,
    },
    {
      call: "createDatagramEndpoint({family: 5}) → RangeError family",
      run: local({ family: 5 }),
      error: [TypeError, RangeError],
      names: /family/,
    },
    {
      call: 'createDatagramEndpoint({family: "4"}) → TypeError family',
      run: local({ family: "4" }),
      error: TypeError,
      names: /family/,
    },
    {
      call: "createDatagramEndpoint({family: NaN}) → TypeError family",
      run: local({ family: NaN }),
      error: [TypeError, RangeError],
      names: /family/,
    },
    {
      call: "createDatagramEndpoint({family: 4.5}) → RangeError family",
      run: local({ family: 4.5 }),
      error: [TypeError, RangeError],
      names: /family/,
    },
    {
      call: "createDatagramEndpoint({family: -1}) → RangeError family",
      run: local({ family: -1 }),
      error: [TypeError, RangeError],
      names: /family/,
    },
    {
      call: "createDatagramEndpoint({family: null}) → TypeError family",
      run: local({ family: null }),
      error: TypeError,
      names: /family/,
    },
    {
      call:
        "createDatagramEndpoint({reuseAddress: 1}) → TypeError reuseAddress",
      run: local({ reuseAddress: 1 }),
      error: TypeError,
      names: /reuseAddress/,
    },
    {
      call:
        "createDatagramEndpoint({reuseAddress: {}}) → TypeError reuseAddress",
      run: local({ reuseAddress: {} }),
      error: TypeError,
      names: /reuseAddress/,
    },
    {
      call: 'createDatagramEndpoint({reusePort: "yes"}) → TypeError reusePort',
      run: local({ reusePort: "yes" }),
      error: TypeError,
      names: /reusePort/,
    },
    {
      call: "createDatagramEndpoint({reusePort: 0}) → TypeError reusePort",
      run: local({ reusePort: 0 }),
      error: TypeError,
      names: /reusePort/,
    },
    {
      call:
        'createDatagramEndpoint({allowBroadcast: "yes"}) → TypeError allowBroadcast',
      run: local({ allowBroadcast: "yes" }),
      error: TypeError,
      names: /allowBroadcast/,
    },
    {
      call:
        "createDatagramEndpoint({allowBroadcast: {}}) → TypeError allowBroadcast",
      run: local({ allowBroadcast: {} }),
      error: TypeError,
      names: /allowBroadcast/,
    },
    {
      call: "createDatagramEndpoint({path: 5}) → TypeError path",
      run: ep({ path: 5 }),
      error: TypeError,
      names: /path/,
    },
    {
      call: "createDatagramEndpoint({path: null}) → TypeError path",
      run: ep({ path: null }),
      error: TypeError,
      names: /path/,
    },
    {
      call: "createDatagramEndpoint({sock: 5}) → TypeError sock",
      run: ep({ sock: 5 }),
      error: TypeError,
      names: /sock/,
    },
  ]);
});

// ---- subprocess ----

Deno.test("bad option value: createSubprocessExec, createSubprocessShell, loop.subprocessExec", async (t) => {
  const exec = (...args: any[]) => () => (createSubprocessExec as any)(...args);
  const shell = (...args: any[]) => () =>
    (createSubprocessShell as any)(...args);
  const loop = getEventLoop();
  const factory = () => new SubprocessProtocol();
  const lexec = (...args: any[]) => () =>
    (loop.subprocessExec as any)(factory, ...args);
  const lshell = (...args: any[]) => () =>
    (loop.subprocessShell as any)(factory, ...args);
  await runBadInputRows(t, [
    {
      call: "createSubprocessExec(true, [null]) → TypeError args",
      run: exec("true", [null]),
      error: TypeError,
      names: /arg/,
    },
    {
      call: "createSubprocessExec(true, [], {cwd: 5}) → TypeError cwd",
      run: exec("true", [], { cwd: 5 }),
      error: TypeError,
      names: /cwd/,
    },
    {
      call: "createSubprocessExec(true, [], {cwd: null}) → TypeError cwd",
      run: exec("true", [], { cwd: null }),
      error: TypeError,
      names: /cwd/,
    },
    {
      call: "createSubprocessExec(true, [], {env: {A: null}}) → TypeError env",
      run: exec("true", [], { env: { A: null } }),
      error: TypeError,
      names: /env/,
    },
    {
      call: "createSubprocessExec(true, [], {env: {A: {}}}) → TypeError env",
      run: exec("true", [], { env: { A: {} } }),
      error: TypeError,
      names: /env/,
    },
    {
      call: "createSubprocessExec(true, [], {env: null}) → TypeError env",
      run: exec("true", [], { env: null }),
      error: TypeError,
      names: /env/,
    },
    {
      call:
        'createSubprocessExec(true, [], {env: ["A=1"]}): spawns → TypeError env',
      run: exec("true", [], { env: ["A=1"] }),
      error: TypeError,
      names: /env/,
    },
    {
      call: "createSubprocessExec(true, [], {limit: NaN}) → TypeError limit",
      run: exec("true", [], { limit: NaN }),
      error: [TypeError, RangeError],
      names: /limit/,
    },
    {
      call:
        "createSubprocessExec(true, [], {limit: 1.5}): spawns → RangeError limit",
      run: exec("true", [], { limit: 1.5 }),
      error: RangeError,
      names: /limit/,
    },
    {
      call:
        "createSubprocessExec(true, [], {limit: Infinity}): spawns → RangeError limit",
      run: exec("true", [], { limit: Infinity }),
      error: RangeError,
      names: /limit/,
    },
    {
      call: 'createSubprocessExec(true, [], {stdout: ""}) → TypeError stdout',
      run: exec("true", [], { stdout: "" }),
      error: TypeError,
      names: /stdout/,
    },
    {
      call:
        'createSubprocessExec(true, [], {stderr: ["pipe"]}) → TypeError stderr',
      run: exec("true", [], { stderr: ["pipe"] }),
      error: TypeError,
      names: /stderr/,
    },
    {
      call: "createSubprocessShell(true, {cwd: 5}) → TypeError cwd",
      run: shell("true", { cwd: 5 }),
      error: TypeError,
      names: /cwd/,
    },
    {
      call: "createSubprocessShell(true, {env: {A: 1}}) → TypeError env",
      run: shell("true", { env: { A: 1 } }),
      error: TypeError,
      names: /env/,
    },
    {
      call:
        "createSubprocessShell(true, {limit: 1.5}): spawns → RangeError limit",
      run: shell("true", { limit: 1.5 }),
      error: RangeError,
      names: /limit/,
    },
    {
      call: "loop.subprocessExec(f, true, [1]) → TypeError args",
      run: lexec("true", [1]),
      error: TypeError,
      names: /arg/,
    },
    {
      call:
        "loop.subprocessExec(f, true, [], {stdin: 0}) → TypeError/NotSupported stdin",
      run: lexec("true", [], { stdin: "bogus" }),
      error: TypeError,
      names: /stdin/,
    },
    {
      call: "loop.subprocessExec(f, true, [], {env: {A: 1}}) → TypeError env",
      run: lexec("true", [], { env: { A: 1 } }),
      error: TypeError,
      names: /env/,
    },
    {
      call: "loop.subprocessExec(f, true, [], {cwd: 5}) → TypeError cwd",
      run: lexec("true", [], { cwd: 5 }),
      error: TypeError,
      names: /cwd/,
    },
    {
      call: "loop.subprocessShell(f, 5) → TypeError command",
      run: lshell(5),
      error: TypeError,
      names: /command|cmd|program/,
    },
    {
      call: "loop.subprocessShell(f, true, {env: {A: null}}) → TypeError env",
      run: lshell("true", { env: { A: null } }),
      error: TypeError,
      names: /env/,
    },
  ]);
});

// ---- setWriteBufferLimits ----

Deno.test("bad option value: setWriteBufferLimits (stream, memory and datagram transports)", async (t) => {
  // Each end says when it is gone: the test waits for that, not a time.
  const lost: Promise<unknown>[] = [];
  const ending = <P extends { connectionLost(exc: Error | null): void }>(
    protocol: P,
  ): P => {
    const { promise, resolve } = Promise.withResolvers<void>();
    const original = protocol.connectionLost.bind(protocol);
    protocol.connectionLost = (exc) => {
      original(exc);
      resolve();
    };
    lost.push(promise);
    return protocol;
  };
  const [a, b] = createTransportPair(
    ending(new Protocol()),
    ending(new Protocol()),
  );
  const [[, writer], [, other]] = createStreamPair();
  lost.push(writer.waitClosed().catch(() => {}));
  lost.push(other.waitClosed().catch(() => {}));
  const [dgram] = await createDatagramEndpoint(
    () => ending(new DatagramProtocol()),
    { localAddr: { hostname: H, port: 0 } },
  );
  const rows: Row[] = [];
  const targets: [string, any][] = [
    ["memory transport", a],
    ["stream writer's transport", writer.transport],
    ["datagram transport", dgram],
  ];
  const values: [string, any, ErrorClass | ErrorClass[]][] = [
    ["{high: NaN}", { high: NaN }, [TypeError, RangeError]],
    ["{low: NaN}", { low: NaN }, [TypeError, RangeError]],
    ["{high: 1.5}", { high: 1.5 }, RangeError],
    ["{low: 1.5}", { low: 1.5 }, RangeError],
    ["{high: Infinity}", { high: Infinity }, RangeError],
    ["{low: -1}", { low: -1 }, RangeError],
    ["{high: null}", { high: null }, TypeError],
    ['{low: "1"}', { low: "1" }, TypeError],
  ];
  for (const [name, target] of targets) {
    for (const [label, value, error] of values) {
      rows.push({
        call: `${name}.setWriteBufferLimits(${label})${
          /1\.5|Infinity/.test(label) ? ": accepted" : ""
        } → ${
          Array.isArray(error) ? "TypeError/RangeError" : error.name
        } naming ${Object.keys(value)[0]}`,
        run: () => target.setWriteBufferLimits(value),
        error,
        names: new RegExp(Object.keys(value)[0]),
      });
    }
  }
  try {
    await runBadInputRows(t, rows);
  } finally {
    a.abort();
    b.abort();
    writer.transport.abort();
    other.transport.abort();
    dgram.abort();
    await withTimeout(Promise.all(lost), 5000, "every end's connectionLost");
  }
});

// ---- Server.shutdown ----

Deno.test("bad option value: Server.shutdown timeout", async (t) => {
  const make = async () => {
    const server = await createServer(protocol, { hostname: H, port: 0 });
    return server;
  };
  const shut = (timeout: any) => async () => {
    const server = await make();
    const { port } = server.sockets[0].getSockName() as Deno.NetAddr;
    const client = await Deno.connect({ hostname: H, port });
    try {
      // A live client: a valid shutdown would wait for it until `timeout`.
      const result = await withTimeout(
        server.shutdown({ timeout }),
        300,
        `shutdown({timeout: ${timeout}})`,
      ).catch((e) => {
        if (e instanceof Error && e.message.startsWith("Timed out")) {
          return "still waiting (no check of the timeout)";
        }
        throw e;
      });
      return `shutdown resolved ${result}`;
    } finally {
      client.close();
      server.abortClients?.();
      server.close();
      await server.waitClosed();
    }
  };
  await runBadInputRows(t, [
    {
      call:
        "server.shutdown({timeout: 2**53}): setTimeout overflows, resolves false at once and aborts live clients → RangeError timeout",
      run: shut(2 ** 53),
      error: RangeError,
      names: /timeout/,
    },
    {
      call: "server.shutdown({timeout: -1}) → RangeError timeout",
      run: shut(-1),
      error: RangeError,
      names: /timeout/,
    },
    {
      call: 'server.shutdown({timeout: "1"}) → TypeError timeout',
      run: shut("1"),
      error: TypeError,
      names: /timeout/,
    },
    {
      call:
        "server.shutdown({timeout: null}): waits the 30 s default → TypeError timeout",
      run: shut(null),
      error: TypeError,
      names: /timeout/,
    },
    {
      call: "server.shutdown({timeout: NaN}) → TypeError timeout",
      run: shut(NaN),
      error: [TypeError, RangeError],
      names: /timeout/,
    },
  ]);
});

// ---- FakeClock / withFakeClock ----

Deno.test("bad option value: FakeClock and withFakeClock", async (t) => {
  const clock = new FakeClock();
  await runBadInputRows(t, [
    {
      call: "new FakeClock({start: NaN}) → TypeError/RangeError start",
      run: () => new FakeClock({ start: NaN }),
      error: [TypeError, RangeError],
      names: /start/,
    },
    {
      call: 'new FakeClock({start: "1"}) → TypeError start',
      run: () => new FakeClock({ start: "1" as any }),
      error: TypeError,
      names: /start/,
    },
    {
      call: "new FakeClock({start: Infinity}) → RangeError start",
      run: () => new FakeClock({ start: Infinity }),
      error: RangeError,
      names: /start/,
    },
    {
      call: "new FakeClock({start: null}) → TypeError start",
      run: () => new FakeClock({ start: null as any }),
      error: TypeError,
      names: /start/,
    },
    {
      call: "new FakeClock({loop: 5}): constructs → TypeError loop",
      run: () => new FakeClock({ loop: 5 as any }),
      error: TypeError,
      names: /loop/,
    },
    {
      call: "new FakeClock({loop: {}}): constructs → TypeError loop",
      run: () => new FakeClock({ loop: {} as any }),
      error: TypeError,
      names: /loop/,
    },
    {
      call: "withFakeClock(fn, {loop: 5}) → TypeError loop",
      run: () => withFakeClock(noop as any, { loop: 5 as any }),
      error: TypeError,
      names: /loop/,
    },
    {
      call: "withFakeClock(fn, {start: NaN}) → TypeError/RangeError start",
      run: () => withFakeClock(noop as any, { start: NaN }),
      error: [TypeError, RangeError],
      names: /start/,
    },
    {
      call: "clock.advance(NaN) → TypeError/RangeError ms",
      run: () => clock.advance(NaN),
      error: [TypeError, RangeError],
      names: /duration|ms/,
    },
    {
      call: "clock.advance(-1) → RangeError ms",
      run: () => clock.advance(-1),
      error: RangeError,
      names: /duration|ms/,
    },
    {
      call: 'clock.advance("1") → TypeError ms',
      run: () => clock.advance("1" as any),
      error: TypeError,
      names: /duration|ms/,
    },
    {
      call: "clock.advance(Infinity) → RangeError ms",
      run: () => clock.advance(Infinity),
      error: RangeError,
      names: /duration|ms/,
    },
    {
      call: "clock.advanceAsync(NaN) → TypeError/RangeError ms",
      run: () => clock.advanceAsync(NaN),
      error: [TypeError, RangeError],
      names: /duration|ms/,
    },
    {
      call: "clock.callLater(NaN, noop) → TypeError/RangeError delay",
      run: () => (clock as any).callLater(NaN, noop),
      error: [TypeError, RangeError],
      names: /delay/,
    },
  ]);
});

// ---- StreamReader sizes and separators ----

Deno.test("bad option value: StreamReader read, readExactly, readUntil", async (t) => {
  const r = new StreamReader() as any;
  await runBadInputRows(t, [
    {
      call: "read(null) → TypeError n",
      run: () => r.read(null),
      error: TypeError,
      names: /\bn\b|size/,
    },
    {
      call: "read(-Infinity) → RangeError n",
      run: () => r.read(-Infinity),
      error: RangeError,
      names: /\bn\b|size/,
    },
    {
      call: "readExactly(NaN) → TypeError/RangeError n",
      run: () => r.readExactly(NaN),
      error: [TypeError, RangeError],
      names: /\bn\b|size/,
    },
    {
      call: "readExactly(null) → TypeError n",
      run: () => r.readExactly(null),
      error: TypeError,
      names: /\bn\b|size/,
    },
    {
      call: "readExactly(2**53): waits forever → RangeError n",
      run: () => new StreamReader().readExactly(2 ** 53),
      error: RangeError,
      names: /\bn\b|size/,
    },
    {
      call: "readUntil({}) → TypeError separator",
      run: () => r.readUntil({}),
      error: TypeError,
      names: /separator/,
    },
    {
      call: 'readUntil(["a", null]) → TypeError separator',
      run: () => r.readUntil(["a", null]),
      error: TypeError,
      names: /separator/,
    },
    {
      call: 'readUntil(["a", new Uint8Array(0)]) → RangeError separator',
      run: () => r.readUntil(["a", new Uint8Array(0)]),
      error: RangeError,
      names: /separator/,
    },
    {
      call: "readUntil(new Uint16Array(1)) → TypeError separator",
      run: () => r.readUntil(new Uint16Array([10])),
      error: TypeError,
      names: /separator/,
    },
    {
      call: "readUntil(new ArrayBuffer(1)) → TypeError separator",
      run: () => r.readUntil(new ArrayBuffer(1)),
      error: TypeError,
      names: /separator/,
    },
    {
      call: 'readUntil("\\n", {signal: null}) → TypeError signal',
      run: () => r.readUntil("\n", { signal: null }),
      error: TypeError,
      names: /signal/,
    },
    {
      call: 'readUntil("\\n", null) → TypeError options',
      run: () => r.readUntil("\n", null),
      error: TypeError,
      names: /option/,
    },
  ]);
  r.feedEof();
});
