/**
 * aionet: Python asyncio's networking stack for Deno — transports and
 * protocols, streams, TLS, datagrams, subprocesses, non-blocking sockets,
 * selectors and the event loop, with
 * asyncio's names in camelCase.
 *
 * @example Streams echo, as `asyncio.open_connection`
 * ```ts ignore
 * import { openConnection } from "@aionet/aionet";
 *
 * const [reader, writer] = await openConnection({ hostname: "127.0.0.1", port: 8888 });
 * writer.write(new TextEncoder().encode("hello\n"));
 * await writer.drain();
 * console.log(new TextDecoder().decode(await reader.readLine()));
 * writer.close();
 * await writer.waitClosed();
 * ```
 *
 * @module
 */

export * from "./protocols.ts";
export * from "./transports.ts";
export * from "./streams.ts";
export * from "./events.ts";
export * from "./subprocess.ts";
export * from "./sockets.ts";
export * from "./selectors.ts";
