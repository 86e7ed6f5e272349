/**
 * UDP time client: asks the time server for the time, prints the answer,
 * and does it again, and again. Port of the UDP client of seed 004
 * (S004-f): `connection_made` sends `"ask for me"` to the `remote_addr`,
 * `datagram_received` prints `Now is : …` and closes, `error_received`
 * prints the error, `connection_lost` stops the loop; the outer loop
 * creates a new endpoint each time and sleeps a second in between.
 *
 * As the seed, it repeats forever; `--count N` stops after N rounds.
 * `--interval` is the pause between rounds (ms, default 1000). Deno never
 * reports ICMP errors, so with no server listening a round would wait
 * forever (as the seed does when the error is not reported): `--timeout`
 * (ms, default none) gives up on a round and goes on.
 *
 * Run: `deno run --allow-net --unstable-net examples/udp_time_client.ts [--hostname 127.0.0.1] [--port 9999] [--count 3]`
 *
 * @module
 */

import {
  createDatagramEndpoint,
  DatagramProtocol,
  type DatagramTransport,
} from "../mod.ts";
import { parseFlags, parsePort } from "./_cli.ts";

class EchoClientProtocol extends DatagramProtocol {
  transport?: DatagramTransport;
  #message: string;
  #stop: () => void;

  constructor(message: string, stop: () => void) {
    super();
    this.#message = message;
    this.#stop = stop;
  }

  override connectionMade(transport: DatagramTransport): void {
    this.transport = transport;
    this.transport.sendTo(new TextEncoder().encode(this.#message));
  }

  override datagramReceived(data: Uint8Array, _addr: Deno.Addr): void {
    console.log("Now is :", new TextDecoder().decode(data));
    this.transport!.close();
  }

  override errorReceived(exc: Error): void {
    console.log("Error received:", exc.message);
  }

  override connectionLost(_exc: Error | null): void {
    this.#stop(); // loop.stop()
  }
}

const flags = parseFlags({
  hostname: { type: "string", default: "127.0.0.1" },
  port: { type: "string", default: "9999" },
  count: { type: "string", default: "0" }, // 0: forever, as the seed
  interval: { type: "string", default: "1000" },
  timeout: { type: "string", default: "0" },
});
const hostname = flags.hostname;
const port = parsePort(flags.port, 1);
const count = Number(flags.count);
const interval = Number(flags.interval);
const timeout = Number(flags.timeout);

const message = "ask for me";
for (let round = 0; count === 0 || round < count; round++) {
  const stopped = Promise.withResolvers<void>();
  const [transport] = await createDatagramEndpoint(
    () => new EchoClientProtocol(message, stopped.resolve),
    { remoteAddr: { hostname, port } },
  );
  // loop.run_forever(), until connection_lost stops it.
  let timer: ReturnType<typeof setTimeout> | undefined;
  if (timeout > 0) {
    timer = setTimeout(() => {
      console.log(`No reply within ${timeout} ms`);
      transport.close();
    }, timeout);
  }
  await stopped.promise;
  clearTimeout(timer);
  transport.close();
  if (count === 0 || round + 1 < count) {
    await new Promise((resolve) => setTimeout(resolve, interval)); // time.sleep(1)
  }
}
