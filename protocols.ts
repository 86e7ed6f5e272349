/**
 * Protocol base classes: the callbacks a transport calls, as in Python's
 * `asyncio.protocols`.
 *
 * Every method has a no-op body, so a protocol can `extends Protocol` and
 * `override` only what it needs, or `implements Protocol` structurally.
 *
 * Callback order on a stream transport: `connectionMade` first, then
 * `dataReceived` any number of times, then at most one `eofReceived`, then
 * exactly one `connectionLost`.
 *
 * @example Echo protocol
 * ```ts
 * import { Protocol } from "@aionet/aionet/protocols";
 * import type { Transport } from "@aionet/aionet/transports";
 *
 * class Echo extends Protocol {
 *   #transport?: Transport;
 *   override connectionMade(transport: Transport) {
 *     this.#transport = transport;
 *   }
 *   override dataReceived(data: Uint8Array) {
 *     this.#transport!.write(data);
 *   }
 * }
 * ```
 *
 * @module
 */

// Type-only: the transport and protocol interfaces name each other.
import type {
  BaseTransport,
  DatagramTransport,
  SubprocessTransport,
  Transport,
} from "./_transport_types.ts";

/**
 * The callbacks every protocol has: connection set-up and tear-down and
 * write flow control.
 *
 * @example Count connections
 * ```ts
 * import { BaseProtocol } from "@aionet/aionet/protocols";
 *
 * let open = 0;
 * class Counter extends BaseProtocol {
 *   override connectionMade() { open++; }
 *   override connectionLost() { open--; }
 * }
 * ```
 */
export class BaseProtocol {
  /**
   * Called once when the connection is made, with its transport. Reading
   * starts only after this returns.
   */
  connectionMade(transport: BaseTransport): void {
    void transport;
  }

  /**
   * Called once when the connection is lost or closed: `exc` is `null` for a
   * clean close (EOF or `close()`), otherwise the error.
   */
  connectionLost(exc: Error | null): void {
    void exc;
  }

  /** Called when the transport's write buffer rises above the high-water mark. */
  pauseWriting(): void {}

  /** Called when the transport's write buffer drains to the low-water mark. */
  resumeWriting(): void {}
}

/**
 * A stream protocol: receives data as it arrives.
 *
 * `dataReceived` gets a buffer the protocol owns and may keep.
 *
 * @example Print what arrives
 * ```ts
 * import { Protocol } from "@aionet/aionet/protocols";
 *
 * class Printer extends Protocol {
 *   override dataReceived(data: Uint8Array) {
 *     console.log(new TextDecoder().decode(data));
 *   }
 * }
 * ```
 */
export class Protocol extends BaseProtocol {
  /** Called once when the connection is made. */
  override connectionMade(transport: Transport): void {
    void transport;
  }

  /**
   * Called with each chunk of data received. The protocol owns `data`: it
   * may keep it, and nothing else writes to it. Small chunks are views of a
   * shared pool buffer (as Node's `Buffer` pool): use `data` itself, not
   * `data.buffer`, which holds other connections' bytes too. On a busy
   * connection, chunks are views of a 256 KiB slab of that connection's
   * reads: a chunk kept for long keeps its slab alive, so keep a
   * `data.slice()` of a small part instead.
   */
  dataReceived(data: Uint8Array): void {
    void data;
  }

  /**
   * Called when the peer sent EOF (half-closed its side). Return a truthy
   * value to keep the transport open for writing; otherwise the transport
   * closes itself.
   */
  eofReceived(): boolean | void {}
}

/**
 * A stream protocol that lends the transport its own buffer: the transport
 * reads straight into the array `getBuffer()` returns, then calls
 * `bufferUpdated(nbytes)`. No copy on the read path.
 *
 * @example Receive into one reused buffer
 * ```ts
 * import { BufferedProtocol } from "@aionet/aionet/protocols";
 *
 * class Sink extends BufferedProtocol {
 *   #buffer = new Uint8Array(64 * 1024);
 *   total = 0;
 *   override getBuffer(_sizeHint: number) { return this.#buffer; }
 *   override bufferUpdated(nbytes: number) { this.total += nbytes; }
 * }
 * ```
 */
export class BufferedProtocol extends BaseProtocol {
  /** Called once when the connection is made. */
  override connectionMade(transport: Transport): void {
    void transport;
  }

  /**
   * Returns the array to read the next chunk into; it must not be empty.
   * `sizeHint` is the wanted size, or `-1` when any size will do.
   */
  getBuffer(sizeHint: number): Uint8Array {
    void sizeHint;
    throw new Deno.errors.NotSupported(
      "BufferedProtocol.getBuffer() must be overridden",
    );
  }

  /** Called after `nbytes` bytes were written into the last buffer. */
  bufferUpdated(nbytes: number): void {
    void nbytes;
  }

  /** As {@linkcode Protocol.eofReceived}. */
  eofReceived(): boolean | void {}
}

/**
 * A datagram protocol, for `createDatagramEndpoint`.
 *
 * @example Print each datagram and its sender
 * ```ts
 * import { DatagramProtocol } from "@aionet/aionet/protocols";
 *
 * class Listener extends DatagramProtocol {
 *   override datagramReceived(data: Uint8Array, addr: Deno.Addr) {
 *     console.log(addr, data.length);
 *   }
 * }
 * ```
 */
export class DatagramProtocol extends BaseProtocol {
  /** Called once when the endpoint is ready. */
  override connectionMade(transport: DatagramTransport): void {
    void transport;
  }

  /** Called with each datagram received and the address it came from. */
  datagramReceived(data: Uint8Array, addr: Deno.Addr): void {
    void data;
    void addr;
  }

  /** Called when a send fails (Deno never reports ICMP errors). */
  errorReceived(exc: Error): void {
    void exc;
  }
}

/**
 * A protocol for a child process's pipes, for `loop.subprocessExec`.
 *
 * @example Collect a child's standard output
 * ```ts
 * import { SubprocessProtocol } from "@aionet/aionet/protocols";
 *
 * class Collect extends SubprocessProtocol {
 *   chunks: Uint8Array[] = [];
 *   override pipeDataReceived(fd: 1 | 2, data: Uint8Array) {
 *     if (fd === 1) this.chunks.push(data);
 *   }
 * }
 * ```
 */
export class SubprocessProtocol extends BaseProtocol {
  /** Called once when the process has started. */
  override connectionMade(transport: SubprocessTransport): void {
    void transport;
  }

  /** Called with data the child wrote to stdout (`1`) or stderr (`2`). */
  pipeDataReceived(fd: 1 | 2, data: Uint8Array): void {
    void fd;
    void data;
  }

  /** Called when one of the child's pipes closes. */
  pipeConnectionLost(fd: 0 | 1 | 2, exc: Error | null): void {
    void fd;
    void exc;
  }

  /** Called when the child process has exited. */
  processExited(): void {}
}
