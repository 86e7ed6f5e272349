// The Deno-ops backend, aionet's default: sockets opened with Deno.connect,
// Deno.listen and Deno.listenDatagram (the only module that calls them),
// wrapped in the handles of _conn_handles.ts. Permissions are Deno's own:
// every open goes through Deno's permission checks.

import type {
  Backend,
  BindUdpOptions,
  ConnectTcpOptions,
  DatagramHandle,
  ListenerHandle,
  ListenTcpOptions,
  SocketImpl,
  StreamHandle,
} from "./_backend.ts";
import {
  ConnStreamHandle,
  DenoDatagramHandle,
  DenoListenerHandle,
  UNIX_RECEIVE_UNSUPPORTED,
} from "./_conn_handles.ts";
import { initMulticast } from "./_multicast.ts";
import type { DenoSocketOps } from "./_socket_emulated.ts";
import { emulatedSockets } from "./_socket_emulated_pair.ts";
import { abortReason } from "./_readiness.ts";
import {
  hostnameError,
  notSupported,
  requireUnstableNet,
} from "./_validate.ts";

function closeQuietly(resource: { close(): void }): void {
  try {
    resource.close();
  } catch {
    // Already closed.
  }
}

/** Races `connecting` with `signal`; a connection that wins late is closed. */
async function abortable<T extends { close(): void }>(
  connecting: Promise<T>,
  signal: AbortSignal | undefined,
): Promise<T> {
  if (signal === undefined) return await connecting;
  const { promise: aborted, reject } = Promise.withResolvers<never>();
  const onAbort = () => reject(abortReason(signal));
  signal.addEventListener("abort", onAbort, { once: true });
  try {
    return await Promise.race([connecting, aborted]);
  } catch (error) {
    connecting.then(closeQuietly, () => {});
    throw error;
  } finally {
    signal.removeEventListener("abort", onAbort);
  }
}

/** Deno's socket calls, in one place. */
export const denoSocketOps: DenoSocketOps = {
  connectTcp: (hostname, port, signal) =>
    Deno.connect({ hostname, port, transport: "tcp", signal }),
  connectUnix: (path) => Deno.connect({ transport: "unix", path }),
  listenTcp: (options) => Deno.listen(options),
  listenUnix: (path) => Deno.listen({ transport: "unix", path }),
  listenDatagram: (options) =>
    Deno.listenDatagram(
      options as Deno.UdpListenOptions & { transport: "udp" },
    ),
};

const sockets = emulatedSockets(denoSocketOps);

/** An emulated socket over a connected `conn` (sockets.ts's `socketFromConn`). */
export function denoSocketFromConn(
  conn: Deno.Conn,
  family: number,
): SocketImpl {
  const sock = sockets.newSocket(family, 1);
  sock.adopt(conn);
  return sock;
}

/** The Deno-ops backend. */
export const denoBackend: Backend = {
  name: "deno",
  features: {
    localBind: false,
    interleave: false,
    reset: false,
    broadcastOff: false,
    udpReusePort: false,
    unixDatagramBind: false,
    realFds: false,
  },

  async connectTcp(options: ConnectTcpOptions): Promise<StreamHandle> {
    if (options.localAddr !== undefined) {
      notSupported(
        "localAddr",
        "Deno.connect cannot bind a local address before connecting (the native backend can: see native.ts)",
      );
    }
    if (options.interleave !== undefined) {
      notSupported(
        "interleave",
        "Deno.connect orders the addresses itself; use happyEyeballsDelay",
      );
    }
    const connectOptions: Deno.ConnectOptions = {
      hostname: options.hostname,
      port: options.port,
      transport: "tcp",
    };
    if (options.happyEyeballsDelay !== undefined) {
      connectOptions.autoSelectFamily = true;
      connectOptions.autoSelectFamilyAttemptDelay = options.happyEyeballsDelay;
    }
    const { signal } = options;
    if (signal !== undefined) connectOptions.signal = signal;
    try {
      return new ConnStreamHandle(await Deno.connect(connectOptions));
    } catch (error) {
      if (signal?.aborted) throw abortReason(signal);
      throw withAddress(
        hostnameError(error, options.hostname),
        `${options.hostname}:${options.port}`,
      );
    }
  },

  async connectUnix(path: string, signal?: AbortSignal): Promise<StreamHandle> {
    const conn = await abortable(
      Deno.connect({ transport: "unix", path }),
      signal,
    );
    return new ConnStreamHandle(conn);
  },

  listenTcp(options: ListenTcpOptions): ListenerHandle {
    if (options.reusePort) requireUnstableNet("reusePort");
    if (options.ipv6Only) {
      notSupported(
        "An IPv6-only listener",
        "Deno.listen cannot set IPV6_V6ONLY",
      );
    }
    const listenOptions: Deno.TcpListenOptions & { reusePort?: boolean } = {
      port: options.port,
      tcpBacklog: options.backlog,
    };
    if (options.hostname !== undefined) {
      listenOptions.hostname = options.hostname;
    }
    if (options.reusePort) listenOptions.reusePort = true;
    try {
      return new DenoListenerHandle(Deno.listen(listenOptions));
    } catch (error) {
      throw hostnameError(error, options.hostname ?? "0.0.0.0");
    }
  },

  listenUnix(path: string): ListenerHandle {
    return new DenoListenerHandle(Deno.listen({ transport: "unix", path }));
  },

  bindUdp(options: BindUdpOptions): DatagramHandle {
    requireUnstableNet("createDatagramEndpoint");
    let conn: Deno.DatagramConn;
    try {
      conn = Deno.listenDatagram({
        transport: "udp",
        hostname: options.hostname,
        port: options.port,
        reuseAddress: options.reuseAddress || options.reusePort,
        loopback: options.loopback,
      });
    } catch (error) {
      throw hostnameError(error, options.hostname);
    }
    initMulticast(conn, { loopback: options.loopback });
    return new DenoDatagramHandle(conn);
  },

  openUnixDatagram(path?: string): DatagramHandle {
    requireUnstableNet("createDatagramEndpoint");
    if (path !== undefined) {
      notSupported(
        "A Unix datagram endpoint bound to a path",
        UNIX_RECEIVE_UNSUPPORTED,
      );
    }
    return new DenoDatagramHandle(
      Deno.listenDatagram(
        { transport: "unixpacket" } as Deno.UnixAddr & {
          transport: "unixpacket";
        },
      ),
    );
  },

  newSocket(family: number, type: number): SocketImpl {
    return sockets.newSocket(family, type);
  },

  socketPair(family: number, type: number): [SocketImpl, SocketImpl] {
    return sockets.socketPair(family, type);
  },

  readinessOfFd(): undefined {
    return undefined;
  },
};

/**
 * A connect error that names where it was connecting, as asyncio's and the
 * native backend's do ("Connection refused (os error 111): connecting to
 * 127.0.0.1:9"); permission and lookup errors already say it.
 */
function withAddress(error: unknown, where: string): unknown {
  if (
    !(error instanceof Error) || error instanceof Deno.errors.NotCapable ||
    error instanceof Deno.errors.NotFound || error instanceof TypeError ||
    !Object.values(Deno.errors).some((kind) => error instanceof kind)
  ) {
    return error;
  }
  const Kind = error.constructor as new (
    message: string,
    options: { cause: unknown },
  ) => Error;
  return new Kind(`${error.message}: connecting to ${where}`, {
    cause: error,
  });
}
