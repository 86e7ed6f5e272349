// The adapter between a transport and a StreamReader (asyncio's
// StreamReaderProtocol): it feeds the reader, tracks write flow control for
// the writer, and on the server side starts the user's callback.

import type { LoopCore } from "./_loop_core.ts";
import type { Transport } from "./_transport_types.ts";
import { feedOwnedData, type StreamReader } from "./_stream_reader.ts";
import { FlowControlProtocol, StreamWriter } from "./_stream_writer.ts";

/**
 * What `startServer` calls for each connection, with its reader and
 * writer. It may return a promise; a rejection (or a throw) goes to the
 * loop's exception handler and closes that connection.
 *
 * @example A typed handler
 * ```ts
 * import type { ClientConnectedCallback } from "@aionet/aionet/streams";
 *
 * const greet: ClientConnectedCallback = async (_reader, writer) => {
 *   writer.write(new TextEncoder().encode("hello\n"));
 *   await writer.drain();
 *   writer.close();
 * };
 * ```
 */
export type ClientConnectedCallback = (
  reader: StreamReader,
  writer: StreamWriter,
) => void | Promise<void>;

/** Feeds a {@linkcode StreamReader} from a transport. Internal. */
export class StreamReaderProtocol extends FlowControlProtocol {
  #reader: StreamReader | null;
  #clientConnected: ClientConnectedCallback | null;

  constructor(
    loop: LoopCore,
    reader: StreamReader,
    clientConnected: ClientConnectedCallback | null = null,
  ) {
    super(loop);
    this.#reader = reader;
    this.#clientConnected = clientConnected;
    this.serverSide = clientConnected !== null;
  }

  override connectionMade(transport: Transport): void {
    const reader = this.#reader!;
    reader.setTransport(transport);
    const callback = this.#clientConnected;
    if (callback === null) return;
    const writer = new StreamWriter(transport, this, { reader });
    const fail = (exception: unknown) => {
      this.loop.callExceptionHandler({
        message: "Unhandled exception in client_connected_cb",
        exception,
        transport,
        protocol: this,
      });
      transport.close();
    };
    let result: unknown;
    try {
      result = callback(reader, writer);
    } catch (exception) {
      fail(exception);
      return;
    }
    if (
      result !== null && typeof result === "object" &&
      typeof (result as PromiseLike<unknown>).then === "function"
    ) {
      (result as PromiseLike<unknown>).then(undefined, fail);
    }
  }

  override dataReceived(data: Uint8Array): void {
    if (this.#reader !== null) feedOwnedData(this.#reader, data);
  }

  override eofReceived(): boolean {
    this.#reader?.feedEof();
    // Keep the transport open: the writer may still answer (half-close).
    return true;
  }

  override connectionLost(exc: Error | null): void {
    const reader = this.#reader;
    if (reader !== null) {
      if (exc === null) reader.feedEof();
      else reader.setException(exc);
    }
    super.connectionLost(exc);
    this.#reader = null;
    this.#clientConnected = null;
  }
}
