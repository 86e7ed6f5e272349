// Shared by the TLS tests: the mutual-TLS fixtures (tests/fixtures/mtls/,
// made by its generate.sh), a protocol that records what a server saw,
// and external peers (openssl, curl, python3) spawned with Deno.Command,
// always killed and awaited.

import assert from "node:assert/strict";
import { getEventLoop } from "../events.ts";
import type { ExceptionContext } from "../events.ts";
import { Protocol } from "../protocols.ts";
import type { Transport } from "../transports.ts";
import { LineReader } from "./_examples.ts";
import { withTimeout } from "./_helpers.ts";

const MTLS = new URL("./fixtures/mtls/", import.meta.url);

/** Path of a fixture file in tests/fixtures/mtls/. */
export function fixturePath(file: string): string {
  return new URL(file, MTLS).pathname;
}

/** A PEM file of tests/fixtures/mtls/, as text. */
export function pem(file: string): string {
  return Deno.readTextFileSync(new URL(file, MTLS));
}

/** A certificate and its key from the fixtures: `pair("client")`. */
export function pair(name: string): { cert: string; key: string } {
  return { cert: pem(`${name}.pem`), key: pem(`${name}.key`) };
}

/** The test CA (signs `server`, `sni`, `client`, `intermediate`). */
export const CA: string = pem("ca.pem");
/** An unrelated CA. */
export const OTHER_CA: string = pem("other_ca.pem");
/** localhost, 127.0.0.1, ::1, signed by the test CA. */
export const SERVER: { cert: string; key: string } = pair("server");
/** CN=client, clientAuth, signed by the test CA. */
export const CLIENT: { cert: string; key: string } = pair("client");

/** Client certificates that a `clientCert: "required"` server must refuse. */
export const IMPOSTORS: ReadonlyArray<
  { name: string; cert?: string; key?: string }
> = [
  { name: "no certificate" },
  {
    name: "self-signed with the same subject",
    ...pair("impostor_self_signed"),
  },
  { name: "signed by another CA", ...pair("impostor_other_ca") },
];

/**
 * More certificates that must be refused: expired, wrong purpose, signed
 * by a CA that only has the trusted CA's name, signed by a non-CA.
 */
export const BAD_CLIENTS: ReadonlyArray<
  { name: string; cert: string; key: string }
> = [
  { name: "expired", ...pair("expired_client") },
  { name: "serverAuth only (wrong purpose)", ...pair("server_only_client") },
  { name: "signed by a CA with the same name", ...pair("forged_client") },
  {
    name: "signed by a certificate that is not a CA",
    ...pair("leaf_signed_client"),
  },
];

/** The port of a TCP address. */
export function portOf(addr: Deno.Addr): number {
  return (addr as Deno.NetAddr).port;
}

/** UTF-8 helpers. */
export const encoder: TextEncoder = new TextEncoder();
export const decoder: TextDecoder = new TextDecoder();

/** Bounded wait (the timer is cleared): a failure, never a synchronisation. */
export function within<T>(promise: Promise<T>, ms = 10_000): Promise<T> {
  return withTimeout(promise, ms, "the TLS operation");
}

/**
 * Captures what reaches the exception handler until disposed; `next()`
 * waits (bounded) for the next report.
 */
export function captureExceptions(): {
  seen: ExceptionContext[];
  next(): Promise<ExceptionContext>;
  [Symbol.dispose](): void;
} {
  const seen: ExceptionContext[] = [];
  let wake: (() => void) | null = null;
  const loop = getEventLoop();
  loop.setExceptionHandler((_loop, context) => {
    seen.push(context);
    wake?.();
  });
  return {
    seen,
    async next() {
      while (seen.length === 0) {
        await within(new Promise<void>((resolve) => (wake = resolve)));
        wake = null;
      }
      return seen.shift()!;
    },
    [Symbol.dispose]: () => loop.setExceptionHandler(null),
  };
}

/** An echo protocol that counts how many times it was made. */
export class Echo extends Protocol {
  static made = 0;
  #transport?: Transport;
  override connectionMade(transport: Transport): void {
    Echo.made++;
    this.#transport = transport;
  }
  override dataReceived(data: Uint8Array): void {
    this.#transport!.write(data);
  }
}

/** Whether `command` can be run here (`--version`-style probe). */
export async function hasTool(
  command: string,
  args: string[] = ["--version"],
): Promise<boolean> {
  try {
    const { success } = await new Deno.Command(command, {
      args,
      stdin: "null",
      stdout: "null",
      stderr: "null",
    }).output();
    return success;
  } catch {
    return false;
  }
}

/** A spawned peer program: stdout by lines, killed and awaited on dispose. */
export class Peer implements AsyncDisposable {
  readonly child: Deno.ChildProcess;
  readonly stdout: LineReader;
  readonly stderr: Promise<string>;
  #stdin: WritableStreamDefaultWriter<Uint8Array> | null;

  constructor(
    command: string,
    args: string[],
    options: { stdin?: boolean; cwd?: string } = {},
  ) {
    this.child = new Deno.Command(command, {
      args,
      cwd: options.cwd,
      stdin: options.stdin ? "piped" : "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    this.#stdin = options.stdin ? this.child.stdin.getWriter() : null;
    this.stdout = new LineReader(this.child.stdout);
    this.stderr = new Response(this.child.stderr).text();
  }

  /** Reads stdout up to a line `pattern` matches; returns the match. */
  waitForLine(pattern: RegExp, what?: string): Promise<RegExpExecArray> {
    return this.stdout.waitForLine(pattern, what, 20_000);
  }

  /** Writes `text` to stdin. */
  async write(text: string): Promise<void> {
    await this.#stdin!.write(encoder.encode(text));
  }

  /** Closes stdin. */
  async closeStdin(): Promise<void> {
    await this.#stdin?.close().catch(() => {});
    this.#stdin = null;
  }

  /** Waits for the exit (bounded); returns the code, the rest of stdout, stderr. */
  async finish(
    ms = 20_000,
  ): Promise<{ code: number; lines: string[]; stderr: string }> {
    await this.closeStdin();
    const lines = await this.stdout.rest();
    const status = await withTimeout(this.child.status, ms, "the peer's exit");
    return { code: status.code, lines, stderr: await this.stderr };
  }

  async [Symbol.asyncDispose](): Promise<void> {
    try {
      this.child.kill("SIGKILL");
    } catch {
      // It has exited already.
    }
    await this.#stdin?.close().catch(() => {});
    await this.child.status;
    await this.stdout.cancel();
    await this.stderr.catch(() => "");
  }
}

/** Asserts that `promise` rejects (or resolves) within the bound, returning the error. */
export async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await within(promise);
  } catch (error) {
    return error;
  }
  assert.fail("expected a rejection");
}
