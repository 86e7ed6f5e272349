// The module structure ARCHITECTURE.md describes, checked: every root module
// loads first on its own (no module depends on another having been loaded
// before it), the import graph of the root modules has no cycle except the
// type-only transport ⇄ protocol pair, and every module sits in its layer
// and imports nothing above it.

import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("../", import.meta.url));
const modules = [...Deno.readDirSync(root)]
  .filter((e) => e.isFile && e.name.endsWith(".ts"))
  .map((e) => e.name)
  .sort();

/** Runs `deno` with `args` in the checkout; returns its exit code and output. */
async function deno(args: string[]): Promise<{ code: number; out: string }> {
  const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
    args,
    cwd: root,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder();
  return { code, out: text.decode(stdout) + text.decode(stderr) };
}

/** Runs `task` over `items`, `width` at a time. */
async function inBatches<T, R>(
  items: readonly T[],
  width: number,
  task: (item: T) => Promise<R>,
): Promise<R[]> {
  const results: R[] = [];
  for (let i = 0; i < items.length; i += width) {
    results.push(...await Promise.all(items.slice(i, i + width).map(task)));
  }
  return results;
}

Deno.test("architecture: every root module loads first, on its own", async () => {
  const failures = await inBatches(modules, 4, async (name) => {
    const url = new URL(name, `file://${root}`).href;
    const { code, out } = await deno([
      "eval",
      "--unstable-net",
      `await import(${JSON.stringify(url)});`,
    ]);
    return code === 0 ? null : `${name}: ${out.trim().split("\n")[0]}`;
  });
  assert.deepEqual(failures.filter((f) => f !== null), []);
});

/** The layers of ARCHITECTURE.md, bottom (1) to top (7). */
const LAYERS: Record<number, string[]> = {
  1: [
    "_loop_core.ts",
    "_debug.ts",
    "_backend.ts",
    "_transport_types.ts",
    "protocols.ts",
    "_readiness.ts",
    "_read_flow.ts",
    "_write_flow.ts",
    "_validate.ts",
    "_errno.ts",
    "_fd.ts",
    "_byte_queue.ts",
    "_byte_pool.ts",
    "_socket_constants.ts",
    "_addrinfo.ts",
    "_multicast.ts",
    "_ip.ts",
    "_unix_path.ts",
    "_node_tls.ts",
  ],
  2: [
    "_handles.ts",
    "_futures.ts",
    "_timer_queue.ts",
    "_ready_queue.ts",
    "_signals.ts",
    "_run_state.ts",
  ],
  3: [
    "_io.ts",
    "_deno_backend.ts",
    "_conn_handles.ts",
    "_socket_emulated.ts",
    "_socket_emulated_pair.ts",
    "_socket_stream.ts",
    "_socket_listener.ts",
    "_socket_datagram.ts",
    "_native_*.ts",
  ],
  4: [
    "_stream_transport.ts",
    "_datagram_transport.ts",
    "_server.ts",
    "_tls*.ts",
    "_pipe_transports.ts",
    "_subprocess_transport.ts",
    "_memory_transport.ts",
    "_recording_transport.ts",
    "_transport_common.ts",
    "_transport_socket.ts",
  ],
  5: [
    "_stream_factories.ts",
    "_datagram.ts",
    "_subprocess_spawn.ts",
    "_adopt_socket.ts",
    "_socket.ts",
    "sockets.ts",
    "selectors.ts",
    "_sock_ops.ts",
    "_loop_watches.ts",
  ],
  6: ["events.ts"],
  7: [
    "mod.ts",
    "transports.ts",
    "streams.ts",
    "subprocess.ts",
    "testing.ts",
    "native.ts",
    "_stream_reader.ts",
    "_stream_errors.ts",
    "_stream_repr.ts",
    "_stream_writer.ts",
    "_stream_protocol.ts",
    "_fake_clock.ts",
  ],
};

/** The layer of `name`, by exact name or `*` pattern. */
function layerOf(name: string): number | undefined {
  for (const [layer, names] of Object.entries(LAYERS)) {
    for (const pattern of names) {
      const re = new RegExp(
        `^${pattern.replaceAll(".", "\\.").replaceAll("*", ".*")}$`,
      );
      if (re.test(name)) return Number(layer);
    }
  }
  return undefined;
}

interface InfoModule {
  specifier: string;
  dependencies?: Array<{
    isDynamic?: boolean;
    code?: { specifier?: string };
    type?: { specifier?: string };
  }>;
}

/** Strongly connected components with more than one module. */
function cycles(edges: Map<string, Set<string>>): string[][] {
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const out: string[][] = [];
  let next = 0;
  const visit = (v: string) => {
    index.set(v, next);
    low.set(v, next++);
    stack.push(v);
    onStack.add(v);
    for (const w of edges.get(v) ?? []) {
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) {
        low.set(v, Math.min(low.get(v)!, index.get(w)!));
      }
    }
    if (low.get(v) === index.get(v)) {
      const component: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        component.push(w);
      } while (w !== v);
      if (component.length > 1) out.push(component.sort());
    }
  };
  for (const v of [...edges.keys()].sort()) if (!index.has(v)) visit(v);
  return out;
}

Deno.test("architecture: no import cycle but the type-only transport ⇄ protocol pair", async () => {
  const code = new Map<string, Set<string>>();
  const all = new Map<string, Set<string>>();
  const local = (specifier: string | undefined) => {
    if (specifier === undefined || !specifier.startsWith("file://")) return;
    const path = fileURLToPath(specifier);
    const name = path.slice(root.length);
    return path.startsWith(root) && !name.includes("/") ? name : undefined;
  };
  const infos = await inBatches(modules, 4, async (name) => {
    const { code: status, out } = await deno(["info", "--json", name]);
    assert.equal(status, 0, `deno info ${name}: ${out.slice(0, 200)}`);
    return JSON.parse(out) as { modules: InfoModule[] };
  });
  for (const info of infos) {
    for (const module of info.modules) {
      const from = local(module.specifier);
      if (from === undefined) continue;
      for (const dep of module.dependencies ?? []) {
        for (const kind of ["code", "type"] as const) {
          const to = local(dep[kind]?.specifier);
          if (to === undefined) continue;
          if (!all.has(from)) all.set(from, new Set());
          all.get(from)!.add(to);
          if (kind === "code") {
            if (!code.has(from)) code.set(from, new Set());
            code.get(from)!.add(to);
          }
        }
      }
    }
  }
  assert.deepEqual(cycles(code), [], "runtime import cycles");
  assert.deepEqual(cycles(all), [["_transport_types.ts", "protocols.ts"]]);

  // Layers only look down (or sideways).
  const unplaced = modules.filter((m) => layerOf(m) === undefined);
  assert.deepEqual(unplaced, [], "modules without a layer in ARCHITECTURE.md");
  const upward: string[] = [];
  for (const [from, targets] of all) {
    for (const to of targets) {
      if (layerOf(to)! > layerOf(from)!) {
        upward.push(`${from} (${layerOf(from)}) -> ${to} (${layerOf(to)})`);
      }
    }
  }
  assert.deepEqual(upward, [], "imports that look up");
});

Deno.test("architecture: Deno's socket calls live in the Deno backend alone", () => {
  // Calls, not mentions: comments and strings may name them.
  const call =
    /\bDeno\s*\.\s*(connect|listen|listenDatagram|connectTls|listenTls|startTls)\s*\(/g;
  const found: string[] = [];
  for (const name of modules) {
    if (name === "_deno_backend.ts") continue;
    const text = Deno.readTextFileSync(root + name)
      .replace(/\/\*[\s\S]*?\*\//g, "")
      .replace(/\/\/.*$/gm, "")
      .replace(/(["'`])(?:\\.|(?!\1)[^\\])*\1/g, '""');
    for (const match of text.matchAll(call)) found.push(`${name}: ${match[0]}`);
  }
  assert.deepEqual(found, []);
  const backend = Deno.readTextFileSync(root + "_deno_backend.ts");
  for (const fn of ["connect", "listen", "listenDatagram"]) {
    assert.match(
      backend,
      new RegExp(`Deno\\.${fn}\\(`),
      `_deno_backend.ts calls Deno.${fn}`,
    );
  }
});

Deno.test("architecture: the public modules but native.ts load neither the native backend nor Node's layer statically", async () => {
  // Each costs several MiB at start. _io.ts imports the native backend
  // dynamically, only under AIONET_BACKEND=native, and native.ts provides
  // it when imported. A `node:` module starts Deno's Node compatibility
  // layer (4-6 MiB): TLS, name lookups and the first `setImmediate` turn
  // load theirs when first used.
  const loaded: string[] = [];
  for (const entry of ["mod.ts", "transports.ts", "streams.ts", "sockets.ts"]) {
    const { code, out } = await deno(["info", "--json", entry]);
    assert.equal(code, 0, out.slice(0, 200));
    const info = JSON.parse(out) as {
      roots: string[];
      modules: InfoModule[];
    };
    const edges = new Map(info.modules.map((m) => [
      m.specifier,
      (m.dependencies ?? []).filter((d) => !d.isDynamic)
        .map((d) => d.code?.specifier)
        .filter((s): s is string => s !== undefined),
    ]));
    // Every module the entry reaches through static imports.
    const seen = new Set(info.roots);
    const queue = [...info.roots];
    while (queue.length > 0) {
      for (const next of edges.get(queue.pop()!) ?? []) {
        if (seen.has(next)) continue;
        seen.add(next);
        queue.push(next);
      }
    }
    for (const specifier of seen) {
      const name = specifier.slice(specifier.lastIndexOf("/") + 1);
      if (name.startsWith("_native_") || specifier.startsWith("node:")) {
        loaded.push(`${entry} -> ${name}`);
      }
    }
  }
  assert.deepEqual(loaded, []);
});
