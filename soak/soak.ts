// Soak test (not run in CI): many concurrent aionet stream connections doing
// framed request/response rounds against an aionet startServer echo server
// in a child process, for a bounded time. Every echoed byte is checked.
//
//   deno run -A soak/soak.ts [--seconds 60] [--connections 10000]
//                            [--max-size 1024] [--batch 500]
//
// Reports connections held, requests and bytes verified, throughput, errors
// (must be 0) and the server's resident memory (sampled from /proc). Exits
// with status 1 on any error or lost byte. Linux only (/proc, setrlimit).
//
// The server runs in a child process (`--serve`) so that its memory can be
// measured on its own and client and server do not share one thread.

import {
  getEventLoop,
  IncompleteReadError,
  openConnection,
  startServer,
  type StreamReader,
  type StreamWriter,
} from "../mod.ts";
import { ensureFdLimit } from "../tests/_helpers.ts";

interface Options {
  seconds: number;
  connections: number;
  maxSize: number;
  batch: number;
  serve: boolean;
}

function parseArgs(args: string[]): Options {
  const options: Options = {
    seconds: 60,
    connections: 10_000,
    maxSize: 1024,
    batch: 500,
    serve: false,
  };
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    const [flag, inline] = arg.split("=", 2);
    const value = () => {
      const v = Number(inline ?? args[++i]);
      if (!Number.isFinite(v) || v <= 0) {
        throw new RangeError(`${flag} needs a positive number`);
      }
      return v;
    };
    switch (flag) {
      case "--seconds":
        options.seconds = value();
        break;
      case "--connections":
        options.connections = Math.floor(value());
        break;
      case "--max-size":
        options.maxSize = Math.floor(value());
        break;
      case "--batch":
        options.batch = Math.floor(value());
        break;
      case "--serve":
        options.serve = true;
        break;
      default:
        throw new TypeError(`Unknown argument ${arg}`);
    }
  }
  return options;
}

const MiB = 1024 * 1024;

function frame(payload: Uint8Array): Uint8Array {
  const out = new Uint8Array(4 + payload.length);
  new DataView(out.buffer).setUint32(0, payload.length);
  out.set(payload, 4);
  return out;
}

function fill(out: Uint8Array, seed: number): void {
  let x = seed >>> 0 || 1;
  for (let i = 0; i < out.length; i++) {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
    out[i] = x >>> 24;
  }
}

function same(a: Uint8Array, b: Uint8Array, offset: number): boolean {
  if (a.length !== b.length + offset) return false;
  for (let i = 0; i < b.length; i++) if (a[i + offset] !== b[i]) return false;
  return true;
}

/** Resident memory of a process in MiB, from /proc (`self` or a pid). */
function rssOf(pid: number | "self"): number {
  const status = Deno.readTextFileSync(`/proc/${pid}/status`);
  const match = /VmRSS:\s+(\d+) kB/.exec(status);
  return match ? Number(match[1]) / 1024 : NaN;
}

// ---- server (child process) ----

async function serve(options: Options): Promise<void> {
  ensureFdLimit(options.connections + 512);
  const stats = { connections: 0, frames: 0, bytes: 0, errors: 0 };
  getEventLoop().setExceptionHandler((_loop, context) => {
    stats.errors++;
    console.error("server:", context.message, context.exception);
  });
  const echo = async (reader: StreamReader, writer: StreamWriter) => {
    stats.connections++;
    for (;;) {
      let header: Uint8Array;
      try {
        header = await reader.readExactly(4);
      } catch (error) {
        if (
          error instanceof IncompleteReadError && error.partial.length === 0
        ) break;
        throw error;
      }
      const size = new DataView(header.buffer, header.byteOffset).getUint32(0);
      const body = await reader.readExactly(size);
      writer.write(header);
      writer.write(body);
      await writer.drain();
      stats.frames++;
      stats.bytes += size;
    }
    writer.close();
    await writer.waitClosed();
  };
  const server = await startServer(echo, {
    hostname: "127.0.0.1",
    port: 0,
    backlog: 4096,
  });
  const { port } = server.addrs[0] as Deno.NetAddr;
  console.log(`PORT ${port}`);
  // Started with --expose-gc: collect first, so that growth means a leak.
  const gc = (globalThis as { gc?: () => void }).gc;
  const memory = async () => {
    // Freed buffers are released over a few turns of the loop.
    for (let i = 0; i < 3 && gc !== undefined; i++) {
      gc();
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    const { rss, heapUsed, external } = Deno.memoryUsage();
    return {
      rssMiB: rss / MiB,
      heapUsedMiB: heapUsed / MiB,
      externalMiB: external / MiB,
    };
  };
  const sampler = setInterval(async () => {
    console.log(`MEM ${JSON.stringify(await memory())}`);
  }, 5000);
  // The parent closes our stdin to stop us.
  for await (const _ of Deno.stdin.readable) {
    // Nothing is sent on stdin.
  }
  clearInterval(sampler);
  server.close();
  await server.waitClosed();
  console.log(`STATS ${JSON.stringify({ ...stats, ...(await memory()) })}`);
}

// ---- client (parent process) ----

async function readLine(
  lines: ReadableStreamDefaultReader<string>,
  buffer: { text: string },
): Promise<string> {
  for (;;) {
    const at = buffer.text.indexOf("\n");
    if (at >= 0) {
      const line = buffer.text.slice(0, at);
      buffer.text = buffer.text.slice(at + 1);
      return line;
    }
    const { value, done } = await lines.read();
    if (done) throw new Error("The server process ended early");
    buffer.text += value;
  }
}

async function main(options: Options): Promise<number> {
  ensureFdLimit(options.connections + 512);
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      "--v8-flags=--expose-gc",
      new URL(import.meta.url).pathname,
      "--serve",
      "--connections",
      String(options.connections),
    ],
    stdin: "piped",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const lines = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  const pending = { text: "" };
  const portLine = await readLine(lines, pending);
  const port = Number(/^PORT (\d+)$/.exec(portLine)?.[1]);
  if (!port) throw new Error(`Unexpected server output: ${portLine}`);
  // The server reports its memory every 5 s, and its counters at the end.
  let serverMemory: Record<string, number> = {};
  const memorySamples: Array<Record<string, number>> = [];
  let heapMax = 0;
  let externalMax = 0;
  let serverStats: Record<string, number> = {};
  const serverOutput = (async () => {
    for (;;) {
      const line = await readLine(lines, pending).catch(() => null);
      if (line === null) return;
      if (line.startsWith("MEM ")) {
        serverMemory = JSON.parse(line.slice(4));
        memorySamples.push(serverMemory);
        heapMax = Math.max(heapMax, serverMemory.heapUsedMiB);
        externalMax = Math.max(externalMax, serverMemory.externalMiB);
      } else if (line.startsWith("STATS ")) {
        serverStats = JSON.parse(line.slice(6));
        return;
      }
    }
  })();

  const errors: string[] = [];
  let errorCount = 0;
  getEventLoop().setExceptionHandler((_loop, context) => {
    errorCount++;
    if (errors.length < 10) errors.push(`client handler: ${context.message}`);
  });
  const fail = (what: string, error: unknown) => {
    errorCount++;
    if (errors.length < 10) errors.push(`${what}: ${error}`);
  };

  const t0 = performance.now();
  const deadline = t0 + options.seconds * 1000;
  let requests = 0;
  let bytes = 0;
  let open = 0;
  let peakOpen = 0;
  const serverRss: number[] = [];
  let clientRssMax = 0;

  const connection = async (id: number) => {
    let reader: StreamReader;
    let writer: StreamWriter;
    try {
      [reader, writer] = await openConnection({ hostname: "127.0.0.1", port });
    } catch (error) {
      fail(`connect ${id}`, error);
      return;
    }
    open++;
    peakOpen = Math.max(peakOpen, open);
    const buffer = new Uint8Array(options.maxSize);
    let round = 0;
    try {
      while (performance.now() < deadline) {
        const size = (id * 31 + round * 17) % (options.maxSize + 1);
        const body = buffer.subarray(0, size);
        fill(body, id * 65_537 + round);
        writer.write(frame(body));
        await writer.drain();
        const echoed = await reader.readExactly(4 + size);
        if (!same(echoed, body, 4)) {
          throw new Error(`connection ${id} round ${round}: echo differs`);
        }
        requests++;
        bytes += size;
        round++;
      }
      writer.writeEof();
      const rest = await reader.read();
      if (rest.length !== 0) throw new Error(`connection ${id}: extra bytes`);
    } catch (error) {
      fail(`connection ${id}`, error);
    } finally {
      writer.close();
      await writer.waitClosed().catch((error) => fail(`close ${id}`, error));
      open--;
    }
  };

  const report = () => {
    const seconds = (performance.now() - t0) / 1000;
    const rss = rssOf(child.pid);
    serverRss.push(rss);
    clientRssMax = Math.max(clientRssMax, rssOf("self"));
    console.log(
      `${seconds.toFixed(0).padStart(4)} s  open ${
        String(open).padStart(6)
      }  requests ${requests}  (${
        (requests / seconds).toFixed(0)
      }/s)  server rss ${rss.toFixed(0)} MiB  errors ${errorCount}`,
    );
  };
  const ticker = setInterval(report, 5000);

  // Ramp up in batches so the accept queue never overflows.
  const running: Promise<void>[] = [];
  for (let i = 0; i < options.connections; i += options.batch) {
    const batch: Promise<void>[] = [];
    for (
      let id = i;
      id < Math.min(options.connections, i + options.batch);
      id++
    ) {
      const started = connection(id);
      running.push(started);
      batch.push(started);
    }
    // Wait until this batch is connected (or failed) before the next one.
    const target = Math.min(options.connections, i + options.batch);
    while (open + errorCount < target && performance.now() < deadline) {
      await Promise.race([Promise.race(batch), tick()]);
    }
  }
  const rampSeconds = (performance.now() - t0) / 1000;
  const heldAfterRamp = open;
  await Promise.all(running);
  clearInterval(ticker);
  report();
  const elapsed = (performance.now() - t0) / 1000;

  child.stdin.close();
  await serverOutput;
  await lines.cancel();
  const status = await child.status;

  const serverErrors = serverStats.errors ?? NaN;
  const lost = (serverStats.frames ?? NaN) !== requests ||
    (serverStats.bytes ?? NaN) !== bytes;
  const summary = {
    seconds: Number(elapsed.toFixed(1)),
    connections: options.connections,
    peakOpen,
    heldAfterRamp,
    rampSeconds: Number(rampSeconds.toFixed(1)),
    requests,
    requestsPerSecond: Math.round(requests / elapsed),
    mibVerified: Number((bytes / MiB).toFixed(1)),
    mibPerSecondEachWay: Number((bytes / MiB / elapsed).toFixed(2)),
    clientErrors: errorCount,
    serverErrors,
    serverConnections: serverStats.connections,
    serverFrames: serverStats.frames,
    serverRssMiB: {
      atFirstSample: round(serverRss[0]),
      max: round(Math.max(...serverRss)),
      afterAllClosed: round(serverStats.rssMiB),
    },
    // After a full GC, every 5 s: steady under constant load = no leak.
    serverHeapUsedAfterGcMiB: memorySamples.map((m) => round(m.heapUsedMiB)),
    serverExternalAfterGcMiB: memorySamples.map((m) => round(m.externalMiB)),
    serverHeapUsedMaxMiB: round(heapMax),
    serverExternalMaxMiB: round(externalMax),
    serverAfterAllClosed: {
      heapUsedMiB: round(serverStats.heapUsedMiB),
      externalMiB: round(serverStats.externalMiB),
    },
    clientRssMaxMiB: Number(clientRssMax.toFixed(0)),
    serverExit: status.code,
  };
  console.log(JSON.stringify(summary, null, 2));
  for (const error of errors) console.error(error);
  const ok = errorCount === 0 && serverErrors === 0 && !lost &&
    status.success && peakOpen === options.connections;
  console.log(ok ? "soak: OK" : "soak: FAILED");
  return ok ? 0 : 1;
}

function round(value: number): number {
  return Math.round(value * 10) / 10;
}

/** One macrotask turn (used only while ramping up, to poll the counters). */
function tick(): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, 10));
}

if (import.meta.main) {
  const options = parseArgs(Deno.args);
  if (options.serve) await serve(options);
  else Deno.exit(await main(options));
}
