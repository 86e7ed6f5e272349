// Internal argument checks shared by every module: one wording for each
// kind of mistake, thrown at the call.

/** Throws `TypeError` unless `data` is a `Uint8Array`. */
export function assertBytes(data: unknown, what = "data"): Uint8Array {
  if (!(data instanceof Uint8Array)) {
    throw new TypeError(
      `The ${what} must be a Uint8Array, got ${describe(data)}`,
    );
  }
  return data;
}

/** Throws `TypeError`/`RangeError` unless `port` is an integer in 0–65535. */
export function checkPort(port: unknown, what = "port"): number {
  if (typeof port !== "number") {
    throw new TypeError(`The ${what} must be a number, got ${describe(port)}`);
  }
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new RangeError(
      `The ${what} must be an integer from 0 to 65535, got ${port}`,
    );
  }
  return port;
}

/** Throws `TypeError` unless `value` is a string. */
export function checkString(value: unknown, what: string): string {
  if (typeof value !== "string") {
    throw new TypeError(`The ${what} must be a string, got ${describe(value)}`);
  }
  return value;
}

/** Throws `TypeError` unless `value` is a non-empty string. */
export function checkHostname(value: unknown, what = "hostname"): string {
  checkString(value, what);
  if ((value as string).length === 0) {
    throw new TypeError(`The ${what} must not be empty`);
  }
  return value as string;
}

/**
 * Deno reports a name that does not resolve as a plain `Error` and a
 * malformed one as `URIError`: turn them into `Deno.errors.NotFound` and
 * `TypeError` naming the host. Other errors are returned as they are.
 */
export function hostnameError(error: unknown, hostname: string): unknown {
  if (error instanceof URIError) {
    return new TypeError(`Invalid hostname "${hostname}": ${error.message}`, {
      cause: error,
    });
  }
  if (
    error instanceof Error && error.constructor === Error &&
    error.message.startsWith("failed to lookup address")
  ) {
    return new Deno.errors.NotFound(
      `Cannot resolve the hostname "${hostname}": ${error.message}`,
      { cause: error },
    );
  }
  return error;
}

/** Throws `TypeError`/`RangeError` unless `value` is a finite number ≥ `min`. */
export function checkNumber(value: unknown, what: string, min = 0): number {
  if (typeof value !== "number" || Number.isNaN(value)) {
    throw new TypeError(`The ${what} must be a number, got ${describe(value)}`);
  }
  if (value < min || !Number.isFinite(value)) {
    throw new RangeError(
      `The ${what} must be a finite number of at least ${min}, got ${value}`,
    );
  }
  return value;
}

/** Throws `TypeError` unless `fn` is a function. */
export function checkFunction<F>(fn: F, what: string): F {
  if (typeof fn !== "function") {
    throw new TypeError(`The ${what} must be a function, got ${describe(fn)}`);
  }
  return fn;
}

/** Throws `TypeError` unless `options` is undefined or a plain object. */
export function checkOptions<T extends object>(
  options: T | undefined,
  what = "options",
): T {
  if (options === undefined) return {} as T;
  if (
    options === null || typeof options !== "object" ||
    Array.isArray(options) || ArrayBuffer.isView(options) ||
    options instanceof ArrayBuffer
  ) {
    throw new TypeError(
      `The ${what} must be an object, got ${describe(options)}`,
    );
  }
  return options;
}

/**
 * `value` as a non-negative integer (`TypeError` for a non-number,
 * `RangeError` for NaN, a fraction, a negative or an unsafe integer), the
 * message naming `what`.
 */
export function checkCount(value: unknown, what: string): number {
  if (typeof value !== "number") {
    throw new TypeError(`The ${what} must be a number, got ${describe(value)}`);
  }
  if (!Number.isSafeInteger(value) || value < 0) {
    throw new RangeError(
      `The ${what} must be a non-negative integer, got ${value}`,
    );
  }
  return value;
}

/**
 * Throws `TypeError` unless `options` is undefined or an object whose every
 * own key is in `known`; the message names each unknown key (and the close
 * spelling the caller may have meant). One check for every option bag, so
 * a misspelled option is never silently ignored.
 */
export function checkKnownOptions<T extends object>(
  options: T | undefined,
  known: readonly string[],
  what = "options",
): T {
  const checked = checkOptions(options, what);
  let unknown: string[] | undefined;
  for (const key of Object.keys(checked)) {
    if (!known.includes(key)) (unknown ??= []).push(key);
  }
  if (unknown !== undefined) {
    const names = unknown.map((key) => {
      const near = closestName(key, known);
      return near === undefined
        ? `"${key}"`
        : `"${key}" (did you mean "${near}"?)`;
    });
    throw new TypeError(
      `Unknown ${what} ${names.join(", ")}; known: ${known.join(", ")}`,
    );
  }
  return checked;
}

/** The name in `names` within two edits of `name` (case-insensitive), if any. */
function closestName(
  name: string,
  names: readonly string[],
): string | undefined {
  const lower = name.toLowerCase();
  let best: string | undefined;
  let bestDistance = 3;
  for (const candidate of names) {
    const distance = editDistance(lower, candidate.toLowerCase());
    if (distance < bestDistance) {
      best = candidate;
      bestDistance = distance;
    }
  }
  return best;
}

function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      row[j] = Math.min(
        previous[j] + 1,
        row[j - 1] + 1,
        previous[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1),
      );
    }
    previous = row;
  }
  return previous[b.length];
}

/** Throws `TypeError` unless `signal` is undefined or an `AbortSignal`. */
export function checkSignal(signal: unknown): AbortSignal | undefined {
  if (signal === undefined) return undefined;
  if (!(signal instanceof AbortSignal)) {
    throw new TypeError(
      `The signal must be an AbortSignal, got ${describe(signal)}`,
    );
  }
  return signal;
}

const SIGNAL_ONLY = ["signal"] as const;

/**
 * The `signal` of an options bag that takes nothing else (`{ signal }` of
 * reads, drains and the `sock*` calls): any other key is a `TypeError`
 * naming it, a `signal` that is not an `AbortSignal` too.
 */
export function signalOption(
  options: { signal?: AbortSignal } | undefined,
): AbortSignal | undefined {
  if (options === undefined) return undefined;
  return checkSignal(checkKnownOptions(options, SIGNAL_ONLY).signal);
}

/** Throws `NotSupported` naming an option that aionet cannot honour. */
export function notSupported(feature: string, reason: string): never {
  throw new Deno.errors.NotSupported(`${feature} is not supported: ${reason}`);
}

/** Throws `NotSupported` with the flag to add when `--unstable-net` is off. */
export function requireUnstableNet(feature: string): void {
  if (
    typeof (Deno as { listenDatagram?: unknown }).listenDatagram !== "function"
  ) {
    throw new Deno.errors.NotSupported(
      `${feature} needs Deno's --unstable-net flag (or "unstable": ["net"] in deno.json)`,
    );
  }
}

/** A short description of a value for error messages. */
export function describe(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "an array";
  if (typeof value === "object") {
    return `an instance of ${value.constructor?.name ?? "Object"}`;
  }
  if (typeof value === "string") return `a string ("${value.slice(0, 20)}")`;
  if (value === undefined) return "undefined";
  return `${typeof value} ${String(value)}`;
}

/**
 * A socket option's number: an integer (`TypeError`) that fits a C int
 * (`RangeError`), as CPython's `setsockopt` requires.
 */
export function checkIntOption(value: number): number {
  if (!Number.isInteger(value)) {
    throw new TypeError(`The option value must be an integer, got ${value}`);
  }
  if (value < -(2 ** 31) || value > 2 ** 31 - 1) {
    throw new RangeError(
      `The option value must fit a C int (-2^31 to 2^31-1), got ${value}`,
    );
  }
  return value;
}

/** Throws `TypeError` naming `what` unless `value` is an object. */
export function checkObject(value: unknown, what: string): object {
  if (value === null || typeof value !== "object") {
    throw new TypeError(
      `The ${what} must be an object, got ${describe(value)}`,
    );
  }
  return value;
}

/**
 * Throws `TypeError` naming `what` unless `value` is a protocol: an object
 * with `connectionMade` (which every transport calls at once, as asyncio's).
 */
export function checkProtocol(value: unknown, what: string): void {
  checkObject(value, what);
  if (
    typeof (value as { connectionMade?: unknown }).connectionMade !== "function"
  ) {
    throw new TypeError(
      `The ${what} must be a protocol (with connectionMade()), got ${
        describe(value)
      }`,
    );
  }
}
