// Options are honoured or refused, never ignored: an unknown option of any
// factory is a TypeError naming it; client noDelay/keepAlive are applied;
// a server without a hostname listens on both families; UDP family is
// honoured; allowBroadcast: false is refused where it cannot be honoured
// (the Deno backend) and honoured where it can (the native backend).

import assert from "node:assert/strict";
import { Protocol } from "../protocols.ts";
import {
  createConnection,
  createDatagramEndpoint,
  createServer,
  createUnixConnection,
  createUnixServer,
  type Transport,
} from "../transports.ts";
import {
  openConnection,
  openUnixConnection,
  startServer,
  startUnixServer,
} from "../streams.ts";
import {
  createSubprocessExec,
  createSubprocessShell,
  subprocessExec,
  subprocessShell,
} from "../subprocess.ts";
import { getEventLoop } from "../events.ts";
import { AF_INET, AF_INET6, SO_BROADCAST } from "../sockets.ts";
import { SubprocessProtocol } from "../protocols.ts";
import {
  BACKEND,
  hasIpv6Loopback,
  IPPROTO_TCP,
  SO_KEEPALIVE,
  SOL_SOCKET,
  TCP_NODELAY,
  transportSockOpt,
  withTimeout,
} from "./_helpers.ts";

/** Rejects with a TypeError whose message names `name`. */
async function rejectsNaming(call: () => Promise<unknown>, name: string) {
  await assert.rejects(call, (error: unknown) => {
    assert.ok(error instanceof TypeError, `TypeError, got ${error}`);
    assert.match((error as Error).message, new RegExp(`"${name}"`));
    return true;
  });
}

Deno.test("options: an unknown option of any factory is a TypeError naming it", async () => {
  const bogus = { bogusOption: 1 } as Record<string, unknown>;
  const tcp = { hostname: "127.0.0.1", port: 9, ...bogus } as never;
  const unix = { path: "/tmp/never.sock", ...bogus } as never;
  const factory = () => new Protocol();
  await rejectsNaming(() => createConnection(factory, tcp), "bogusOption");
  await rejectsNaming(() => createServer(factory, tcp), "bogusOption");
  await rejectsNaming(() => createUnixConnection(factory, unix), "bogusOption");
  await rejectsNaming(() => createUnixServer(factory, unix), "bogusOption");
  await rejectsNaming(() => openConnection(tcp), "bogusOption");
  await rejectsNaming(() => startServer(() => {}, tcp), "bogusOption");
  await rejectsNaming(() => openUnixConnection(unix), "bogusOption");
  await rejectsNaming(() => startUnixServer(() => {}, unix), "bogusOption");
  await rejectsNaming(
    () => createDatagramEndpoint(factory, { ...bogus } as never),
    "bogusOption",
  );
  await rejectsNaming(
    () => createDatagramEndpoint(factory, unix),
    "bogusOption",
  );
  await rejectsNaming(
    () => createSubprocessExec("true", [], bogus as never),
    "bogusOption",
  );
  await rejectsNaming(
    () => createSubprocessShell("true", bogus as never),
    "bogusOption",
  );
  const subprocessFactory = () => new SubprocessProtocol();
  await rejectsNaming(
    () => subprocessExec(subprocessFactory, "true", [], bogus as never),
    "bogusOption",
  );
  await rejectsNaming(
    () => subprocessShell(subprocessFactory, "true", bogus as never),
    "bogusOption",
  );
  await rejectsNaming(
    () => getEventLoop().createConnection(factory, tcp),
    "bogusOption",
  );
  // Nested bags too: a misspelled localAddr field, and a close spelling
  // is suggested.
  await assert.rejects(
    () =>
      createDatagramEndpoint(factory, {
        localAddr: { hostname: "127.0.0.1", prot: 0 },
      } as never),
    /"prot" \(did you mean "port"\?\)/,
  );
  await assert.rejects(
    () => createConnection(factory, { hostnme: "127.0.0.1", port: 9 } as never),
    /"hostnme" \(did you mean "hostname"\?\)/,
  );
});

/** A server whose connections report their transport. */
async function acceptingServer() {
  const accepted: Transport[] = [];
  const server = await createServer(() =>
    new (class extends Protocol {
      override connectionMade(t: Transport) {
        accepted.push(t);
      }
    })(), { hostname: "127.0.0.1", port: 0 });
  return { server, port: (server.addrs[0] as Deno.NetAddr).port, accepted };
}

function tcpOption(transport: Transport, level: number, name: number): number {
  return transportSockOpt(transport, level, name);
}

Deno.test("options: client noDelay is on by default (asyncio), off on request; keepAlive on request", async () => {
  const { server, port } = await acceptingServer();
  try {
    const [plain] = await createConnection(() => new Protocol(), {
      hostname: "127.0.0.1",
      port,
    });
    const [nagle] = await createConnection(() => new Protocol(), {
      hostname: "127.0.0.1",
      port,
      noDelay: false,
      keepAlive: true,
    });
    try {
      assert.equal(tcpOption(plain, IPPROTO_TCP, TCP_NODELAY), 1);
      assert.equal(tcpOption(plain, SOL_SOCKET, SO_KEEPALIVE), 0);
      assert.equal(tcpOption(nagle, IPPROTO_TCP, TCP_NODELAY), 0);
      assert.equal(tcpOption(nagle, SOL_SOCKET, SO_KEEPALIVE), 1);
    } finally {
      plain.close();
      nagle.close();
    }
    await assert.rejects(
      () =>
        createConnection(() => new Protocol(), {
          hostname: "127.0.0.1",
          port,
          noDelay: "yes" as never,
        }),
      TypeError,
    );
  } finally {
    server.close();
    server.closeClients();
    await server.waitClosed();
  }
});

Deno.test({
  name:
    "options: a server without a hostname accepts IPv4 and IPv6 clients, as asyncio",
  ignore: !hasIpv6Loopback(),
  async fn() {
    const server = await createServer(() => new Protocol(), { port: 0 });
    try {
      const ports = new Set(
        server.addrs.map((addr) => (addr as Deno.NetAddr).port),
      );
      assert.equal(ports.size, 1, "one port for both families");
      const [port] = ports;
      for (const hostname of ["127.0.0.1", "::1"]) {
        const [client] = await withTimeout(
          createConnection(() => new Protocol(), { hostname, port }),
          5000,
          `a connection to ${hostname}`,
        );
        client.close();
      }
    } finally {
      server.close();
      server.closeClients();
      await server.waitClosed();
    }
  },
});

Deno.test("options: UDP family is honoured or refused", async () => {
  const factory = () => new Protocol() as never;
  if (hasIpv6Loopback()) {
    const [v6] = await createDatagramEndpoint(factory, { family: AF_INET6 });
    assert.equal(
      (v6.getExtraInfo("sockname") as Deno.NetAddr).hostname,
      "::",
    );
    v6.close();
  }
  const [v4] = await createDatagramEndpoint(factory, { family: AF_INET });
  assert.equal(
    (v4.getExtraInfo("sockname") as Deno.NetAddr).hostname,
    "0.0.0.0",
  );
  v4.close();
  await assert.rejects(
    () =>
      createDatagramEndpoint(factory, {
        family: AF_INET,
        remoteAddr: { hostname: "::1", port: 9 },
      }),
    TypeError,
  );
  await assert.rejects(
    () =>
      createDatagramEndpoint(factory, {
        family: AF_INET6,
        localAddr: { hostname: "127.0.0.1", port: 0 },
      }),
    TypeError,
  );
  await assert.rejects(
    () => createDatagramEndpoint(factory, { family: 99 }),
    RangeError,
  );
});

Deno.test("options: allowBroadcast: false is refused on the Deno backend (SO_BROADCAST is always on there), honoured on the native backend", async () => {
  const localAddr = { hostname: "127.0.0.1", port: 0 };
  const factory = () => new Protocol() as never;
  if (BACKEND === "deno") {
    await assert.rejects(
      () =>
        createDatagramEndpoint(factory, { localAddr, allowBroadcast: false }),
      Deno.errors.NotSupported,
    );
  } else {
    // Off by default and on request, as asyncio; on only when allowed.
    for (const allowBroadcast of [undefined, false]) {
      const [off] = await createDatagramEndpoint(factory, {
        localAddr,
        allowBroadcast,
      });
      assert.equal(transportSockOpt(off, SOL_SOCKET, SO_BROADCAST), 0);
      off.close();
    }
  }
  const [endpoint] = await createDatagramEndpoint(factory, {
    localAddr,
    allowBroadcast: true,
  });
  if (BACKEND === "native") {
    assert.equal(transportSockOpt(endpoint, SOL_SOCKET, SO_BROADCAST), 1);
  }
  endpoint.close();
});
