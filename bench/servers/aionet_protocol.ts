// (b) aionet Protocol echo: dataReceived writes the chunk back.
import { Protocol } from "../../protocols.ts";
import { createServer, type Transport } from "../../transports.ts";
import { announce, parseAddress } from "./_args.ts";

class Echo extends Protocol {
  #transport!: Transport;
  override connectionMade(transport: Transport): void {
    this.#transport = transport;
  }
  override dataReceived(data: Uint8Array): void {
    this.#transport.write(data);
  }
}

const server = await createServer(() => new Echo(), parseAddress(Deno.args));
announce((server.addrs[0] as Deno.NetAddr).port);
await server.serveForever();
