/**
 * SSDP-style multicast: listeners on a prepared socket joined to
 * 239.255.255.250, port 1900. Port of seed 000 (S000-a):
 *
 * ```python
 * def make_sock():
 *     sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
 *     sock.bind(('', 1900))
 *     group = socket.inet_aton('239.255.255.250')
 *     mreq = struct.pack('4sL', group, socket.INADDR_ANY)
 *     sock.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, mreq)
 *     sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
 *     sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
 *     return sock
 *
 * loop.create_datagram_endpoint(my_udp_protocol, sock=make_sock())
 * ```
 *
 * `makeSock()` below does the same with `Deno.listenDatagram`: Deno takes
 * the reuse option at bind time (`reuseAddress`: `SO_REUSEADDR`, which on
 * Linux lets several UDP sockets share the port the way the seed's
 * `SO_REUSEPORT` does; Deno cannot set `SO_REUSEPORT` on UDP) and joins the
 * group with `joinMulticastV4` (`IP_ADD_MEMBERSHIP`). Two listeners share
 * the port, as reuse is for; a searcher sends an `M-SEARCH` to the group and
 * prints the unicast answers.
 *
 * Offline: the seed joins on `INADDR_ANY` (the interface of the default
 * route); this joins on the loopback interface unless `--interface 0.0.0.0`,
 * and the searcher sends from 127.0.0.1, so nothing leaves the host.
 * `--bind` is the listeners' address (the seed's `''`, `0.0.0.0`; binding
 * the group address itself also works and hears only the group).
 * `--port 0` picks a free port.
 *
 * Run: `deno run --allow-net --unstable-net examples/multicast_ssdp.ts [--port 1900] [--interface 127.0.0.1] [--bind 0.0.0.0]`
 *
 * @module
 */

import {
  createDatagramEndpoint,
  DatagramProtocol,
  type DatagramTransport,
} from "../mod.ts";
import { addrTuple, parseFlags, parsePort } from "./_cli.ts";

const flags = parseFlags({
  port: { type: "string", default: "1900" },
  interface: { type: "string", default: "127.0.0.1" },
  bind: { type: "string", default: "0.0.0.0" },
  listeners: { type: "string", default: "2" },
  timeout: { type: "string", default: "5000" },
});
const GROUP = "239.255.255.250";
const iface = flags.interface;
const bind = flags.bind;
const listeners = Number(flags.listeners);
const timeout = Number(flags.timeout);
const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** The seed's make_sock(): bind, reuse, join the group. */
async function makeSock(port: number): Promise<Deno.DatagramConn> {
  const sock = Deno.listenDatagram({
    transport: "udp",
    hostname: bind,
    port,
    reuseAddress: true, // SO_REUSEADDR (+ the seed's SO_REUSEPORT)
    loopback: true, // IP_MULTICAST_LOOP, on by default in Linux
  });
  await sock.joinMulticastV4(GROUP, iface); // IP_ADD_MEMBERSHIP
  return sock;
}

/** my_udp_protocol: answers M-SEARCH requests, as an SSDP device. */
class SsdpResponder extends DatagramProtocol {
  #transport?: DatagramTransport;
  #name: string;

  constructor(name: string) {
    super();
    this.#name = name;
  }

  override connectionMade(transport: DatagramTransport): void {
    this.#transport = transport;
  }

  override datagramReceived(data: Uint8Array, addr: Deno.Addr): void {
    const request = decoder.decode(data);
    if (!request.startsWith("M-SEARCH * HTTP/1.1")) return;
    console.log(`${this.#name}: M-SEARCH from ${addrTuple(addr)}`);
    const response = [
      "HTTP/1.1 200 OK",
      "CACHE-CONTROL: max-age=1800",
      "ST: upnp:rootdevice",
      `USN: uuid:aionet-${this.#name}::upnp:rootdevice`,
      "",
      "",
    ].join("\r\n");
    this.#transport!.sendTo(encoder.encode(response), addr as Deno.NetAddr);
  }
}

/** Collects the unicast answers to one M-SEARCH. */
class Searcher extends DatagramProtocol {
  answers: string[] = [];
  #expected: number;
  #done: () => void;

  constructor(expected: number, done: () => void) {
    super();
    this.#expected = expected;
    this.#done = done;
  }

  override datagramReceived(data: Uint8Array, addr: Deno.Addr): void {
    const usn = decoder.decode(data).split("\r\n")
      .find((line) => line.startsWith("USN:"));
    console.log(`searcher: answer from ${addrTuple(addr)}: ${usn}`);
    this.answers.push(usn ?? "");
    if (this.answers.length >= this.#expected) this.#done();
  }
}

// The listeners: the first socket picks the port when --port is 0.
const transports: DatagramTransport[] = [];
let port = parsePort(flags.port);
for (let i = 1; i <= listeners; i++) {
  const sock = await makeSock(port);
  port = (sock.addr as Deno.NetAddr).port;
  const [transport] = await createDatagramEndpoint(
    () => new SsdpResponder(`listener-${i}`),
    { sock },
  );
  transports.push(transport);
}
console.log(
  `${listeners} listeners joined ${GROUP} on ${iface}, port ${port}`,
);

// The searcher: an ordinary endpoint on 127.0.0.1 sending to the group.
const done = Promise.withResolvers<void>();
const [search, searcher] = await createDatagramEndpoint(
  () => new Searcher(listeners, done.resolve),
  { localAddr: { hostname: "127.0.0.1", port: 0 } },
);
await search.setMulticastTtl(2); // SSDP's recommended TTL
const request = [
  "M-SEARCH * HTTP/1.1",
  `HOST: ${GROUP}:${port}`,
  'MAN: "ssdp:discover"',
  "MX: 1",
  "ST: upnp:rootdevice",
  "",
  "",
].join("\r\n");
search.sendTo(encoder.encode(request), { hostname: GROUP, port });

const timer = setTimeout(() => done.resolve(), timeout);
await done.promise;
clearTimeout(timer);
console.log(`${searcher.answers.length} answers`);
search.close();
for (const transport of transports) transport.close();
