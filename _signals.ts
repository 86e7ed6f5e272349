// The loop's signal handlers (asyncio's add_signal_handler): one Deno
// signal listener per signal, named or given by its Linux number.

import { describe } from "./_validate.ts";

const SIGNALS: Record<number, Deno.Signal> = {
  1: "SIGHUP",
  2: "SIGINT",
  3: "SIGQUIT",
  10: "SIGUSR1",
  12: "SIGUSR2",
  13: "SIGPIPE",
  14: "SIGALRM",
  15: "SIGTERM",
  17: "SIGCHLD",
  18: "SIGCONT",
  28: "SIGWINCH",
};

function signalName(signal: unknown): Deno.Signal {
  if (typeof signal === "number") {
    const name = SIGNALS[signal];
    if (name === undefined) {
      throw new RangeError(`Unknown or unsupported signal number ${signal}`);
    }
    return name;
  }
  if (typeof signal !== "string") {
    throw new TypeError(
      `The signal must be a name such as "SIGINT" or a number, got ${
        describe(signal)
      }`,
    );
  }
  return signal as Deno.Signal;
}

/** The signal handlers of one loop. */
export class SignalHandlers {
  #listeners = new Map<Deno.Signal, () => void>();

  /** Calls `listener` on `signal`, replacing a listener set before. */
  add(signal: Deno.Signal | number, listener: () => void): void {
    const name = signalName(signal);
    this.remove(name);
    try {
      Deno.addSignalListener(name, listener);
    } catch (error) {
      const message = (error as Error).message ?? String(error);
      if (/not allowed/i.test(message)) {
        throw new Deno.errors.NotSupported(
          `The signal ${name} cannot be caught: ${message}`,
        );
      }
      throw new RangeError(`Invalid signal ${name}: ${message}`);
    }
    this.#listeners.set(name, listener);
  }

  /** Removes the listener of `signal`; `false` if there was none. */
  remove(signal: Deno.Signal | number): boolean {
    const name = signalName(signal);
    const listener = this.#listeners.get(name);
    if (listener === undefined) return false;
    this.#listeners.delete(name);
    Deno.removeSignalListener(name, listener);
    return true;
  }

  /** Removes every listener (the loop is closing). */
  clear(): void {
    for (const [signal, listener] of this.#listeners) {
      Deno.removeSignalListener(signal, listener);
    }
    this.#listeners.clear();
  }
}
