// Which I/O backend new objects use: the Deno-ops backend by default, or
// the one installed (native.ts's `install()`), or the one named by
// `AIONET_BACKEND` at first use. Objects keep the backend they were made
// with.

import type { Backend } from "./_backend.ts";
import { denoBackend } from "./_deno_backend.ts";
import { type Readiness, readinessOf } from "./_readiness.ts";

/** Backends that can be named in `AIONET_BACKEND`, made on first use. */
const named = new Map<string, () => Backend>([
  ["deno", () => denoBackend],
  ["native", nativeBackend],
]);

let native: Backend | null = null;
let makeNative: (() => Backend) | null = null;

/**
 * Gives the native backend's maker (native.ts does, when imported). Its
 * modules are loaded only where the native backend may be used: they cost
 * several MiB of memory at start that a program on Deno's ops would carry.
 */
export function provideNativeBackend(make: () => Backend): void {
  makeNative ??= make;
}

/** The native backend (one per process); `NotSupported` when it cannot run. */
export function nativeBackend(): Backend {
  if (native !== null) return native;
  if (makeNative === null) {
    throw new Deno.errors.NotSupported(
      "the native backend is not loaded: import @aionet/aionet/native, or set AIONET_BACKEND=native",
    );
  }
  return native = makeNative();
}

let current: Backend | null = null;

/** Registers a backend that `AIONET_BACKEND=<name>` selects. */
export function registerBackend(name: string, make: () => Backend): void {
  named.set(name, make);
}

/** The value of `AIONET_BACKEND`, if the program may read it. */
function requestedBackend(): string | undefined {
  try {
    const state = Deno.permissions.querySync({
      name: "env",
      variable: "AIONET_BACKEND",
    }).state;
    if (state !== "granted") return undefined;
    return Deno.env.get("AIONET_BACKEND") || undefined;
  } catch {
    return undefined;
  }
}

// AIONET_BACKEND=native: load the native backend's modules now, so that
// it is there, synchronously, at first use.
if (requestedBackend() === "native") {
  provideNativeBackend(
    (await import("./_native_backend.ts")).createNativeBackend,
  );
}

/**
 * The backend for a new object: the installed one, else the one
 * `AIONET_BACKEND` names (checked at first use: a name that cannot run
 * throws here, every time, never falling back silently), else Deno's.
 */
export function currentBackend(): Backend {
  if (current !== null) return current;
  const name = requestedBackend();
  if (name === undefined) return current = denoBackend;
  const make = named.get(name);
  if (make === undefined) {
    throw new Deno.errors.NotSupported(
      `AIONET_BACKEND=${name} names no backend: use ${
        [...named.keys()].join(" or ")
      }`,
    );
  }
  return current = make();
}

/** Installs `backend` for objects made from now on. */
export function installBackend(backend: Backend): void {
  current = backend;
}

/** The Deno backend (what `uninstall()` goes back to). */
export { denoBackend };

/**
 * The readiness of `fileobj` for selectors and the loop's readers and
 * writers: an aionet `Socket` (or its descriptor), or, where the backend
 * has real descriptors, any descriptor number (a pipe, a terminal, …).
 */
export function readinessFor(fileobj: unknown): Readiness | undefined {
  const readiness = readinessOf(fileobj);
  if (readiness !== undefined) return readiness;
  let fd = fileobj;
  // Any object with fileno(), as CPython's selectors and loop take.
  if (
    fileobj !== null && typeof fileobj === "object" &&
    typeof (fileobj as { fileno?: unknown }).fileno === "function"
  ) {
    fd = (fileobj as { fileno(): unknown }).fileno();
    const known = readinessOf(fd);
    if (known !== undefined) return known;
  }
  if (typeof fd !== "number") return undefined;
  return currentBackend().readinessOfFd(fd);
}
