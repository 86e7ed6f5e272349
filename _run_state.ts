// Whether a loop is running (asyncio's run_until_complete/run_forever/stop,
// on Deno's loop that always runs): the running flag, a pending stop, and
// the timer that keeps the program alive while the loop counts as running.

import { onNextTurn } from "./_readiness.ts";

/** A day: how long the keep-alive timer of a running loop sleeps. */
const KEEP_ALIVE_MS = 86_400_000;

/** The running state of one loop. */
export class RunState {
  #running = false;
  #stopping = false;
  #onStop: (() => void) | null = null;
  /** Counts runs: a stop scheduled for one run never ends the next. */
  #run = 0;
  #keepAlive: ReturnType<typeof setInterval> | undefined;

  /** Whether `runForever()` or `runUntilComplete()` is active. */
  get running(): boolean {
    return this.#running;
  }

  /** Waits for `future` while counting as running; rejects if stopped first. */
  async runUntilComplete<T>(future: PromiseLike<T>): Promise<T> {
    this.#enter();
    const stopped = new Promise<never>((_, reject) => {
      this.#onStop = () =>
        reject(new Error("Event loop stopped before Future completed."));
    });
    stopped.catch(() => {});
    try {
      return await Promise.race([future, stopped]);
    } finally {
      this.#leave();
    }
  }

  /** Counts as running until `stop()`; then resolves. */
  runForever(): Promise<void> {
    try {
      this.#enter();
    } catch (error) {
      return Promise.reject(error);
    }
    return new Promise<void>((resolve) => {
      this.#onStop = () => {
        this.#leave();
        resolve();
      };
    });
  }

  /** Stops after the callbacks already due (or the next run after one turn). */
  stop(): void {
    if (this.#stopping) return;
    this.#stopping = true;
    if (this.#running) this.#scheduleStop();
  }

  #enter(): void {
    if (this.#running) {
      throw new Deno.errors.Busy("This event loop is already running");
    }
    this.#running = true;
    this.#run++;
    this.#keepAlive = setInterval(() => {}, KEEP_ALIVE_MS);
    if (this.#stopping) this.#scheduleStop();
  }

  #leave(): void {
    this.#running = false;
    // As asyncio's run_forever: a run uses up a pending stop.
    this.#stopping = false;
    this.#onStop = null;
    clearInterval(this.#keepAlive);
    this.#keepAlive = undefined;
  }

  #scheduleStop(): void {
    const run = this.#run;
    onNextTurn(() => {
      if (!this.#stopping || run !== this.#run) return;
      this.#stopping = false;
      this.#onStop?.();
    });
  }
}
