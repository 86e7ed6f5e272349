// The two errors of asyncio.streams a read can end with. Public through
// streams.ts.

/**
 * Thrown when EOF arrives before a read could complete:
 * `readExactly(n)` (`expected` is `n`) and `readUntil()` (`expected` is
 * `null`). `partial` holds the bytes read before EOF; they are consumed.
 *
 * @example Tell a clean end from a truncated record
 * ```ts
 * import { IncompleteReadError, StreamReader } from "@aionet/aionet/streams";
 *
 * const reader = new StreamReader();
 * reader.feedData(new Uint8Array([1, 2, 3]));
 * reader.feedEof();
 * try {
 *   await reader.readExactly(8);
 * } catch (error) {
 *   if (error instanceof IncompleteReadError) {
 *     console.log(error.partial.length, error.expected); // 3 8
 *   }
 * }
 * ```
 */
export class IncompleteReadError extends Error {
  /** The bytes read before EOF. */
  readonly partial: Uint8Array;
  /** How many bytes were expected, or `null` when reading up to a separator. */
  readonly expected: number | null;

  /**
   * Makes the error; the message says how many bytes were read and expected.
   *
   * @example Using `new IncompleteReadError()`
   * ```ts
   * import { IncompleteReadError } from "@aionet/aionet/streams";
   *
   * const error = new IncompleteReadError(new Uint8Array(2), 4);
   * console.log(error.message); // "2 bytes read on a total of 4 expected bytes"
   * ```
   */
  constructor(partial: Uint8Array, expected: number | null) {
    super(
      `${partial.length} bytes read on a total of ${
        expected === null ? "undefined" : expected
      } expected bytes`,
    );
    this.name = "IncompleteReadError";
    this.partial = partial;
    this.expected = expected;
  }
}

/**
 * Thrown by `readUntil()` and `readLine()` when no separator is found within
 * the reader's `limit`. `consumed` is the number of bytes to consume to go
 * on. `readUntil()` leaves the data in the buffer; `readLine()` discards it
 * as asyncio does.
 *
 * @example Handle an over-long line
 * ```ts
 * import { LimitOverrunError, StreamReader } from "@aionet/aionet/streams";
 *
 * const reader = new StreamReader({ limit: 4 });
 * reader.feedData(new TextEncoder().encode("much too long\n"));
 * try {
 *   await reader.readUntil("\n");
 * } catch (error) {
 *   if (error instanceof LimitOverrunError) console.log(error.consumed); // 13
 * }
 * ```
 */
export class LimitOverrunError extends Error {
  /** How many bytes to consume to get past the problem. */
  readonly consumed: number;

  /**
   * Makes the error with a message and the number of bytes to consume.
   *
   * @example Using `new LimitOverrunError()`
   * ```ts
   * import { LimitOverrunError } from "@aionet/aionet/streams";
   *
   * const error = new LimitOverrunError("Line too long", 70000);
   * console.log(error.consumed); // 70000
   * ```
   */
  constructor(message: string, consumed: number) {
    super(message);
    this.name = "LimitOverrunError";
    this.consumed = consumed;
  }
}
