/**
 * aionet example: scaling a Protocol echo server past one core with N
 * workers that share one port (`reusePort`, Linux `SO_REUSEPORT`), as a
 * Python server would run N processes with `reuse_port=True`.
 *
 * The main program starts `--workers` Web Workers running this same file.
 * The first binds the port (`--port 0` picks a free one), the others bind
 * the same port, and the kernel spreads new connections across them. On
 * Ctrl+C each worker closes its server and reports how many connections it
 * served.
 *
 * Needs `--unstable-net` (set in this repository's deno.json) for
 * `reusePort`.
 *
 * Run: `deno run -A examples/reuseport_workers.ts [--port 8888] [--workers 2]`
 *
 * @module
 */

import { Protocol } from "../protocols.ts";
import { createServer, type Server, type Transport } from "../transports.ts";
import { interrupted, serverFlags, usageError } from "./_cli.ts";

/** Echoes what it receives; counts its connections. */
class EchoProtocol extends Protocol {
  static connections = 0;
  #transport?: Transport;
  override connectionMade(transport: Transport) {
    EchoProtocol.connections++;
    this.#transport = transport;
  }
  override dataReceived(data: Uint8Array) {
    this.#transport!.write(data);
  }
}

/** What the main program tells a worker, and what the worker answers. */
type ToWorker = { start: { host: string; port: number } } | { stop: true };
type FromWorker = { ready: number } | { stopped: number } | { error: string };

interface WorkerScope {
  postMessage(message: FromWorker): void;
  onmessage: ((event: MessageEvent<ToWorker>) => void) | null;
  close(): void;
}

function runWorker(scope: WorkerScope): void {
  let server: Server | undefined;
  scope.onmessage = async ({ data }) => {
    if ("start" in data) {
      try {
        server = await createServer(() => new EchoProtocol(), {
          hostname: data.start.host,
          port: data.start.port,
          reusePort: true,
        });
        scope.postMessage({ ready: (server.addrs[0] as Deno.NetAddr).port });
      } catch (error) {
        scope.postMessage({ error: String(error) });
      }
      return;
    }
    server?.close();
    server?.closeClients();
    await server?.waitClosed();
    scope.postMessage({ stopped: EchoProtocol.connections });
    scope.close();
  };
}

/** Sends `message` to `worker` and waits for its answer. */
function ask(worker: Worker, message: ToWorker): Promise<FromWorker> {
  return new Promise((resolve) => {
    worker.onmessage = ({ data }) => resolve(data);
    worker.postMessage(message);
  });
}

async function main(): Promise<void> {
  const { host, port, workers: count } = serverFlags(8888, {
    workers: { type: "string", default: "2" },
  });
  const workerCount = Number(count);
  if (!Number.isInteger(workerCount) || workerCount < 1 || workerCount > 64) {
    usageError("--workers must be an integer from 1 to 64");
  }
  const workers: Worker[] = [];
  let boundPort = port;
  for (let i = 0; i < workerCount; i++) {
    const worker = new Worker(import.meta.url, { type: "module" });
    workers.push(worker);
    const answer = await ask(worker, { start: { host, port: boundPort } });
    if ("error" in answer) {
      workers.forEach((w) => w.terminate());
      console.error(`worker ${i} failed: ${answer.error}`);
      Deno.exit(1);
    }
    if ("ready" in answer) boundPort = answer.ready;
  }
  console.log(`Serving on ${host}:${boundPort} with ${workerCount} workers`);
  await interrupted();
  let total = 0;
  for (const [i, worker] of workers.entries()) {
    const answer = await ask(worker, { stop: true });
    const served = "stopped" in answer ? answer.stopped : 0;
    total += served;
    console.log(`worker ${i} served ${served} connections`);
  }
  console.log(`total ${total} connections`);
}

// In a worker this file waits for the main program's orders.
const inWorker = "WorkerGlobalScope" in globalThis;
if (inWorker) runWorker(globalThis as unknown as WorkerScope);
else if (import.meta.main) await main();
