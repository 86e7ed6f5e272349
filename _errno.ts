// Linux errno values and their mapping to and from Deno's error classes, for
// `getsockopt(SOL_SOCKET, SO_ERROR)` and `Socket.connectEx()`.

/** Linux errno numbers that sockets report. */
export const errno = {
  ENOENT: 2,
  EACCES: 13,
  EPIPE: 32,
  EALREADY: 114,
  EINPROGRESS: 115,
  ECONNABORTED: 103,
  ECONNRESET: 104,
  EISCONN: 106,
  ENOTCONN: 107,
  ETIMEDOUT: 110,
  ECONNREFUSED: 111,
  EADDRINUSE: 98,
  EADDRNOTAVAIL: 99,
  ENETUNREACH: 101,
  EHOSTUNREACH: 113,
  EIO: 5,
  EPERM: 1,
  EINTR: 4,
  EBADF: 9,
  EAGAIN: 11,
  EEXIST: 17,
  EINVAL: 22,
  EMFILE: 24,
  ENOTSOCK: 88,
  ENOBUFS: 105,
  ENOPROTOOPT: 92,
  EOPNOTSUPP: 95,
} as const;

const byClass: Array<[new (message?: string) => Error, number]> = [
  [Deno.errors.ConnectionRefused, errno.ECONNREFUSED],
  [Deno.errors.ConnectionReset, errno.ECONNRESET],
  [Deno.errors.ConnectionAborted, errno.ECONNABORTED],
  [Deno.errors.NotConnected, errno.ENOTCONN],
  [Deno.errors.AddrInUse, errno.EADDRINUSE],
  [Deno.errors.AddrNotAvailable, errno.EADDRNOTAVAIL],
  [Deno.errors.TimedOut, errno.ETIMEDOUT],
  [Deno.errors.BrokenPipe, errno.EPIPE],
  [Deno.errors.NotFound, errno.ENOENT],
  [Deno.errors.PermissionDenied, errno.EACCES],
  [Deno.errors.NetworkUnreachable, errno.ENETUNREACH],
  [Deno.errors.WouldBlock, errno.EAGAIN],
  [Deno.errors.BadResource, errno.EBADF],
  [Deno.errors.Interrupted, errno.EINTR],
  [Deno.errors.AlreadyExists, errno.EEXIST],
  // After EACCES: errnoOf(PermissionDenied) stays EACCES.
  [Deno.errors.PermissionDenied, errno.EPERM],
  [Deno.errors.NotSupported, errno.ENOPROTOOPT],
  [Deno.errors.NotSupported, errno.EOPNOTSUPP],
];

/** The errno that best describes `error` (EIO when nothing fits). */
export function errnoOf(error: unknown): number {
  if (error instanceof Error) {
    const code = (error as { code?: unknown }).code;
    if (typeof code === "string" && code in errno) {
      return errno[code as keyof typeof errno];
    }
    if (/host unreachable|no route to host/i.test(error.message)) {
      return errno.EHOSTUNREACH;
    }
  }
  for (const [cls, value] of byClass) {
    if (error instanceof cls) return value;
  }
  return errno.EIO;
}

/** An error of the Deno class for `value`, with `message`. */
export function errorOfErrno(value: number, message: string): Error {
  for (const [cls, number] of byClass) {
    if (number === value) return new cls(message);
  }
  return new Error(message);
}

/** `error` as an `Error` (wrapping anything else). */
export function toError(error: unknown): Error {
  return error instanceof Error ? error : new Error(String(error));
}
