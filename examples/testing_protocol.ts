/**
 * Unit-testing a Protocol and a streams handler without sockets, with
 * `@aionet/aionet/testing`.
 *
 * The code under test is a tiny line protocol: `PING` → `PONG`, `QUIT` →
 * `BYE` and close, and an idle timeout of 30 s (scheduled with
 * `loop.callLater`). It exists twice: as a `Protocol` and as a
 * `startServer`-style handler. The tests drive them with a
 * `RecordingTransport` (the test plays the network, synchronously), a
 * `createTransportPair` (two in-memory transports with the real
 * semantics), `openMemoryConnection` (an in-memory client for a handler)
 * and `withFakeClock` (the idle timeout fires without waiting 30 s).
 *
 * Run the tests: `deno test examples/testing_protocol.ts`
 * or as a program: `deno run examples/testing_protocol.ts`
 *
 * @module
 */

import assert from "node:assert/strict";
import { Protocol } from "../protocols.ts";
import type { Transport } from "../transports.ts";
import type { StreamReader, StreamWriter } from "../streams.ts";
import { getEventLoop, type TimerHandle } from "../events.ts";
import {
  createTransportPair,
  openMemoryConnection,
  RecordingTransport,
  withFakeClock,
} from "../testing.ts";

const IDLE_MS = 30_000;
const encoder = new TextEncoder();
const decoder = new TextDecoder();

function answer(line: string): string | null {
  if (line === "PING") return "PONG\n";
  if (line === "QUIT") return "BYE\n";
  return null;
}

/** The protocol under test. */
export class PingProtocol extends Protocol {
  #transport: Transport | null = null;
  #buffer = "";
  #idle: TimerHandle | null = null;

  override connectionMade(transport: Transport): void {
    this.#transport = transport;
    this.#armIdle();
  }

  override dataReceived(data: Uint8Array): void {
    this.#armIdle();
    this.#buffer += decoder.decode(data);
    let end: number;
    while ((end = this.#buffer.indexOf("\n")) >= 0) {
      const line = this.#buffer.slice(0, end).trim();
      this.#buffer = this.#buffer.slice(end + 1);
      const reply = answer(line) ?? `ERR unknown command ${line}\n`;
      this.#transport!.write(encoder.encode(reply));
      if (line === "QUIT") {
        this.#transport!.close();
        return;
      }
    }
  }

  override connectionLost(): void {
    this.#idle?.cancel();
  }

  #armIdle(): void {
    this.#idle?.cancel();
    this.#idle = getEventLoop().callLater(IDLE_MS, () => {
      this.#transport!.write(encoder.encode("TIMEOUT\n"));
      this.#transport!.close();
    });
  }
}

/** The same service as a streams handler, for `startServer`. */
export async function pingHandler(
  reader: StreamReader,
  writer: StreamWriter,
): Promise<void> {
  for await (const raw of reader) {
    const line = decoder.decode(raw).trim();
    writer.write(
      encoder.encode(answer(line) ?? `ERR unknown command ${line}\n`),
    );
    await writer.drain();
    if (line === "QUIT") break;
  }
  writer.close();
  await writer.waitClosed();
}

const tests: Record<string, () => Promise<void>> = {
  // The test plays the network: every call has its effect on the next line.
  async "PingProtocol answers PING and closes on QUIT (RecordingTransport)"() {
    await withFakeClock(() => {
      const transport = new RecordingTransport(new PingProtocol());
      transport.receive(encoder.encode("PI"));
      assert.equal(transport.text(), "", "waits for the end of the line");
      transport.receive(encoder.encode("NG\nQUIT\n"));
      assert.equal(transport.text(), "PONG\nBYE\n");
      assert.equal(transport.closed, true);
    });
  },

  // Two real-behaving transports, asynchronous like the network.
  async "PingProtocol over an in-memory connection (createTransportPair)"() {
    await withFakeClock(async () => {
      let received = "";
      const { promise: lost, resolve } = Promise.withResolvers<void>();
      class Client extends Protocol {
        override dataReceived(data: Uint8Array) {
          received += decoder.decode(data);
        }
        override connectionLost() {
          resolve();
        }
      }
      const [client] = createTransportPair(new Client(), new PingProtocol());
      client.write(encoder.encode("PING\nHELLO\nQUIT\n"));
      await lost;
      assert.equal(received, "PONG\nERR unknown command HELLO\nBYE\n");
    });
  },

  // The 30 s idle timeout fires when the fake clock says so.
  async "PingProtocol times out an idle client (withFakeClock)"() {
    await withFakeClock(async (clock) => {
      const transport = new RecordingTransport(new PingProtocol());
      clock.advance(IDLE_MS - 1);
      transport.receive(encoder.encode("PING\n")); // re-arms the timer
      clock.advance(IDLE_MS - 1);
      assert.equal(transport.isClosing(), false);
      clock.advance(1);
      assert.equal(transport.text(), "PONG\nTIMEOUT\n");
      assert.equal(transport.closed, true);
      await Promise.resolve(); // connectionLost comes in a microtask
      assert.equal(transport.lost, true);
    });
  },

  // A streams handler against an in-memory client: no server, no port.
  async "pingHandler serves an in-memory client (openMemoryConnection)"() {
    const [reader, writer] = await openMemoryConnection(pingHandler);
    writer.write(encoder.encode("PING\n"));
    assert.equal(decoder.decode(await reader.readLine()), "PONG\n");
    writer.write(encoder.encode("QUIT\n"));
    assert.equal(decoder.decode(await reader.readLine()), "BYE\n");
    assert.equal((await reader.read()).length, 0, "the handler closed");
    writer.close();
    await writer.waitClosed();
  },
};

for (const [name, fn] of Object.entries(tests)) Deno.test(name, fn);

if (import.meta.main) {
  for (const [name, fn] of Object.entries(tests)) {
    await fn();
    console.log(`ok - ${name}`);
  }
}
