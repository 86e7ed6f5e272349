// Pseudo file descriptors: Deno has no fds, but asyncio code prints and
// compares `fileno()`. Numbers start above the standard streams.

let lastFd = 2;

/** A new process-unique pseudo file descriptor. */
export function nextFd(): number {
  return ++lastFd;
}
