// The echo server of the native backend's handles (no transports): an
// accept sink and, per connection, a read sink that writes each chunk back.
// Reads land in one shared 64 KiB scratch buffer (the handles read
// synchronously); a write the socket cannot take at once keeps its bytes,
// so the scratch buffer is replaced and reading pauses until it is done.
// Needs --allow-ffi. Same command line as the other servers.
import type { ReadSink, StreamHandle } from "../../_backend.ts";
import { createNativeBackend } from "../../_native_backend.ts";
import { announce, parseAddress } from "./_args.ts";

const SCRATCH_SIZE = 64 * 1024;
let scratch = new Uint8Array(SCRATCH_SIZE);

class EchoConnection implements ReadSink {
  readonly #handle: StreamHandle;

  constructor(handle: StreamHandle) {
    this.#handle = handle;
    handle.setNoDelay(true);
    handle.readStart(this);
  }

  readBuffer(): Uint8Array {
    return scratch;
  }

  readDone(buffer: Uint8Array, n: number): void {
    this.#write(buffer.subarray(0, n));
  }

  readEof(): void {
    void this.#handle.close();
  }

  readError(): void {
    void this.#handle.close();
  }

  /**
   * Writes all of `data`: true when done at once; otherwise reading pauses
   * until the rest went out.
   */
  #write(data: Uint8Array): boolean {
    for (;;) {
      let result: number | Promise<number>;
      try {
        result = this.#handle.write(data);
      } catch {
        void this.#handle.close();
        return false;
      }
      if (typeof result === "number") {
        if (result === data.length) return true;
        data = data.subarray(result);
        continue;
      }
      // The handle keeps `data` until the promise settles.
      if (data.buffer === scratch.buffer) {
        scratch = new Uint8Array(SCRATCH_SIZE);
      }
      this.#handle.readStop();
      result.then((sent) => {
        if (this.#write(data.subarray(sent))) this.#handle.readStart(this);
      }, () => void this.#handle.close());
      return false;
    }
  }
}

const { hostname, port } = parseAddress(Deno.args);
const listener = createNativeBackend().listenTcp({
  hostname,
  port,
  backlog: 4096,
  reusePort: false,
});
listener.acceptStart({
  accepted: (handle) => void new EchoConnection(handle),
  acceptError: (error) => console.error("accept failed:", error.message),
});
announce((listener.addr as Deno.NetAddr).port);
