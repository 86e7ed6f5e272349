// The read side every read transport shares, as _write_flow.ts shares the
// write side: asyncio's read pausing (pause_reading/resume_reading/
// is_reading), written once. What stopping and restarting mean is the
// transport's: a backend handle's readStop/readStart, a stream reader, or
// an in-memory queue.

/**
 * asyncio's read pausing: `pause()` while reading stops the reads (and
 * holds data already in flight: the transport's `stop` must see to that),
 * `resume()` while paused starts them again. Neither does anything once
 * the transport is closing.
 */
export class ReadFlow {
  #paused = false;
  #isClosing: () => boolean;
  #stop: () => void;
  #start: () => void;

  constructor(isClosing: () => boolean, stop: () => void, start: () => void) {
    this.#isClosing = isClosing;
    this.#stop = stop;
    this.#start = start;
  }

  /** Whether reading was paused (and not resumed). */
  get paused(): boolean {
    return this.#paused;
  }

  /** asyncio's `is_reading()`: not paused and not closing. */
  isReading(): boolean {
    return !this.#paused && !this.#isClosing();
  }

  /** asyncio's `pause_reading()`. */
  pause(): void {
    if (this.#paused || this.#isClosing()) return;
    this.#paused = true;
    this.#stop();
  }

  /** asyncio's `resume_reading()`. */
  resume(): void {
    if (!this.#paused || this.#isClosing()) return;
    this.#paused = false;
    this.#start();
  }
}
