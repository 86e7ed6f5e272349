// The loop's ready queue, as asyncio's `_ready`: `callSoon` callbacks run in
// the order of the calls, in batches. A batch is what was ready when it
// started, plus the timers due by then; what a callback schedules waits for
// the next batch, one macrotask later, so that timers and I/O run in
// between: a callback that reschedules itself cannot starve them.

import type { Handle } from "./_handles.ts";
import { onNextTurn } from "./_readiness.ts";

/** A FIFO of handles to run, drained a batch per turn. */
export class ReadyQueue {
  #handles: Handle[] = [];
  #scheduled = false;
  #draining = false;
  #dueTimers: () => Handle[];

  /** `dueTimers` takes the timers due now, in order, out of their queue. */
  constructor(dueTimers: () => Handle[]) {
    this.#dueTimers = dueTimers;
  }

  /** Queues `handle`: its batch starts in a microtask when none is due. */
  push(handle: Handle): void {
    this.#handles.push(handle);
    if (this.#scheduled || this.#draining) return;
    this.#scheduled = true;
    queueMicrotask(this.#drain);
  }

  /** Drops every handle not yet run (the loop closed). */
  clear(): void {
    this.#handles = [];
  }

  #drain = (): void => {
    this.#scheduled = false;
    this.#draining = true;
    const batch = this.#handles;
    this.#handles = [];
    try {
      for (const timer of this.#dueTimers()) batch.push(timer);
      // Handle.run() reports its callback's errors; it does not throw.
      for (const handle of batch) handle.run();
    } finally {
      this.#draining = false;
      if (this.#handles.length > 0) {
        this.#scheduled = true;
        onNextTurn(this.#drain);
      }
    }
  };
}
