// The loop's readers and writers (asyncio's add_reader/add_writer): one
// watch per descriptor, subscribed to the socket's readiness for the bits
// its callbacks wait on, dispatched level-triggered once per turn while
// the descriptor stays ready.

import { callbackName, timedCall } from "./_debug.ts";
import type { LoopCore } from "./_loop_core.ts";
import { Handle } from "./_handles.ts";
import { onNextTurn, READ, type Readiness, WRITE } from "./_readiness.ts";
import { readinessFor } from "./_io.ts";
import { checkFunction, describe } from "./_validate.ts";

interface Watch {
  readiness: Readiness;
  fileobj: unknown;
  reader: Registration | null;
  writer: Registration | null;
  unsubscribe: () => void;
}

interface Registration {
  callback: (...args: unknown[]) => unknown;
  args: unknown[];
  handle: Handle;
}

/** The readers and writers of one loop. */
export class ReadinessWatches {
  #loop: LoopCore;
  #watches = new Map<number, Watch>();
  #dispatchScheduled = false;

  constructor(loop: LoopCore) {
    this.#loop = loop;
  }

  /** Removes every watch (the loop is closing). */
  clear(): void {
    for (const watch of this.#watches.values()) watch.unsubscribe();
    this.#watches.clear();
  }

  /** Calls `callback(...args)` while `fileobj` is ready for `kind`. */
  add(
    fileobj: unknown,
    kind: "reader" | "writer",
    callback: (...args: never[]) => unknown,
    args: unknown[],
  ): void {
    const readiness = this.#readinessOf(fileobj);
    if (readiness.closed()) {
      throw new Deno.errors.BadResource(
        `${describe(fileobj)} is closed: there is nothing to watch`,
      );
    }
    checkFunction(callback, "callback");
    let watch = this.#watches.get(readiness.fd);
    if (watch === undefined) {
      const created: Watch = {
        readiness,
        fileobj,
        reader: null,
        writer: null,
        unsubscribe: () => {},
      };
      watch = created;
      this.#watches.set(readiness.fd, watch);
    }
    const fn = callback as (...args: unknown[]) => unknown;
    const registration: Registration = {
      callback: fn,
      args,
      handle: new Handle(this.#loop, fn, args),
    };
    watch[kind]?.handle.cancel();
    watch[kind] = registration;
    this.#subscribe(watch);
    this.#scheduleDispatch();
  }

  /** Stops the `kind` callback of `fileobj`; `false` if there was none. */
  remove(fileobj: unknown, kind: "reader" | "writer"): boolean {
    // A number is its watch's key: one closed since (or never watched)
    // needs no readiness to be found.
    const fd = typeof fileobj === "number"
      ? fileobj
      : this.#readinessOf(fileobj).fd;
    const watch = this.#watches.get(fd);
    const registration = watch?.[kind];
    if (watch === undefined || registration == null) return false;
    registration.handle.cancel();
    watch[kind] = null;
    if (watch.reader === null && watch.writer === null) {
      watch.unsubscribe();
      this.#watches.delete(fd);
    } else {
      this.#subscribe(watch);
    }
    return true;
  }

  /** The readiness of `fileobj`; a `TypeError` for what has none. */
  #readinessOf(fileobj: unknown): Readiness {
    const readiness = readinessFor(fileobj);
    if (readiness === undefined) {
      throw new TypeError(
        `The fileobj must be an aionet Socket (or its fd), got ${
          describe(fileobj)
        }`,
      );
    }
    return readiness;
  }

  #scheduleDispatch(): void {
    if (this.#dispatchScheduled || this.#watches.size === 0) return;
    this.#dispatchScheduled = true;
    onNextTurn(() => this.#dispatch());
  }

  #dispatch(): void {
    this.#dispatchScheduled = false;
    for (const watch of [...this.#watches.values()]) {
      for (
        const [kind, bit] of [["reader", READ], ["writer", WRITE]] as const
      ) {
        const registration = watch[kind];
        if (registration === null || registration.handle.cancelled()) continue;
        if ((watch.readiness.poll() & bit) === 0) continue;
        this.#runCallback(registration);
      }
    }
    for (const watch of this.#watches.values()) {
      const mask = (watch.reader !== null ? READ : 0) |
        (watch.writer !== null ? WRITE : 0);
      if (watch.readiness.poll() & mask) {
        this.#scheduleDispatch();
        break;
      }
    }
  }

  #runCallback(registration: Registration): void {
    try {
      // Readers and writers are loop callbacks: slow ones are reported.
      const result = timedCall(
        this.#loop,
        () => `<Handle ${callbackName(registration.callback)}>`,
        () => registration.callback(...registration.args),
      );
      if (result instanceof Promise) {
        result.catch((exception) =>
          this.#reportCallback(exception, registration)
        );
      }
    } catch (exception) {
      this.#reportCallback(exception, registration);
    }
  }

  #reportCallback(exception: unknown, registration: Registration): void {
    this.#loop.callExceptionHandler({
      message: "Exception in callback",
      exception,
      handle: registration.handle,
    });
  }
  /** (Re)subscribes `watch` to the bits its callbacks wait on. */
  #subscribe(watch: Watch): void {
    const mask = (watch.reader !== null ? READ : 0) |
      (watch.writer !== null ? WRITE : 0);
    watch.unsubscribe();
    watch.unsubscribe = watch.readiness.subscribe(
      () => this.#scheduleDispatch(),
      mask,
    );
  }
}
