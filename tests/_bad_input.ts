// The table-driven bad-input check shared by bad_input_test.ts,
// bad_input_sweep_test.ts and bad_option_values_test.ts: each row is a call
// that must throw (or reject) at once with a given error class and a clear
// message, never hang, never crash inside the library, never succeed.

import assert from "node:assert/strict";
import { Future } from "../mod.ts";
import { withTimeout } from "./_helpers.ts";

/** An error class a row expects. */
export type ErrorClass = abstract new (...args: never[]) => unknown;

/** One bad call and what it must give. */
export interface BadInputRow {
  /** The call, as written in the row (for the report). */
  call: string;
  run: () => unknown;
  /** The error class expected (or one of several, where Deno decides). */
  error: ErrorClass | ErrorClass[];
  /** When given, the message must name this parameter or option. */
  names?: RegExp;
  /** Frees what a call that should have failed made (default: best effort). */
  release?: (value: unknown) => void | Promise<void>;
}

/** Messages that betray an internal crash rather than a checked argument. */
const CRASH =
  /Cannot read propert|Cannot destructure|is not a function|is not iterable|undefined is not|null is not|Cannot convert|FFI|\.map|\.includes/;

/** How long a call may take to reject before it counts as hanging. */
const HANG_MS = 5000;

/**
 * Frees, best effort, what a call that should have failed made: kills and
 * reaps processes, closes servers (waiting for them), aborts transports.
 */
async function releaseMade(value: unknown): Promise<void> {
  const items = Array.isArray(value) ? value : [value];
  for (const item of items) {
    // deno-lint-ignore no-explicit-any
    const o = item as Record<string, any> | null;
    if (o === null || typeof o !== "object") continue;
    try {
      if (typeof o.kill === "function") {
        try {
          o.kill();
        } catch {
          // Already gone.
        }
        if (typeof o.wait === "function") await o.wait();
        if (typeof o.close === "function") o.close();
      } else if (typeof o.waitClosed === "function") {
        o.close();
        await o.waitClosed();
      } else if (typeof o.abort === "function") o.abort();
      else if (typeof o.close === "function") o.close();
    } catch {
      // Best effort.
    }
  }
}

function describe(value: unknown): string {
  if (Array.isArray(value)) {
    return `[${value.map((v) => v?.constructor?.name ?? String(v))}]`;
  }
  if (value !== null && typeof value === "object") {
    return value.constructor?.name ?? "object";
  }
  return String(value).slice(0, 60);
}

/** Runs one row: the call must throw or reject with the expected class. */
export async function checkBadInput(row: BadInputRow): Promise<void> {
  const classes = Array.isArray(row.error) ? row.error : [row.error];
  const expected = classes.map((c) => c.name).join(" or ") +
    (row.names === undefined ? "" : ` naming ${row.names}`);
  let error: unknown;
  let threw = false;
  let value: unknown;
  try {
    value = row.run();
    // A Future is awaitable but settles only when told to: not awaited.
    if (
      value !== null && typeof value === "object" &&
      typeof (value as Promise<unknown>).then === "function" &&
      !(value instanceof Future)
    ) {
      value = await withTimeout(value as Promise<unknown>, HANG_MS, row.call);
    }
  } catch (e) {
    threw = true;
    error = e;
  }
  if (!threw) {
    await (row.release ?? releaseMade)(value);
    assert.fail(
      `${row.call}: accepted, returned ${
        describe(value)
      } (expected ${expected})`,
    );
  }
  const message = (error as Error)?.message ?? String(error);
  assert.ok(
    !message.startsWith("Timed out after"),
    `${row.call}: hangs (expected ${expected})`,
  );
  assert.ok(
    classes.some((c) => error instanceof c),
    `${row.call}: got ${
      (error as Error)?.constructor?.name
    }: ${message} (expected ${expected})`,
  );
  assert.ok(message.length > 0, `${row.call}: empty message`);
  assert.doesNotMatch(
    message,
    CRASH,
    `${row.call}: internal error: ${message}`,
  );
  if (row.names !== undefined) {
    assert.match(
      message,
      row.names,
      `${row.call}: message "${message}" does not name ${row.names}`,
    );
  }
}

/** Runs every row as a step of `t`. */
export async function runBadInputRows(
  t: Deno.TestContext,
  rows: BadInputRow[],
): Promise<void> {
  for (const row of rows) {
    await t.step(row.call, () => checkBadInput(row));
  }
}
