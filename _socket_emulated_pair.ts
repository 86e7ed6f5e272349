// The Deno backend's socket factory: emulated sockets, and socketpair()
// over an abstract Unix socket or a loopback TCP listener, connected from
// the start although Deno joins the pair asynchronously.

import { type DenoSocketOps, EmulatedSocket } from "./_socket_emulated.ts";

const AF_UNIX = 1;
const AF_INET6 = 10;
const SOCK_DGRAM = 2;

function closeQuietly(resource: { close(): void }): void {
  try {
    resource.close();
  } catch {
    // Already closed.
  }
}

/** A Deno.Conn whose calls wait for the connection being made. */
function deferredConn(connecting: Promise<Deno.Conn>): Deno.Conn {
  let conn: Deno.Conn | null = null;
  const ready = connecting.then((c) => conn = c);
  ready.catch(() => {});
  const call = <T>(f: (c: Deno.Conn) => Promise<T>): Promise<T> =>
    conn !== null ? f(conn) : ready.then(f);
  return {
    read: (p: Uint8Array) => call((c) => c.read(p)),
    write: (p: Uint8Array) => call((c) => c.write(p)),
    closeWrite: () => call((c) => c.closeWrite()),
    close: () => {
      if (conn !== null) conn.close();
      else ready.then(closeQuietly, () => {});
    },
    get localAddr() {
      return conn?.localAddr;
    },
    get remoteAddr() {
      return conn?.remoteAddr;
    },
  } as unknown as Deno.Conn;
}

/** Emulated sockets over `ops`, and pairs of them. */
export function emulatedSockets(ops: DenoSocketOps): {
  newSocket(family: number, type: number): EmulatedSocket;
  socketPair(family: number, type: number): [EmulatedSocket, EmulatedSocket];
} {
  return {
    newSocket: (family, type) => new EmulatedSocket(ops, family, type),
    socketPair: (family, type) => socketPair(ops, family, type),
  };
}

/**
 * Two connected sockets. Deno connects asynchronously, so the pair is made
 * over an abstract Unix socket (or a loopback TCP listener for
 * `AF_INET`/`AF_INET6`) in the background, but both ends are connected
 * from the start: sends are buffered until the connection is there.
 */
function socketPair(
  ops: DenoSocketOps,
  family: number,
  type: number,
): [EmulatedSocket, EmulatedSocket] {
  if (type === SOCK_DGRAM) {
    throw new Deno.errors.NotSupported(
      "socketpair() of SOCK_DGRAM sockets is not supported on the Deno backend: use two bound datagram sockets (the native backend pairs them)",
    );
  }
  const a = new EmulatedSocket(ops, family, type);
  const b = new EmulatedSocket(ops, family, type);
  let listener: Deno.Listener;
  let connecting: Promise<Deno.Conn>;
  let addrA: Deno.Addr;
  let addrB: Deno.Addr;
  if (family === AF_UNIX) {
    const path = `\0aionet-socketpair-${crypto.randomUUID()}`;
    listener = ops.listenUnix(path);
    connecting = ops.connectUnix(path);
    // Both ends unnamed, as socketpair(2)'s (the path is ours, not theirs).
    addrA = addrB = { transport: "unix", path: null as unknown as string };
  } else {
    const hostname = family === AF_INET6 ? "::1" : "127.0.0.1";
    listener = ops.listenTcp({ hostname, port: 0 });
    const { port } = listener.addr as Deno.NetAddr;
    connecting = ops.connectTcp(hostname, port);
    addrA = { transport: "tcp", hostname, port };
    addrB = { transport: "tcp", hostname, port: 0 };
  }
  const accepting = listener.accept();
  const both = Promise.all([accepting, connecting]);
  both.then(() => {}, () => {}).finally(() => closeQuietly(listener));
  // A pair connected by TCP must not accept a stranger: check the ports.
  const checked = both.then(([accepted, connected]) => {
    const local = connected.localAddr;
    const remote = accepted.remoteAddr;
    if ("port" in local && "port" in remote && local.port !== remote.port) {
      throw new Deno.errors.ConnectionAborted(
        "socketpair() accepted an unexpected connection",
      );
    }
  });
  checked.catch(() => {
    accepting.then(closeQuietly, () => {});
    connecting.then(closeQuietly, () => {});
  });
  const ends = (conn: Promise<Deno.Conn>) => {
    const ready = Promise.all([conn, checked]).then(([c]) => c);
    return [deferredConn(ready), ready] as const;
  };
  a.pairWith(...ends(accepting), { local: addrA, remote: addrB });
  b.pairWith(...ends(connecting), { local: addrB, remote: addrA });
  return [a, b];
}
