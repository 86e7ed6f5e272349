// Cancellation during the TLS handshake: a peer that accepts the TCP (or
// Unix) connection and never speaks TLS. Aborting the signal must reject
// the call at once with the signal's reason (not at handshakeTimeout) and
// leave nothing open: the peer sees the socket closed, and the sanitizers
// find no pending op or resource.

import assert from "node:assert/strict";
import {
  createConnection,
  createUnixConnection,
  openConnection,
  openUnixConnection,
  Protocol,
  startServer,
  startTls,
} from "../mod.ts";
import { CA, SERVER, within } from "./_tls_helpers.ts";

/** Far beyond the test's bound: the abort, not the time limit, must end it. */
const LONG = 60_000;
const TLS = { caCerts: [CA], serverName: "localhost", handshakeTimeout: LONG };

/**
 * A peer that accepts one connection, reads what the client sends first
 * (its ClientHello) and never answers. `heard` resolves once it read
 * something: the handshake is under way. `closed` resolves once the
 * client's side is gone (EOF or reset).
 */
function silentPeer(listener: Deno.Listener) {
  const heard = Promise.withResolvers<void>();
  const closed = (async () => {
    const conn = await listener.accept();
    try {
      const buffer = new Uint8Array(16 * 1024);
      let first = true;
      for (;;) {
        const n = await conn.read(buffer).catch(() => null);
        if (n === null) return;
        if (first) heard.resolve();
        first = false;
      }
    } finally {
      conn.close();
    }
  })();
  closed.catch(() => {});
  return { heard: heard.promise, closed };
}

/** Aborts `controller` once the peer heard the ClientHello; checks the rest. */
async function abortDuringHandshake(
  listener: Deno.Listener,
  call: (signal: AbortSignal) => Promise<unknown>,
): Promise<void> {
  const peer = silentPeer(listener);
  const controller = new AbortController();
  const reason = new Error("the user gave up");
  const pending = call(controller.signal);
  pending.catch(() => {});
  await within(peer.heard);
  const started = performance.now();
  controller.abort(reason);
  await assert.rejects(within(pending, 5000), (error) => error === reason);
  assert.ok(performance.now() - started < 2000, "rejected late");
  // The client closed its socket: the peer sees the end.
  await within(peer.closed, 5000);
}

Deno.test("TLS cancel: openConnection/createConnection reject at once with the signal's reason during the handshake", async () => {
  using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr;
  await abortDuringHandshake(
    listener,
    (signal) =>
      openConnection({ hostname: "127.0.0.1", port, tls: TLS, signal }),
  );
  await abortDuringHandshake(
    listener,
    (signal) =>
      createConnection(() => new Protocol(), {
        hostname: "127.0.0.1",
        port,
        tls: TLS,
        signal,
      }),
  );
});

Deno.test("TLS cancel: Unix openUnixConnection/createUnixConnection reject at once with the signal's reason", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/silent.sock`;
    using listener = Deno.listen({ transport: "unix", path });
    await abortDuringHandshake(
      listener,
      (signal) => openUnixConnection({ path, tls: TLS, signal }),
    );
    await abortDuringHandshake(
      listener,
      (signal) =>
        createUnixConnection(() => new Protocol(), { path, tls: TLS, signal }),
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("TLS cancel: startTls() and StreamWriter.startTls() take a signal; aborting closes the transport", async () => {
  using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr;
  // Transport level.
  const protocol = new Protocol();
  let lost: Promise<Error | null> | undefined;
  await abortDuringHandshake(listener, async (signal) => {
    const [plain] = await createConnection(() => protocol, {
      hostname: "127.0.0.1",
      port,
    });
    const { promise, resolve } = Promise.withResolvers<Error | null>();
    protocol.connectionLost = resolve;
    lost = promise;
    return await startTls(plain, protocol, { ...TLS, signal });
  });
  await within(lost!);
  // Streams.
  await abortDuringHandshake(listener, async (signal) => {
    const [, writer] = await openConnection({ hostname: "127.0.0.1", port });
    try {
      await writer.startTls({ ...TLS, signal });
    } finally {
      await within(writer.waitClosed().catch(() => {}));
    }
  });
});

Deno.test("TLS cancel: server-side StreamWriter.startTls() aborted while the client is silent", async () => {
  const controller = new AbortController();
  const reason = new Error("server gave up");
  const outcome = Promise.withResolvers<unknown>();
  const started = Promise.withResolvers<void>();
  await using server = await startServer(async (_reader, writer) => {
    const upgrade = writer.startTls({
      ...SERVER,
      handshakeTimeout: LONG,
      signal: controller.signal,
    });
    started.resolve();
    await upgrade.then(outcome.resolve, outcome.resolve);
  }, { hostname: "127.0.0.1", port: 0 });
  const conn = await Deno.connect({
    hostname: "127.0.0.1",
    port: (server.addrs[0] as Deno.NetAddr).port,
  });
  try {
    await within(started.promise);
    controller.abort(reason);
    assert.equal(await within(outcome.promise, 5000), reason);
    // The server's side is closed: the silent client reads EOF.
    const n = await within(conn.read(new Uint8Array(16)).catch(() => null));
    assert.equal(n, null);
  } finally {
    conn.close();
  }
});

Deno.test("TLS cancel: an already aborted signal rejects with its reason before connecting", async () => {
  const reason = new Error("too late");
  await assert.rejects(
    openConnection({
      hostname: "127.0.0.1",
      port: 1,
      tls: TLS,
      signal: AbortSignal.abort(reason),
    }),
    (error) => error === reason,
  );
});
