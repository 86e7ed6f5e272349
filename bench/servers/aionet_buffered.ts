// (c) aionet BufferedProtocol echo: the transport reads straight into the
// protocol's 64 KiB buffer; bufferUpdated writes that much back.
import { BufferedProtocol } from "../../protocols.ts";
import { createServer, type Transport } from "../../transports.ts";
import { announce, parseAddress } from "./_args.ts";

class Echo extends BufferedProtocol {
  #transport!: Transport;
  #buffer = new Uint8Array(64 * 1024);
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
  override getBuffer(_sizeHint: number): Uint8Array {
    return this.#buffer;
  }
  override bufferUpdated(nbytes: number): void {
    // write() copies, so the buffer can be reused for the next read.
    this.#transport.write(this.#buffer.subarray(0, nbytes));
  }
}

const server = await createServer(() => new Echo(), parseAddress(Deno.args));
announce((server.addrs[0] as Deno.NetAddr).port);
await server.serveForever();
