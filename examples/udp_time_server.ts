/**
 * UDP time server: answers every datagram with the current local time.
 * Port of the UDP server of seed 004 (S004-f): `datagram_received` prints
 * the sender, `sendto`s the time back, prints `replied`; runs until Ctrl+C
 * (the seed's `KeyboardInterrupt`), then closes the transport.
 *
 * The seed binds `gethostbyname(gethostname())`, port 9999; to stay offline
 * this binds 127.0.0.1 unless `--hostname` says otherwise. `--port 0`
 * picks a free port (printed as `Serving on …`).
 *
 * Run: `deno run --allow-net --unstable-net examples/udp_time_server.ts [--hostname 127.0.0.1] [--port 9999]`
 *
 * @module
 */

import {
  createDatagramEndpoint,
  DatagramProtocol,
  type DatagramTransport,
} from "../mod.ts";
import { addrTuple, interrupted, parseFlags, parsePort } from "./_cli.ts";

/** `str(datetime.datetime.now())[:19]`: `YYYY-MM-DD HH:MM:SS`, local time. */
function now(): string {
  const d = new Date();
  const two = (n: number) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${two(d.getMonth() + 1)}-${two(d.getDate())} ` +
    `${two(d.getHours())}:${two(d.getMinutes())}:${two(d.getSeconds())}`;
}

class EchoServerProtocol extends DatagramProtocol {
  transport?: DatagramTransport;

  override connectionMade(transport: DatagramTransport): void {
    this.transport = transport;
  }

  override datagramReceived(_data: Uint8Array, addr: Deno.Addr): void {
    // The seed decodes the request (message = data.decode()) and ignores it.
    console.log("Received from", addrTuple(addr));
    this.transport!.sendTo(
      new TextEncoder().encode(now()),
      addr as Deno.NetAddr,
    );
    console.log("replied");
  }
}

const flags = parseFlags({
  hostname: { type: "string", default: "127.0.0.1" },
  port: { type: "string", default: "9999" },
});
const hostname = flags.hostname;
const port = parsePort(flags.port);
console.log("Starting UDP server");
const [transport] = await createDatagramEndpoint(
  () => new EchoServerProtocol(),
  { localAddr: { hostname, port } },
);
const local = transport.getExtraInfo("sockname") as Deno.NetAddr;
console.log(`Serving on ${local.hostname}:${local.port}`);

// loop.run_forever() until KeyboardInterrupt, then transport.close().
await interrupted();
transport.close();
