// native.ts, the public switch: install()/uninstall() change the backend of
// objects made afterwards, isAvailable()/whyUnavailable() tell, and
// AIONET_BACKEND=native selects it at first use, never falling back
// silently when it cannot run.

import assert from "node:assert/strict";
import {
  activeBackend,
  install,
  isAvailable,
  uninstall,
  whyUnavailable,
} from "../native.ts";
import { Protocol } from "../protocols.ts";
import { createConnection, createServer } from "../transports.ts";
import { socket } from "../sockets.ts";
import { nativeTest } from "./_native_fd_check.ts";

/** Runs `source` in a new deno process with `flags`; its output and code. */
async function run(
  source: string,
  flags: string[],
  env: Record<string, string> = {},
): Promise<{ code: number; out: string }> {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/main.ts`;
    await Deno.writeTextFile(path, source);
    const output = await new Deno.Command(Deno.execPath(), {
      args: ["run", ...flags, path],
      env,
      stdout: "piped",
      stderr: "piped",
    }).output();
    const text = new TextDecoder();
    return {
      code: output.code,
      out: text.decode(output.stdout) + text.decode(output.stderr),
    };
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

const transports = new URL("../transports.ts", import.meta.url).href;
const protocols = new URL("../protocols.ts", import.meta.url).href;
const nativeModule = new URL("../native.ts", import.meta.url).href;

nativeTest(
  "native module: install() makes new objects native, uninstall() goes back",
  async () => {
    assert.equal(isAvailable(), true);
    assert.equal(whyUnavailable(), null);
    const before = activeBackend();
    install();
    try {
      assert.equal(activeBackend(), "native");
      using sock = socket();
      // A real descriptor: /proc/self/fd has it.
      assert.ok(
        Deno.readLinkSync(`/proc/self/fd/${sock.fileno()}`).startsWith(
          "socket:",
        ),
      );
      await using server = await createServer(() => new Protocol(), {
        hostname: "127.0.0.1",
        port: 0,
      });
      const fd = server.sockets[0].fileno();
      assert.ok(Deno.readLinkSync(`/proc/self/fd/${fd}`).startsWith("socket:"));
      const [client] = await createConnection(() => new Protocol(), {
        hostname: "127.0.0.1",
        port: (server.addrs[0] as Deno.NetAddr).port,
      });
      assert.equal(client.getExtraInfo("conn"), undefined, "no Deno.Conn");
      client.close();
      server.closeClients();
    } finally {
      uninstall();
    }
    assert.equal(activeBackend(), "deno");
    if (before === "native") install();
  },
);

nativeTest(
  "native module: AIONET_BACKEND=native runs an unchanged program on the native backend",
  async () => {
    const source = `import { createServer } from ${JSON.stringify(transports)};
import { Protocol } from ${JSON.stringify(protocols)};
const server = await createServer(() => new Protocol(), { hostname: "127.0.0.1", port: 0 });
const fd = server.sockets[0].fileno();
console.log(Deno.readLinkSync("/proc/self/fd/" + fd).startsWith("socket:"));
server.close();
await server.waitClosed();`;
    const native = await run(source, ["-A"], { AIONET_BACKEND: "native" });
    assert.equal(native.code, 0, native.out);
    assert.equal(native.out.trim(), "true");
    const deno = await run(source, ["-A"], { AIONET_BACKEND: "deno" });
    assert.equal(deno.code, 0, deno.out);
    assert.equal(deno.out.trim(), "false");
  },
);

nativeTest(
  "native module: asked for and unable to run (no --allow-ffi), the first call throws NotSupported naming the flag",
  async () => {
    const source = `import { createServer } from ${JSON.stringify(transports)};
import { Protocol } from ${JSON.stringify(protocols)};
import { isAvailable, whyUnavailable, install } from ${
      JSON.stringify(nativeModule)
    };
console.log(isAvailable(), whyUnavailable());
try { install(); } catch (e) { console.log("install:", e.name, e.message); }
for (let i = 0; i < 2; i++) {
  try {
    await createServer(() => new Protocol(), { hostname: "127.0.0.1", port: 0 });
    console.log("served (a silent fallback)");
  } catch (e) {
    console.log("createServer:", e.name, e.message);
  }
}`;
    const { code, out } = await run(
      source,
      ["--allow-net", "--allow-read", "--allow-env=AIONET_BACKEND"],
      { AIONET_BACKEND: "native" },
    );
    assert.equal(code, 0, out);
    const lines = out.trim().split("\n");
    assert.match(lines[0], /^false .*--allow-ffi/);
    assert.match(lines[1], /^install: NotSupported .*--allow-ffi/);
    assert.match(lines[2], /^createServer: NotSupported .*--allow-ffi/);
    assert.match(lines[3], /^createServer: NotSupported .*--allow-ffi/);
    assert.doesNotMatch(out, /silent fallback/);
  },
);

Deno.test("native module: AIONET_BACKEND naming no backend is refused with the names", async () => {
  const source = `import { createServer } from ${JSON.stringify(transports)};
import { Protocol } from ${JSON.stringify(protocols)};
try {
  await createServer(() => new Protocol(), { hostname: "127.0.0.1", port: 0 });
} catch (e) {
  console.log(e.name, e.message);
}`;
  const { out } = await run(source, ["-A"], { AIONET_BACKEND: "uring" });
  assert.match(
    out.trim(),
    /^NotSupported AIONET_BACKEND=uring names no backend: use deno or native$/,
  );
});

Deno.test("native module: the native backend's modules load only through native.ts or AIONET_BACKEND=native; asked for without them, a clear NotSupported", async () => {
  // An internal caller asking for the native backend before anything
  // loaded it gets the reason, not a crash; public code never can.
  const io = new URL("../_io.ts", import.meta.url).href;
  const source = `import { nativeBackend } from ${JSON.stringify(io)};
try {
  nativeBackend();
  console.log("made");
} catch (e) {
  console.log(e.name, e.message);
}`;
  const { out } = await run(source, ["-A"], { AIONET_BACKEND: "deno" });
  assert.match(
    out.trim(),
    /^NotSupported the native backend is not loaded: import @aionet\/aionet\/native, or set AIONET_BACKEND=native$/,
  );
});
