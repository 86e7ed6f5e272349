// The kernel side of a listening Socket: a Deno.Listener and an emulated
// accept backlog. One background accept runs while fewer than `backlog`
// connections wait; `accept()` takes from the backlog without blocking.

import { toError } from "./_errno.ts";

type AcceptResult = { conn: Deno.Conn } | { error: unknown };

/** A listening stream socket's queue of accepted connections. */
export class ListenerChannel {
  readonly listener: Deno.Listener;
  #notify: () => void;
  #backlog = 0;
  #queue: Deno.Conn[] = [];
  #looping = false;
  #inflight: Promise<AcceptResult> | null = null;
  #resume: (() => void) | null = null;
  #error: Error | null = null;
  #closed = false;
  #released = false;

  constructor(listener: Deno.Listener, notify: () => void) {
    this.listener = listener;
    this.#notify = notify;
  }

  /** Whether `listen()` was called. */
  get listening(): boolean {
    return this.#backlog > 0;
  }

  /** Starts (or resizes) the backlog; accepting begins. */
  listen(backlog: number): void {
    this.#backlog = Math.max(1, backlog);
    this.#wake();
    if (!this.#looping) {
      this.#looping = true;
      this.#loop();
    }
  }

  /** Whether `accept()` would return at once. */
  readable(): boolean {
    return this.#queue.length > 0 || this.#error !== null;
  }

  /** The next connection of the backlog; `WouldBlock` if there is none. */
  accept(): Deno.Conn {
    const conn = this.#queue.shift();
    if (conn !== undefined) {
      this.#wake();
      return conn;
    }
    if (this.#error !== null) {
      const error = this.#error;
      this.#error = null;
      this.#wake();
      throw error;
    }
    throw new Deno.errors.WouldBlock(
      "Resource temporarily unavailable: no connection is waiting",
    );
  }

  /** Stops listening; connections waiting in the backlog are closed. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const conn of this.#queue.splice(0)) closeQuietly(conn);
    this.#wake();
    closeQuietly(this.listener);
  }

  /**
   * Gives up the listener: the returned `Deno.Listener` first yields the
   * connections of the backlog (and the accept in flight).
   */
  release(): Deno.Listener {
    this.#released = true;
    const queue = this.#queue.splice(0);
    const inflight = this.#inflight;
    this.#wake();
    const raw = this.listener;
    let inflightTaken = inflight === null;
    const accept = async (): Promise<Deno.Conn> => {
      const queued = queue.shift();
      if (queued !== undefined) return queued;
      if (!inflightTaken) {
        inflightTaken = true;
        const result = await inflight!;
        if ("error" in result) throw result.error;
        return result.conn;
      }
      return raw.accept();
    };
    const listener = {
      get addr() {
        return raw.addr;
      },
      accept,
      close: () => {
        for (const conn of queue.splice(0)) closeQuietly(conn);
        raw.close();
      },
      ref: () => raw.ref(),
      unref: () => raw.unref(),
      [Symbol.dispose]: () => listener.close(),
      async *[Symbol.asyncIterator]() {
        while (true) {
          try {
            yield await accept();
          } catch (error) {
            if (error instanceof Deno.errors.BadResource) return;
            throw error;
          }
        }
      },
    };
    return listener as unknown as Deno.Listener;
  }

  #wake(): void {
    const resume = this.#resume;
    if (resume !== null) {
      this.#resume = null;
      resume();
    }
  }

  async #loop(): Promise<void> {
    while (!this.#closed && !this.#released) {
      if (this.#queue.length >= this.#backlog || this.#error !== null) {
        await new Promise<void>((resolve) => this.#resume = resolve);
        continue;
      }
      const inflight: Promise<AcceptResult> = this.listener.accept().then(
        (conn) => ({ conn }),
        (error) => ({ error }),
      );
      this.#inflight = inflight;
      const result = await inflight;
      if (this.#released) return; // The new owner takes `inflight`.
      this.#inflight = null;
      if (this.#closed) {
        if ("conn" in result) closeQuietly(result.conn);
        return;
      }
      if ("error" in result) this.#error = toError(result.error);
      else this.#queue.push(result.conn);
      this.#notify();
    }
  }
}

function closeQuietly(resource: { close(): void }): void {
  try {
    resource.close();
  } catch {
    // Already closed.
  }
}
