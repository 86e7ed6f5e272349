// Rules the transports share beyond write flow control (_write_flow.ts):
// which errors go unreported, how writeLines() checks its argument, and how
// a transport hands bytes and EOF to a protocol.

import type { BaseProtocol, BufferedProtocol, Protocol } from "./protocols.ts";
import { assertBytes } from "./_validate.ts";
import type { LoopCore } from "./_loop_core.ts";
import { protocolCallback, timedCall } from "./_debug.ts";

/** Errors that asyncio does not report to the exception handler. */
export function isQuietError(error: unknown): boolean {
  return error instanceof Deno.errors.ConnectionReset ||
    error instanceof Deno.errors.BrokenPipe ||
    error instanceof Deno.errors.ConnectionAborted ||
    error instanceof Deno.errors.UnexpectedEof;
}

/**
 * Checks the argument of `writeLines()`: an iterable of `Uint8Array`,
 * every item checked before anything is written.
 */
export function checkChunks(list: Iterable<Uint8Array>): Uint8Array[] {
  if (
    list === null || typeof list !== "object" || !(Symbol.iterator in list)
  ) {
    throw new TypeError("The list must be an iterable of Uint8Array");
  }
  const chunks = [...list];
  for (const chunk of chunks) assertBytes(chunk, "list item");
  return chunks;
}

/** Whether `protocol` takes data through `getBuffer`/`bufferUpdated`. */
export function isBuffered(protocol: BaseProtocol): boolean {
  return typeof (protocol as BufferedProtocol).getBuffer === "function";
}

/** Calls `protocol.getBuffer(sizeHint)` and checks what it returned. */
export function getProtocolBuffer(
  protocol: BufferedProtocol,
  sizeHint: number,
): Uint8Array {
  const buffer = protocol.getBuffer(sizeHint);
  if (!(buffer instanceof Uint8Array) || buffer.length === 0) {
    throw new TypeError("getBuffer() must return a non-empty Uint8Array");
  }
  return buffer;
}

/** Copies `bytes` into a buffered protocol through as many buffers as it takes. */
export function feedBuffered(
  protocol: BufferedProtocol,
  bytes: Uint8Array,
): void {
  while (bytes.length > 0) {
    const target = getProtocolBuffer(protocol, bytes.length);
    const count = Math.min(target.length, bytes.length);
    target.set(bytes.subarray(0, count));
    bytes = bytes.subarray(count);
    protocol.bufferUpdated(count);
  }
}

/**
 * Calls `protocol.eofReceived()` if the protocol has one and returns
 * whether it asked to keep the transport open (a truthy result).
 */
export function callEofReceived(protocol: BaseProtocol): boolean {
  const eofReceived = (protocol as Protocol).eofReceived;
  return typeof eofReceived === "function" &&
    Boolean(eofReceived.call(protocol));
}

/**
 * Sends an error of `transport` to `loop`'s exception handler with
 * asyncio's context fields.
 */
export function reportError(
  loop: LoopCore,
  transport: unknown,
  protocol: unknown,
  message: string,
  exception: unknown,
): void {
  loop.callExceptionHandler({ message, exception, transport, protocol });
}

/**
 * The tail of `getExtraInfo()`: a name the transport does not answer
 * itself is looked up in the `extra` values it was given.
 */
export function extraInfo(
  extra: Record<string, unknown>,
  name: string,
  fallback: unknown,
): unknown {
  return Object.hasOwn(extra, name) ? extra[name] : fallback;
}

/**
 * The tail of every transport's close: `protocol.connectionLost(exc)`,
 * with a throw reported to the loop rather than raised.
 */
export function callConnectionLost(
  loop: LoopCore,
  transport: unknown,
  protocol: BaseProtocol,
  exc: Error | null,
): void {
  try {
    timedCall(
      loop,
      () => protocolCallback(protocol, "connectionLost"),
      () => protocol.connectionLost(exc),
    );
  } catch (exception) {
    reportError(
      loop,
      transport,
      protocol,
      "Exception in protocol.connectionLost()",
      exception,
    );
  }
}

/** `protocolFactory()`; if it throws, `resource` is closed and the error raised. */
export function callFactory<P>(
  protocolFactory: () => P,
  resource: { close(): unknown },
): P {
  try {
    return protocolFactory();
  } catch (error) {
    void resource.close();
    throw error;
  }
}
