// The loop core: what transports, servers and the other internals need of
// their event loop (report to the exception handler, the clock, debug
// mode), and the current loop found late. events.ts's EventLoop implements
// LoopCore and registers itself here when loaded, as asyncio's events.py
// finds its policy late: internals depend on this module, never on
// events.ts, so layers only look down.

/** What a transport or the loop reports to the exception handler. */
export interface ExceptionContext {
  /** What went wrong, in words. */
  message: string;
  /** The error, where there is one. */
  exception?: unknown;
  /** The transport concerned, where known. */
  transport?: unknown;
  /** The protocol concerned, where known. */
  protocol?: unknown;
  /** Further fields, as asyncio allows (`future`, `handle`, `socket`, …). */
  [key: string]: unknown;
}

/** What the internals need of a loop. `EventLoop` implements it. */
export interface LoopCore {
  /** Reports `context` to the loop's exception handler (never throws). */
  callExceptionHandler(context: ExceptionContext): void;
  /** The loop's clock in milliseconds. */
  time(): number;
  /** Whether debug mode is on (slow callbacks and unclosed objects reported). */
  getDebug(): boolean;
  /** In debug mode, callbacks taking this long (ms) or longer are reported. */
  readonly slowCallbackDuration: number;
}

/** Logs `context` to stderr, as asyncio's default exception handler does. */
export function logException(context: ExceptionContext): void {
  const { message, exception, ...rest } = context;
  const details = Object.entries(rest)
    .filter(([, value]) => value !== undefined)
    .map(([key, value]) => `${key}: ${Deno.inspect(value, { depth: 1 })}`);
  const lines = [message || "Unhandled exception in event loop", ...details];
  if (exception !== undefined) console.error(lines.join("\n"), exception);
  else console.error(lines.join("\n"));
}

/**
 * Runs `report` (a default exception handler); if it throws, logs that
 * with `context` instead: a report never propagates.
 */
export function callLogged(report: () => void, context: ExceptionContext) {
  try {
    report();
  } catch (exception) {
    logException({
      message: "Exception in default exception handler",
      exception,
      context,
    });
  }
}

/** Stands in until a loop registers (only internals used on their own). */
const fallbackLoop: LoopCore = {
  callExceptionHandler: logException,
  time: () => performance.now(),
  getDebug: () => false,
  slowCallbackDuration: 100,
};

let provider: (() => LoopCore) | null = null;

/** Registers how the current loop is found (events.ts: `getEventLoop`). */
export function setLoopProvider(find: () => LoopCore): void {
  provider = find;
}

/** The current loop: the program's event loop once events.ts is loaded. */
export function currentLoop(): LoopCore {
  return provider === null ? fallbackLoop : provider();
}
