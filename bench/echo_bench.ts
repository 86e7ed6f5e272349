// Echo benchmark driver: `deno task bench [flags]`.
//
// Compiles the C load generator (bench/loadgen.c) into a temporary
// directory, then for each repetition and each server: starts the server
// pinned to CPU 1, and for each workload warms it up and measures it with
// the generator pinned to CPU 0. Prints a markdown report (medians, ratio
// to the raw Deno loop, server and generator CPU use) and writes it to
// bench/results/latest.md. Only 127.0.0.1 is used; every wait is bounded.
//
// The machine may be shared: each sample is taken under a machine-wide lock
// file (so two copies of this benchmark never overlap), after waiting
// (bounded) for the machine to be quiet, and is redone once if other
// processes used the CPU meanwhile.
//
// Flags: --reps R (3) --seconds S (3) --warmup S (1)
//        --servers id,id,… (all) --workloads id,id,… (all)
//        --idle-conns N (10000) --out FILE (bench/results/latest.md)
//        --extra id=path/to/server.ts (repeatable: another Deno echo server
//        with the same command line, e.g. a variant under study)
//        --extra-native id=path/to/server.ts (the same, run on aionet's
//        native backend)
//        --replot FILE.json (no measuring: redraw the report and the plot
//        from the samples a run saved, with that run's flags)
//
// Opt-in (not in the defaults, name them): the connection-scaling workloads
// conn-10, conn-100, conn-1000, conn-10000 (`--workloads conn` selects the
// four), which also draw bench/results/scaling.svg; and the servers
// workers-1, workers-2 (examples/reuseport_workers.ts, unpinned).

const ROOT = new URL("..", import.meta.url).pathname.replace(/\/$/, "");
const SERVERS_DIR = `${ROOT}/bench/servers`;
const SERVER_CPU = "1";
const LOADGEN_CPU = "0";
/** Exit code of a server program that cannot run here (skip it). */
const EXIT_SKIP = 3;
/** Machine load (in cores) under which a measurement may start. */
const QUIET_LOAD = 0.15;
/** Load from other processes (in cores) above which a sample is redone. */
const NOISY_LOAD = 0.2;
/** Generator CPU share from which a result may be limited by the generator. */
const GENERATOR_BOUND = 0.9;
/** Longest wait for a quiet machine before a sample, in ms. */
const QUIET_WAIT = 10_000;
/** Attempts per sample when other processes disturb it. */
const ATTEMPTS = 2;
const LOCK_FILE = "/tmp/aionet-echo-bench.lock";

// ---- workloads ----

interface LoadWorkload {
  id: string;
  title: string;
  kind: "load";
  mode: "pingpong" | "bulk";
  conns: number;
  size: number;
  /** Part of the connection-scaling series (opt-in, plotted). */
  scaling?: boolean;
}
interface IdleWorkload {
  id: string;
  title: string;
  kind: "idle";
}
type Workload = LoadWorkload | IdleWorkload;

const WORKLOADS: Workload[] = [
  {
    id: "1k-x10",
    title: "1 KiB ping-pong × 10 connections",
    kind: "load",
    mode: "pingpong",
    conns: 10,
    size: 1024,
  },
  {
    id: "1k-x100",
    title: "1 KiB ping-pong × 100 connections",
    kind: "load",
    mode: "pingpong",
    conns: 100,
    size: 1024,
  },
  {
    id: "64k-x10",
    title: "64 KiB ping-pong × 10 connections",
    kind: "load",
    mode: "pingpong",
    conns: 10,
    size: 65536,
  },
  {
    id: "bulk-x4",
    title: "Bulk streaming × 4 connections",
    kind: "load",
    mode: "bulk",
    conns: 4,
    size: 65536,
  },
  { id: "idle", title: "Idle connections: memory", kind: "idle" },
  ...[10, 100, 1000, 10_000].map((conns): LoadWorkload => ({
    id: `conn-${conns}`,
    title: `Connection scaling: 1 KiB ping-pong × ${
      conns.toLocaleString("en-US")
    } connections`,
    kind: "load",
    mode: "pingpong",
    conns,
    size: 1024,
    scaling: true,
  })),
];

/** The workloads run when `--workloads` is not given. */
const DEFAULT_WORKLOADS = WORKLOADS.filter((w) =>
  !(w.kind === "load" && w.scaling)
);

// ---- servers ----

interface ServerSpec {
  id: string;
  label: string;
  /** The command line, or a reason to skip the server. */
  command(): Promise<string[] | { skip: string }>;
  /** Pin the server to SERVER_CPU (default true). */
  pin?: boolean;
  /** The line that gives the port once listening (default `READY <port>`). */
  ready?: RegExp;
  /** Run only when named in `--servers`. */
  optIn?: boolean;
}

/**
 * examples/reuseport_workers.ts with `workers` Web Workers sharing the port.
 * Not pinned: the workers may use both cores, the generator's included.
 */
function workersServer(workers: number): ServerSpec {
  return {
    id: `workers-${workers}`,
    label: `aionet Protocol × ${workers} worker${
      workers > 1 ? "s" : ""
    } (unpinned)`,
    command: () =>
      Promise.resolve([
        Deno.execPath(),
        "run",
        "--allow-net=127.0.0.1",
        `--allow-read=${ROOT}`,
        "--unstable-net",
        `${ROOT}/examples/reuseport_workers.ts`,
        "--workers",
        String(workers),
      ]),
    pin: false,
    ready: /^Serving on .*:(\d+) with \d+ workers?$/,
    optIn: true,
  };
}

function denoServer(id: string, label: string, file: string): ServerSpec {
  const path = file.includes("/") ? file : `${SERVERS_DIR}/${file}`;
  // The Streams server imports streams.ts dynamically (to skip cleanly
  // while it does not exist), which needs read access: to this checkout,
  // and to the checkout of an --extra server (its file's ../../).
  const readable = path.startsWith("/") && !path.startsWith(`${ROOT}/`)
    ? `${ROOT},${new URL("../..", `file://${path}`).pathname}`
    : ROOT;
  return {
    id,
    label,
    command: () =>
      Promise.resolve([
        Deno.execPath(),
        "run",
        "--allow-net=127.0.0.1",
        `--allow-read=${readable}`,
        path,
      ]),
  };
}

async function runsOk(cmd: string, args: string[]): Promise<boolean> {
  try {
    const out = await new Deno.Command(cmd, {
      args,
      stdout: "null",
      stderr: "null",
      signal: AbortSignal.timeout(10_000),
    }).output();
    return out.success;
  } catch {
    return false;
  }
}

/** The first Python that can import uvloop (pyenv's python3 or Debian's). */
let uvloopPython: Promise<string | null> | undefined;
function findUvloopPython(): Promise<string | null> {
  return uvloopPython ??= (async () => {
    for (const python of ["python3", "/usr/bin/python3"]) {
      if (await runsOk(python, ["-c", "import uvloop"])) return python;
    }
    return null;
  })();
}

function pythonServer(
  id: string,
  label: string,
  api: "protocol" | "streams",
  loop: "asyncio" | "uvloop",
): ServerSpec {
  return {
    id,
    label,
    async command() {
      const python = loop === "uvloop" ? await findUvloopPython() : "python3";
      if (python === null) {
        return {
          skip: "uvloop is not importable by python3 or /usr/bin/python3 " +
            "(try: apt-get install python3-uvloop)",
        };
      }
      return [
        python,
        `${SERVERS_DIR}/asyncio_echo.py`,
        "--api",
        api,
        "--loop",
        loop,
      ];
    },
  };
}

/**
 * A Deno echo server run on aionet's native backend (`AIONET_BACKEND=native`,
 * which needs `--allow-ffi`); skipped where the backend cannot run.
 */
function nativeServer(id: string, label: string, file: string): ServerSpec {
  const base = denoServer(id, label, file);
  return {
    id,
    label,
    command: async () => {
      const problem = await nativeProblem();
      if (problem !== null) return { skip: problem };
      const command = await base.command() as string[];
      // env(1) sets the variable, then `deno run` with the FFI and env
      // permissions the backend needs.
      return [
        "env",
        "AIONET_BACKEND=native",
        command[0],
        "run",
        "--allow-ffi",
        "--allow-env=AIONET_BACKEND",
        ...command.slice(2),
      ];
    },
  };
}

/** Why the native backend cannot run on this machine, or null. */
let nativeChecked: Promise<string | null> | undefined;
function nativeProblem(): Promise<string | null> {
  return nativeChecked ??= (async () => {
    const out = await new Deno.Command(Deno.execPath(), {
      args: [
        "eval",
        `import { whyUnavailable } from "${ROOT}/native.ts"; console.log(whyUnavailable() ?? "");`,
      ],
      stdout: "piped",
      stderr: "piped",
    }).output();
    const said = new TextDecoder().decode(out.stdout).trim();
    if (!out.success) return "the native backend could not be checked";
    return said === "" ? null : said;
  })();
}

const SERVERS: ServerSpec[] = [
  denoServer("raw", "raw Deno loop", "raw_deno.ts"),
  denoServer("aionet-protocol", "aionet Protocol", "aionet_protocol.ts"),
  denoServer(
    "aionet-buffered",
    "aionet BufferedProtocol",
    "aionet_buffered.ts",
  ),
  denoServer("aionet-streams", "aionet Streams", "aionet_streams.ts"),
  nativeServer(
    "native-protocol",
    "aionet Protocol, native backend",
    "aionet_protocol.ts",
  ),
  nativeServer(
    "native-buffered",
    "aionet BufferedProtocol, native backend",
    "aionet_buffered.ts",
  ),
  nativeServer(
    "native-streams",
    "aionet Streams, native backend",
    "aionet_streams.ts",
  ),
  {
    id: "node",
    label: "Node net",
    command: () => Promise.resolve(["node", `${SERVERS_DIR}/node_echo.mjs`]),
  },
  pythonServer("asyncio-protocol", "asyncio Protocol", "protocol", "asyncio"),
  pythonServer("asyncio-streams", "asyncio Streams", "streams", "asyncio"),
  pythonServer("uvloop-protocol", "uvloop Protocol", "protocol", "uvloop"),
  pythonServer("uvloop-streams", "uvloop Streams", "streams", "uvloop"),
  workersServer(1),
  workersServer(2),
];

// ---- flags ----

interface Config {
  reps: number;
  seconds: number;
  warmup: number;
  servers: ServerSpec[];
  workloads: Workload[];
  idleConns: number;
  out: string;
  /** Redraw the report and plot from this saved .json instead of measuring. */
  replot?: string;
}

function usage(message?: string): never {
  if (message) console.error(message);
  console.error(
    "usage: deno task bench [--reps 3] [--seconds 3] [--warmup 1]\n" +
      `  [--servers ${SERVERS.map((s) => s.id).join(",")}]\n` +
      `  [--workloads ${WORKLOADS.map((w) => w.id).join(",")},conn]\n` +
      "  [--idle-conns 10000] [--out bench/results/latest.md]\n" +
      "  [--extra id=path/to/echo_server.ts]… [--extra-native id=path]…\n" +
      "  [--replot results.json] (redraw report and plot from saved samples)",
  );
  Deno.exit(2);
}

function pick<T extends { id: string }>(all: T[], list: string, what: string) {
  const ids = list.split(",").map((s) => s.trim()).filter(Boolean)
    // `conn` stands for the four connection-scaling workloads.
    .flatMap((id) =>
      id === "conn" && what === "workload"
        ? all.filter((x) => x.id.startsWith("conn-")).map((x) => x.id)
        : [id]
    );
  const unknown = ids.filter((id) => !all.some((x) => x.id === id));
  if (unknown.length > 0 || ids.length === 0) {
    usage(`Unknown ${what}: ${unknown.join(", ") || "(empty list)"}`);
  }
  // Keep the canonical order (raw Deno first: it is the reference).
  return all.filter((x) => ids.includes(x.id));
}

function parseFlags(args: string[]): Config {
  const config: Config = {
    reps: 3,
    seconds: 3,
    warmup: 1,
    servers: SERVERS.filter((s) => !s.optIn),
    workloads: DEFAULT_WORKLOADS,
    idleConns: 10_000,
    out: `${ROOT}/bench/results/latest.md`,
  };
  const number = (flag: string, value: string, min: number, max: number) => {
    const n = Number(value);
    if (!Number.isFinite(n) || n < min || n > max) {
      usage(`${flag} must be a number in ${min}..${max}`);
    }
    return n;
  };
  const extras: ServerSpec[] = [];
  for (let i = 0; i < args.length; i++) {
    const flag = args[i];
    if (flag === "--help" || flag === "-h") usage();
    if (flag === "--" && i === 0) continue; // `deno task bench -- …`
    const value = args[++i];
    if (value === undefined) usage(`${flag} needs a value`);
    switch (flag) {
      case "--reps":
        config.reps = Math.round(number(flag, value, 1, 50));
        break;
      case "--seconds":
        config.seconds = number(flag, value, 0.5, 60);
        break;
      case "--warmup":
        config.warmup = number(flag, value, 0, 30);
        break;
      case "--servers":
        config.servers = pick(SERVERS, value, "server");
        break;
      case "--workloads":
        config.workloads = pick(WORKLOADS, value, "workload");
        break;
      case "--idle-conns":
        config.idleConns = Math.round(number(flag, value, 1, 100_000));
        break;
      case "--out":
        config.out = value;
        break;
      case "--replot":
        config.replot = value;
        break;
      case "--extra":
      case "--extra-native": {
        // Another Deno echo server program with the same command line
        // (--host, --port, prints "READY <port>"), e.g. a variant to
        // compare; --extra-native runs it on aionet's native backend.
        const match = value.match(/^([\w.-]+)=(.+)$/);
        if (!match) usage(`${flag} wants id=path/to/server.ts`);
        const make = flag === "--extra" ? denoServer : nativeServer;
        extras.push(make(match[1], match[1], match[2]));
        break;
      }
      default:
        usage(`Unknown flag ${flag}`);
    }
  }
  config.servers = [...config.servers, ...extras];
  return config;
}

// ---- small process helpers ----

async function commandOutput(cmd: string, args: string[]): Promise<string> {
  try {
    const out = await new Deno.Command(cmd, {
      args,
      stdout: "piped",
      stderr: "piped",
      signal: AbortSignal.timeout(10_000),
    }).output();
    const text = new TextDecoder().decode(
      out.success ? out.stdout : out.stderr,
    );
    return text.trim();
  } catch (error) {
    return `unavailable (${error instanceof Error ? error.message : error})`;
  }
}

async function withTimeout<T>(
  promise: Promise<T>,
  ms: number,
  what: string,
): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`${what}: no answer within ${ms} ms`)),
      ms,
    );
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Reads a child's output line by line. */
class Lines {
  #reader: ReadableStreamDefaultReader<string>;
  #buffer = "";
  constructor(stream: ReadableStream<Uint8Array>) {
    this.#reader = stream.pipeThrough(new TextDecoderStream()).getReader();
  }
  /** The next line, or null at EOF. */
  async next(): Promise<string | null> {
    while (true) {
      const newline = this.#buffer.indexOf("\n");
      if (newline >= 0) {
        const line = this.#buffer.slice(0, newline);
        this.#buffer = this.#buffer.slice(newline + 1);
        return line;
      }
      const { value, done } = await this.#reader.read();
      if (done) {
        if (this.#buffer === "") return null;
        const rest = this.#buffer;
        this.#buffer = "";
        return rest;
      }
      this.#buffer += value;
    }
  }
  /** Reads to EOF, discarding (keeps the child from blocking on a pipe). */
  async drain(): Promise<void> {
    while ((await this.next()) !== null) continue;
  }
}

/** Keeps the last few KiB of a stream (a server's stderr). */
function tail(stream: ReadableStream<Uint8Array>): { text(): string } {
  let kept = "";
  (async () => {
    for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
      kept = (kept + chunk).slice(-4096);
    }
  })().catch(() => {});
  return { text: () => kept.trim() };
}

/** CPU time (user + system) of a process so far, in seconds. */
function processCpu(pid: number): number {
  const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
  // Fields after the ")" that ends the command name; utime and stime are
  // fields 14 and 15 of the whole line, in clock ticks (100 per second).
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

/** Resident set size of a process, in KiB. */
function processRss(pid: number): number {
  const status = Deno.readTextFileSync(`/proc/${pid}/status`);
  const match = status.match(/^VmRSS:\s+(\d+) kB/m);
  if (!match) throw new Error(`No VmRSS for process ${pid}`);
  return Number(match[1]);
}

/** Busy CPU time of the whole machine so far (all cores), in seconds. */
function machineCpu(): { busy: number; softirq: number } {
  const line = Deno.readTextFileSync("/proc/stat").split("\n")[0];
  // cpu user nice system idle iowait irq softirq steal …, in 1/100 s.
  const [user, nice, system, , , irq, softirq, steal] = line.split(/\s+/)
    .slice(1).map(Number);
  return {
    busy: (user + nice + system + irq + softirq + steal) / 100,
    softirq: softirq / 100,
  };
}

/**
 * Waits (at most `maxMs`) until the machine is nearly idle, so that other
 * work (tests, other benchmarks) does not run on our cores; returns the
 * last load seen, in cores.
 */
async function waitQuiet(maxMs: number): Promise<number> {
  const deadline = Date.now() + maxMs;
  while (true) {
    const before = machineCpu().busy;
    await sleep(500);
    const load = (machineCpu().busy - before) / 0.5;
    if (load <= QUIET_LOAD || Date.now() >= deadline) return load;
    await sleep(200 + Math.random() * 800);
  }
}

/**
 * A machine-wide lock (a locked file in /tmp), so that two copies of this
 * benchmark never measure at the same time on the same cores.
 */
class MachineLock {
  #file: Deno.FsFile;
  private constructor(file: Deno.FsFile) {
    this.#file = file;
  }
  /** Resolves to the lock, or null if it stayed busy for `maxMs`. */
  static async acquire(maxMs: number): Promise<MachineLock | null> {
    const file = await Deno.open(LOCK_FILE, {
      create: true,
      write: true,
      mode: 0o666,
    });
    const deadline = Date.now() + maxMs;
    while (true) {
      if (await file.tryLock(true)) return new MachineLock(file);
      if (Date.now() >= deadline) {
        file.close();
        return null;
      }
      await sleep(100 + Math.random() * 200);
    }
  }
  async release(): Promise<void> {
    await this.#file.unlock();
    this.#file.close();
  }
}

// ---- running a server ----

class RunningServer {
  readonly pid: number;
  readonly port: number;
  #child: Deno.ChildProcess;
  #stderr: { text(): string };

  private constructor(
    child: Deno.ChildProcess,
    port: number,
    stderr: { text(): string },
  ) {
    this.#child = child;
    this.pid = child.pid;
    this.port = port;
    this.#stderr = stderr;
  }

  /**
   * Starts `command` pinned to the server CPU with the open-file limit
   * raised to the hard limit; resolves once it prints `READY <port>`, or
   * to a skip reason if it exits first.
   */
  static async start(
    command: string[],
    pin: boolean,
    readyLine: RegExp = /^READY (\d+)$/,
  ): Promise<RunningServer | { skip: string }> {
    // `exec` all the way down: the child's pid is the server's pid.
    const script = pin
      ? `ulimit -n "$(ulimit -Hn)" && exec taskset -c ${SERVER_CPU} "$@"`
      : `ulimit -n "$(ulimit -Hn)" && exec "$@"`;
    const child = new Deno.Command("sh", {
      args: [
        "-c",
        script,
        "sh",
        ...command,
        "--host",
        "127.0.0.1",
        "--port",
        "0",
      ],
      cwd: ROOT,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const stdout = new Lines(child.stdout);
    const stderr = tail(child.stderr);
    const ready = (async () => {
      for (let i = 0; i < 100; i++) {
        const line = await stdout.next();
        if (line === null) return null;
        const match = line.match(readyLine);
        if (match) return Number(match[1]);
      }
      return null;
    })();
    let port: number | null;
    try {
      port = await withTimeout(ready, 30_000, "server start");
    } catch (error) {
      try {
        child.kill("SIGKILL");
      } catch {
        // Already gone.
      }
      await child.status;
      return { skip: `${error instanceof Error ? error.message : error}` };
    }
    if (port === null) {
      const status = await withTimeout(child.status, 10_000, "server exit");
      await sleep(50); // let the stderr tail catch up
      const said = stderr.text().split("\n").slice(-3).join(" / ");
      return {
        skip: status.code === EXIT_SKIP
          ? said
          : `exited with code ${status.code} before listening: ${said}`,
      };
    }
    const server = new RunningServer(child, port, stderr);
    stdout.drain().catch(() => {});
    return server;
  }

  /** Whether the process is still running (it may have crashed). */
  alive(): boolean {
    try {
      const stat = Deno.readTextFileSync(`/proc/${this.pid}/stat`);
      return !/\) [ZX] /.test(stat);
    } catch {
      return false;
    }
  }

  stderr(): string {
    return this.#stderr.text();
  }

  async stop(): Promise<void> {
    try {
      this.#child.kill("SIGTERM");
    } catch {
      // Already exited.
    }
    try {
      await withTimeout(this.#child.status, 5_000, "server stop");
    } catch {
      this.#child.kill("SIGKILL");
      await this.#child.status;
    }
  }
}

// ---- running the load generator ----

interface LoadResult {
  mode: string;
  conns: number;
  size: number;
  elapsed: number;
  roundtrips: number;
  bytes: number;
  cpu: number;
  cpuTotal: number;
  errors: number;
  corrupt: number;
  clean: number;
  firstError: string;
}

function loadgenCommand(loadgen: string, pin: boolean, args: string[]) {
  return pin
    ? { cmd: "taskset", args: ["-c", LOADGEN_CPU, loadgen, ...args] }
    : { cmd: loadgen, args };
}

async function runLoad(
  loadgen: string,
  pin: boolean,
  port: number,
  w: LoadWorkload,
  seconds: number,
  verify: "all" | "ends",
  onMark: (mark: "START" | "STOP") => void = () => {},
): Promise<LoadResult> {
  const { cmd, args } = loadgenCommand(loadgen, pin, [
    "--verify",
    verify,
    "--port",
    String(port),
    "--mode",
    w.mode,
    "--conns",
    String(w.conns),
    "--size",
    String(w.size),
    "--seconds",
    String(seconds),
  ]);
  // Up to 10,000 connections: raise the open-file limit to the hard limit.
  // Setting up that many takes time (the generator allows 10 s + 5 ms per
  // connection for connecting, the same again for the priming round trip).
  // It prints START and STOP when the measured period starts and ends
  // (`onMark` samples CPU times then), and the result as a JSON line.
  const child = new Deno.Command("sh", {
    args: ["-c", `ulimit -n "$(ulimit -Hn)" && exec "$@"`, "sh", cmd, ...args],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout((seconds + 30 + w.conns * 0.01) * 1000),
  }).spawn();
  const lines = new Lines(child.stdout);
  const errors = tail(child.stderr);
  let text = "";
  for (let line; (line = await lines.next()) !== null;) {
    if (line === "START" || line === "STOP") onMark(line);
    else if (line.startsWith("{")) text = line;
  }
  const status = await child.status;
  if (text === "") {
    await sleep(50); // let the stderr tail catch up
    throw new Error(
      `load generator failed (code ${status.code}): ${errors.text()}`,
    );
  }
  return JSON.parse(text) as LoadResult;
}

interface IdleResult {
  before: number;
  after: number;
  perConn: number;
  setupSeconds: number;
}

/** Opens `conns` idle connections to the server and measures its RSS. */
async function runIdle(
  loadgen: string,
  pin: boolean,
  server: RunningServer,
  conns: number,
): Promise<IdleResult> {
  const hold = async (n: number, measure: () => void) => {
    const { cmd, args } = loadgenCommand(loadgen, pin, [
      "--port",
      String(server.port),
      "--mode",
      "idle",
      "--conns",
      String(n),
      "--hold",
      "300",
    ]);
    const child = new Deno.Command("sh", {
      args: [
        "-c",
        `ulimit -n "$(ulimit -Hn)" && exec "$@"`,
        "sh",
        cmd,
        ...args,
      ],
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const lines = new Lines(child.stdout);
    const errors = tail(child.stderr);
    try {
      const line = await withTimeout(lines.next(), 150_000, "idle set-up");
      if (line === null || !line.startsWith("{")) {
        throw new Error(`idle load generator failed: ${errors.text()}`);
      }
      const result = JSON.parse(line) as { ready: number; elapsed: number };
      if (result.ready !== n) throw new Error(`only ${result.ready} ready`);
      await sleep(1000); // let the server settle (GC, lazy allocations)
      measure();
      return result.elapsed;
    } finally {
      await child.stdin.close().catch(() => {});
      await lines.drain().catch(() => {});
      await withTimeout(child.status, 30_000, "idle load generator exit")
        .catch(() => child.kill("SIGKILL"));
    }
  };
  // Warm-up: a few connections come and go, so code paths are compiled
  // before the baseline.
  await hold(Math.min(100, conns), () => {});
  await sleep(1000);
  const before = processRss(server.pid);
  let after = 0;
  const setupSeconds = await hold(conns, () => {
    after = processRss(server.pid);
  });
  return { before, after, perConn: (after - before) / conns, setupSeconds };
}

// ---- statistics and report ----

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

interface Sample {
  value: number; // round trips/s, MiB/s or KiB per connection
  loadgenCpu: number; // fraction of one core
  serverCpu: number; // fraction of one core
  serverCost: number; // server CPU µs per round trip, or per MiB (bulk)
  otherLoad: number; // CPU used by other processes, in cores
  peakRss?: number; // server VmRSS, KiB, highest during the measured run
  note?: string;
  idle?: IdleResult;
}

type Results = Map<string, Map<string, Sample[]>>; // server → workload → samples

/** Whether the generator, not the server, may have set the pace. */
function generatorBound(samples: Sample[]): boolean {
  return samples.length > 0 && samples[0].idle === undefined &&
    median(samples.map((x) => x.loadgenCpu)) >= GENERATOR_BOUND;
}

function valueOf(w: LoadWorkload, r: LoadResult): number {
  return w.mode === "bulk"
    ? r.bytes / r.elapsed / 2 ** 20
    : r.roundtrips / r.elapsed;
}

function unitOf(w: Workload): string {
  if (w.kind === "idle") {
    return "KiB of server RSS per idle connection, lower is better";
  }
  return w.mode === "bulk"
    ? "MiB/s echoed back, higher is better"
    : "round trips/s, higher is better";
}

function fmt(value: number, w: Workload): string {
  if (w.kind === "idle") return value.toFixed(1);
  if (w.mode === "bulk" || value < 100) return value.toFixed(0);
  return Math.round(value).toLocaleString("en-US");
}

const pct = (x: number) => `${Math.round(x * 100)} %`;

async function machineLine(
  config: Config,
  pin: boolean,
  started: Date,
): Promise<string> {
  const cpuinfo = await Deno.readTextFile("/proc/cpuinfo");
  const model = cpuinfo.match(/^model name\s*:\s*(.+)$/m)?.[1] ?? "unknown CPU";
  const cores = navigator.hardwareConcurrency;
  const load = (await Deno.readTextFile("/proc/loadavg")).split(" ")
    .slice(0, 3).join(" ");
  const python = await commandOutput("python3", ["--version"]);
  const uvPython = await findUvloopPython();
  const uv = uvPython === null
    ? "uvloop unavailable"
    : `uvloop ${await commandOutput(uvPython, [
      "-c",
      "import uvloop, platform; print(uvloop.__version__, 'on Python', platform.python_version())",
    ])}`;
  const node = await commandOutput("node", ["--version"]);
  const kernel = Deno.osRelease();
  const pinning = pin
    ? `server pinned to CPU ${SERVER_CPU}, load generator to CPU ${LOADGEN_CPU}`
    : "no CPU pinning (taskset missing)";
  return `${model}, ${cores} cores (${pinning}); Linux ${kernel}; ` +
    `Deno ${Deno.version.deno} (V8 ${Deno.version.v8}); Node ${node}; ` +
    `${python}; ${uv}; load average at start ${load}; ` +
    `${started.toISOString().slice(0, 16).replace("T", " ")} UTC; ` +
    `${config.reps} reps × ${config.seconds} s (+${config.warmup} s warm-up)`;
}

function report(
  config: Config,
  machine: string,
  results: Results,
  skipped: Map<string, string>,
  notes: string[],
): string {
  const out: string[] = [];
  out.push("# aionet echo benchmark", "");
  out.push(`Machine: ${machine}`, "");
  const command = ["deno task bench", ...Deno.args].join(" ");
  out.push(`Command: \`${command}\``, "");

  const ran = config.servers.filter((s) => !skipped.has(s.id));
  const reference = (w: Workload) => {
    const samples = results.get("raw")?.get(w.id);
    return samples?.length ? median(samples.map((s) => s.value)) : null;
  };
  const ratioOf = (w: Workload, value: number) => {
    const ref = reference(w);
    if (ref === null || ref === 0) return "–";
    // Memory: lower is better, so the ratio is raw / server.
    const ratio = w.kind === "idle" ? ref / value : value / ref;
    return `${ratio.toFixed(2)}×`;
  };

  // Summary: ratios to the raw loop.
  out.push("## Summary: median throughput relative to the raw Deno loop", "");
  out.push(
    "(> 1.00× is better than raw; for `idle`, raw's RSS/conn ÷ the server's)",
    "",
  );
  out.push(`| server | ${config.workloads.map((w) => w.id).join(" | ")} |`);
  out.push(`| --- | ${config.workloads.map(() => "---:").join(" | ")} |`);
  for (const s of ran) {
    const cells = config.workloads.map((w) => {
      const samples = results.get(s.id)?.get(w.id) ?? [];
      if (samples.length === 0) return "–";
      return (generatorBound(samples) ? "≥ " : "") +
        ratioOf(w, median(samples.map((x) => x.value)));
    });
    out.push(`| ${s.label} | ${cells.join(" | ")} |`);
  }
  out.push("");

  const loads = config.workloads.filter((w) => w.kind === "load");
  if (loads.length > 0) {
    out.push("## Peak server memory during the measured run", "");
    out.push(
      "Highest VmRSS of the server (sampled every 50 ms of the measured " +
        "run; median over the reps) and its ratio to the raw Deno loop's " +
        "(< 1.00× uses less).",
      "",
    );
    out.push(`| server | ${loads.map((w) => w.id).join(" | ")} |`);
    out.push(`| --- | ${loads.map(() => "---:").join(" | ")} |`);
    const rawPeak = (w: Workload) =>
      medianPeak(results.get("raw")?.get(w.id) ?? []);
    for (const s of ran) {
      const cells = loads.map((w) => {
        const peak = medianPeak(results.get(s.id)?.get(w.id) ?? []);
        if (peak === null) return "–";
        const ref = rawPeak(w);
        const ratio = ref === null ? "" : ` (${(peak / ref).toFixed(2)}×)`;
        return `${(peak / 1024).toFixed(0)} MiB${ratio}`;
      });
      out.push(`| ${s.label} | ${cells.join(" | ")} |`);
    }
    out.push("");
  }

  const scaling = scalingWorkloads(config);
  if (scaling.length > 0) {
    out.push("## Connection scaling: 1 KiB ping-pong, round trips/s", "");
    out.push(
      "Median round trips/s (ratio to the raw Deno loop) by number of " +
        "connections; plotted in `scaling.svg` next to this report.",
      "",
    );
    out.push(
      `| server | ${
        scaling.map((w) => w.conns.toLocaleString("en-US")).join(" | ")
      } |`,
    );
    out.push(`| --- | ${scaling.map(() => "---:").join(" | ")} |`);
    for (const s of ran) {
      const cells = scaling.map((w) => {
        const samples = results.get(s.id)?.get(w.id) ?? [];
        if (samples.length === 0) return "–";
        const med = median(samples.map((x) => x.value));
        const atLeast = generatorBound(samples) ? "≥ " : "";
        return `${atLeast}${fmt(med, w)} (${ratioOf(w, med)})`;
      });
      out.push(`| ${s.label} | ${cells.join(" | ")} |`);
    }
    out.push("");
  }

  for (const w of config.workloads) {
    out.push(`## ${w.title} (\`${w.id}\`): ${unitOf(w)}`, "");
    if (w.kind === "idle") {
      out.push(
        `${config.idleConns} connections, each echoed 1 byte once, then held. ` +
          "RSS from /proc/<pid>/status (VmRSS), 1 s after the last one was ready.",
        "",
      );
      out.push(
        "| server | KiB/conn (median) | vs raw | min – max | RSS before | RSS with conns | set-up time |",
      );
      out.push("| --- | ---: | ---: | ---: | ---: | ---: | ---: |");
    } else {
      out.push(
        `| server | median | vs raw | min – max | server CPU | server µs/${
          w.mode === "bulk" ? "MiB" : "round trip"
        } | generator CPU (max) | others | peak RSS |`,
      );
      out.push(
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
      );
    }
    for (const s of ran) {
      const samples = results.get(s.id)?.get(w.id) ?? [];
      if (samples.length === 0) continue;
      const values = samples.map((x) => x.value);
      const med = median(values);
      const range = `${fmt(Math.min(...values), w)} – ${
        fmt(Math.max(...values), w)
      }`;
      const flag = samples.some((x) => x.note) ? " ⚠" : "";
      if (w.kind === "idle") {
        const idle = samples.map((x) => x.idle!);
        const mb = (kib: number) => `${(kib / 1024).toFixed(1)} MiB`;
        out.push(
          `| ${s.label}${flag} | ${fmt(med, w)} | ${
            ratioOf(w, med)
          } | ${range} | ${mb(median(idle.map((i) => i.before)))} | ${
            mb(median(idle.map((i) => i.after)))
          } | ${median(idle.map((i) => i.setupSeconds)).toFixed(1)} s |`,
        );
      } else {
        const atLeast = generatorBound(samples) ? "≥ " : "";
        out.push(
          `| ${s.label}${flag} | ${atLeast}${fmt(med, w)} | ${atLeast}${
            ratioOf(w, med)
          } | ${range} | ${pct(median(samples.map((x) => x.serverCpu)))} | ${
            median(samples.map((x) => x.serverCost)).toFixed(1)
          } | ${pct(median(samples.map((x) => x.loadgenCpu)))} (${
            pct(Math.max(...samples.map((x) => x.loadgenCpu)))
          }) | ${pct(median(samples.map((x) => x.otherLoad)))} | ${
            peakOf(samples)
          } |`,
        );
      }
    }
    out.push("");
  }
  out.push(
    "CPU columns: CPU time over wall time, as a share of one core. The load " +
      "generator is one thread on its own core; below ~90 % it was waiting " +
      "for the server, not the other way round; ≥ marks a result where it " +
      `ran at ${pct(GENERATOR_BOUND)} or more (the server may be faster ` +
      "than shown). Server CPU counts all of the " +
      "server's threads (pinned to one core). Others: CPU used meanwhile by " +
      "other processes on the machine (a sample is redone, up to " +
      `${ATTEMPTS} times, when it exceeds ${pct(NOISY_LOAD)} of a core). ` +
      "⚠ marks a server/workload with an incident listed below.",
    "",
  );
  const unpinned = ran.filter((s) => s.pin === false);
  if (unpinned.length > 0) {
    out.push(
      `Not pinned: ${unpinned.map((s) => s.label).join(", ")}. These ` +
        "servers may run on both cores, so they share CPU " +
        `${LOADGEN_CPU} with the load generator; their server CPU can ` +
        "exceed 100 %.",
      "",
    );
  }
  if (skipped.size > 0) {
    out.push("Skipped servers:", "");
    for (const [id, why] of skipped) out.push(`- \`${id}\`: ${why}`);
    out.push("");
  }
  if (notes.length > 0) {
    out.push("Incidents:", "");
    for (const note of notes) out.push(`- ${note}`);
    out.push("");
  }
  return out.join("\n");
}

// ---- the scaling plot ----

/** The selected connection-scaling workloads, fewest connections first. */
function scalingWorkloads(config: Config): LoadWorkload[] {
  return config.workloads
    .filter((w): w is LoadWorkload => w.kind === "load" && !!w.scaling)
    .sort((a, b) => a.conns - b.conns);
}

/** A round axis maximum and tick step for values up to `max`. */
function niceScale(max: number): { top: number; step: number } {
  const rough = Math.max(max, 1) / 5;
  const power = 10 ** Math.floor(Math.log10(rough));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * power)
    .find((s) => s >= rough)!;
  return { top: Math.ceil(max / step) * step, step };
}

function xmlEscape(text: string): string {
  return text.replace(/&/g, "&amp;").replace(/</g, "&lt;")
    .replace(/>/g, "&gt;").replace(/"/g, "&quot;");
}

/** A colour per server, distinguishable in print and for most readers. */
const PALETTE = [
  "#000000",
  "#e69f00",
  "#0072b2",
  "#009e73",
  "#cc79a7",
  "#d55e00",
  "#56b4e9",
  "#7f7f7f",
  "#a6761d",
  "#6a3d9a",
  "#b2182b",
];

/**
 * Round trips/s (y, linear from 0) against connections (x, log scale),
 * one polyline per server, as a standalone SVG document.
 */
function scalingSvg(
  config: Config,
  servers: ServerSpec[],
  results: Results,
  machine: string,
): string {
  const scaling = scalingWorkloads(config);
  const series = servers.map((s, i) => ({
    label: s.label,
    colour: PALETTE[i % PALETTE.length],
    dash: i >= PALETTE.length ? "6 3" : "",
    points: scaling.flatMap((w) => {
      const samples = results.get(s.id)?.get(w.id) ?? [];
      return samples.length === 0
        ? []
        : [{ x: w.conns, y: median(samples.map((x) => x.value)) }];
    }),
  })).filter((s) => s.points.length > 0);

  // The machine line as a footer, wrapped at "; " into short lines.
  const footer: string[] = [];
  for (const part of machine.split("; ")) {
    const last = footer.length - 1;
    if (last >= 0 && footer[last].length + part.length < 120) {
      footer[last] += `; ${part}`;
    } else footer.push(part);
  }
  // Wide enough for the longest legend label (about 7.5 px a character).
  const longest = Math.max(6, ...series.map((s) => s.label.length));
  const left = 90, top = 50, bottom = 70 + 14 * footer.length;
  const right = 20 + 34 + Math.ceil(longest * 7.5) + 10;
  const width = left + 500 + right, height = 400 + bottom;
  const plotW = width - left - right, plotH = height - top - bottom;
  const conns = scaling.map((w) => w.conns);
  let lo = Math.log10(Math.min(...conns)), hi = Math.log10(Math.max(...conns));
  if (hi - lo < 1) [lo, hi] = [lo - 0.5, hi + 0.5];
  const maxY = Math.max(1, ...series.flatMap((s) => s.points.map((p) => p.y)));
  const { top: yTop, step } = niceScale(maxY * 1.05);
  const px = (x: number) => left + (Math.log10(x) - lo) / (hi - lo) * plotW;
  const py = (y: number) => top + plotH - y / yTop * plotH;
  const n = (v: number) => v.toFixed(1);

  const svg: string[] = [];
  svg.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="13">`,
    `<rect width="${width}" height="${height}" fill="#ffffff"/>`,
    `<text x="${
      left + plotW / 2
    }" y="24" text-anchor="middle" font-size="16" font-weight="bold">Echo round trips/s by number of connections (1 KiB ping-pong)</text>`,
  );
  // Grid and y ticks.
  for (let y = 0; y <= yTop + step / 2; y += step) {
    svg.push(
      `<line x1="${left}" y1="${n(py(y))}" x2="${left + plotW}" y2="${
        n(py(y))
      }" stroke="#dddddd"/>`,
      `<text x="${left - 8}" y="${n(py(y) + 4)}" text-anchor="end">${
        Math.round(y).toLocaleString("en-US")
      }</text>`,
    );
  }
  // x ticks: every decade labelled, 2–9 × decade as minor ticks.
  for (let d = Math.floor(lo); d <= Math.ceil(hi); d++) {
    for (let m = 1; m < 10; m++) {
      const x = m * 10 ** d;
      const lx = Math.log10(x);
      if (lx < lo - 1e-9 || lx > hi + 1e-9) continue;
      const major = m === 1;
      svg.push(
        `<line x1="${n(px(x))}" y1="${top + plotH}" x2="${n(px(x))}" y2="${
          top + plotH + (major ? 7 : 4)
        }" stroke="#000000"/>`,
      );
      if (major) {
        svg.push(
          `<line x1="${n(px(x))}" y1="${top}" x2="${n(px(x))}" y2="${
            top + plotH
          }" stroke="#dddddd"/>`,
          `<text x="${n(px(x))}" y="${top + plotH + 22}" text-anchor="middle">${
            x.toLocaleString("en-US")
          }</text>`,
        );
      }
    }
  }
  // Axes and their labels.
  svg.push(
    `<line x1="${left}" y1="${top}" x2="${left}" y2="${
      top + plotH
    }" stroke="#000000"/>`,
    `<line x1="${left}" y1="${top + plotH}" x2="${left + plotW}" y2="${
      top + plotH
    }" stroke="#000000"/>`,
    `<text x="${left + plotW / 2}" y="${
      top + plotH + 44
    }" text-anchor="middle">connections (log scale)</text>`,
    `<text transform="translate(22 ${
      top + plotH / 2
    }) rotate(-90)" text-anchor="middle">round trips/s (median of ${config.reps})</text>`,
  );
  // One polyline per server, with a marker on each measured point.
  for (const s of series) {
    const points = s.points.map((p) => `${n(px(p.x))},${n(py(p.y))}`);
    svg.push(
      `<polyline points="${
        points.join(" ")
      }" fill="none" stroke="${s.colour}" stroke-width="2"${
        s.dash ? ` stroke-dasharray="${s.dash}"` : ""
      }/>`,
      ...s.points.map((p) =>
        `<circle cx="${n(px(p.x))}" cy="${
          n(py(p.y))
        }" r="3.5" fill="${s.colour}"/>`
      ),
    );
  }
  // Legend, right of the plot.
  const lx = left + plotW + 20;
  svg.push(`<text x="${lx}" y="${top + 4}" font-weight="bold">server</text>`);
  series.forEach((s, i) => {
    const y = top + 26 + i * 22;
    svg.push(
      `<line x1="${lx}" y1="${y - 4}" x2="${lx + 26}" y2="${
        y - 4
      }" stroke="${s.colour}" stroke-width="2"${
        s.dash ? ` stroke-dasharray="${s.dash}"` : ""
      }/>`,
      `<circle cx="${lx + 13}" cy="${y - 4}" r="3.5" fill="${s.colour}"/>`,
      `<text x="${lx + 34}" y="${y}">${xmlEscape(s.label)}</text>`,
    );
  });
  footer.forEach((line, i) => {
    svg.push(
      `<text x="10" y="${
        height - 8 - 14 * (footer.length - 1 - i)
      }" font-size="10" fill="#555555">${xmlEscape(line)}</text>`,
    );
  });
  svg.push("</svg>");
  return svg.join("\n") + "\n";
}

/** The median peak RSS (KiB) of `samples`, or `null` if none was taken. */
function medianPeak(samples: Sample[]): number | null {
  const peaks = samples.map((x) => x.peakRss).filter((p): p is number =>
    p !== undefined && p > 0
  );
  return peaks.length === 0 ? null : median(peaks);
}

/** The median peak RSS of `samples` as text, or "–". */
function peakOf(samples: Sample[]): string {
  const peak = medianPeak(samples);
  return peak === null ? "–" : `${(peak / 1024).toFixed(0)} MiB`;
}

/** What went wrong in a load generator run, or "". */
function problems(r: LoadResult): string {
  if (!r.errors && !r.corrupt && r.clean === r.conns) return "";
  return `${r.errors} connection errors, ${r.corrupt} corrupt reads, ` +
    `${r.clean}/${r.conns} clean ends ${r.firstError}`.trim();
}

/**
 * One sample of a load workload: under the machine lock, once the machine
 * is quiet, a warm-up run then a measured run. Redone (up to ATTEMPTS
 * times) when other processes used the CPU meanwhile; the least disturbed
 * attempt is kept.
 */
async function measureLoad(
  loadgen: string,
  pin: boolean,
  server: RunningServer,
  w: LoadWorkload,
  config: Config,
): Promise<Sample> {
  let best: Sample | null = null;
  for (let attempt = 1; attempt <= ATTEMPTS; attempt++) {
    const lock = await MachineLock.acquire(180_000);
    let sample: Sample;
    try {
      await waitQuiet(QUIET_WAIT);
      // The warm-up checks every echoed byte; the measured run checks both
      // ends of each read (cheaper for the generator).
      let warmupProblem = "";
      if (config.warmup > 0) {
        const r = await runLoad(
          loadgen,
          pin,
          server.port,
          w,
          config.warmup,
          "all",
        );
        warmupProblem = problems(r);
      }
      // CPU times are sampled when the generator starts and stops its
      // clock, so connecting and priming (long for 10,000 connections) are
      // left out.
      let machineBefore = machineCpu(), machine = machineBefore;
      let serverBefore = 0, serverAfter = 0, t0 = 0, t1 = 0;
      // The server's RSS, sampled every 50 ms of the measured run.
      let peakRss = 0;
      let rssTimer: ReturnType<typeof setInterval> | undefined;
      const sampleRss = () => {
        try {
          peakRss = Math.max(peakRss, processRss(server.pid));
        } catch {
          // The server exited; the run reports it.
        }
      };
      const r = await runLoad(
        loadgen,
        pin,
        server.port,
        w,
        config.seconds,
        "ends",
        (mark) => {
          if (mark === "START") {
            machineBefore = machineCpu();
            serverBefore = processCpu(server.pid);
            t0 = performance.now();
            sampleRss();
            rssTimer = setInterval(sampleRss, 50);
          } else {
            machine = machineCpu();
            serverAfter = processCpu(server.pid);
            t1 = performance.now();
            clearInterval(rssTimer);
            sampleRss();
          }
        },
      ).finally(() => clearInterval(rssTimer));
      if (t1 === 0) throw new Error("the load generator printed no STOP");
      const wall = (t1 - t0) / 1000;
      const serverCpu = serverAfter - serverBefore;
      // Busy time outside softirq (the loopback traffic itself) that
      // neither the server nor the generator used.
      const others = (machine.busy - machineBefore.busy) -
        (machine.softirq - machineBefore.softirq) - serverCpu - r.cpu;
      sample = {
        value: valueOf(w, r),
        loadgenCpu: r.cpu / r.elapsed,
        serverCpu: serverCpu / wall,
        serverCost: 1e6 * serverCpu /
          (w.mode === "bulk" ? r.bytes / 2 ** 20 : r.roundtrips),
        otherLoad: Math.max(0, others / wall),
        peakRss,
      };
      const note = [
        warmupProblem && `warm-up: ${warmupProblem}`,
        problems(r),
        lock === null ? "measured without the machine lock" : "",
      ].filter(Boolean).join("; ");
      if (note) sample.note = note;
    } finally {
      await lock?.release();
    }
    if (best === null || sample.otherLoad < best.otherLoad) best = sample;
    if (best.otherLoad <= NOISY_LOAD) break;
    log(
      `${w.id}: other processes used ${pct(sample.otherLoad)} of a core, ` +
        (attempt < ATTEMPTS
          ? "measuring again"
          : "keeping the least disturbed"),
    );
  }
  if (best!.otherLoad > NOISY_LOAD) {
    best!.note = [
      best!.note,
      `other processes used ${pct(best!.otherLoad)} of a core`,
    ].filter(Boolean).join("; ");
  }
  return best!;
}

// ---- main ----

async function compileLoadgen(): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "aionet-bench-" });
  const binary = `${dir}/loadgen`;
  const out = await new Deno.Command("gcc", {
    args: ["-O2", "-Wall", "-o", binary, `${ROOT}/bench/loadgen.c`],
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(60_000),
  }).output();
  if (!out.success) {
    throw new Error(
      `gcc failed: ${new TextDecoder().decode(out.stderr)}`,
    );
  }
  return binary;
}

function log(message: string): void {
  console.error(`[bench] ${message}`);
}

/**
 * Redraws the report and the scaling plot (next to `out`) from the samples
 * a run saved in `file`, with that run's flags.
 */
async function replot(file: string, out: string): Promise<void> {
  const saved = JSON.parse(await Deno.readTextFile(file)) as {
    machine: string;
    args: string[];
    samples: Record<string, Record<string, Sample[]>>;
  };
  const config = parseFlags(saved.args);
  const results: Results = new Map(
    Object.entries(saved.samples).map(([server, byWorkload]) => [
      server,
      new Map(Object.entries(byWorkload)),
    ]),
  );
  const skipped = new Map<string, string>();
  for (const s of config.servers) {
    if (!results.has(s.id)) skipped.set(s.id, "no samples in the saved run");
  }
  const markdown = report(config, saved.machine, results, skipped, []);
  await Deno.writeTextFile(out, markdown + "\n");
  log(`written to ${out}`);
  if (scalingWorkloads(config).length > 0) {
    const svgPath = `${out.replace(/\/[^/]*$/, "")}/scaling.svg`;
    const ran = config.servers.filter((s) => !skipped.has(s.id));
    await Deno.writeTextFile(
      svgPath,
      scalingSvg(config, ran, results, saved.machine),
    );
    log(`plot written to ${svgPath}`);
  }
}

async function main(): Promise<void> {
  const config = parseFlags(Deno.args);
  if (config.replot !== undefined) {
    return await replot(config.replot, config.out);
  }
  const started = new Date();
  const pin = await runsOk("taskset", ["-c", "0", "true"]);
  if (!pin) log("taskset is missing: running without CPU pinning");
  const loadgen = await compileLoadgen();
  const machine = await machineLine(config, pin, started);
  log(machine);

  const results: Results = new Map();
  const skipped = new Map<string, string>();
  const notes: string[] = [];
  const record = (server: string, workload: string, sample: Sample) => {
    if (!results.has(server)) results.set(server, new Map());
    const byWorkload = results.get(server)!;
    if (!byWorkload.has(workload)) byWorkload.set(workload, []);
    byWorkload.get(workload)!.push(sample);
  };
  const loadWorkloads = config.workloads.filter((w): w is LoadWorkload =>
    w.kind === "load"
  );
  const idleSelected = config.workloads.some((w) => w.kind === "idle");

  // A server that never started is skipped for good; one that fails later
  // is an incident (its earlier samples stay).
  const cannotStart = (spec: ServerSpec, rep: number, why: string) => {
    if (results.has(spec.id)) {
      notes.push(`rep ${rep}, ${spec.id}: could not start (${why})`);
      log(`${spec.id} could not start: ${why}`);
    } else {
      skipped.set(spec.id, why);
      log(`skipping ${spec.id}: ${why}`);
    }
  };
  const startServer = async (spec: ServerSpec) => {
    const command = await spec.command();
    if (!Array.isArray(command)) return command;
    return await RunningServer.start(
      command,
      pin && spec.pin !== false,
      spec.ready,
    );
  };

  try {
    for (let rep = 1; rep <= config.reps; rep++) {
      for (const spec of config.servers) {
        if (skipped.has(spec.id)) continue;
        if (loadWorkloads.length > 0) {
          const server = await startServer(spec);
          if (!(server instanceof RunningServer)) {
            cannotStart(spec, rep, server.skip);
            continue;
          }
          try {
            for (const w of loadWorkloads) {
              const sample = await measureLoad(
                loadgen,
                pin,
                server,
                w,
                config,
              );
              if (sample.note) {
                notes.push(`rep ${rep}, ${spec.id}, ${w.id}: ${sample.note}`);
              }
              record(spec.id, w.id, sample);
              log(
                `rep ${rep} ${spec.id} ${w.id}: ${fmt(sample.value, w)} ` +
                  `(server ${pct(sample.serverCpu)}, ${
                    sample.serverCost.toFixed(1)
                  } µs/op, generator ${pct(sample.loadgenCpu)}, others ${
                    pct(sample.otherLoad)
                  })` +
                  (sample.note ? ` ⚠ ${sample.note}` : ""),
              );
            }
          } catch (error) {
            const why = `${error instanceof Error ? error.message : error}` +
              (server.alive() ? "" : ` (server died: ${server.stderr()})`);
            notes.push(`rep ${rep}, ${spec.id}: ${why}`);
            log(`${spec.id} failed: ${why}`);
          } finally {
            await server.stop();
          }
        }
        if (idleSelected) {
          const idleWorkload = config.workloads.find((w) => w.kind === "idle")!;
          const server = await startServer(spec);
          if (!(server instanceof RunningServer)) {
            cannotStart(spec, rep, server.skip);
            continue;
          }
          try {
            const lock = await MachineLock.acquire(180_000);
            let idle: IdleResult;
            try {
              idle = await runIdle(loadgen, pin, server, config.idleConns);
            } finally {
              await lock?.release();
            }
            record(spec.id, idleWorkload.id, {
              value: idle.perConn,
              loadgenCpu: 0,
              serverCpu: 0,
              serverCost: 0,
              otherLoad: 0,
              idle,
            });
            log(
              `rep ${rep} ${spec.id} idle: ${
                idle.perConn.toFixed(1)
              } KiB/conn ` +
                `(${idle.before} → ${idle.after} KiB)`,
            );
          } catch (error) {
            const why = `${error instanceof Error ? error.message : error}` +
              (server.alive() ? "" : ` (server died: ${server.stderr()})`);
            notes.push(`rep ${rep}, ${spec.id}, idle: ${why}`);
            log(`${spec.id} idle failed: ${why}`);
          } finally {
            await server.stop();
          }
        }
      }
    }
  } finally {
    await Deno.remove(loadgen.replace(/\/loadgen$/, ""), { recursive: true });
  }

  const markdown = report(config, machine, results, skipped, notes);
  console.log(markdown);
  await Deno.mkdir(config.out.replace(/\/[^/]*$/, ""), { recursive: true });
  await Deno.writeTextFile(config.out, markdown + "\n");
  // The raw samples, for anyone who wants other statistics.
  const raw = Object.fromEntries(
    [...results].map(([server, byWorkload]) => [
      server,
      Object.fromEntries(byWorkload),
    ]),
  );
  await Deno.writeTextFile(
    config.out.replace(/(\.md)?$/, ".json"),
    JSON.stringify({ machine, args: Deno.args, samples: raw }, null, 1) + "\n",
  );
  if (scalingWorkloads(config).length > 0) {
    const svgPath = `${config.out.replace(/\/[^/]*$/, "")}/scaling.svg`;
    const ran = config.servers.filter((s) => !skipped.has(s.id));
    await Deno.writeTextFile(
      svgPath,
      scalingSvg(config, ran, results, machine),
    );
    log(`plot written to ${svgPath}`);
  }
  log(`written to ${config.out}`);
}

if (import.meta.main) await main();
