// Tests of the native backend's permission checks and availability, in
// subprocesses run with restricted permissions: every bind and connect is
// refused exactly as Deno's own calls refuse it (same error class, same
// message), and without --allow-ffi the backend reports why it cannot run.

import assert from "node:assert/strict";
import { nativeTest } from "./_native_fd_check.ts";

const here = new URL("..", import.meta.url).href;

/** Runs `source` with `flags`; resolves to its stdout lines (bounded). */
async function run(flags: string[], source: string): Promise<string[]> {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/script.ts`;
    await Deno.writeTextFile(path, source);
    const output = await new Deno.Command(Deno.execPath(), {
      args: ["run", "--quiet", "--no-prompt", ...flags, path],
      stdout: "piped",
      stderr: "piped",
      signal: AbortSignal.timeout(30_000),
    }).output();
    const stderr = new TextDecoder().decode(output.stderr);
    assert.equal(output.code, 0, `the script failed: ${stderr}`);
    return new TextDecoder().decode(output.stdout).split("\n").filter(Boolean);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/**
 * A script that tries each operation natively and through Deno, printing
 * `name|native outcome|deno outcome` (outcome: "ok" or "Class: message").
 */
const COMPARE = `
import { createNativeBackend } from "${here}_native_backend.ts";
const backend = createNativeBackend();
const dir = Deno.args[0];
async function outcome(fn) {
  try {
    const result = await fn();
    for (const r of [result].flat()) {
      if (r && typeof r.close === "function") await r.close();
    }
    return "ok";
  } catch (error) {
    return error.constructor.name + ": " + error.message;
  }
}
const cases = [
  ["listen 127.0.0.1:0",
    () => backend.listenTcp({ hostname: "127.0.0.1", port: 0, backlog: 1, reusePort: false }),
    () => Deno.listen({ hostname: "127.0.0.1", port: 0 })],
  ["listen default host",
    () => backend.listenTcp({ port: 0, backlog: 1, reusePort: false }),
    () => Deno.listen({ port: 0 })],
  ["connect 127.0.0.2:9",
    () => backend.connectTcp({ hostname: "127.0.0.2", port: 9 }),
    () => Deno.connect({ hostname: "127.0.0.2", port: 9 })],
  ["connect localhost:9",
    () => backend.connectTcp({ hostname: "localhost", port: 9 }),
    () => Deno.connect({ hostname: "localhost", port: 9 })],
  ["listen unix",
    () => backend.listenUnix(dir + "/s.sock", 1),
    () => Deno.listen({ transport: "unix", path: dir + "/s.sock" })],
  ["connect unix",
    () => backend.connectUnix(dir + "/none.sock"),
    () => Deno.connect({ transport: "unix", path: dir + "/none.sock" })],
];
for (const [name, native, deno] of cases) {
  console.log([name, await outcome(native), await outcome(deno)].join("|"));
}
// Operations Deno has no direct twin for: print the native outcome only.
const sock = backend.newSocket(2, 1);
console.log("socket bind|" + await outcome(() => sock.bind({ hostname: "127.0.0.2", port: 0 })));
console.log("socket connect|" + await outcome(() => sock.connect({ hostname: "127.0.0.2", port: 9 })));
sock.close();
console.log("udp bind|" + await outcome(() => backend.bindUdp({
  hostname: "127.0.0.2", port: 0, reuseAddress: false, reusePort: false, allowBroadcast: false, loopback: true,
})));
`;

nativeTest(
  "permissions: native binds and connects are refused as Deno's are",
  async () => {
    const dir = await Deno.makeTempDir();
    try {
      for (
        const flags of [
          ["--allow-ffi"],
          ["--allow-ffi", "--allow-net=127.0.0.1"],
          ["--allow-ffi", "--allow-net=127.0.0.2:9", `--allow-read=${dir}`],
        ]
      ) {
        const lines = await run(
          [...flags, "--unstable-net"],
          COMPARE.replace("Deno.args[0]", JSON.stringify(dir)),
        );
        const compared = lines.filter((line) => line.split("|").length === 3);
        assert.equal(compared.length, 6, lines.join("\n"));
        for (const line of compared) {
          const [name, native, deno] = line.split("|");
          if (deno.startsWith("NotCapable")) {
            assert.equal(native, deno, `${name} with ${flags.join(" ")}`);
          } else {
            assert.ok(
              !native.startsWith("NotCapable"),
              `${name} with ${
                flags.join(" ")
              }: native refused, Deno did not (${native})`,
            );
          }
        }
        const single = new Map(
          lines.filter((line) => line.split("|").length === 2).map((line) =>
            line.split("|") as [string, string]
          ),
        );
        const allowed = flags.some((flag) =>
          flag.startsWith("--allow-net=127.0.0.2")
        );
        for (const name of ["socket bind", "socket connect", "udp bind"]) {
          const result = single.get(name) ?? "missing";
          if (name === "socket connect" && allowed) {
            assert.ok(!result.startsWith("NotCapable"), `${name}: ${result}`);
          } else if (!allowed || name !== "socket connect") {
            assert.match(
              result,
              /^NotCapable: Requires net access to "127\.0\.0\.2:\d+", run again with the --allow-net flag$/,
              `${name} with ${flags.join(" ")}`,
            );
          }
        }
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
);

nativeTest(
  "availability: without --allow-ffi the backend says why",
  async () => {
    const lines = await run(
      [],
      `
    import { createNativeBackend, nativeAvailability } from "${here}_native_backend.ts";
    console.log(JSON.stringify(nativeAvailability()));
    try {
      createNativeBackend();
      console.log("created");
    } catch (error) {
      console.log(error.constructor.name + ": " + error.message);
    }
  `,
    );
    const availability = JSON.parse(lines[0]);
    assert.equal(availability.available, false);
    assert.match(availability.reason, /--allow-ffi/);
    assert.equal(lines[1], `NotSupported: ${availability.reason}`);
  },
);

nativeTest("availability: with FFI on Linux it is available", async () => {
  const lines = await run(
    ["--allow-ffi"],
    `
    import { nativeAvailability } from "${here}_native_backend.ts";
    console.log(JSON.stringify(nativeAvailability()));
  `,
  );
  assert.deepEqual(JSON.parse(lines[0]), { available: true });
});
