// Stress on the native backend, through the transports: many connections
// at once doing random things (writes of random sizes and shapes, big
// writes the kernel takes in parts, read pauses, half-closes, resets,
// aborts right after connecting), against an echo server. Nothing may be
// lost or reordered on a connection that ends cleanly, every connection
// ends exactly once on both sides, the server keeps serving, and no
// descriptor is left open (nativeTest checks /proc/self/fd).

import assert from "node:assert/strict";
import { Protocol } from "../protocols.ts";
import {
  createConnection,
  createServer,
  type Transport,
} from "../transports.ts";
import { bytesEqual, concat, pattern, Prng, withTimeout } from "./_helpers.ts";
import { nativeTest, withBackend } from "./_native_fd_check.ts";

/** Echoes every byte; at EOF closes once what is left is written. */
class Echo extends Protocol {
  #transport?: Transport;
  lost: Promise<Error | null>;
  #resolveLost!: (exc: Error | null) => void;

  constructor() {
    super();
    this.lost = new Promise((resolve) => this.#resolveLost = resolve);
  }
  override connectionMade(transport: Transport): void {
    this.#transport = transport;
  }
  override dataReceived(data: Uint8Array): void {
    this.#transport!.write(data);
  }
  override eofReceived(): boolean {
    return false;
  }
  override connectionLost(exc: Error | null): void {
    this.#resolveLost(exc);
  }
}

/** A client that records what comes back and how its connection ended. */
class Client extends Protocol {
  readonly chunks: Uint8Array[] = [];
  readonly events: string[] = [];
  readonly done: Promise<Error | null>;
  readonly firstData = Promise.withResolvers<void>();
  #resolve!: (exc: Error | null) => void;

  constructor() {
    super();
    this.done = new Promise((resolve) => this.#resolve = resolve);
  }
  override connectionMade(): void {
    this.events.push("made");
  }
  override dataReceived(data: Uint8Array): void {
    this.chunks.push(data);
    this.firstData.resolve();
  }
  override eofReceived(): boolean {
    this.events.push("eof");
    return false;
  }
  override connectionLost(exc: Error | null): void {
    this.events.push("lost");
    this.#resolve(exc);
  }
}

type Plan = "echo" | "reset" | "abort-at-once" | "eof-first";

/** One connection's random life; returns what it checked. */
async function runConnection(
  port: number,
  random: Prng,
  forced?: Plan,
): Promise<Plan> {
  const plan = forced ?? random.pick<Plan>([
    "echo",
    "echo",
    "echo",
    "reset",
    "abort-at-once",
    "eof-first",
  ]);
  const client = new Client();
  const [transport] = await createConnection(() => client, {
    hostname: "127.0.0.1",
    port,
  });
  if (plan === "abort-at-once") {
    transport.abort();
    assert.equal(await client.done, null);
    return plan;
  }
  if (plan === "eof-first") {
    transport.writeEof();
    assert.equal(await client.done, null);
    assert.deepEqual(client.events, ["made", "eof", "lost"]);
    assert.equal(concat(client.chunks).length, 0);
    return plan;
  }
  const sent: Uint8Array[] = [];
  const writes = random.int(1, 12);
  for (let i = 0; i < writes; i++) {
    // Mostly small; sometimes megabytes, which the kernel takes in parts.
    const size = random.chance(0.15)
      ? random.int(1 << 20, 3 << 20)
      : random.int(1, 70_000);
    const data = pattern(size, random.int(1, 1 << 30));
    sent.push(data);
    if (random.chance(0.3)) {
      const cut = random.int(0, size);
      transport.writeLines([data.subarray(0, cut), data.subarray(cut)]);
    } else {
      transport.write(data);
    }
    // The bytes sent are the bytes at the call: scribbling on the array
    // afterwards must change nothing (sent keeps a copy to compare).
    sent[sent.length - 1] = data.slice();
    data.fill(0xee);
    if (random.chance(0.2)) {
      transport.pauseReading();
      await Promise.resolve();
      transport.resumeReading();
    }
  }
  if (plan === "reset") {
    // Abort once some of the echo came back: the server sees a reset.
    await client.firstData.promise;
    transport.abort();
    assert.equal(await client.done, null);
    return plan;
  }
  transport.writeEof();
  const exc = await client.done;
  assert.equal(exc, null, "a clean echo ends without an error");
  assert.deepEqual(client.events, ["made", "eof", "lost"]);
  const expected = concat(sent);
  const got = concat(client.chunks);
  assert.equal(got.length, expected.length, "every byte came back");
  assert.ok(bytesEqual(got, expected), "in order, unchanged");
  return plan;
}

/** The stress run itself, on whatever backend is installed. */
async function stress(): Promise<void> {
  const protocols: Echo[] = [];
  const server = await createServer(() => {
    const echo = new Echo();
    protocols.push(echo);
    return echo;
  }, { hostname: "127.0.0.1", port: 0 });
  const { port } = server.addrs[0] as Deno.NetAddr;
  const random = new Prng(20261203);
  const plans = await withTimeout(
    Promise.all(
      Array.from(
        { length: 80 },
        (_, i) => runConnection(port, new Prng(random.int(1, 1e9) + i)),
      ),
    ),
    60_000,
    "the connections",
  );
  // Every plan ran, and the server saw each connection end exactly once.
  for (const plan of ["echo", "reset", "abort-at-once", "eof-first"]) {
    assert.ok(plans.includes(plan as Plan), `no ${plan} connection ran`);
  }
  const ends = await withTimeout(
    Promise.all(protocols.map((p) => p.lost)),
    10_000,
    "the server's connections to end",
  );
  assert.equal(ends.length, 80);
  // The server still serves after all that.
  await runConnection(port, new Prng(7), "echo");
  server.close();
  await server.waitClosed();
}

nativeTest(
  "native stress: 80 concurrent connections with random writes, pauses, half-closes and resets lose nothing",
  () => withBackend("native", stress),
);

Deno.test(
  "stress on the Deno backend: the same 80 connections lose nothing",
  () => withBackend("deno", stress),
);
