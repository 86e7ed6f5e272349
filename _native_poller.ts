// The native backend's epoll loop, run inside Deno's own event loop.
//
// One epoll set per isolate. Descriptors register as `Pollable`s; the
// events a registration watches are its *interest*, and a registration
// with interest (EPOLLIN or EPOLLOUT) is *active*. The poller runs only
// while something is active, in one of three states:
//
// - SPINNING: a `setImmediate` tick is queued. Each tick calls
//   `epoll_wait(…, 0)` synchronously (no thread hop), dispatches at most
//   MAX_EVENTS events and yields to Deno's loop (timers, other ops,
//   promise jobs) before the next tick. Busy periods stay here, with one
//   breath every BREATH_MS: a zero-timeout wait on a worker thread, during
//   which Deno's loop polls its own sockets (fetch, Deno.serve).
// - PARKED: after SPIN_IDLE_MS without an event the poller makes one
//   blocking `epoll_wait(…, -1)` on a Deno FFI worker thread (a pending
//   nonblocking FFI call, which keeps the process alive like a pending
//   accept would). An eventfd in the set wakes it early.
// - STOPPED: nothing is active; nothing is queued or pending, so a
//   process whose handles are closed or idle exits, and a test that closed
//   what it opened leaves no op behind: handles' async close() returns
//   `settled()`, which waits for a woken parked call to come back; a
//   synchronous last close (a Socket, an unsubscribe) waits, bounded, for
//   the kernel to return the parked call, so its completion is ready for
//   the one event-loop turn Deno's op sanitizer gives pending ops.
//
// Every registration carries a generation tag in `epoll_event.data`
// (low word: the fd, high word: the generation); an event whose tag is not
// the fd's current registration (the fd was closed, maybe reused, after
// the kernel queued it) is dropped.
//
// A registration in the epoll set is held strongly (its events must reach
// it); one that watches nothing is held weakly, as asyncio's selector
// forgets a transport that reads and writes nothing: a stopped handle (a
// paused or half-open transport) that nobody else keeps can be collected,
// so debug mode reports it unclosed instead of the poller keeping it, and
// what it refers to, forever.

import { setImmediate } from "node:timers";
import {
  E,
  EFD_CLOEXEC,
  EFD_NONBLOCK,
  EPOLL_CLOEXEC,
  EPOLL_CTL_ADD,
  EPOLL_CTL_DEL,
  EPOLL_CTL_MOD,
  EPOLLIN,
  EPOLLOUT,
  errno,
  layout,
  openLibc,
  osError,
  sys,
} from "./_native_libc.ts";

/** Something the poller watches: one descriptor and its event handler. */
export interface Pollable {
  /** The descriptor. */
  readonly fd: number;
  /** The generation of the current registration (set by the poller; 0: none). */
  pollGen: number;
  /** The epoll events registered now (set by the poller; 0: not in the set). */
  pollEvents: number;
  /**
   * Handles the epoll `events` of this descriptor. Must not throw (a throw
   * is an internal error: it is rethrown on a later microtask).
   */
  onPoll(events: number): void;
}

/** Events one `epoll_wait` returns at most (per tick). */
const MAX_EVENTS = 256;
/** Time without events after which the poller parks, in ms. */
const SPIN_IDLE_MS = 0.05;
/**
 * Busy time after which the poller takes one breath (a zero-timeout wait on
 * a worker thread), in ms: without it Deno's loop, kept busy by the ticks,
 * polls its own sockets (fetch, Deno.serve, Deno.connect) only every few
 * dozen turns, and a fetch in the same process took ~70 ms under load
 * (bench/loop_liveness.ts; 0.1 ms with breaths, at no measurable cost).
 */
const BREATH_MS = 1;
/** Longest synchronous wait for a woken parked call to return, in ms. */
const WAKE_WAIT_MS = 20;

const enum State {
  STOPPED,
  SPINNING,
  PARKED,
}

/** Counters for tests and benchmarks. */
export interface PollerStats {
  /** Synchronous `epoll_wait(…, 0)` calls. */
  ticks: number;
  /** Background waits started. */
  parks: number;
  /** Zero-timeout background waits taken while busy (see BREATH_MS). */
  breaths: number;
  /** Wakes written to the eventfd. */
  wakes: number;
  /** Idle wakes whose parked call had not returned within WAKE_WAIT_MS. */
  slowWakes: number;
  /** Events dispatched to a registration. */
  events: number;
  /** Events dropped because their tag was stale. */
  stale: number;
  /** Registrations with interest right now. */
  active: number;
  /** "stopped", "spinning", "parked" or "breathing" (see BREATH_MS). */
  state: string;
}

const ACTIVE_BITS = EPOLLIN | EPOLLOUT;

/** The eventfd that wakes a parked wait. */
class Waker implements Pollable {
  pollGen = 0;
  pollEvents = 0;
  readonly fd: number;
  readonly #drain = new Uint8Array(new ArrayBuffer(8));

  constructor(fd: number) {
    this.fd = fd;
  }

  onPoll(): void {
    // Reset the counter; EAGAIN (already drained) is fine.
    sys.read(this.fd, this.#drain, 8n);
  }
}

/** The epoll loop (one per isolate, made on first use: see {@linkcode poller}). */
export class Poller {
  readonly #epfd: number;
  readonly #waker: Waker;
  // Registrations in the epoll set, by fd (strong: events dispatch here).
  #byFd: Array<Pollable | undefined> = [];
  // Attached registrations out of the set, by fd (weak: see the top).
  readonly #resting = new Map<number, WeakRef<Pollable>>();
  #generation = 0;
  #active = 0;
  #state = State.STOPPED;
  #woken = false;
  #idleSince = -1;
  /** When the poller last waited on a worker thread (parked or breathed). */
  #lastBreath = 0;
  /** The background wait in flight is a breath (zero timeout). */
  #breathing = false;
  #settleWaiters: Array<() => void> = [];
  // epoll_ctl's argument.
  readonly #ctlBytes = new Uint8Array(new ArrayBuffer(16));
  readonly #ctl = new DataView(this.#ctlBytes.buffer);
  // The synchronous wait's events.
  readonly #spinBytes: Uint8Array;
  readonly #spinWords: Uint32Array;
  // The parked wait's events: only the background call touches them while
  // it runs; read after it returned. Never replaced.
  readonly #parkBytes: Uint8Array;
  readonly #parkWords: Uint32Array;
  readonly #one = new Uint8Array(new ArrayBuffer(8));
  // Word offsets inside one epoll_event.
  readonly #stride = layout.epollEventSize / 4;
  readonly #dataWord = layout.epollDataOffset / 4;
  #stats = {
    ticks: 0,
    parks: 0,
    breaths: 0,
    wakes: 0,
    slowWakes: 0,
    events: 0,
    stale: 0,
  };

  constructor() {
    openLibc();
    const bytes = layout.epollEventSize * MAX_EVENTS;
    this.#spinBytes = new Uint8Array(new ArrayBuffer(bytes));
    this.#spinWords = new Uint32Array(this.#spinBytes.buffer);
    this.#parkBytes = new Uint8Array(new ArrayBuffer(bytes));
    this.#parkWords = new Uint32Array(this.#parkBytes.buffer);
    new DataView(this.#one.buffer).setBigUint64(0, 1n, true);
    const epfd = sys.epoll_create1(EPOLL_CLOEXEC);
    if (epfd < 0) throw osError(errno(), "epoll_create1");
    const efd = sys.eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (efd < 0) {
      const code = errno();
      sys.close(epfd);
      throw osError(code, "eventfd");
    }
    this.#epfd = epfd;
    this.#waker = new Waker(efd);
    this.attach(this.#waker);
    this.#ctlRegistration(this.#waker, EPOLLIN);
  }

  /**
   * Makes `p` the registration of its fd (no events yet). A previous
   * registration of the same number (its fd was closed behind the
   * poller's back and the number reused) is dropped.
   */
  attach(p: Pollable): void {
    const previous = this.#lookup(p.fd);
    if (previous !== undefined && previous !== p) this.#evict(previous);
    this.#generation = (this.#generation + 1) >>> 0 || 1;
    p.pollGen = this.#generation;
    p.pollEvents = 0;
    this.#byFd[p.fd] = undefined;
    this.#resting.set(p.fd, new WeakRef(p));
  }

  /**
   * Watches `events` (EPOLLIN/EPOLLOUT, optionally EPOLLET) for attached
   * `p`; 0 takes it out of the set. Throws the epoll_ctl error (e.g.
   * EPERM: the descriptor does not support epoll).
   */
  watch(p: Pollable, events: number): void {
    if (p.pollEvents === events || p.pollGen === 0) return;
    if (this.#lookup(p.fd) !== p) {
      // Evicted (its number belongs to another registration now).
      this.#evict(p);
      return;
    }
    const before = p.pollEvents;
    this.#ctlRegistration(p, events);
    const was = (before & ACTIVE_BITS) !== 0;
    const is = (events & ACTIVE_BITS) !== 0;
    if (was === is) return;
    if (is) {
      if (this.#active++ === 0) this.#start();
    } else if (--this.#active === 0) {
      this.#idle();
    }
  }

  /**
   * Forgets `p` (call before closing its fd): out of the set, and events
   * already queued for it are dropped.
   */
  detach(p: Pollable): void {
    if (p.pollGen === 0) return;
    if (this.#lookup(p.fd) !== p) {
      this.#evict(p);
      return;
    }
    if (p.pollEvents !== 0) {
      const was = (p.pollEvents & ACTIVE_BITS) !== 0;
      // ENOENT/EBADF: the fd was closed behind our back; nothing to remove.
      sys.epoll_ctl(this.#epfd, EPOLL_CTL_DEL, p.fd, this.#ctlBytes);
      p.pollEvents = 0;
      if (was && --this.#active === 0) this.#idle();
    }
    this.#forget(p);
    p.pollGen = 0;
  }

  /** The registration of `fd`, if one is attached. */
  owner(fd: number): Pollable | undefined {
    return this.#lookup(fd);
  }

  /**
   * Resolves once no background wait is pending, unless something is
   * still active (then at once: the wait is theirs). Handles' `close()`
   * returns this, so a test that closed everything ends with no FFI call
   * in flight.
   */
  settled(): Promise<void> {
    if (this.#state !== State.PARKED || this.#active > 0) {
      return Promise.resolve();
    }
    this.#wake();
    return new Promise((resolve) => this.#settleWaiters.push(resolve));
  }

  /** Counters (tests and benchmarks). */
  stats(): PollerStats {
    return {
      ...this.#stats,
      active: this.#active,
      state: this.#breathing
        ? "breathing"
        : ["stopped", "spinning", "parked"][this.#state],
    };
  }

  /**
   * Forgets `p` without touching the epoll set (its fd number may belong
   * to someone else now): only its count and tags.
   */
  #evict(p: Pollable): void {
    const was = (p.pollEvents & ACTIVE_BITS) !== 0;
    p.pollEvents = 0;
    p.pollGen = 0;
    this.#forget(p);
    if (was && --this.#active === 0) this.#idle();
  }

  /** The registration attached for `fd`: in the set, or resting. */
  #lookup(fd: number): Pollable | undefined {
    const p = this.#byFd[fd];
    if (p !== undefined) return p;
    const resting = this.#resting.get(fd);
    if (resting === undefined) return undefined;
    const target = resting.deref();
    // Collected: it was never closed (its fd leaked with it); forget it.
    if (target === undefined) this.#resting.delete(fd);
    return target;
  }

  /** Drops `p` from the tables, if it is the registration of its fd. */
  #forget(p: Pollable): void {
    if (this.#byFd[p.fd] === p) this.#byFd[p.fd] = undefined;
    if (this.#resting.get(p.fd)?.deref() === p) this.#resting.delete(p.fd);
  }

  #ctlRegistration(p: Pollable, events: number): void {
    const before = p.pollEvents;
    let op = before === 0
      ? EPOLL_CTL_ADD
      : events === 0
      ? EPOLL_CTL_DEL
      : EPOLL_CTL_MOD;
    const ctl = this.#ctl;
    ctl.setUint32(0, events >>> 0, true);
    ctl.setUint32(layout.epollDataOffset, p.fd, true);
    ctl.setUint32(layout.epollDataOffset + 4, p.pollGen, true);
    let result = sys.epoll_ctl(this.#epfd, op, p.fd, this.#ctlBytes);
    if (result < 0) {
      let code = errno();
      if (op === EPOLL_CTL_ADD && code === E.EEXIST) {
        // A registration of a dup of this fd survived; take it over.
        op = EPOLL_CTL_MOD;
        result = sys.epoll_ctl(this.#epfd, op, p.fd, this.#ctlBytes);
        if (result < 0) code = errno();
      } else if (op === EPOLL_CTL_MOD && code === E.ENOENT) {
        op = EPOLL_CTL_ADD;
        result = sys.epoll_ctl(this.#epfd, op, p.fd, this.#ctlBytes);
        if (result < 0) code = errno();
      } else if (op === EPOLL_CTL_DEL) {
        result = 0; // Already gone with its fd.
      }
      if (result < 0) throw osError(code, `epoll_ctl on fd ${p.fd}`);
    }
    p.pollEvents = events;
    // In the set: held strongly; out of it: weakly (see the top).
    if (events !== 0) {
      if (this.#byFd[p.fd] !== p) {
        this.#byFd[p.fd] = p;
        this.#resting.delete(p.fd);
      }
    } else if (this.#byFd[p.fd] === p) {
      this.#byFd[p.fd] = undefined;
      this.#resting.set(p.fd, new WeakRef(p));
    }
  }

  #start(): void {
    if (this.#state !== State.STOPPED) return;
    this.#state = State.SPINNING;
    this.#idleSince = -1;
    this.#lastBreath = performance.now();
    setImmediate(this.#tick);
  }

  /** Nothing is active any more. */
  #idle(): void {
    // SPINNING: the queued tick sees `#active === 0` and stops.
    if (this.#state !== State.PARKED) return;
    this.#wake();
    // Nothing is active: the caller may be a synchronous close that ends
    // a test right away, and Deno's op sanitizer gives a pending op one
    // event-loop turn to complete. Wait here (bounded) until the kernel
    // has written the parked call's events, i.e. epoll_wait is returning,
    // so its completion is there for that turn. A wake takes ~10 µs
    // (bench/native_poller_costs.ts); yielding the CPU meanwhile lets the
    // FFI worker thread run if it shares this core (or has not started).
    const words = this.#parkWords;
    const deadline = performance.now() + WAKE_WAIT_MS;
    while (words[0] === 0 && performance.now() < deadline) {
      sys.sched_yield();
    }
    if (words[0] === 0) this.#stats.slowWakes++;
  }

  #wake(): void {
    if (this.#woken) return;
    this.#woken = true;
    this.#stats.wakes++;
    sys.write(this.#waker.fd, this.#one, 8n);
  }

  #stop(): void {
    this.#state = State.STOPPED;
    const waiters = this.#settleWaiters;
    if (waiters.length === 0) return;
    this.#settleWaiters = [];
    for (const resolve of waiters) resolve();
  }

  #tick = (): void => {
    if (this.#active === 0) {
      this.#stop();
      return;
    }
    this.#stats.ticks++;
    const n = sys.epoll_wait(this.#epfd, this.#spinBytes, MAX_EVENTS, 0);
    if (n > 0) {
      this.#idleSince = -1;
      this.#dispatch(this.#spinWords, n);
      if (this.#active === 0) {
        this.#stop();
        return;
      }
    }
    // One clock read per tick serves the idle and the breath checks.
    const now = performance.now();
    if (n === 0 && this.#idleSince < 0) this.#idleSince = now;
    if (this.#idleSince >= 0 && now - this.#idleSince >= SPIN_IDLE_MS) {
      this.#park();
    } else if (now - this.#lastBreath >= BREATH_MS) {
      this.#park(0);
    } else {
      setImmediate(this.#tick);
    }
  };

  /**
   * Waits on a worker thread: until an event (`timeout` -1, idle), or not
   * at all (0, a breath: the thread hop alone lets Deno's loop poll its own
   * I/O, which it does not while `setImmediate` ticks keep it busy).
   */
  #park(timeout: -1 | 0 = -1): void {
    this.#state = State.PARKED;
    this.#woken = false;
    // `#idle()` watches the first event's mask turn non-zero.
    this.#parkWords[0] = 0;
    this.#lastBreath = performance.now();
    if (timeout === 0) {
      this.#stats.breaths++;
      // The eventfd's event makes the call return with one event written,
      // as a woken park does, which is what `#idle()` waits for.
      this.#breathing = true;
      this.#woken = true;
      sys.write(this.#waker.fd, this.#one, 8n);
    } else {
      this.#stats.parks++;
    }
    sys.epoll_wait_blocking(this.#epfd, this.#parkBytes, MAX_EVENTS, timeout)
      .then(this.#unparked);
  }

  #unparked = (n: number): void => {
    this.#woken = false;
    this.#breathing = false;
    this.#state = State.SPINNING;
    this.#idleSince = -1;
    if (n > 0) this.#dispatch(this.#parkWords, n);
    // A close() that waited for the parked call may go on now.
    const waiters = this.#settleWaiters;
    if (this.#active === 0) {
      this.#stop();
      return;
    }
    setImmediate(this.#tick);
    if (waiters.length > 0) {
      this.#settleWaiters = [];
      for (const resolve of waiters) resolve();
    }
  };

  #dispatch(words: Uint32Array, n: number): void {
    const stride = this.#stride;
    const dataWord = this.#dataWord;
    const byFd = this.#byFd;
    const stats = this.#stats;
    for (let i = 0, at = 0; i < n; i++, at += stride) {
      const target = byFd[words[at + dataWord]];
      if (target === undefined || target.pollGen !== words[at + dataWord + 1]) {
        stats.stale++;
        continue;
      }
      stats.events++;
      try {
        target.onPoll(words[at]);
      } catch (error) {
        queueMicrotask(() => {
          throw error;
        });
      }
    }
  }
}

let instance: Poller | null = null;

/** The poller of this isolate (made, with libc loaded, on first use). */
export function poller(): Poller {
  return instance ??= new Poller();
}
