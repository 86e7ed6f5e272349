/**
 * The native I/O backend, opt-in as `uvloop.install()` is: Linux epoll and
 * libc sockets through Deno's FFI instead of Deno's networking ops. It is
 * faster (no op or promise per read or write; one epoll wait serves every
 * connection) and it has real file descriptors, so it can do what Deno's
 * API cannot:
 *
 * - `getExtraInfo("socket").fileno()` and `Socket.fileno()` are OS
 *   descriptors; `Socket`s are real non-blocking sockets.
 * - `DefaultSelector` and `loop.addReader`/`addWriter` use epoll, on aionet
 *   sockets and on any descriptor (a pipe, a terminal).
 * - `createConnection({ localAddr })` binds before connecting; `interleave`
 *   is honoured.
 * - `transport.abort()` sends a TCP reset (`SO_LINGER` 0).
 * - `setsockopt`/`getsockopt` set and read any option.
 * - UDP: a connected endpoint gets `errorReceived(ConnectionRefused)` when
 *   the peer's port is closed (ICMP); `allowBroadcast` is honoured (off by
 *   default, as asyncio); `reusePort` is `SO_REUSEPORT`; Unix datagram
 *   endpoints can be bound to a path.
 *
 * Everything above the I/O layer (Transports and Protocols, Streams, TLS,
 * STARTTLS, subprocesses, the event loop) works unchanged on it. Deno's
 * net permissions are honoured: binding or connecting is refused as Deno's
 * own calls refuse it (`NotCapable`). It needs `--allow-ffi` (part of
 * `-A`), Linux, and an x86_64 or aarch64 CPU.
 *
 * `install()` switches every server, connection, datagram endpoint and
 * socket made afterwards to it; `uninstall()` goes back to Deno's ops for
 * objects made afterwards (objects keep the backend they were made with).
 * Setting `AIONET_BACKEND=native` in the environment (readable with
 * `--allow-env=AIONET_BACKEND`) installs it at first use, so an unchanged
 * program or test suite runs on it. There is never a silent fallback: if
 * it was asked for and cannot run, the call throws
 * `Deno.errors.NotSupported` naming the reason.
 *
 * @example Turn it on, as uvloop.install()
 * ```ts ignore
 * import { install } from "@aionet/aionet/native";
 * import { startServer } from "@aionet/aionet/streams";
 *
 * install(); // NotSupported (naming the reason) where it cannot run
 * await using server = await startServer(async (reader, writer) => {
 *   writer.write(await reader.readLine());
 *   writer.close();
 * }, { hostname: "127.0.0.1", port: 8888 });
 * await server.serveForever();
 * ```
 *
 * @module
 */

import { createNativeBackend, nativeAvailability } from "./_native_backend.ts";
import {
  currentBackend,
  denoBackend,
  installBackend,
  nativeBackend,
  provideNativeBackend,
} from "./_io.ts";

provideNativeBackend(createNativeBackend);

/**
 * Makes the native backend the one every server, connection, datagram
 * endpoint and socket made from now on uses. Throws
 * `Deno.errors.NotSupported` naming the reason when it cannot run here
 * (not Linux; an unsupported CPU; no FFI permission: run with
 * `--allow-ffi`).
 *
 * @example Install where it can run, else keep Deno's ops
 * ```ts
 * import { install, isAvailable, uninstall } from "@aionet/aionet/native";
 *
 * if (isAvailable()) install();
 * // ... make servers and connections ...
 * uninstall();
 * ```
 */
export function install(): void {
  const availability = nativeAvailability();
  if (!availability.available) {
    throw new Deno.errors.NotSupported(
      `The native backend cannot run here: ${availability.reason}`,
    );
  }
  installBackend(nativeBackend());
}

/**
 * Goes back to Deno's networking ops for objects made from now on (those
 * made meanwhile keep the native backend until they close).
 *
 * @example Back to Deno's ops
 * ```ts
 * import { uninstall } from "@aionet/aionet/native";
 *
 * uninstall();
 * ```
 */
export function uninstall(): void {
  installBackend(denoBackend);
}

/**
 * Whether the native backend can run in this process (Linux, x86_64 or
 * aarch64, FFI permission granted). Never prompts for a permission.
 *
 * @example Check before installing
 * ```ts
 * import { isAvailable, whyUnavailable } from "@aionet/aionet/native";
 *
 * if (!isAvailable()) console.log(`Deno's ops it is: ${whyUnavailable()}`);
 * ```
 */
export function isAvailable(): boolean {
  return nativeAvailability().available;
}

/**
 * Why the native backend cannot run here, or `null` when it can.
 *
 * @example Say why
 * ```ts
 * import { whyUnavailable } from "@aionet/aionet/native";
 *
 * console.log(whyUnavailable() ?? "the native backend can run");
 * ```
 */
export function whyUnavailable(): string | null {
  const availability = nativeAvailability();
  return availability.available ? null : availability.reason;
}

/**
 * The backend objects made now use: `"native"` or `"deno"` (asking for it
 * settles `AIONET_BACKEND`, and throws as the first connection would if it
 * names a backend that cannot run).
 *
 * @example Which backend?
 * ```ts
 * import { activeBackend } from "@aionet/aionet/native";
 *
 * console.log(activeBackend()); // "deno" unless installed or AIONET_BACKEND=native
 * ```
 */
export function activeBackend(): "native" | "deno" {
  return currentBackend().name === "native" ? "native" : "deno";
}
