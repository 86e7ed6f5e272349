/**
 * Python's `selectors` module: {@linkcode DefaultSelector} waits until
 * registered sockets are ready, {@linkcode EVENT_READ} and
 * {@linkcode EVENT_WRITE} say for what, {@linkcode SelectorKey} describes a
 * registration.
 *
 * `select()` is async (JavaScript cannot block): `await sel.select()`.
 * Readiness is true readiness: a socket reported readable has data (or
 * EOF, or a waiting connection) that `recv()`/`accept()` returns at once; a
 * socket reported writable takes at least one byte with `send()`.
 *
 * @example A select loop that accepts one connection
 * ```ts
 * import { DefaultSelector, EVENT_READ } from "@aionet/aionet/selectors";
 * import { socket } from "@aionet/aionet/sockets";
 *
 * using server = socket();
 * server.bind({ hostname: "127.0.0.1", port: 0 });
 * server.listen();
 * const { port } = server.getSockName() as Deno.NetAddr;
 *
 * using client = socket();
 * client.connectEx({ hostname: "127.0.0.1", port }); // 115: in progress
 *
 * using sel = new DefaultSelector();
 * sel.register(server, EVENT_READ, "listener");
 * for (const [key] of await sel.select(5000)) {
 *   const [conn, addr] = server.accept();
 *   console.log(key.data, addr);
 *   conn.close();
 * }
 * ```
 *
 * @module
 */

import { type Readiness, readinessOf } from "./_readiness.ts";
import { readinessFor } from "./_io.ts";
import { nextTurn } from "./_readiness.ts";

/** The longest select() timeout in ms (epoll_wait takes a C int). */
const MAX_TIMEOUT = 2 ** 31 - 1;
import { describe } from "./_validate.ts";

/** Wait until a read would not block (Python's `selectors.EVENT_READ`). */
export const EVENT_READ = 1;
/** Wait until a write would not block (Python's `selectors.EVENT_WRITE`). */
export const EVENT_WRITE = 2;

/**
 * A registration: the object, its fd, the events watched and the user's
 * data, as Python's `SelectorKey` named tuple (immutable; `modify()` makes
 * a new one).
 *
 * @example Using `SelectorKey`
 * ```ts
 * import { DefaultSelector, EVENT_READ } from "@aionet/aionet/selectors";
 * import { socket } from "@aionet/aionet/sockets";
 *
 * using sock = socket();
 * using sel = new DefaultSelector();
 * const key = sel.register(sock, EVENT_READ, { role: "client" });
 * console.log(key.fd === sock.fileno(), key.events, key.data);
 * ```
 */
export class SelectorKey<T = unknown> {
  /** The registered object (a `Socket`, or the fd number given). */
  readonly fileobj: unknown;
  /** Its file descriptor number (`fileobj.fileno()`). */
  readonly fd: number;
  /** `EVENT_READ`, `EVENT_WRITE` or both. */
  readonly events: number;
  /** What was passed as `data`. */
  readonly data: T;

  /** Made by the selector. */
  constructor(fileobj: unknown, fd: number, events: number, data: T) {
    this.fileobj = fileobj;
    this.fd = fd;
    this.events = events;
    this.data = data;
    Object.freeze(this);
  }
}

interface Entry {
  key: SelectorKey;
  readiness: Readiness;
  unsubscribe: () => void;
}

/** The live read-only view `getMap()` returns. */
class SelectorMapping implements ReadonlyMap<number, SelectorKey> {
  #entries: Map<number, Entry>;

  constructor(entries: Map<number, Entry>) {
    this.#entries = entries;
  }

  get size(): number {
    return this.#entries.size;
  }

  get(fd: number): SelectorKey | undefined {
    return this.#entries.get(fd)?.key;
  }

  has(fd: number): boolean {
    return this.#entries.has(fd);
  }

  forEach(
    callback: (
      value: SelectorKey,
      key: number,
      map: ReadonlyMap<number, SelectorKey>,
    ) => void,
    thisArg?: unknown,
  ): void {
    for (const [fd, entry] of this.#entries) {
      callback.call(thisArg, entry.key, fd, this);
    }
  }

  *entries(): MapIterator<[number, SelectorKey]> {
    for (const [fd, entry] of this.#entries) yield [fd, entry.key];
  }

  keys(): MapIterator<number> {
    return this.#entries.keys();
  }

  *values(): MapIterator<SelectorKey> {
    for (const entry of this.#entries.values()) yield entry.key;
  }

  [Symbol.iterator](): MapIterator<[number, SelectorKey]> {
    return this.entries();
  }
}

/**
 * Python's `selectors.DefaultSelector` over aionet sockets: register
 * sockets with the events to wait for, then `await select()`.
 *
 * Errors as Python's: registering a socket twice, or unregistering or
 * looking up one that is not registered, throws an `Error` named
 * `KeyError` that names the socket; `events` other than `EVENT_READ`,
 * `EVENT_WRITE` or both throws `RangeError`; anything but an aionet
 * `Socket` (or its fd) throws `TypeError`; every method after `close()`
 * throws `Deno.errors.BadResource`.
 *
 * @example Wait until a socket pair can be read
 * ```ts
 * import { DefaultSelector, EVENT_READ } from "@aionet/aionet/selectors";
 * import { socketpair } from "@aionet/aionet/sockets";
 * import { getEventLoop } from "@aionet/aionet/events";
 *
 * const [a, b] = socketpair();
 * using sel = new DefaultSelector();
 * sel.register(b, EVENT_READ, "reader");
 * console.log(await sel.select(0)); // [] : nothing sent yet
 * await getEventLoop().sockSendAll(a, new Uint8Array([42]));
 * const [[key, events]] = await sel.select(1000);
 * console.log(key.data, events === EVENT_READ, b.recv(10)); // "reader" true Uint8Array(1) [ 42 ]
 * a.close();
 * b.close();
 * ```
 */
export class DefaultSelector {
  #entries = new Map<number, Entry>();
  #mapping = new SelectorMapping(this.#entries);
  #closed = false;
  #selecting = false;
  #wake: (() => void) | null = null;

  /**
   * Starts watching `fileobj` for `events`; returns its key. `data` is
   * kept in the key for you.
   */
  register<T = unknown>(
    fileobj: unknown,
    events: number,
    data?: T,
  ): SelectorKey<T> {
    this.#checkOpen();
    checkEvents(events);
    const readiness = this.#readinessOf(fileobj);
    if (readiness.closed()) {
      throw new Deno.errors.BadResource(
        `${describeFileobj(fileobj)} is closed: there is nothing to watch`,
      );
    }
    if (this.#entries.has(readiness.fd)) {
      throw keyError(
        `${
          describeFileobj(fileobj)
        } (fd ${readiness.fd}) is already registered`,
      );
    }
    const key = new SelectorKey(
      fileobj,
      readiness.fd,
      events,
      data as T,
    );
    const unsubscribe = readiness.subscribe(() => this.#wake?.(), events);
    this.#entries.set(readiness.fd, { key, readiness, unsubscribe });
    this.#wake?.();
    return key;
  }

  /** Stops watching `fileobj`; returns its last key. */
  unregister(fileobj: unknown): SelectorKey {
    this.#checkOpen();
    const entry = this.#entryOf(fileobj);
    entry.unsubscribe();
    this.#entries.delete(entry.key.fd);
    return entry.key;
  }

  /** Changes the events (and data) watched for `fileobj`; returns the new key. */
  modify<T = unknown>(
    fileobj: unknown,
    events: number,
    data?: T,
  ): SelectorKey<T> {
    this.#checkOpen();
    checkEvents(events);
    const entry = this.#entryOf(fileobj);
    const key = new SelectorKey(
      entry.key.fileobj,
      entry.key.fd,
      events,
      data as T,
    );
    entry.key = key;
    entry.unsubscribe();
    entry.unsubscribe = entry.readiness.subscribe(() => this.#wake?.(), events);
    this.#wake?.();
    return key;
  }

  /**
   * Waits until some registered socket is ready and returns
   * `[key, readyEvents]` for each. `timeout` in milliseconds: `undefined`
   * (or `null`) waits as long as it takes, `0` or less only polls, else at
   * most that long (then `[]`; above 2^31-1 ms, a `RangeError`). Always lets pending I/O run first, like a
   * real `select()` call. Resolves `[]` if the selector is closed meanwhile.
   */
  async select(
    timeout?: number | null,
  ): Promise<Array<[SelectorKey, number]>> {
    this.#checkOpen();
    if (timeout !== undefined && timeout !== null) {
      if (typeof timeout !== "number" || Number.isNaN(timeout)) {
        throw new TypeError(
          `The timeout must be a number of milliseconds, got ${
            describe(timeout)
          }`,
        );
      }
      // As CPython's epoll selector (OverflowError): the kernel's limit.
      if (timeout > MAX_TIMEOUT) {
        throw new RangeError(
          `The timeout must be at most ${MAX_TIMEOUT} ms (about 24.8 days), got ${timeout}; leave it out to wait as long as it takes`,
        );
      }
    }
    if (this.#selecting) {
      throw new Deno.errors.Busy(
        "Another select() is already waiting on this selector",
      );
    }
    this.#selecting = true;
    try {
      return await this.#select(timeout);
    } finally {
      this.#selecting = false;
    }
  }

  async #select(
    timeout: number | null | undefined,
  ): Promise<Array<[SelectorKey, number]>> {
    await nextTurn();
    let ready = this.#ready();
    if (ready.length > 0 || this.#closed) return ready;
    if (typeof timeout === "number" && timeout <= 0) return ready;
    const { promise, resolve } = Promise.withResolvers<void>();
    let timer: ReturnType<typeof setTimeout> | undefined;
    this.#wake = () => {
      if (this.#closed) resolve();
      else if (this.#ready().length > 0) resolve();
    };
    if (typeof timeout === "number" && Number.isFinite(timeout)) {
      timer = setTimeout(resolve, timeout);
    }
    try {
      await promise;
    } finally {
      clearTimeout(timer);
      this.#wake = null;
    }
    ready = this.#closed ? [] : this.#ready();
    return ready;
  }

  /** The key of `fileobj`; throws a `KeyError` if it is not registered. */
  getKey(fileobj: unknown): SelectorKey {
    this.#checkOpen();
    return this.#entryOf(fileobj).key;
  }

  /** A live read-only map from fd to key of every registration. */
  getMap(): ReadonlyMap<number, SelectorKey> {
    this.#checkOpen();
    return this.#mapping;
  }

  /** Forgets every registration; the selector cannot be used afterwards. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const entry of this.#entries.values()) entry.unsubscribe();
    this.#entries.clear();
    this.#wake?.();
  }

  /** Closes the selector (`using sel = new DefaultSelector()`). */
  [Symbol.dispose](): void {
    this.close();
  }

  #ready(): Array<[SelectorKey, number]> {
    const out: Array<[SelectorKey, number]> = [];
    for (const { key, readiness } of this.#entries.values()) {
      const mask = readiness.poll() & key.events;
      if (mask !== 0) out.push([key, mask]);
    }
    return out;
  }

  #checkOpen(): void {
    if (this.#closed) {
      throw new Deno.errors.BadResource("The selector is closed");
    }
  }

  #readinessOf(fileobj: unknown): Readiness {
    const readiness = readinessFor(fileobj);
    if (readiness === undefined) {
      if (typeof fileobj === "number") {
        throw new RangeError(
          `Invalid file descriptor: ${fileobj} is not an open aionet socket (the native backend watches any descriptor)`,
        );
      }
      throw new TypeError(
        `Invalid file object: ${
          describeFileobj(fileobj)
        } is not an aionet Socket`,
      );
    }
    return readiness;
  }

  #entryOf(fileobj: unknown): Entry {
    let fd: number | undefined;
    if (typeof fileobj === "number") fd = fileobj;
    else {
      fd = readinessOf(fileobj)?.fd;
      if (fd === undefined) {
        for (const entry of this.#entries.values()) {
          if (entry.key.fileobj === fileobj) return entry;
        }
      }
    }
    const entry = fd === undefined ? undefined : this.#entries.get(fd);
    if (entry === undefined) {
      throw keyError(`${describeFileobj(fileobj)} is not registered`);
    }
    return entry;
  }
}

function checkEvents(events: unknown): void {
  if (typeof events !== "number") {
    throw new TypeError(
      `The events must be EVENT_READ, EVENT_WRITE or both, got ${
        describe(events)
      }`,
    );
  }
  if (
    !Number.isInteger(events) || events === 0 ||
    (events & ~(EVENT_READ | EVENT_WRITE)) !== 0
  ) {
    throw new RangeError(
      `Invalid events: ${events} (use EVENT_READ, EVENT_WRITE or EVENT_READ | EVENT_WRITE)`,
    );
  }
}

function keyError(message: string): Error {
  const error = new Error(message);
  error.name = "KeyError";
  return error;
}

function describeFileobj(fileobj: unknown): string {
  if (fileobj !== null && typeof fileobj === "object") {
    const text = String(fileobj);
    if (text !== "[object Object]") return text;
  }
  return describe(fileobj);
}
