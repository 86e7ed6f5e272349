// Debug mode, as asyncio's: callbacks (loop callbacks and protocol
// callbacks) that run longer than the loop's `slowCallbackDuration` are
// reported with console.warn, and transports, servers and sockets that are
// collected without having been closed are reported (asyncio's
// ResourceWarning). Off, it costs one test of `debugActive` per callback.

import type { LoopCore } from "./_loop_core.ts";

/**
 * Whether any loop has debug mode on (a live binding: callers test it
 * before anything else, so debug mode costs nothing while it is off).
 */
export let debugActive = false;

/** How many loops have debug mode on now. */
let debugLoops = 0;

/**
 * A loop's debug mode changed (its `setDebug`): on while any loop has it,
 * off again (and free) once none has.
 */
export function activateDebug(on = true): void {
  debugLoops = Math.max(0, debugLoops + (on ? 1 : -1));
  debugActive = debugLoops > 0;
}

/**
 * Calls `call()`; in debug mode reports it if it ran for the loop's
 * `slowCallbackDuration` or longer, whether it returned or threw.
 */
export function timedCall<T>(
  loop: LoopCore,
  label: () => string,
  call: () => T,
): T {
  if (!debugActive) return call();
  const start = performance.now();
  try {
    return call();
  } finally {
    reportSlow(loop, start, label());
  }
}

/** A short name for a callback: its function name, or `<anonymous>`. */
export function callbackName(callback: unknown): string {
  const name = typeof callback === "function" ? callback.name : "";
  return name === "" ? "<anonymous>" : name;
}

/** How a protocol callback is named in a slow-callback warning. */
export function protocolCallback(protocol: object, method: string): string {
  return `${protocol.constructor?.name ?? "protocol"}.${method}()`;
}

/**
 * Reports `what` if it ran longer than `loop.slowCallbackDuration`, when
 * the loop is in debug mode; `start` is `performance.now()` before it ran.
 */
export function reportSlow(loop: LoopCore, start: number, what: string): void {
  if (!loop.getDebug()) return;
  const took = performance.now() - start;
  if (took >= loop.slowCallbackDuration) {
    console.warn(`Executing ${what} took ${took.toFixed(1)} ms`);
  }
}

/** What the finalization registry holds for one watched object. */
export interface UnclosedState {
  /** Set when the object is closed: then its collection says nothing. */
  closed: boolean;
  /** How the object is named in the warning. */
  readonly description: string;
}

const registry = new FinalizationRegistry<UnclosedState>((state) => {
  if (!state.closed) {
    console.warn(`ResourceWarning: unclosed ${state.description}`);
  }
});

/**
 * Watches `target` when `loop` is in debug mode: if it is collected before
 * the returned state's `closed` is set, a ResourceWarning is printed.
 * Returns `null` (nothing watched, nothing to set) when debug mode is off.
 */
export function watchUnclosed(
  loop: LoopCore,
  target: object,
  description: string,
): UnclosedState | null {
  if (!debugActive || !loop.getDebug()) return null;
  const state: UnclosedState = { closed: false, description };
  registry.register(target, state);
  return state;
}

/** Whether `AIONET_DEBUG` asks for debug mode (and may be read). */
export function debugRequested(): boolean {
  try {
    const state = Deno.permissions.querySync({
      name: "env",
      variable: "AIONET_DEBUG",
    }).state;
    if (state !== "granted") return false;
    const value = Deno.env.get("AIONET_DEBUG");
    return value !== undefined && value !== "" && value !== "0";
  } catch {
    return false;
  }
}
