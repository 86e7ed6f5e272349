// What the native poller's choices cost on this machine:
// `deno run -A bench/native_poller_costs.ts`.
//
// - a setImmediate turn (the poller's yield while busy);
// - a synchronous epoll_wait(…, 0) (one busy tick's system call);
// - a nonblocking FFI epoll_wait that returns at once (an eventfd already
//   signalled): the thread hop a park costs even when nothing waits;
// - the wake of a parked wait: the background call is blocked in the
//   kernel, JS writes the eventfd, time until the promise resolves;
// - a whole idle echo round trip through the native handles when the
//   poller is parked between messages, against one while it spins.
// Medians of many runs, in µs.

import { setImmediate } from "node:timers";
import {
  EFD_CLOEXEC,
  EFD_NONBLOCK,
  EPOLL_CLOEXEC,
  EPOLL_CTL_ADD,
  EPOLLIN,
  layout,
  openLibc,
} from "../_native_libc.ts";
import { createNativeBackend } from "../_native_backend.ts";
import { poller } from "../_native_poller.ts";

const sys = openLibc();
const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[s.length >> 1];
};
const turn = () => new Promise<void>((resolve) => setImmediate(resolve));

// setImmediate turn.
{
  const runs: number[] = [];
  for (let r = 0; r < 21; r++) {
    const start = performance.now();
    for (let i = 0; i < 2000; i++) await turn();
    runs.push((performance.now() - start) * 1000 / 2000);
  }
  console.log(`setImmediate turn:             ${median(runs).toFixed(2)} µs`);
}

const epfd = sys.epoll_create1(EPOLL_CLOEXEC);
const efd = sys.eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
const event = new Uint8Array(new ArrayBuffer(16));
new DataView(event.buffer).setUint32(0, EPOLLIN, true);
sys.epoll_ctl(epfd, EPOLL_CTL_ADD, efd, event);
const events = new Uint8Array(new ArrayBuffer(layout.epollEventSize * 64));
const one = new Uint8Array(new ArrayBuffer(8));
one[0] = 1;
const drain = new Uint8Array(new ArrayBuffer(8));

// Synchronous epoll_wait(…, 0) with nothing ready.
{
  const runs: number[] = [];
  for (let r = 0; r < 21; r++) {
    const start = performance.now();
    for (let i = 0; i < 20_000; i++) sys.epoll_wait(epfd, events, 64, 0);
    runs.push((performance.now() - start) * 1000 / 20_000);
  }
  console.log(`epoll_wait(…, 0), sync:        ${median(runs).toFixed(2)} µs`);
}

// Nonblocking call that returns at once: the thread hop alone.
{
  sys.write(efd, one, 8n);
  const runs: number[] = [];
  for (let r = 0; r < 2000; r++) {
    const start = performance.now();
    await sys.epoll_wait_blocking(epfd, events, 64, -1);
    runs.push((performance.now() - start) * 1000);
  }
  sys.read(efd, drain, 8n);
  console.log(`nonblocking call, ready:       ${median(runs).toFixed(2)} µs`);
}

// A parked wait woken by JS.
{
  const runs: number[] = [];
  for (let r = 0; r < 500; r++) {
    const pending = sys.epoll_wait_blocking(epfd, events, 64, -1);
    // Give the worker thread time to block in the kernel.
    for (let i = 0; i < 20; i++) await turn();
    const start = performance.now();
    sys.write(efd, one, 8n);
    await pending;
    runs.push((performance.now() - start) * 1000);
    sys.read(efd, drain, 8n);
  }
  console.log(`wake of a parked wait:         ${median(runs).toFixed(2)} µs`);
}
sys.close(efd);
sys.close(epfd);

// Idle round trips through the native handles: parked vs spinning.
{
  const backend = createNativeBackend();
  const listener = backend.listenTcp({
    hostname: "127.0.0.1",
    port: 0,
    backlog: 4,
    reusePort: false,
  });
  const accepted = Promise.withResolvers<
    import("../_backend.ts").StreamHandle
  >();
  listener.acceptStart({
    accepted: (handle) => accepted.resolve(handle),
    acceptError: (error) => accepted.reject(error),
  });
  const client = await backend.connectTcp({
    hostname: "127.0.0.1",
    port: (listener.addr as Deno.NetAddr).port,
  });
  const server = await accepted.promise;
  const buffer = new Uint8Array(64);
  server.readStart({
    readBuffer: () => buffer,
    readDone: (data, n) => void server.write(data.subarray(0, n)),
    readEof() {},
    readError() {},
  });
  let arrived: (() => void) | null = null;
  client.readStart({
    readBuffer: () => buffer,
    readDone: () => arrived?.(),
    readEof() {},
    readError() {},
  });
  const message = new Uint8Array([1]);
  const roundTrip = async () => {
    const done = new Promise<void>((resolve) => arrived = resolve);
    const start = performance.now();
    client.write(message);
    await done;
    return (performance.now() - start) * 1000;
  };
  const parked: number[] = [];
  const spinning: number[] = [];
  for (let r = 0; r < 300; r++) {
    // Wait until parked (bounded), then time one round trip.
    for (let i = 0; i < 10_000 && poller().stats().state !== "parked"; i++) {
      await turn();
    }
    parked.push(await roundTrip());
    spinning.push(await roundTrip());
  }
  console.log(
    `echo round trip from parked:   ${median(parked).toFixed(2)} µs`,
  );
  console.log(
    `echo round trip, spinning:     ${median(spinning).toFixed(2)} µs`,
  );
  console.log(`poller: ${JSON.stringify(poller().stats())}`);
  await client.close();
  await server.close();
  await listener.close();
}
