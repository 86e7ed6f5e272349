// The object `getExtraInfo("socket")` and `Server.sockets` return: a view
// of a connection's or listener's socket, as asyncio's TransportSocket.
// Over a backend handle: on the native backend `fileno()` is the OS
// descriptor and the socket options are real.

import { checkIntOption } from "./_validate.ts";
import type { SocketOptionAccess } from "./_backend.ts";
import { nextFd } from "./_fd.ts";

/** What a socket view reads from the handle underneath. */
export interface SocketSource {
  readonly fd: number;
  readonly options: SocketOptionAccess | null;
  localAddr(): Deno.Addr | undefined;
  remoteAddr(): Deno.Addr | undefined;
  /** Whether the socket was closed (then `fileno()` is -1, as asyncio's). */
  closed?(): boolean;
}

const fds = new WeakMap<object, number>();

/** A socket source over a Deno resource given by a user. */
function sourceOf(
  resource: Deno.Conn | Deno.Listener | Deno.DatagramConn,
): SocketSource {
  return {
    get fd() {
      let fd = fds.get(resource);
      if (fd === undefined) fds.set(resource, fd = nextFd());
      return fd;
    },
    options: null,
    localAddr: () =>
      "localAddr" in resource ? resource.localAddr : resource.addr,
    remoteAddr: () =>
      "remoteAddr" in resource ? resource.remoteAddr : undefined,
  };
}

let viewOf: (source: SocketSource) => TransportSocket;

/** A view of the socket under a handle (internal: transports and servers). */
export function socketView(source: SocketSource): TransportSocket {
  return viewOf(source);
}

/**
 * A view of the socket under a transport or a server: addresses, a stable
 * `fileno()` and, where the backend has real sockets (the native backend),
 * `setsockopt`/`getsockopt`.
 *
 * @example Read a server's port
 * ```ts
 * import { createServer } from "@aionet/aionet/transports";
 * import { Protocol } from "@aionet/aionet/protocols";
 *
 * await using server = await createServer(() => new Protocol(), {
 *   hostname: "127.0.0.1",
 *   port: 0,
 * });
 * console.log(server.sockets[0].getSockName());
 * ```
 */
export class TransportSocket {
  #source: SocketSource;
  static #pending: SocketSource | null = null;

  static {
    viewOf = (source) => {
      TransportSocket.#pending = source;
      try {
        return new TransportSocket(null as unknown as Deno.Conn);
      } finally {
        TransportSocket.#pending = null;
      }
    };
  }

  /** Wraps a connection, listener or datagram socket. */
  constructor(resource: Deno.Conn | Deno.Listener | Deno.DatagramConn) {
    this.#source = TransportSocket.#pending ?? sourceOf(resource);
    TransportSocket.#pending = null;
  }

  /** The local address, as `Deno.Addr`. */
  getSockName(): Deno.Addr {
    const addr = this.#source.localAddr();
    if (addr === undefined) {
      throw new Deno.errors.BadResource("The socket is closed");
    }
    return addr;
  }

  /** The peer's address; throws `NotConnected` for a listener. */
  getPeerName(): Deno.Addr {
    const addr = this.#source.remoteAddr();
    if (addr === undefined) {
      throw new Deno.errors.NotConnected("The socket is not connected");
    }
    return addr;
  }

  /**
   * The socket's descriptor: the OS descriptor on the native backend,
   * else a number that identifies this socket in this process; -1 once
   * the socket is closed (its number may belong to another by then).
   */
  fileno(): number {
    return this.#source.closed?.() ? -1 : this.#source.fd;
  }

  /**
   * Sets a socket option (`setsockopt(2)`), on the native backend; the
   * Deno backend throws `NotSupported` (set options through the transport
   * and factory options there).
   */
  setsockopt(level: number, option: number, value: number | boolean): void {
    const options = this.#options();
    const number = typeof value === "boolean" ? +value : value;
    if (typeof number !== "number") {
      throw new TypeError(
        `The option value must be a number or a boolean, got ${typeof value}`,
      );
    }
    options.set(level, option, checkIntOption(number));
  }

  /** Reads a socket option (`getsockopt(2)`); native backend only. */
  getsockopt(level: number, option: number): number {
    return this.#options().get(level, option);
  }

  #options(): SocketOptionAccess {
    const options = this.#source.options;
    if (options === null) {
      throw new Deno.errors.NotSupported(
        "Socket options of a transport's socket need the native backend (Deno's sockets do not expose setsockopt)",
      );
    }
    return options;
  }
}
