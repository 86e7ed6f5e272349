// (b) aionet Protocol echo: dataReceived writes the chunk back.
import { Protocol } from "../../protocols.ts";
import { createServer, type Transport } from "../../transports.ts";
import { announce, parseAddress } from "./_args.ts";

class Echo extends Protocol {
  #transport!: Transport;
  override connectionMade(transport: Transport): void {
    this.#transport = transport;
  }
  // Flow control, as a well-behaved asyncio echo: stop reading while the
  // peer does not take the echo (the raw loop awaits each write the same way).
  override pauseWriting(): void {
    this.#transport.pauseReading();
  }
  override resumeWriting(): void {
    this.#transport.resumeReading();
  }
  override dataReceived(data: Uint8Array): void {
    this.#transport.write(data);
  }
}

const server = await createServer(() => new Echo(), parseAddress(Deno.args));
announce((server.addrs[0] as Deno.NetAddr).port);
await server.serveForever();
