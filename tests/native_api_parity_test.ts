// The promises of native.ts checked from outside, in child processes run
// with restricted flags: the native backend refuses what the Deno backend
// refuses (same class, same message) and allows what it allows; install()
// and uninstall() only change objects made afterwards; AIONET_BACKEND is
// never silently ignored when it names something that cannot run; a
// program that closed everything exits on its own. Three tests failed
// before their fix (RELIABILITY.md, finding 35).

import assert from "node:assert/strict";

const supported = Deno.build.os === "linux" &&
  (Deno.build.arch === "x86_64" || Deno.build.arch === "aarch64");
const needs = "(Linux x86_64/aarch64 only)";

const root = new URL("..", import.meta.url).href;
const HEADER = `
import { createConnection, createServer, createUnixConnection, createUnixServer, createDatagramEndpoint } from "${root}transports.ts";
import { DatagramProtocol, Protocol } from "${root}protocols.ts";
import { socket, socketpair } from "${root}sockets.ts";
import { openConnection, startServer } from "${root}streams.ts";
import { activeBackend, install, isAvailable, uninstall, whyUnavailable } from "${root}native.ts";
async function outcome(label, fn) {
  let text;
  try {
    await fn();
    text = "ok";
  } catch (error) {
    text = error.constructor.name + ": " + error.message;
  }
  console.log(label + "|" + text);
}
`;

interface Result {
  code: number;
  /** label → outcome, from the child's "label|outcome" lines. */
  outcomes: Map<string, string>;
  stdout: string;
  stderr: string;
}

/** Runs HEADER + `body` in a child deno with `flags` and `env` (bounded). */
async function child(
  body: string,
  flags: string[],
  env: Record<string, string> = {},
  args: string[] = [],
): Promise<Result> {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/child.ts`;
    await Deno.writeTextFile(path, HEADER + body);
    const output = await new Deno.Command(Deno.execPath(), {
      args: ["run", "--quiet", "--no-prompt", ...flags, path, ...args],
      env,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
      signal: AbortSignal.timeout(30_000),
    }).output();
    const text = new TextDecoder();
    const stdout = text.decode(output.stdout);
    const outcomes = new Map<string, string>();
    for (const line of stdout.split("\n")) {
      const bar = line.indexOf("|");
      if (bar > 0) outcomes.set(line.slice(0, bar), line.slice(bar + 1));
    }
    return {
      code: output.code,
      outcomes,
      stdout,
      stderr: text.decode(output.stderr),
    };
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** The same child under AIONET_BACKEND=deno and =native. */
async function onBoth(
  body: string,
  flags: string[],
  args: string[] = [],
): Promise<{ deno: Result; native: Result }> {
  const all = ["--allow-ffi", "--allow-env=AIONET_BACKEND", ...flags];
  const deno = await child(body, all, { AIONET_BACKEND: "deno" }, args);
  const native = await child(body, all, { AIONET_BACKEND: "native" }, args);
  for (const [name, result] of [["deno", deno], ["native", native]] as const) {
    assert.equal(result.code, 0, `${name} child failed: ${result.stderr}`);
    assert.equal(
      result.outcomes.get("backend"),
      name,
      `${name} child ran on ${result.outcomes.get("backend")}`,
    );
  }
  return { deno, native };
}

/**
 * Every refusal of the Deno backend (NotCapable) is the native backend's
 * too, word for word; and the native backend refuses nothing the Deno
 * backend allows.
 */
function assertSameRefusals(
  deno: Result,
  native: Result,
  labels: string[],
): void {
  for (const label of labels) {
    const d = deno.outcomes.get(label);
    const n = native.outcomes.get(label);
    assert.ok(d !== undefined && n !== undefined, `${label} missing`);
    if (d.startsWith("NotCapable")) {
      assert.equal(n, d, `${label}: the Deno backend refused, native did not`);
    } else {
      assert.ok(
        !n.startsWith("NotCapable") && !/EPERM/.test(n),
        `${label}: the native backend refused (${n}), Deno's allowed (${d})`,
      );
    }
  }
}

/** A TCP port free on 127.0.0.1 at this moment. */
function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr as Deno.NetAddr;
  listener.close();
  return port;
}

const BACKEND = `console.log("backend|" + activeBackend());\n`;

// The promise: "before binding or connecting, check Deno.permissions for
// that host:port and refuse as the Deno backend would". Granted
// `localhost:PORT` (and the address it listens on), the Deno backend
// connects to localhost:PORT. The native backend resolves the name with
// node:dns, whose lookup needs net access to the whole host: it fails
// with a plain Error "getaddrinfo EPERM localhost".
Deno.test({
  name:
    `a connection by name under a host:port-scoped --allow-net works on native too (it was refused) ${needs}`,
  ignore: !supported,
  async fn() {
    const port = freePort();
    const { deno, native } = await onBoth(
      BACKEND + `
const port = Number(Deno.args[0]);
const server = await createServer(() => new Protocol(), { hostname: "127.0.0.1", port });
await outcome("connect localhost", async () => {
  const [t] = await createConnection(() => new Protocol(), { hostname: "localhost", port });
  t.close();
});
server.close();
server.closeClients();
await server.waitClosed();
`,
      [`--allow-net=127.0.0.1:${port},localhost:${port}`],
      [String(port)],
    );
    assert.equal(deno.outcomes.get("connect localhost"), "ok");
    assert.equal(native.outcomes.get("connect localhost"), "ok");
  },
});

// The promise: "refuse as the Deno backend would". Deno checks the
// addresses a name resolves to against --deny-net: with
// `--allow-net --deny-net=127.0.0.1:P,[::1]:P`, listening on, connecting
// to and sending a datagram to localhost:P are refused with NotCapable
// naming 127.0.0.1:P. The native backend checks only the name
// ("localhost:P", allowed) and binds, connects and sends anyway.
Deno.test({
  name:
    `--deny-net of the address a name resolves to is enforced on native too (it was not) ${needs}`,
  ignore: !supported,
  async fn() {
    const port = freePort();
    const { deno, native } = await onBoth(
      BACKEND + `
const port = Number(Deno.args[0]);
await outcome("listen localhost", async () => {
  const server = await createServer(() => new Protocol(), { hostname: "localhost", port });
  server.close();
  await server.waitClosed();
});
await outcome("connect localhost", async () => {
  const [t] = await createConnection(() => new Protocol(), { hostname: "localhost", port });
  t.close();
});
const { promise, resolve } = Promise.withResolvers();
class Catcher extends DatagramProtocol {
  errorReceived(error) { resolve(error); }
}
const [udp] = await createDatagramEndpoint(() => new Catcher(), { localAddr: { hostname: "127.0.0.1", port: 0 } });
udp.sendTo(new Uint8Array(1), { hostname: "localhost", port });
// Bounded: a send that is not refused reports nothing.
const timer = setTimeout(() => resolve(null), 500);
const error = await promise;
clearTimeout(timer);
console.log("udp sendTo localhost|" + (error === null ? "ok" : error.constructor.name + ": " + error.message));
udp.close();
`,
      [
        "--unstable-net",
        "--allow-net",
        `--deny-net=127.0.0.1:${port},[::1]:${port}`,
      ],
      [String(port)],
    );
    assert.match(
      deno.outcomes.get("listen localhost") ?? "",
      /^NotCapable/,
      "this Deno checks resolved addresses (else the test proves nothing)",
    );
    assertSameRefusals(deno, native, [
      "listen localhost",
      "connect localhost",
      "udp sendTo localhost",
    ]);
  },
});

// The promise: "honours Deno's net permissions ... refuse as the Deno
// backend would". Deno (2.x) asks net access for a Unix socket path
// ("unix:/abs/path") besides read and write. With read and write granted
// and no --allow-net, the Deno backend's createUnixServer and
// createUnixConnection are refused (NotCapable: Requires net access to
// "unix:..."); the native backend (checkUnixPath: read and write only)
// listens and connects.
Deno.test({
  name:
    `Unix sockets need Deno's net permission for the path on native too (it was skipped) ${needs}`,
  ignore: !supported,
  async fn() {
    const dir = await Deno.makeTempDir();
    try {
      const { deno, native } = await onBoth(
        BACKEND + `
const dir = Deno.args[0];
await outcome("unix listen", async () => {
  const server = await createUnixServer(() => new Protocol(), { path: dir + "/listen.sock" });
  server.close();
  await server.waitClosed();
});
await outcome("unix connect", async () => {
  const [t] = await createUnixConnection(() => new Protocol(), { path: dir + "/none.sock" });
  t.close();
});
// What Deno itself says for the same path (the reference).
await outcome("deno listen", () => Deno.listen({ transport: "unix", path: dir + "/listen.sock" }).close());
`,
        [`--allow-read=${dir}`, `--allow-write=${dir}`],
        [dir],
      );
      assert.equal(
        deno.outcomes.get("unix listen"),
        deno.outcomes.get("deno listen"),
        "the Deno backend says what Deno says",
      );
      assertSameRefusals(deno, native, ["unix listen", "unix connect"]);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name:
    `native api: denied datagram and stream destinations are refused alike on both backends ${needs}`,
  ignore: !supported,
  async fn() {
    const port = freePort();
    const { deno, native } = await onBoth(
      BACKEND + `
const port = Number(Deno.args[0]);
await outcome("connect other port", async () => {
  const [t] = await createConnection(() => new Protocol(), { hostname: "127.0.0.1", port: port + 1 });
  t.close();
});
await outcome("listen 127.0.0.2", async () => {
  const server = await createServer(() => new Protocol(), { hostname: "127.0.0.2", port });
  server.close();
  await server.waitClosed();
});
const { promise, resolve } = Promise.withResolvers();
class Catcher extends DatagramProtocol {
  errorReceived(error) { resolve(error); }
}
const [udp] = await createDatagramEndpoint(() => new Catcher(), { localAddr: { hostname: "127.0.0.1", port } });
udp.sendTo(new Uint8Array(1), { hostname: "127.0.0.1", port: port + 2 });
const timer = setTimeout(() => resolve(null), 2000);
const error = await promise;
clearTimeout(timer);
console.log("udp sendTo other port|" + (error === null ? "ok" : error.constructor.name + ": " + error.message));
udp.close();
`,
      ["--unstable-net", `--allow-net=127.0.0.1:${port}`],
      [String(port)],
    );
    const labels = [
      "connect other port",
      "listen 127.0.0.2",
      "udp sendTo other port",
    ];
    for (const label of labels) {
      assert.match(
        deno.outcomes.get(label) ?? "",
        /^NotCapable: Requires net access/,
      );
    }
    assertSameRefusals(deno, native, labels);
  },
});

Deno.test({
  name:
    `native api: objects keep the backend they were made with across install() and uninstall() ${needs}`,
  ignore: !supported,
  async fn() {
    const result = await child(
      `
const accepted = [];
const both = Promise.withResolvers();
class Server extends Protocol {
  connectionMade(t) {
    accepted.push(t.getExtraInfo("conn") === undefined ? "native" : "deno");
    if (accepted.length === 2) both.resolve();
  }
}
const kind = (t) => t.getExtraInfo("conn") === undefined ? "native" : "deno";
console.log("start|" + activeBackend());
const denoServer = await createServer(() => new Server(), { hostname: "127.0.0.1", port: 0 });
const denoPort = denoServer.addrs[0].port;
install();
console.log("installed|" + activeBackend());
const nativeServer = await createServer(() => new Server(), { hostname: "127.0.0.1", port: 0 });
const nativePort = nativeServer.addrs[0].port;
const [a] = await createConnection(() => new Protocol(), { hostname: "127.0.0.1", port: denoPort });
uninstall();
console.log("uninstalled|" + activeBackend());
const [b] = await createConnection(() => new Protocol(), { hostname: "127.0.0.1", port: nativePort });
console.log("a (after install)|" + kind(a));
console.log("b (after uninstall)|" + kind(b));
// Both servers accepted (bounded by the parent's timeout).
await both.promise;
console.log("accepted|" + accepted.join(","));
a.close();
b.close();
for (const s of [denoServer, nativeServer]) {
  s.close();
  s.closeClients();
  await s.waitClosed();
}
`,
      ["--allow-ffi", "--allow-net=127.0.0.1"],
    );
    assert.equal(result.code, 0, result.stderr);
    const o = result.outcomes;
    assert.equal(o.get("start"), "deno");
    assert.equal(o.get("installed"), "native");
    assert.equal(o.get("uninstalled"), "deno");
    assert.equal(o.get("a (after install)"), "native");
    assert.equal(o.get("b (after uninstall)"), "deno");
    // The Deno server accepted a's peer (Deno), the native one b's (native).
    assert.deepEqual(o.get("accepted")?.split(",").sort(), ["deno", "native"]);
  },
});

Deno.test({
  name:
    `native api: without FFI isAvailable() is false, whyUnavailable() names --allow-ffi, install() throws NotSupported and changes nothing ${needs}`,
  ignore: !supported,
  async fn() {
    const body = `
console.log("available|" + typeof isAvailable() + " " + isAvailable());
const why = whyUnavailable();
console.log("why|" + typeof why + " " + why);
try {
  install();
  console.log("install|installed");
} catch (error) {
  console.log("install|" + (error instanceof Deno.errors.NotSupported) + " " + error.message.includes(why));
}
console.log("after|" + activeBackend());
`;
    for (const flags of [[], ["--deny-ffi"]]) {
      const result = await child(body, flags);
      assert.equal(result.code, 0, result.stderr);
      const o = result.outcomes;
      assert.equal(o.get("available"), "boolean false", flags.join(" "));
      assert.match(o.get("why") ?? "", /^string .*--allow-ffi/);
      assert.equal(o.get("install"), "true true");
      assert.equal(o.get("after"), "deno");
    }
    const ok = await child(body.split("\ntry")[0], ["--allow-ffi"]);
    assert.equal(ok.outcomes.get("available"), "boolean true");
    assert.equal(ok.outcomes.get("why"), "object null");
  },
});

Deno.test({
  name:
    `native api: AIONET_BACKEND=native without FFI, or a bogus name, makes every first use throw NotSupported (socket, socketpair, datagram) ${needs}`,
  ignore: !supported,
  async fn() {
    const body = `
for (let i = 0; i < 2; i++) {
  await outcome("socket " + i, () => socket().close());
  await outcome("socketpair " + i, () => socketpair().forEach((s) => s.close()));
  await outcome("datagram " + i, async () => {
    const [t] = await createDatagramEndpoint(() => new DatagramProtocol(), { localAddr: { hostname: "127.0.0.1", port: 0 } });
    t.close();
  });
}
`;
    const flags = [
      "--unstable-net",
      "--allow-net=127.0.0.1",
      "--allow-env=AIONET_BACKEND",
    ];
    const noFfi = await child(body, flags, { AIONET_BACKEND: "native" });
    const bogus = await child(body, ["--allow-ffi", ...flags], {
      AIONET_BACKEND: "bogus",
    });
    for (
      const [result, pattern] of [
        [noFfi, /^NotSupported: .*--allow-ffi/],
        [bogus, /^NotSupported: AIONET_BACKEND=bogus names no backend/],
      ] as const
    ) {
      assert.equal(result.code, 0, result.stderr);
      assert.equal(result.outcomes.size, 6, result.stdout);
      for (const [label, text] of result.outcomes) {
        assert.match(text, pattern, label);
      }
    }
  },
});

Deno.test({
  name:
    `native api: a program that used the native backend and closed everything exits on its own ${needs}`,
  ignore: !supported,
  async fn() {
    const dir = await Deno.makeTempDir();
    try {
      const started = performance.now();
      const result = await child(
        `
install();
const dir = Deno.args[0];
const server = await startServer(async (reader, writer) => {
  writer.write(await reader.readLine());
  await writer.drain();
  writer.close();
  await writer.waitClosed();
}, { hostname: "127.0.0.1", port: 0 });
const [reader, writer] = await openConnection({ hostname: "127.0.0.1", port: server.addrs[0].port });
writer.write(new TextEncoder().encode("echo\\n"));
console.log("echo|" + new TextDecoder().decode(await reader.readLine()).trim());
writer.close();
await writer.waitClosed();
server.close();
await server.waitClosed();
await outcome("refused", async () => {
  const [t] = await createConnection(() => new Protocol(), { hostname: "127.0.0.1", port: server.addrs[0].port });
  t.close();
});
const [udp] = await createDatagramEndpoint(() => new DatagramProtocol(), { localAddr: { hostname: "127.0.0.1", port: 0 } });
udp.sendTo(new Uint8Array(1), udp.getExtraInfo("sockname"));
udp.close();
const unix = await createUnixServer(() => new Protocol(), { path: dir + "/u.sock" });
const [u] = await createUnixConnection(() => new Protocol(), { path: dir + "/u.sock" });
u.close();
unix.close();
unix.closeClients();
await unix.waitClosed();
const s = socket();
s.bind({ hostname: "127.0.0.1", port: 0 });
s.listen();
s.close();
socketpair().forEach((p) => p.close());
console.log("done|" + activeBackend());
`,
        [
          "--allow-ffi",
          `--allow-read=${dir}`,
          `--allow-write=${dir}`,
          `--allow-net=unix:${dir}/u.sock,127.0.0.1`,
        ],
        {},
        [dir],
      );
      const elapsed = performance.now() - started;
      assert.equal(result.code, 0, result.stderr);
      assert.equal(result.outcomes.get("echo"), "echo");
      assert.match(result.outcomes.get("refused") ?? "", /^ConnectionRefused/);
      assert.equal(result.outcomes.get("done"), "native");
      assert.ok(elapsed < 20_000, `took ${elapsed} ms to exit`);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
