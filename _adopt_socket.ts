// What the factories' `sock` option takes, as a backend handle: an aionet
// Socket (handed over with every byte or connection it had buffered), or a
// Deno resource the user made (wrapped in a Deno handle).

import type {
  DatagramHandle,
  DetachedHandle,
  ListenerHandle,
  StreamHandle,
} from "./_backend.ts";
import {
  checkUsableConn,
  ConnStreamHandle,
  DenoDatagramHandle,
  DenoListenerHandle,
} from "./_conn_handles.ts";
import { detachHandle, Socket } from "./_socket.ts";
import { describe } from "./_validate.ts";

async function detach<K extends DetachedHandle["kind"]>(
  sock: Socket,
  kind: K,
  wanted: string,
): Promise<Extract<DetachedHandle, { kind: K }>> {
  const detached = await detachHandle(sock);
  if (detached.kind !== kind) {
    await detached.handle.close();
    throw new TypeError(`The sock must be ${wanted}`);
  }
  return detached as Extract<DetachedHandle, { kind: K }>;
}

/** A connected stream `Socket` or a `Deno.Conn`, as a stream handle. */
export async function streamHandleOf(sock: unknown): Promise<StreamHandle> {
  if (sock instanceof Socket) {
    const detached = await detach(
      sock,
      "stream",
      "a connected SOCK_STREAM socket (accept() or connect() it first)",
    );
    return detached.handle;
  }
  if (
    sock === null || typeof sock !== "object" ||
    typeof (sock as Deno.Conn).read !== "function" ||
    typeof (sock as Deno.Conn).write !== "function"
  ) {
    throw new TypeError(`The sock must be a Deno.Conn, got ${describe(sock)}`);
  }
  return new ConnStreamHandle(sock as Deno.Conn);
}

/** A bound or listening stream `Socket` or a `Deno.Listener`, as a listener handle. */
export async function listenerHandleOf(sock: unknown): Promise<ListenerHandle> {
  if (sock instanceof Socket) {
    const detached = await detach(
      sock,
      "listener",
      "a bound or listening SOCK_STREAM socket",
    );
    return detached.handle;
  }
  if (
    sock === null || typeof sock !== "object" ||
    typeof (sock as Deno.Listener).accept !== "function"
  ) {
    throw new TypeError(
      `The sock must be a Deno.Listener, got ${describe(sock)}`,
    );
  }
  return new DenoListenerHandle(sock as Deno.Listener);
}

/** A datagram `Socket` or a `Deno.DatagramConn`, as a handle and its peer. */
export async function datagramHandleOf(
  sock: unknown,
): Promise<
  { handle: DatagramHandle; remoteAddr?: Deno.NetAddr | Deno.UnixAddr }
> {
  if (sock instanceof Socket) {
    const detached = await detach(sock, "datagram", "a SOCK_DGRAM socket");
    return detached.remoteAddr === null
      ? { handle: detached.handle }
      : { handle: detached.handle, remoteAddr: detached.remoteAddr };
  }
  checkUsableConn(sock);
  return { handle: new DenoDatagramHandle(sock) };
}
