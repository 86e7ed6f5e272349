// Echo benchmark of the native backend's handles against the raw Deno echo:
// `deno run -A bench/native_echo_bench.ts [flags]`.
//
// Reuses bench/loadgen.c (compiled into a temporary directory) and the raw
// server of bench/servers/raw_deno.ts. Each sample starts one server pinned
// to CPU 1, warms it up and measures it with the generator pinned to CPU 0,
// under the machine-wide lock of bench/echo_bench.ts (so the two never
// overlap). Repetitions interleave the servers (alternating which goes
// first), and the report gives per-repetition ratios native/raw and their
// median: on a shared machine the ratio of neighbouring samples is steadier
// than either absolute number.
//
// Flags: --reps R (5) --seconds S (3) --warmup S (1)
//        --workloads id,… (1k-x1,1k-x10,1k-x100,64k-x10,bulk-x4)
//        available: those and conn-1000, conn-10000.

const ROOT = new URL("..", import.meta.url).pathname.replace(/\/$/, "");
const SERVER_CPU = "1";
const LOADGEN_CPU = "0";
const LOCK_FILE = "/tmp/aionet-echo-bench.lock";

interface Workload {
  id: string;
  mode: "pingpong" | "bulk";
  conns: number;
  size: number;
}

const WORKLOADS: Workload[] = [
  { id: "1k-x1", mode: "pingpong", conns: 1, size: 1024 },
  { id: "1k-x10", mode: "pingpong", conns: 10, size: 1024 },
  { id: "1k-x100", mode: "pingpong", conns: 100, size: 1024 },
  { id: "64k-x10", mode: "pingpong", conns: 10, size: 65536 },
  { id: "bulk-x4", mode: "bulk", conns: 4, size: 65536 },
  { id: "conn-1000", mode: "pingpong", conns: 1000, size: 1024 },
  { id: "conn-10000", mode: "pingpong", conns: 10_000, size: 1024 },
];

const SERVERS: Record<string, string[]> = {
  raw: [
    "run",
    "--allow-net=127.0.0.1",
    `${ROOT}/bench/servers/raw_deno.ts`,
  ],
  native: [
    "run",
    "--allow-net=127.0.0.1",
    "--allow-ffi",
    `${ROOT}/bench/servers/native_handles_echo.ts`,
  ],
};

function flag(name: string, fallback: string): string {
  const index = Deno.args.indexOf(name);
  return index >= 0 && index + 1 < Deno.args.length
    ? Deno.args[index + 1]
    : fallback;
}

const reps = Number(flag("--reps", "5"));
const seconds = Number(flag("--seconds", "3"));
const warmup = Number(flag("--warmup", "1"));
const chosen = flag("--workloads", "1k-x1,1k-x10,1k-x100,64k-x10,bulk-x4")
  .split(",");
const workloads = chosen.map((id) => {
  const workload = WORKLOADS.find((w) => w.id === id);
  if (workload === undefined) throw new TypeError(`Unknown workload ${id}`);
  return workload;
});

async function compileLoadgen(): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "native-bench-" });
  const binary = `${dir}/loadgen`;
  const { success, stderr } = await new Deno.Command("gcc", {
    args: ["-O2", "-Wall", "-o", binary, `${ROOT}/bench/loadgen.c`],
    stderr: "piped",
  }).output();
  if (!success) throw new Error(new TextDecoder().decode(stderr));
  return binary;
}

/** Reads lines from a byte stream. */
async function* lines(stream: ReadableStream<Uint8Array>) {
  let rest = "";
  const decoder = new TextDecoder();
  for await (const chunk of stream) {
    rest += decoder.decode(chunk, { stream: true });
    let index;
    while ((index = rest.indexOf("\n")) >= 0) {
      yield rest.slice(0, index);
      rest = rest.slice(index + 1);
    }
  }
  if (rest) yield rest;
}

interface Server {
  port: number;
  stop(): Promise<void>;
}

async function startServer(id: string): Promise<Server> {
  const child = new Deno.Command("sh", {
    args: [
      "-c",
      `ulimit -n "$(ulimit -Hn)" && exec taskset -c ${SERVER_CPU} "$@"`,
      "sh",
      Deno.execPath(),
      ...SERVERS[id],
      "--host",
      "127.0.0.1",
      "--port",
      "0",
    ],
    stdout: "piped",
    stderr: "inherit",
    stdin: "null",
  }).spawn();
  const reader = lines(child.stdout);
  const timer = setTimeout(() => child.kill("SIGKILL"), 30_000);
  let port = 0;
  for await (const line of reader) {
    const match = /^READY (\d+)$/.exec(line);
    if (match) {
      port = Number(match[1]);
      break;
    }
  }
  clearTimeout(timer);
  if (port === 0) throw new Error(`${id} server did not start`);
  // Keep draining stdout so the server never blocks on it.
  const drained = (async () => {
    for await (const _ of reader);
  })();
  return {
    port,
    async stop() {
      child.kill("SIGKILL");
      await child.status;
      await drained;
    },
  };
}

interface Result {
  elapsed: number;
  roundtrips: number;
  bytes: number;
  cpu: number;
  errors: number;
  corrupt: number;
}

async function load(
  loadgen: string,
  port: number,
  w: Workload,
  duration: number,
  verify: "all" | "ends",
): Promise<Result> {
  const output = await new Deno.Command("sh", {
    args: [
      "-c",
      `ulimit -n "$(ulimit -Hn)" && exec taskset -c ${LOADGEN_CPU} "$@"`,
      "sh",
      loadgen,
      "--port",
      String(port),
      "--mode",
      w.mode,
      "--conns",
      String(w.conns),
      "--size",
      String(w.size),
      "--seconds",
      String(duration),
      "--verify",
      verify,
    ],
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout((duration + 60 + w.conns * 0.01) * 1000),
  }).output();
  const text = new TextDecoder().decode(output.stdout).split("\n")
    .find((line) => line.startsWith("{"));
  if (text === undefined) {
    throw new Error(
      `loadgen failed: ${new TextDecoder().decode(output.stderr)}`,
    );
  }
  return JSON.parse(text) as Result;
}

async function withLock<T>(fn: () => Promise<T>): Promise<T> {
  const file = await Deno.open(LOCK_FILE, {
    create: true,
    write: true,
    mode: 0o666,
  });
  try {
    for (let i = 0; !(await file.tryLock(true)); i++) {
      if (i > 3000) throw new Error("the benchmark lock stayed busy");
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    return await fn();
  } finally {
    file.close();
  }
}

/** One sample: the workload's rate (round trips/s, or MiB/s for bulk). */
async function sample(
  loadgen: string,
  id: string,
  w: Workload,
): Promise<number> {
  return await withLock(async () => {
    const server = await startServer(id);
    try {
      await load(loadgen, server.port, w, warmup, "all");
      const r = await load(loadgen, server.port, w, seconds, "ends");
      if (r.errors || r.corrupt) {
        throw new Error(
          `${id} ${w.id}: ${r.errors} errors, ${r.corrupt} corrupt`,
        );
      }
      return w.mode === "bulk"
        ? r.bytes / r.elapsed / (1 << 20)
        : r.roundtrips / r.elapsed;
    } finally {
      await server.stop();
    }
  });
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

const loadgen = await compileLoadgen();
const rows: string[] = [];
try {
  for (const w of workloads) {
    const rates: Record<string, number[]> = { raw: [], native: [] };
    const ratios: number[] = [];
    for (let rep = 0; rep < reps; rep++) {
      const order = rep % 2 === 0 ? ["raw", "native"] : ["native", "raw"];
      const got: Record<string, number> = {};
      for (const id of order) got[id] = await sample(loadgen, id, w);
      rates.raw.push(got.raw);
      rates.native.push(got.native);
      ratios.push(got.native / got.raw);
      console.error(
        `${w.id} rep ${rep + 1}: raw ${got.raw.toFixed(0)}, native ${
          got.native.toFixed(0)
        }, ratio ${(got.native / got.raw).toFixed(2)}`,
      );
    }
    const unit = w.mode === "bulk" ? "MiB/s" : "rt/s";
    rows.push(
      `| ${w.id} | ${median(rates.raw).toFixed(0)} ${unit} | ${
        median(rates.native).toFixed(0)
      } ${unit} | ${median(ratios).toFixed(2)}× (${
        Math.min(...ratios).toFixed(2)
      }–${Math.max(...ratios).toFixed(2)}) |`,
    );
  }
} finally {
  await Deno.remove(loadgen.replace(/\/loadgen$/, ""), { recursive: true });
}
console.log(
  `\n${reps} interleaved reps × ${seconds} s, server on CPU ${SERVER_CPU}, generator on CPU ${LOADGEN_CPU}\n`,
);
console.log("| workload | raw Deno | native handles | native/raw (min–max) |");
console.log("| --- | --- | --- | --- |");
for (const row of rows) console.log(row);
