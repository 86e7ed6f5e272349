// The object `getExtraInfo("socket")` and `Server.sockets` return: a
// read-only view of a connection's or listener's socket, as asyncio's
// TransportSocket.

import { nextFd } from "./_fd.ts";

const fds = new WeakMap<object, number>();

/**
 * A view of the socket under a transport or a server: addresses and a
 * stable `fileno()`. Options are set through the transport, not here.
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
  #resource: Deno.Conn | Deno.Listener | Deno.DatagramConn;

  /** Wraps a connection, listener or datagram socket. */
  constructor(resource: Deno.Conn | Deno.Listener | Deno.DatagramConn) {
    this.#resource = resource;
  }

  /** The local address, as `Deno.Addr`. */
  getSockName(): Deno.Addr {
    const resource = this.#resource;
    return "localAddr" in resource ? resource.localAddr : resource.addr;
  }

  /** The peer's address; throws `NotConnected` for a listener. */
  getPeerName(): Deno.Addr {
    const resource = this.#resource;
    if ("remoteAddr" in resource) return resource.remoteAddr;
    throw new Deno.errors.NotConnected("The socket is not connected");
  }

  /** A number that identifies this socket in this process (not an OS fd). */
  fileno(): number {
    let fd = fds.get(this.#resource);
    if (fd === undefined) {
      fd = nextFd();
      fds.set(this.#resource, fd);
    }
    return fd;
  }
}
