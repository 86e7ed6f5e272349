// Tests of protocols.ts: every class has callable no-op methods, subclasses
// with `override` type-check (this file is type-checked by `deno test`),
// structural `implements` works, and BufferedProtocol.getBuffer() must be
// overridden.

import assert from "node:assert/strict";
import {
  BaseProtocol,
  BufferedProtocol,
  DatagramProtocol,
  Protocol,
  SubprocessProtocol,
} from "../protocols.ts";
import type {
  BaseTransport,
  DatagramTransport,
  SubprocessTransport,
  Transport,
} from "../transports.ts";

const transport = {} as Transport;

Deno.test("protocols: every method of every class is a callable no-op", () => {
  const base = new BaseProtocol();
  assert.equal(base.connectionMade(transport), undefined);
  assert.equal(base.connectionLost(null), undefined);
  assert.equal(base.connectionLost(new Error("x")), undefined);
  assert.equal(base.pauseWriting(), undefined);
  assert.equal(base.resumeWriting(), undefined);

  const protocol = new Protocol();
  assert.equal(protocol.connectionMade(transport), undefined);
  assert.equal(protocol.dataReceived(new Uint8Array(3)), undefined);
  // A falsy eofReceived() means "close the transport", as asyncio.
  assert.ok(!protocol.eofReceived());
  assert.equal(protocol.connectionLost(null), undefined);
  assert.equal(protocol.pauseWriting(), undefined);
  assert.equal(protocol.resumeWriting(), undefined);

  const buffered = new BufferedProtocol();
  assert.equal(buffered.connectionMade(transport), undefined);
  assert.equal(buffered.bufferUpdated(5), undefined);
  assert.ok(!buffered.eofReceived());
  assert.equal(buffered.connectionLost(null), undefined);

  const datagram = new DatagramProtocol();
  assert.equal(datagram.connectionMade({} as DatagramTransport), undefined);
  assert.equal(
    datagram.datagramReceived(new Uint8Array(1), {
      transport: "udp",
      hostname: "127.0.0.1",
      port: 9,
    }),
    undefined,
  );
  assert.equal(datagram.errorReceived(new Error("e")), undefined);
  assert.equal(datagram.connectionLost(null), undefined);

  const subprocess = new SubprocessProtocol();
  assert.equal(subprocess.connectionMade({} as SubprocessTransport), undefined);
  assert.equal(subprocess.pipeDataReceived(1, new Uint8Array(1)), undefined);
  assert.equal(subprocess.pipeDataReceived(2, new Uint8Array(1)), undefined);
  assert.equal(subprocess.pipeConnectionLost(0, null), undefined);
  assert.equal(subprocess.processExited(), undefined);
});

Deno.test("protocols: the classes form asyncio's hierarchy", () => {
  for (
    const C of [
      Protocol,
      BufferedProtocol,
      DatagramProtocol,
      SubprocessProtocol,
    ]
  ) {
    assert.ok(new C() instanceof BaseProtocol, C.name);
  }
  assert.ok(!(new BufferedProtocol() instanceof Protocol));
});

Deno.test("protocols: BufferedProtocol.getBuffer() must be overridden", () => {
  assert.throws(
    () => new BufferedProtocol().getBuffer(-1),
    Deno.errors.NotSupported,
  );
  class Mine extends BufferedProtocol {
    readonly buffer = new Uint8Array(8);
    override getBuffer(_sizeHint: number): Uint8Array {
      return this.buffer;
    }
  }
  const mine = new Mine();
  assert.equal(mine.getBuffer(100), mine.buffer);
});

Deno.test("protocols: subclasses override with `override`, and may implement structurally", () => {
  const log: string[] = [];
  class Echo extends Protocol {
    #transport?: Transport;
    override connectionMade(t: Transport): void {
      this.#transport = t;
      log.push("made");
    }
    override dataReceived(data: Uint8Array): void {
      log.push(`data:${data.length}`);
      void this.#transport;
    }
    override eofReceived(): boolean {
      log.push("eof");
      return true;
    }
    override connectionLost(exc: Error | null): void {
      log.push(`lost:${exc?.message ?? "null"}`);
    }
    override pauseWriting(): void {
      log.push("pause");
    }
    override resumeWriting(): void {
      log.push("resume");
    }
  }
  const echo = new Echo();
  echo.connectionMade(transport);
  echo.dataReceived(new Uint8Array(2));
  echo.pauseWriting();
  echo.resumeWriting();
  assert.equal(echo.eofReceived(), true);
  echo.connectionLost(new Error("bye"));
  assert.deepEqual(log, [
    "made",
    "data:2",
    "pause",
    "resume",
    "eof",
    "lost:bye",
  ]);

  // Structural: a plain class that implements the interface.
  class Plain implements Protocol {
    events: string[] = [];
    connectionMade(_t: BaseTransport) {
      this.events.push("made");
    }
    connectionLost(_exc: Error | null) {}
    pauseWriting() {}
    resumeWriting() {}
    dataReceived(_data: Uint8Array) {}
    eofReceived() {
      return false;
    }
  }
  const plain: Protocol = new Plain();
  plain.connectionMade(transport);
  assert.deepEqual((plain as Plain).events, ["made"]);
});
