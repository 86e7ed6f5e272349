// The loop's signal handlers (asyncio's add_signal_handler): one Deno
// signal listener per signal, named or given by its Linux number.

import { describe } from "./_validate.ts";

/** Linux's signal numbers (the same on x86_64 and aarch64). */
const SIGNALS: Record<number, Deno.Signal> = {
  1: "SIGHUP",
  2: "SIGINT",
  3: "SIGQUIT",
  4: "SIGILL",
  5: "SIGTRAP",
  6: "SIGABRT",
  7: "SIGBUS",
  8: "SIGFPE",
  9: "SIGKILL",
  10: "SIGUSR1",
  11: "SIGSEGV",
  12: "SIGUSR2",
  13: "SIGPIPE",
  14: "SIGALRM",
  15: "SIGTERM",
  16: "SIGSTKFLT",
  17: "SIGCHLD",
  18: "SIGCONT",
  19: "SIGSTOP",
  20: "SIGTSTP",
  21: "SIGTTIN",
  22: "SIGTTOU",
  23: "SIGURG",
  24: "SIGXCPU",
  25: "SIGXFSZ",
  26: "SIGVTALRM",
  27: "SIGPROF",
  28: "SIGWINCH",
  29: "SIGIO",
  30: "SIGPWR",
  31: "SIGSYS",
};

const NAMES = new Set<string>([...Object.values(SIGNALS), "SIGPOLL"]);

/** What no process can catch (asyncio: "sig N cannot be caught"). */
const UNCATCHABLE = new Set<string>(["SIGKILL", "SIGSTOP"]);

function signalName(signal: unknown): Deno.Signal {
  if (typeof signal === "number") {
    const name = SIGNALS[signal];
    if (name === undefined) {
      throw new RangeError(`Unknown signal number ${signal}`);
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
  if (!NAMES.has(signal)) throw new RangeError(`Unknown signal ${signal}`);
  return signal as Deno.Signal;
}

export class SignalHandlers {
  #listeners = new Map<Deno.Signal, () => void>();

  /** Calls `listener` on `signal`, replacing a listener set before. */
  add(signal: Deno.Signal | number, listener: () => void): void {
    const name = signalName(signal);
    if (UNCATCHABLE.has(name)) {
      throw new Deno.errors.NotSupported(`The signal ${name} cannot be caught`);
    }
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
