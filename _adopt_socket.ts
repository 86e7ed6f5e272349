// Takes over an aionet Socket passed as `sock` to the connection factories:
// the Deno resource underneath, with every byte or connection the socket had
// already buffered.

import { type DetachedSocket, detachSocket, Socket } from "./sockets.ts";

function closeDetached(detached: DetachedSocket): void {
  try {
    if (detached.kind === "listener") detached.listener.close();
    else detached.conn.close();
  } catch {
    // Already closed.
  }
}

async function detach<K extends DetachedSocket["kind"]>(
  sock: Socket,
  kind: K,
  wanted: string,
): Promise<Extract<DetachedSocket, { kind: K }>> {
  const detached = await detachSocket(sock);
  if (detached.kind !== kind) {
    closeDetached(detached);
    throw new TypeError(`The sock must be ${wanted}`);
  }
  return detached as Extract<DetachedSocket, { kind: K }>;
}

/** A connected stream `Socket` → its `Deno.Conn`; other values unchanged. */
export async function adoptConn<T>(sock: T | Socket): Promise<T | Deno.Conn> {
  if (!(sock instanceof Socket)) return sock;
  const detached = await detach(
    sock,
    "stream",
    "a connected SOCK_STREAM socket (accept() or connect() it first)",
  );
  return detached.conn;
}

/** A bound or listening stream `Socket` → its `Deno.Listener`. */
export async function adoptListener<T>(
  sock: T | Socket,
): Promise<T | Deno.Listener> {
  if (!(sock instanceof Socket)) return sock;
  const detached = await detach(
    sock,
    "listener",
    "a bound or listening SOCK_STREAM socket",
  );
  return detached.listener;
}

/** A datagram `Socket` → its `Deno.DatagramConn` and connected peer. */
export async function adoptDatagram<T>(
  sock: T | Socket,
): Promise<
  { conn: T | Deno.DatagramConn; remoteAddr?: Deno.NetAddr | Deno.UnixAddr }
> {
  if (!(sock instanceof Socket)) return { conn: sock };
  const detached = await detach(sock, "datagram", "a SOCK_DGRAM socket");
  return detached.remoteAddr === null
    ? { conn: detached.conn }
    : { conn: detached.conn, remoteAddr: detached.remoteAddr };
}
