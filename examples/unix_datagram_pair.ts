/**
 * Unix datagrams between two sockets on one host: a sender made with
 * `createDatagramEndpoint({ remoteAddr: { path } })` and a receiver bound to
 * the path.
 *
 * On Deno 2.9 an aionet endpoint cannot be *bound* to a Unix path: a
 * `unixpacket` socket with a receive pending cannot send, and an endpoint
 * always has a receive pending, so `createDatagramEndpoint({ path })`
 * throws `NotSupported` (printed below). What works is the send-only side
 * (an unbound socket, as asyncio's endpoint with only `remote_addr`), so the
 * receiver here is a plain `Deno.listenDatagram` that only receives.
 *
 * `--path` is the receiver's socket path (default: in a new temporary
 * directory); `--count` the number of datagrams (default 3).
 *
 * Run: `deno run --allow-read --allow-write --unstable-net examples/unix_datagram_pair.ts [--path /tmp/pair.sock]`
 *
 * @module
 */

import {
  createDatagramEndpoint,
  DatagramProtocol,
  type DatagramTransport,
} from "../mod.ts";
import { parseFlags } from "./_cli.ts";

const flags = parseFlags({
  count: { type: "string", default: "3" },
  path: { type: "string" },
});
const count = Number(flags.count);
const givenPath = flags.path;
const dir = givenPath === undefined ? await Deno.makeTempDir() : undefined;
const path = givenPath ?? `${dir}/receiver.sock`;
const encoder = new TextEncoder();
const decoder = new TextDecoder();

// A bound endpoint is refused, with the reason.
try {
  const [transport] = await createDatagramEndpoint(
    () => new DatagramProtocol(),
    { path: `${path}.bound` },
  );
  transport.close();
} catch (error) {
  if (!(error instanceof Deno.errors.NotSupported)) throw error;
  console.log(`Bound endpoint: ${error.message.split(":")[0]} (NotSupported)`);
}

// The receiver. Deno leaves the socket file behind: remove a stale one.
try {
  if (Deno.lstatSync(path).isSocket) Deno.removeSync(path);
} catch (error) {
  if (!(error instanceof Deno.errors.NotFound)) throw error;
}
const receiver = Deno.listenDatagram({ transport: "unixpacket", path });
console.log(`Receiver bound to ${path}`);

// The sender: an aionet endpoint whose remoteAddr is the receiver.
class Sender extends DatagramProtocol {
  override connectionMade(transport: DatagramTransport): void {
    for (let i = 1; i <= count; i++) {
      const message = `datagram ${i} of ${count}`;
      transport.sendTo(encoder.encode(message));
      console.log(`sent: ${message}`);
    }
    transport.close(); // sends what is queued, then closes
  }
  override errorReceived(exc: Error): void {
    console.log("Error received:", exc.message);
  }
}
await createDatagramEndpoint(() => new Sender(), { remoteAddr: { path } });

for (let i = 0; i < count; i++) {
  const [data, from] = await receiver.receive();
  const sender = (from as Deno.UnixAddr).path ?? "an unbound socket";
  console.log(`received: ${decoder.decode(data)} (from ${sender})`);
}
receiver.close();
await Deno.remove(path);
if (dir !== undefined) await Deno.remove(dir, { recursive: true });
