// Unix socket paths, checked once for both backends: what fits in a
// `sockaddr_un`, and the removal of a stale socket file before a bind (as
// asyncio's create_unix_server and create_datagram_endpoint do).

import { checkString } from "./_validate.ts";

/** Bytes in `sockaddr_un.sun_path` on Linux. */
export const SUN_PATH_SIZE = 108;

const encoder = new TextEncoder();

/**
 * Throws unless a path of `bytes` bytes fits in `sun_path`: 107 and a NUL
 * terminator, or 108 for an abstract name (leading NUL, no terminator).
 */
export function checkUnixPathLength(bytes: number, abstract: boolean): void {
  const limit = abstract ? SUN_PATH_SIZE : SUN_PATH_SIZE - 1;
  if (bytes > limit) {
    throw new RangeError(
      `The Unix socket path is ${bytes} bytes long; the limit is ${limit}`,
    );
  }
}

/**
 * `path` as a Unix socket path: a non-empty string (`TypeError`,
 * `RangeError`) that fits in a `sockaddr_un` (`RangeError`), on either
 * backend alike.
 */
export function checkUnixPath(path: unknown, what = "path"): string {
  checkString(path, what);
  const text = path as string;
  if (text.length === 0) throw new RangeError(`The ${what} must not be empty`);
  checkUnixPathLength(encoder.encode(text).length, text.startsWith("\0"));
  return text;
}

/**
 * Removes a stale socket file at `path` before a bind, as asyncio does;
 * never deletes anything else (a path that is not a socket is
 * `AddrInUse`). Abstract names have no file.
 */
export function removeStaleSocket(path: string): void {
  if (path.startsWith("\0")) return;
  let info: Deno.FileInfo;
  try {
    info = Deno.lstatSync(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return;
    throw error;
  }
  if (info.isSocket !== true) {
    throw new Deno.errors.AddrInUse(
      `Cannot bind ${path}: the path exists and is not a socket`,
    );
  }
  Deno.removeSync(path);
}
