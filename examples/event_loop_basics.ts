/**
 * Seed S002-d (seeds/002_6b9579778871f933.txt): the event loop's "hello
 * world", `loop.run_until_complete(hello_world())`, followed by the other
 * basics the seed's section explains: `call_soon`, `call_later`,
 * `run_forever` and `stop`.
 *
 * The Python it ports:
 *
 * ```python
 * @asyncio.coroutine
 * def hello_world():
 *     print("Hello World!")
 *
 * loop = asyncio.get_event_loop()
 * # Blocking call which returns when the hello_world() coroutine is done
 * loop.run_until_complete(hello_world())
 * loop.close()
 * ```
 *
 * JavaScript cannot block, so `runUntilComplete()` returns a promise:
 * `await loop.runUntilComplete(helloWorld())`.
 *
 * Run: `deno run examples/event_loop_basics.ts`
 *
 * @module
 */

import { getEventLoop } from "../events.ts";

// The seed's generator-based coroutine: here an async function.
// deno-lint-ignore require-await
async function helloWorld(): Promise<void> {
  console.log("Hello World!");
}

async function main(): Promise<void> {
  const loop = getEventLoop();
  // Returns (resolves) when the hello_world() coroutine is done.
  await loop.runUntilComplete(helloWorld());

  // Callbacks: call_soon runs next, call_later after a delay (ms), and
  // stop() makes run_forever() return.
  loop.callSoon(
    (name: string) => console.log(`call_soon: hello ${name}`),
    "loop",
  );
  loop.callLater(20, () => console.log("call_later: 20 ms later"));
  loop.callLater(40, () => {
    console.log("stop: run_forever returns");
    loop.stop();
  });
  await loop.runForever();
  console.log(`is_running: ${loop.isRunning()}`);
  loop.close();
  console.log(`is_closed: ${loop.isClosed()}`);
}

if (import.meta.main) await main();
