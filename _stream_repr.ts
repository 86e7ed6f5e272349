// How streams show themselves in `Deno.inspect()`, in the style of
// asyncio's `repr()`: transports and errors on one line.

/** What `Deno.customInspect` hands to a custom inspector. */
export type InspectFn = (value: unknown, options?: unknown) => string;

/** `host:port` (`[v6]:port`) for a network address, the path for a Unix one. */
function formatAddr(addr: unknown): string {
  const a = addr as { hostname?: unknown; port?: unknown; path?: unknown };
  if (typeof a.path === "string") return a.path === "" ? "(unnamed)" : a.path;
  const host = String(a.hostname);
  return `${host.includes(":") ? `[${host}]` : host}:${a.port}`;
}

/**
 * A one-line description of a transport, in the style of asyncio's
 * transport `repr()`: `<StreamTransport peer=127.0.0.1:8888 read=polling
 * write=<idle bufsize=0>>`. Only what the transport's public methods tell.
 */
export function transportRepr(transport: unknown): string {
  if (transport === null || typeof transport !== "object") {
    return String(transport);
  }
  const t = transport as {
    isClosing?: () => boolean;
    getExtraInfo?: (name: string) => unknown;
    isReading?: () => boolean;
    getWriteBufferSize?: () => number;
  };
  const info = [transport.constructor?.name ?? "Transport"];
  try {
    const closing = typeof t.isClosing === "function" && t.isClosing();
    if (closing) info.push("closing");
    const peer = t.getExtraInfo?.("peername");
    if (peer !== null && typeof peer === "object") {
      info.push(`peer=${formatAddr(peer)}`);
    }
    if (!closing && typeof t.isReading === "function") {
      info.push(`read=${t.isReading() ? "polling" : "idle"}`);
    }
    if (typeof t.getWriteBufferSize === "function") {
      const size = t.getWriteBufferSize();
      info.push(`write=<${size > 0 ? "polling" : "idle"} bufsize=${size}>`);
    }
  } catch {
    // A transport in a state where it cannot tell: show what we have.
  }
  return `<${info.join(" ")}>`;
}

/** An error as Python's `repr()` shows one: `Name("message")`. */
export function errorRepr(error: Error): string {
  return `${error.name}(${JSON.stringify(error.message)})`;
}
