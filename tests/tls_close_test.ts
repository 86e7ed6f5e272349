// The close that got lost: more than 1 MiB followed by close_notify, in
// both directions, read by a Streams reader (`read(-1)`) and by a protocol
// that pauses reading, over TCP, Unix sockets and after STARTTLS. The
// bytes and the EOF must all arrive: the reader's buffer filling up must
// never make the TLS layer lose the peer's close_notify.

import assert from "node:assert/strict";
import {
  createConnection,
  createServer,
  createUnixConnection,
  createUnixServer,
  openConnection,
  openUnixConnection,
  Protocol,
  startServer,
  startUnixServer,
  type StreamReader,
  type StreamWriter,
  type Transport,
} from "../mod.ts";
import { bytesEqual, nativeBackendTest, pattern } from "./_helpers.ts";
import { CA, encoder, portOf, SERVER, within } from "./_tls_helpers.ts";

const CLIENT_TLS = { caCerts: [CA], serverName: "localhost" };
const SERVER_TLS = { ...SERVER };

/** Where the test listens: TCP on 127.0.0.1 or a Unix socket. */
type Where = "tcp" | "unix";

async function withPlace<T>(
  where: Where,
  fn: (place: { path?: string }) => Promise<T>,
): Promise<T> {
  if (where === "tcp") return await fn({});
  const dir = await Deno.makeTempDir();
  try {
    return await fn({ path: `${dir}/tls.sock` });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

async function streamServer(
  where: Where,
  path: string | undefined,
  handler: (reader: StreamReader, writer: StreamWriter) => Promise<void>,
) {
  return where === "tcp"
    ? await startServer(handler, {
      hostname: "127.0.0.1",
      port: 0,
      tls: SERVER_TLS,
    })
    : await startUnixServer(handler, { path: path!, tls: SERVER_TLS });
}

async function streamClient(
  where: Where,
  path: string | undefined,
  port: number,
) {
  return where === "tcp"
    ? await openConnection({ hostname: "127.0.0.1", port, tls: CLIENT_TLS })
    : await openUnixConnection({ path: path!, tls: CLIENT_TLS });
}

for (const where of ["tcp", "unix"] as const) {
  Deno.test(`TLS close (${where}): 1.5 MiB from the server then close reaches a Streams client's read(-1) whole, with EOF`, async () => {
    await withPlace(where, async ({ path }) => {
      const payload = pattern(1_500_000, 3);
      await using server = await streamServer(where, path, async (_r, w) => {
        w.write(payload);
        w.close();
        await w.waitClosed();
      });
      const port = where === "tcp" ? portOf(server.addrs[0]) : 0;
      const [reader, writer] = await streamClient(where, path, port);
      const data = await within(reader.read(-1));
      assert.equal(data.length, payload.length);
      assert.ok(bytesEqual(data, payload), "the bytes differ");
      assert.equal(reader.atEof(), true);
      writer.close();
      await writer.waitClosed();
    });
  });

  Deno.test(`TLS close (${where}): a 2 MiB upload then close reaches the Streams server's read(-1) whole, with EOF`, async () => {
    await withPlace(where, async ({ path }) => {
      const payload = pattern(2 * 1024 * 1024, 5);
      const received = Promise.withResolvers<Uint8Array>();
      await using server = await streamServer(where, path, async (r, w) => {
        try {
          received.resolve(await r.read(-1));
        } catch (error) {
          received.reject(error);
        }
        w.close();
      });
      const port = where === "tcp" ? portOf(server.addrs[0]) : 0;
      const [, writer] = await streamClient(where, path, port);
      writer.write(payload);
      writer.close();
      await within(writer.waitClosed());
      const data = await within(received.promise);
      assert.equal(data.length, payload.length);
      assert.ok(bytesEqual(data, payload), "the bytes differ");
    });
  });
}

Deno.test("TLS close (STARTTLS): 1.5 MiB then close after an upgrade reaches read(-1) whole", async () => {
  const payload = pattern(1_500_000, 7);
  await using server = await startServer(async (reader, writer) => {
    await reader.readLine();
    writer.write(encoder.encode("go\n"));
    await writer.startTls({ ...SERVER_TLS });
    writer.write(payload);
    writer.close();
    await writer.waitClosed();
  }, { hostname: "127.0.0.1", port: 0 });
  const [reader, writer] = await openConnection({
    hostname: "127.0.0.1",
    port: portOf(server.addrs[0]),
  });
  writer.write(encoder.encode("STARTTLS\n"));
  await within(reader.readLine());
  await within(writer.startTls(CLIENT_TLS));
  const data = await within(reader.read(-1));
  assert.ok(bytesEqual(data, payload), `got ${data.length} bytes`);
  writer.close();
  await writer.waitClosed();
});

/**
 * A protocol with its own flow control, as a StreamReader has: it pauses
 * reading above 64 KiB not yet consumed and a consumer running in later
 * macrotasks takes the bytes and resumes it. Resolves `done` at EOF with
 * every byte received.
 */
class SlowSink extends Protocol {
  #transport?: Transport;
  #chunks: Uint8Array[] = [];
  #unconsumed = 0;
  #paused = false;
  readonly done = Promise.withResolvers<Uint8Array>();
  /** Resolves at connectionLost (the connection and its socket are gone). */
  readonly lost = Promise.withResolvers<void>();
  /** Bytes to send once connected, then close. */
  constructor(readonly send?: Uint8Array) {
    super();
  }
  override connectionMade(transport: Transport): void {
    this.#transport = transport;
    if (this.send !== undefined) {
      transport.write(this.send);
      transport.close();
    }
  }
  override dataReceived(data: Uint8Array): void {
    this.#chunks.push(data);
    this.#unconsumed += data.length;
    if (this.#unconsumed > 64 * 1024 && !this.#paused) {
      this.#paused = true;
      this.#transport!.pauseReading();
      // The consumer works in a later macrotask.
      setTimeout(() => {
        this.#unconsumed = 0;
        this.#paused = false;
        this.#transport!.resumeReading();
      }, 0);
    }
  }
  override eofReceived(): boolean {
    const total = this.#chunks.reduce((n, c) => n + c.length, 0);
    const all = new Uint8Array(total);
    let offset = 0;
    for (const chunk of this.#chunks) {
      all.set(chunk, offset);
      offset += chunk.length;
    }
    this.done.resolve(all);
    return false;
  }
  override connectionLost(exc: Error | null): void {
    this.done.reject(exc ?? new Error("lost before EOF"));
    this.lost.resolve();
  }
}

for (const where of ["tcp", "unix"] as const) {
  Deno.test(`TLS close (${where}, Protocol): 1.5 MiB then close, each way, reaches a pausing protocol whole, with eofReceived`, async () => {
    await withPlace(where, async ({ path }) => {
      for (const direction of ["download", "upload"] as const) {
        const payload = pattern(1_500_000, direction === "download" ? 9 : 11);
        const serverSide = new SlowSink(
          direction === "download" ? payload : undefined,
        );
        serverSide.done.promise.catch(() => {});
        const server = where === "tcp"
          ? await createServer(() => serverSide, {
            hostname: "127.0.0.1",
            port: 0,
            tls: SERVER_TLS,
          })
          : await createUnixServer(() => serverSide, {
            path: path!,
            tls: SERVER_TLS,
          });
        try {
          const client = new SlowSink(
            direction === "upload" ? payload : undefined,
          );
          client.done.promise.catch(() => {});
          if (where === "tcp") {
            await createConnection(() => client, {
              hostname: "127.0.0.1",
              port: portOf(server.addrs[0]),
              tls: CLIENT_TLS,
            });
          } else {
            await createUnixConnection(() => client, {
              path: path!,
              tls: CLIENT_TLS,
            });
          }
          const reader = direction === "download" ? client : serverSide;
          const data = await within(reader.done.promise);
          assert.equal(data.length, payload.length, direction);
          assert.ok(bytesEqual(data, payload), `${direction}: bytes differ`);
          // The client's own close (close_notify, then its socket) ends
          // the test, not only the server's side.
          await within(client.lost.promise);
        } finally {
          server.close();
          server.abortClients();
          await server.waitClosed();
        }
      }
    });
  });
}

nativeBackendTest(
  "TLS close: the transport's socket is the plaintext socket, and connectionLost comes after it closed, also with no read pending",
  async () => {
    // The server writes and closes at once (no read of its own pending).
    // Its descriptor's identity (the socket inode) is taken at connect;
    // when connectionLost runs, that socket must be closed (before the fix
    // it still flushed close_notify, and a test ending there left the
    // plaintext transport and its timers running).
    const seen = Promise.withResolvers<string | null>();
    let link = "";
    const linkOf = (fd: number) => {
      try {
        return Deno.readLinkSync(`/proc/self/fd/${fd}`);
      } catch {
        return null;
      }
    };
    let fd = -1;
    let sockType = -1;
    let bytesOption: unknown = null;
    class WriteAndClose extends Protocol {
      override connectionMade(transport: Transport): void {
        const socket = transport.getExtraInfo("socket") as {
          fileno(): number;
          getsockopt(level: number, option: number): number;
          setsockopt(level: number, option: number, value: unknown): void;
        };
        fd = socket.fileno();
        // Only integer options go down to the plaintext socket.
        try {
          socket.setsockopt(1, 9, new Uint8Array(4));
        } catch (error) {
          bytesOption = error;
        }
        // A TLS transport's socket is the plaintext socket: SOL_SOCKET
        // SO_TYPE reads SOCK_STREAM from the kernel.
        sockType = socket.getsockopt(1, 3);
        link = linkOf(fd) ?? "";
        transport.write(encoder.encode("bye\n"));
        transport.close();
      }
      override connectionLost(): void {
        seen.resolve(linkOf(fd));
      }
    }
    await using server = await createServer(() => new WriteAndClose(), {
      hostname: "127.0.0.1",
      port: 0,
      tls: SERVER_TLS,
    });
    const [reader, writer] = await openConnection({
      hostname: "127.0.0.1",
      port: portOf(server.addrs[0]),
      tls: CLIENT_TLS,
    });
    assert.equal(new TextDecoder().decode(await reader.read(-1)), "bye\n");
    const atLost = await within(seen.promise);
    assert.ok(link.startsWith("socket:"), `fd ${fd} was ${link}`);
    assert.equal(sockType, 1);
    assert.ok(
      bytesOption instanceof TypeError,
      `TypeError, got ${bytesOption}`,
    );
    assert.notEqual(
      atLost,
      link,
      "the socket was still open at connectionLost",
    );
    writer.close();
    await writer.waitClosed();
  },
);
