// Parity with CPython asyncio for multicast on datagram endpoints and for
// Unix stream servers and connections, on whichever backend the run uses.
// CPython behaviour was checked with small scripts (python3 3.11 and
// 3.13.0) on Linux, loopback only. The "parity:" tests failed on the Deno
// backend before their fix (RELIABILITY.md, finding 37).

import assert from "node:assert/strict";
import {
  AF_INET,
  inetAton,
  IP_ADD_MEMBERSHIP,
  IP_MULTICAST_LOOP,
  IP_MULTICAST_TTL,
  IPPROTO_IP,
  SOCK_DGRAM,
  socket,
} from "../sockets.ts";
import { DatagramProtocol } from "../protocols.ts";
import { createDatagramEndpoint } from "../transports.ts";
import { openUnixConnection, startUnixServer } from "../streams.ts";
import {
  decode,
  encode,
  leakCheckedTest,
  nativeBackendTest,
  withTimeout,
} from "./_helpers.ts";

const LOOPBACK = "127.0.0.1";

function randomGroup(): string {
  const n = crypto.getRandomValues(new Uint8Array(2));
  return `239.255.${1 + (n[0] % 250)}.${1 + (n[1] % 250)}`;
}

/** Records datagrams; `received(n)` waits for the n-th. */
class Members extends DatagramProtocol {
  readonly datagrams: string[] = [];
  #waiters: Array<{ n: number; resolve: () => void }> = [];
  override datagramReceived(data: Uint8Array): void {
    this.datagrams.push(decode(data));
    this.#waiters = this.#waiters.filter((w) => {
      if (this.datagrams.length < w.n) return true;
      w.resolve();
      return false;
    });
  }
  received(n: number): Promise<void> {
    if (this.datagrams.length >= n) return Promise.resolve();
    const { promise, resolve } = Promise.withResolvers<void>();
    this.#waiters.push({ n, resolve });
    return withTimeout(promise, 5000, `datagram ${n}`);
  }
}

/** ip_mreq: the group, then the interface address. */
function mreq(group: string, iface: string): Uint8Array {
  return new Uint8Array([...inetAton(group), ...inetAton(iface)]);
}

// ---- Multicast ----

// CPython (verified: socket(AF_INET, SOCK_DGRAM).getsockopt(IPPROTO_IP,
// IP_MULTICAST_LOOP) on a new socket is 1, Linux's default).
// aionet, Deno backend: 0 until set (the emulated socket answers
// `multicastLoop ?? 0`), while the socket does loop. Native: 1.
leakCheckedTest(
  "parity: a new AF_INET datagram socket reads IP_MULTICAST_LOOP as 1 (the kernel default; the Deno backend said 0)",
  () => {
    const sock = socket(AF_INET, SOCK_DGRAM);
    try {
      assert.equal(sock.getsockopt(IPPROTO_IP, IP_MULTICAST_TTL), 1);
      assert.equal(sock.getsockopt(IPPROTO_IP, IP_MULTICAST_LOOP), 1);
    } finally {
      sock.close();
    }
  },
);

// CPython (verified): a bound socket passed as sock= keeps working with
// socket options afterwards (transport.get_extra_info("socket").setsockopt
// IP_MULTICAST_TTL / IP_MULTICAST_LOOP succeed); aionet's equivalents are
// transport.setMulticastTtl/setMulticastLoopback, which work for an
// endpoint made with localAddr.
// aionet, Deno backend: both reject with NotSupported ("… not supported by
// this Deno version: join a group first"). Native: they work.
leakCheckedTest(
  "parity: setMulticastTtl/setMulticastLoopback work on an endpoint made from a socket() passed as sock",
  async () => {
    const sock = socket(AF_INET, SOCK_DGRAM);
    sock.bind({ hostname: LOOPBACK, port: 0 });
    const [transport] = await createDatagramEndpoint(
      () => new DatagramProtocol(),
      { sock },
    );
    try {
      await transport.setMulticastTtl(7);
      await transport.setMulticastLoopback(false);
    } finally {
      transport.close();
    }
  },
);

// CPython (verified): join with setsockopt(IP_ADD_MEMBERSHIP, ip_mreq)
// before create_datagram_endpoint(sock=s); the endpoint receives the
// group's datagrams, and dropping the membership afterwards
// (IP_DROP_MEMBERSHIP on the transport's socket) succeeds; a second drop is
// EADDRNOTAVAIL.
// aionet, Deno backend: the group's datagrams arrive, but
// transport.dropMembership(group, iface) rejects with AddrNotAvailable: the
// membership is tracked on the Socket's own Deno.DatagramConn, not on the
// wrapper the transport gets. Native: works.
leakCheckedTest(
  "parity: dropMembership leaves a group joined by setsockopt(IP_ADD_MEMBERSHIP) before sock= was passed",
  async () => {
    const group = randomGroup();
    const sock = socket(AF_INET, SOCK_DGRAM);
    sock.setsockopt(IPPROTO_IP, IP_ADD_MEMBERSHIP, mreq(group, LOOPBACK));
    sock.bind({ hostname: group, port: 0 });
    const port = (sock.getSockName() as Deno.NetAddr).port;
    const [receiver, members] = await createDatagramEndpoint(
      () => new Members(),
      { sock },
    );
    const [sender] = await createDatagramEndpoint(
      () => new DatagramProtocol(),
      { localAddr: { hostname: LOOPBACK, port: 0 } },
    );
    try {
      sender.sendTo(encode("hello group"), { hostname: group, port });
      await members.received(1);
      assert.deepEqual(members.datagrams, ["hello group"]);
      await receiver.dropMembership(group, LOOPBACK);
      await assert.rejects(
        receiver.dropMembership(group, LOOPBACK),
        Deno.errors.AddrNotAvailable,
      );
    } finally {
      sender.close();
      receiver.close();
    }
  },
);

// ---- Unix stream servers and connections ----

function exists(path: string): Deno.FileInfo | null {
  try {
    return Deno.lstatSync(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return null;
    throw error;
  }
}

// CPython 3.13 (verified: start_unix_server, os.remove(path), a regular
// file written at path, server.close(); wait_closed()): the replacement
// file is kept (the listener's file is unlinked only if its inode still
// matches). A socket bound there by someone else is kept too.
// aionet's native backend keeps it too (dev/ino checked). The Deno backend
// cannot: Deno's own Unix listener unlinks its path on close, whatever is
// there (README, "Differences from asyncio"), so this runs on native only.
nativeBackendTest(
  "closing a Unix server does not remove a file that replaced its socket (native backend; Deno's listener removes it, README)",
  async () => {
    const dir = await Deno.makeTempDir();
    const path = `${dir}/s.sock`;
    try {
      const server = await startUnixServer((_r, w) => w.close(), { path });
      Deno.removeSync(path);
      Deno.writeTextFileSync(path, "not yours");
      server.close();
      await withTimeout(server.waitClosed(), 5000, "waitClosed");
      assert.equal(exists(path)?.isFile, true, "the replacement was removed");
      assert.equal(Deno.readTextFileSync(path), "not yours");
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
);

// CPython (verified, 3.11 and 3.13): open_unix_connection to a regular file
// or a directory raises ConnectionRefusedError (ECONNREFUSED); the file and
// directory are untouched. aionet: ConnectionRefused on both backends.
leakCheckedTest(
  "unix parity: connecting to a regular file or a directory is ConnectionRefused",
  async () => {
    const dir = await Deno.makeTempDir();
    try {
      Deno.writeTextFileSync(`${dir}/file`, "data");
      Deno.mkdirSync(`${dir}/sub`);
      for (const name of ["file", "sub"]) {
        await assert.rejects(
          openUnixConnection({ path: `${dir}/${name}` }),
          Deno.errors.ConnectionRefused,
        );
      }
      assert.equal(Deno.readTextFileSync(`${dir}/file`), "data");
      assert.equal(Deno.statSync(`${dir}/sub`).isDirectory, true);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
);

// CPython 3.13 (verified): a second start_unix_server on the path of a
// live one removes the socket file and binds anew; closing the second
// removes its file. aionet: the same (the first server keeps serving the
// connections it has; new ones reach the second).
leakCheckedTest(
  "unix parity: a second server on a live server's path takes the path over",
  async () => {
    const dir = await Deno.makeTempDir();
    const path = `${dir}/s.sock`;
    try {
      const greet = (text: string) =>
      (
        _r: unknown,
        w: { write(d: Uint8Array): void; close(): void },
      ) => {
        w.write(encode(text));
        w.close();
      };
      const first = await startUnixServer(greet("first"), { path });
      const firstIno = Deno.lstatSync(path).ino;
      const second = await startUnixServer(greet("second"), { path });
      try {
        assert.notEqual(Deno.lstatSync(path).ino, firstIno);
        const [reader, writer] = await openUnixConnection({ path });
        assert.equal(decode(await withTimeout(reader.read())), "second");
        writer.close();
        await writer.waitClosed();
      } finally {
        second.close();
        await withTimeout(second.waitClosed(), 5000, "second waitClosed");
        first.close();
        await withTimeout(first.waitClosed(), 5000, "first waitClosed");
      }
      assert.equal(exists(path), null);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
);
