// Debug mode: slow callbacks (loop callbacks and protocol callbacks) are
// reported with console.warn naming them and their duration; transports,
// servers and sockets collected unclosed are reported; AIONET_DEBUG=1
// turns it on; off, nothing is reported.

import assert from "node:assert/strict";
import { EventLoop } from "../events.ts";
import { Protocol } from "../protocols.ts";
import { encode, withTimeout } from "./_helpers.ts";

/** Collects console.warn lines until disposed. */
function captureWarnings(): { lines: string[]; [Symbol.dispose](): void } {
  const original = console.warn;
  const lines: string[] = [];
  console.warn = (...args: unknown[]) => lines.push(args.join(" "));
  return {
    lines,
    [Symbol.dispose]: () => console.warn = original,
  };
}

/** Busy-waits `ms` milliseconds (a callback that blocks the loop). */
function block(ms: number): void {
  const end = performance.now() + ms;
  while (performance.now() < end) { /* blocking on purpose */ }
}

Deno.test("debug: off by default; setDebug and slowCallbackDuration are checked", () => {
  using loop = new EventLoop();
  assert.equal(loop.getDebug(), false);
  assert.equal(loop.slowCallbackDuration, 100);
  loop.setDebug(true);
  assert.equal(loop.getDebug(), true);
  loop.slowCallbackDuration = 5;
  assert.equal(loop.slowCallbackDuration, 5);
  assert.throws(() => loop.setDebug(1 as never), TypeError);
  assert.throws(() => loop.slowCallbackDuration = "1" as never, TypeError);
  assert.throws(() => loop.slowCallbackDuration = -1, RangeError);
});

Deno.test("debug: a slow loop callback is reported with its name and duration; a fast one and debug off are not", async () => {
  using warnings = captureWarnings();
  using loop = new EventLoop();
  loop.slowCallbackDuration = 50;
  const ran = Promise.withResolvers<void>();
  // Debug off: nothing is reported, however slow.
  const unwatched = Promise.withResolvers<void>();
  loop.callSoon(function slowButUnwatched() {
    block(60);
    unwatched.resolve();
  });
  await unwatched.promise;
  loop.setDebug(true);
  loop.callSoon(function quick() {});
  loop.callSoon(function slowCallback() {
    block(60);
    ran.resolve();
  });
  await ran.promise;
  assert.equal(warnings.lines.length, 1, warnings.lines.join("\n"));
  assert.match(
    warnings.lines[0],
    /^Executing <Handle slowCallback> took \d+\.\d ms$/,
  );
  const took = Number(/took (\d+\.\d)/.exec(warnings.lines[0])![1]);
  assert.ok(took >= 50, `${took} ms`);
});

Deno.test("debug: a slow protocol callback (dataReceived) is reported", async () => {
  using warnings = captureWarnings();
  using loop = new EventLoop();
  loop.setDebug(true);
  loop.slowCallbackDuration = 20;
  const got = Promise.withResolvers<void>();
  class SlowReader extends Protocol {
    override dataReceived(): void {
      block(30);
      got.resolve();
    }
  }
  await using server = await loop.createServer(() => new SlowReader(), {
    hostname: "127.0.0.1",
    port: 0,
  });
  const { port } = server.addrs[0] as Deno.NetAddr;
  const [client] = await loop.createConnection(() => new Protocol(), {
    hostname: "127.0.0.1",
    port,
  });
  client.write(encode("x"));
  await withTimeout(got.promise, 5000, "dataReceived");
  client.close();
  server.closeClients();
  assert.ok(
    warnings.lines.some((l) =>
      /^Executing SlowReader\.dataReceived\(\) took \d+\.\d ms$/.test(l)
    ),
    warnings.lines.join("\n"),
  );
});

async function runScript(
  source: string,
  env: Record<string, string> = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/script.ts`;
    await Deno.writeTextFile(path, source);
    const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", "--v8-flags=--expose-gc", path],
      env,
      stdout: "piped",
      stderr: "piped",
    }).output();
    const text = new TextDecoder();
    return { code, stdout: text.decode(stdout), stderr: text.decode(stderr) };
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

const events = new URL("../events.ts", import.meta.url).href;
const sockets = new URL("../sockets.ts", import.meta.url).href;
const transports = new URL("../transports.ts", import.meta.url).href;
const protocols = new URL("../protocols.ts", import.meta.url).href;

Deno.test("debug: AIONET_DEBUG=1 turns debug mode on for new loops", async () => {
  const source = `import { getEventLoop } from ${JSON.stringify(events)};
console.log(getEventLoop().getDebug());`;
  const on = await runScript(source, { AIONET_DEBUG: "1" });
  assert.equal(on.stdout.trim(), "true", on.stderr);
  const off = await runScript(source, { AIONET_DEBUG: "0" });
  assert.equal(off.stdout.trim(), "false", off.stderr);
});

Deno.test("debug: sockets, transports and servers collected unclosed are reported; closed ones are not", async () => {
  const source = `import { getEventLoop } from ${JSON.stringify(events)};
import { socket } from ${JSON.stringify(sockets)};
import { createServer, createConnection } from ${JSON.stringify(transports)};
import { Protocol } from ${JSON.stringify(protocols)};
getEventLoop().setDebug(true);
const gc = (globalThis as unknown as { gc(): void }).gc;
const seen: string[] = [];
const warn = console.warn;
console.warn = (line: string) => { seen.push(line); warn(line); };
(() => { socket(); })();
(() => { socket().close(); })();
await (async () => {
  await createServer(() => new Protocol(), { hostname: "127.0.0.1", port: 0, startServing: false });
  (await createServer(() => new Protocol(), { hostname: "127.0.0.1", port: 0, startServing: false })).close();
})();
// A half-open transport (its protocol keeps it open after EOF) with no
// read in flight, dropped without close(); and one that was closed.
class KeepOpen extends Protocol {
  override eofReceived() { return true; }
}
const eof = Promise.withResolvers<void>();
class Peer extends Protocol {
  override connectionMade(t: { writeEof(): void }) { t.writeEof(); }
  override eofReceived() { eof.resolve(); return true; }
}
const server = await createServer(() => new Peer(), { hostname: "127.0.0.1", port: 0 });
const port = (server.addrs[0] as Deno.NetAddr).port;
await (async () => {
  const done = Promise.withResolvers<void>();
  class Client extends KeepOpen {
    override eofReceived() { done.resolve(); return true; }
  }
  const [t] = await createConnection(() => new Client(), { hostname: "127.0.0.1", port });
  await done.promise;
  t.writeEof();
})();
await eof.promise;
for (let i = 0; i < 50 && seen.length < 3; i++) {
  gc();
  await new Promise((resolve) => setTimeout(resolve, 10));
}
server.abortClients();
server.close();
await server.waitClosed();
console.log(JSON.stringify(seen));
Deno.exit(0);
`;
  const { code, stdout, stderr } = await runScript(source);
  assert.equal(code, 0, stderr);
  const seen = JSON.parse(stdout.trim().split("\n").at(-1)!) as string[];
  assert.deepEqual(
    seen.toSorted(),
    [
      "ResourceWarning: unclosed server",
      "ResourceWarning: unclosed socket",
      "ResourceWarning: unclosed transport",
    ],
    stderr,
  );
});
