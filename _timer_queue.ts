// The loop's timers: a binary heap ordered by (time, order of scheduling)
// with one setTimeout armed for the earliest, as asyncio keeps its
// scheduled heap. Cancelled timers are dropped lazily, or all at once when
// none is left.

import { setTimerCancelHook, type TimerHandle } from "./_handles.ts";

/** The longest delay setTimeout honours (a longer one fires at once). */
const MAX_TIMER_DELAY = 2 ** 31 - 1;

interface TimerEntry {
  when: number;
  seq: number;
  handle: TimerHandle;
}

function before(a: TimerEntry, b: TimerEntry): boolean {
  return a.when < b.when || (a.when === b.when && a.seq < b.seq);
}

/** The timers of one loop. */
export class TimerQueue {
  #heap: TimerEntry[] = [];
  #seq = 0;
  #live = 0;
  #armed: { id: ReturnType<typeof setTimeout>; when: number } | null = null;

  /** Schedules `handle` for `handle.when()`. */
  add(handle: TimerHandle): void {
    const entry = { when: handle.when(), seq: ++this.#seq, handle };
    this.#heapPush(entry);
    this.#live++;
    setTimerCancelHook(handle, () => this.#cancelled(entry));
    this.#arm();
  }

  /** Cancels every timer and disarms (the loop is closing). */
  clear(): void {
    for (const { handle } of this.#heap) {
      setTimerCancelHook(handle, null);
      handle.cancel();
    }
    this.#heap = [];
    this.#live = 0;
    if (this.#armed !== null) clearTimeout(this.#armed.id);
    this.#armed = null;
  }

  #heapPush(entry: TimerEntry): void {
    const heap = this.#heap;
    heap.push(entry);
    let i = heap.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!before(heap[i], heap[parent])) break;
      [heap[i], heap[parent]] = [heap[parent], heap[i]];
      i = parent;
    }
  }

  #heapPop(): TimerEntry | undefined {
    const heap = this.#heap;
    const top = heap[0];
    const last = heap.pop();
    if (heap.length > 0 && last !== undefined) {
      heap[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let smallest = i;
        if (l < heap.length && before(heap[l], heap[smallest])) smallest = l;
        if (r < heap.length && before(heap[r], heap[smallest])) smallest = r;
        if (smallest === i) break;
        [heap[i], heap[smallest]] = [heap[smallest], heap[i]];
        i = smallest;
      }
    }
    return top;
  }

  #cancelled(entry: TimerEntry): void {
    this.#live--;
    if (this.#live <= 0) {
      this.#live = 0;
      this.#heap = [];
    } else if (this.#heap[0] === entry) {
      this.#heapPop();
    }
    this.#arm();
  }

  #arm(): void {
    while (this.#heap.length > 0 && this.#heap[0].handle.cancelled()) {
      this.#heapPop();
    }
    const top = this.#heap[0];
    if (top === undefined) {
      if (this.#armed !== null) clearTimeout(this.#armed.id);
      this.#armed = null;
      return;
    }
    if (this.#armed !== null) {
      if (this.#armed.when <= top.when) return;
      clearTimeout(this.#armed.id);
    }
    // The real clock, not this.time(): a test clock may stand in for time()
    // while real timers wait here (testing.ts's withFakeClock).
    // setTimeout fires at once for delays above 2**31 - 1 ms: wait at most
    // that long, #run() re-arms.
    const delay = Math.min(
      MAX_TIMER_DELAY,
      Math.max(0, top.when - performance.now()),
    );
    this.#armed = {
      id: setTimeout(() => this.#run(), delay),
      when: top.when,
    };
  }

  /**
   * Takes the timers due now out of the queue, in order (asyncio moves
   * them to its ready queue at the start of each turn); the armed wake-up
   * stays for the rest.
   */
  takeDue(): TimerHandle[] {
    if (this.#heap.length === 0) return [];
    return this.#takeDue(performance.now());
  }

  #takeDue(now: number): TimerHandle[] {
    const due: TimerHandle[] = [];
    while (this.#heap.length > 0 && this.#heap[0].when <= now) {
      const { handle } = this.#heapPop()!;
      if (handle.cancelled()) continue;
      setTimerCancelHook(handle, null);
      this.#live--;
      due.push(handle);
    }
    return due;
  }

  #run(): void {
    this.#armed = null;
    const now = performance.now();
    const due = this.#takeDue(now);
    for (const handle of due) handle.run();
    if (due.length === 0 && this.#heap.length > 0) {
      // Woken a little early: wait at least a millisecond more.
      const top = this.#heap[0];
      if (!top.handle.cancelled()) {
        this.#armed = {
          id: setTimeout(
            () => this.#run(),
            Math.min(MAX_TIMER_DELAY, Math.max(1, top.when - now)),
          ),
          when: top.when,
        };
        return;
      }
    }
    if (this.#armed === null) this.#arm();
  }
}
