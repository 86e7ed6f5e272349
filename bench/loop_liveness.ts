// Does the rest of Deno stay live while aionet serves at full load? One
// server process (an aionet Protocol echo, pinned to CPU 1) is driven by
// bench/loadgen.c (pinned to CPU 0, 1 KiB ping-pong); meanwhile the same
// process measures
//   - a 10 ms interval timer's lateness (how much later than due it fires),
//   - a file read's latency (Deno.readFile of a 64 KiB file, back to back),
//   - a fetch round trip to a Deno.serve server in the same process,
// and also with no load, for each backend (Deno ops, native), interleaved.
//
//   deno run -A bench/loop_liveness.ts [--reps 3] [--seconds 4] [--conns 100]
//
// Prints a markdown table (medians over the reps of each run's worst and
// 99th-percentile figures). Needs gcc and taskset; loopback only.

import { createServer, type Transport } from "../transports.ts";
import { Protocol } from "../protocols.ts";

const ROOT = new URL("..", import.meta.url).pathname.replace(/\/$/, "");
const SELF = new URL(import.meta.url).pathname;

type Backend = "deno" | "native";

interface Probe {
  timerLateMax: number;
  timerLateP99: number;
  timerTicks: number;
  fileMs: number[];
  fetchMs: number[];
  roundtrips: number;
}

function quantile(values: number[], q: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
}

function median(values: number[]): number {
  return quantile(values, 0.5);
}

// ---- the child: server and probes ----

async function child(seconds: number): Promise<void> {
  class Echo extends Protocol {
    #t!: Transport;
    override connectionMade(t: Transport): void {
      this.#t = t;
    }
    override dataReceived(data: Uint8Array): void {
      this.#t.write(data);
    }
  }
  const server = await createServer(() => new Echo(), {
    hostname: "127.0.0.1",
    port: 0,
  });
  const file = await Deno.makeTempFile();
  await Deno.writeFile(file, new Uint8Array(64 * 1024));
  const http = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    () => new Response("ok"),
  );
  const httpPort = http.addr.port;
  console.log(`READY ${(server.addrs[0] as Deno.NetAddr).port}`);

  const late: number[] = [];
  let due = performance.now() + 10;
  const timer = setInterval(() => {
    const now = performance.now();
    late.push(Math.max(0, now - due));
    due = now + 10;
  }, 10);
  const fileMs: number[] = [];
  const fetchMs: number[] = [];
  const end = performance.now() + seconds * 1000;
  const files = (async () => {
    while (performance.now() < end) {
      const t0 = performance.now();
      await Deno.readFile(file);
      fileMs.push(performance.now() - t0);
    }
  })();
  const fetches = (async () => {
    while (performance.now() < end) {
      const t0 = performance.now();
      await (await fetch(`http://127.0.0.1:${httpPort}/`)).text();
      fetchMs.push(performance.now() - t0);
    }
  })();
  await Promise.all([files, fetches]);
  clearInterval(timer);
  await http.shutdown();
  server.close();
  server.abortClients();
  await server.waitClosed();
  await Deno.remove(file);
  const probe: Omit<Probe, "roundtrips"> = {
    timerLateMax: Math.max(...late),
    timerLateP99: quantile(late, 0.99),
    timerTicks: late.length,
    fileMs,
    fetchMs,
  };
  console.log(`RESULT ${JSON.stringify(probe)}`);
}

// ---- the driver ----

async function lines(
  stream: ReadableStream<Uint8Array>,
  onLine: (line: string) => void,
): Promise<void> {
  let rest = "";
  for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
    rest += chunk;
    let i;
    while ((i = rest.indexOf("\n")) >= 0) {
      onLine(rest.slice(0, i));
      rest = rest.slice(i + 1);
    }
  }
}

async function measure(
  loadgen: string,
  backend: Backend,
  seconds: number,
  conns: number,
  load: boolean,
): Promise<Probe> {
  const proc = new Deno.Command("taskset", {
    args: [
      "-c",
      "1",
      Deno.execPath(),
      "run",
      "-A",
      SELF,
      "--child",
      String(seconds),
    ],
    env: { AIONET_BACKEND: backend },
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const ready = Promise.withResolvers<number>();
  const result = Promise.withResolvers<Omit<Probe, "roundtrips">>();
  const reading = lines(proc.stdout, (line) => {
    if (line.startsWith("READY ")) ready.resolve(Number(line.slice(6)));
    if (line.startsWith("RESULT ")) result.resolve(JSON.parse(line.slice(7)));
  });
  const port = await ready.promise;
  let roundtrips = 0;
  if (load) {
    const out = await new Deno.Command("taskset", {
      args: [
        "-c",
        "0",
        loadgen,
        "--port",
        String(port),
        "--mode",
        "pingpong",
        "--conns",
        String(conns),
        "--size",
        "1024",
        "--seconds",
        String(seconds),
        "--verify",
        "ends",
      ],
      stdout: "piped",
    }).output();
    const text = new TextDecoder().decode(out.stdout).trim().split("\n").at(
      -1,
    )!;
    roundtrips = JSON.parse(text).roundtrips;
  }
  const probe = await result.promise;
  await reading;
  await proc.status;
  return { ...probe, roundtrips };
}

async function main(): Promise<void> {
  const args = Deno.args;
  const flag = (name: string, fallback: number) => {
    const i = args.indexOf(name);
    return i >= 0 ? Number(args[i + 1]) : fallback;
  };
  const reps = flag("--reps", 3);
  const seconds = flag("--seconds", 4);
  const conns = flag("--conns", 100);
  const dir = await Deno.makeTempDir();
  const loadgen = `${dir}/loadgen`;
  const cc = await new Deno.Command("gcc", {
    args: ["-O2", "-o", loadgen, `${ROOT}/bench/loadgen.c`],
  }).output();
  if (!cc.success) throw new Error(new TextDecoder().decode(cc.stderr));
  const runs = new Map<string, Probe[]>();
  for (let rep = 0; rep < reps; rep++) {
    for (const load of [true, false]) {
      const order: Backend[] = rep % 2 === 0
        ? ["deno", "native"]
        : ["native", "deno"];
      for (const backend of order) {
        const key = `${backend} ${load ? "under load" : "idle"}`;
        const probe = await measure(loadgen, backend, seconds, conns, load);
        if (!runs.has(key)) runs.set(key, []);
        runs.get(key)!.push(probe);
        console.error(
          `[liveness] rep ${rep + 1} ${key}: timer late max ${
            probe.timerLateMax.toFixed(2)
          } ms, file p50 ${median(probe.fileMs).toFixed(3)} ms, fetch p50 ${
            median(probe.fetchMs).toFixed(3)
          } ms, ${probe.roundtrips} round trips`,
        );
      }
    }
  }
  await Deno.remove(dir, { recursive: true });
  const out = [
    `Loop liveness: ${reps} reps × ${seconds} s, 1 KiB ping-pong × ${conns} connections (load generator on CPU 0, server process on CPU 1). Medians over the reps.`,
    "",
    "| backend, load | round trips/s | 10 ms timer: worst lateness | timer p99 lateness | file read p50 / p99 | fetch to Deno.serve p50 / p99 |",
    "| --- | ---: | ---: | ---: | ---: | ---: |",
  ];
  for (const [key, probes] of runs) {
    const m = (f: (p: Probe) => number) => median(probes.map(f));
    out.push(
      `| ${key} | ${
        Math.round(m((p) => p.roundtrips / seconds)).toLocaleString("en-US")
      } | ${m((p) => p.timerLateMax).toFixed(2)} ms | ${
        m((p) => p.timerLateP99).toFixed(2)
      } ms | ${m((p) => median(p.fileMs)).toFixed(3)} / ${
        m((p) => quantile(p.fileMs, 0.99)).toFixed(3)
      } ms | ${m((p) => median(p.fetchMs)).toFixed(3)} / ${
        m((p) => quantile(p.fetchMs, 0.99)).toFixed(3)
      } ms |`,
    );
  }
  console.log(out.join("\n"));
}

if (Deno.args[0] === "--child") await child(Number(Deno.args[1]));
else await main();
