// (c) aionet BufferedProtocol echo: the transport reads straight into the
// protocol's buffer; bufferUpdated writes that much back. The buffer starts
// at 64 KiB and grows to 256 KiB (asyncio's and uvloop's read size) once a
// read fills it, so idle connections stay small and busy ones make a
// quarter of the system calls.
import { BufferedProtocol } from "../../protocols.ts";
import { createServer, type Transport } from "../../transports.ts";
import { announce, parseAddress } from "./_args.ts";

const FIRST_SIZE = 64 * 1024;
const BUSY_SIZE = 256 * 1024;

class Echo extends BufferedProtocol {
  #transport!: Transport;
  #buffer = new Uint8Array(FIRST_SIZE);
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
    // write() copies what it cannot send at once, so the buffer can be
    // reused (or replaced) for the next read.
    this.#transport.write(this.#buffer.subarray(0, nbytes));
    if (nbytes === this.#buffer.length && nbytes < BUSY_SIZE) {
      this.#buffer = new Uint8Array(BUSY_SIZE);
    }
  }
}

const server = await createServer(() => new Echo(), parseAddress(Deno.args));
announce((server.addrs[0] as Deno.NetAddr).port);
await server.serveForever();
