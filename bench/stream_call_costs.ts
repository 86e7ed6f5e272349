// The fixed cost of the Streams calls an echo loop makes per message, in
// process (no sockets): `deno run -A bench/stream_call_costs.ts [ROOT]`,
// ROOT being an aionet checkout (default: this one), so that two trees can
// be compared in one sitting (`git worktree add /tmp/old <commit>`).
//
// - `await writer.drain()` with nothing to wait for (the usual case);
// - `reader.read()` on an empty reader, then `feedData()` wakes it;
// - `reader.readLine()` of a line already buffered (1,000 per feed);
// - a 4-byte header and a 60-byte body with `readExactly()`, buffered;
// - `reader.read(100)` of data already buffered;
// - `reader.readUntil("\r\n")` of a line already buffered;
// - `writer.write()` then `await reader.read(65536)` on the other end of a
//   memory pair (testing.ts), one byte at a time.
// Medians of 5 runs of 200,000 calls, ns per call.

const root = Deno.args[0] ?? new URL("..", import.meta.url).pathname;
const { createStreamPair } = await import(`${root}/testing.ts`);
const { StreamReader } = await import(`${root}/streams.ts`);

const N = 200_000;
const RUNS = 5;

async function time(name: string, body: () => Promise<void>): Promise<void> {
  const results: number[] = [];
  for (let run = 0; run < RUNS; run++) {
    const start = performance.now();
    await body();
    results.push(((performance.now() - start) * 1e6) / N);
  }
  results.sort((a, b) => a - b);
  console.log(`${name.padEnd(40)} ${results[RUNS >> 1].toFixed(0)} ns`);
}

const [[readerA, writerA], [readerB, writerB]] = createStreamPair();
const byte = new Uint8Array(1);

await time("await writer.drain()", async () => {
  for (let i = 0; i < N; i++) await writerA.drain();
});
await time("read() that waits, then feedData()", async () => {
  const reader = new StreamReader();
  const chunk = new Uint8Array(16);
  for (let i = 0; i < N; i++) {
    const read = reader.read(100);
    reader.feedData(chunk);
    await read;
  }
});
await time("readLine() of a buffered line", async () => {
  const reader = new StreamReader();
  const line = new TextEncoder().encode("GET /index.html HTTP/1.1 a header\n");
  const batch = new Uint8Array(line.length * 1000);
  for (let i = 0; i < 1000; i++) batch.set(line, i * line.length);
  for (let i = 0; i < N; i += 1000) {
    reader.feedData(batch);
    for (let j = 0; j < 1000; j++) await reader.readLine();
  }
});
await time("readExactly(4) + readExactly(60), buffered", async () => {
  const reader = new StreamReader();
  const batch = new Uint8Array(64 * 1000);
  for (let i = 0; i < N; i += 1000) {
    reader.feedData(batch);
    for (let j = 0; j < 1000; j++) {
      await reader.readExactly(4);
      await reader.readExactly(60);
    }
  }
});
await time("read(100) of buffered data", async () => {
  const reader = new StreamReader();
  const batch = new Uint8Array(100 * 1000);
  for (let i = 0; i < N; i += 1000) {
    reader.feedData(batch);
    for (let j = 0; j < 1000; j++) await reader.read(100);
  }
});
await time('readUntil("\\r\\n") of a buffered line', async () => {
  const reader = new StreamReader();
  const line = new TextEncoder().encode("Host: example.com\r\n");
  const batch = new Uint8Array(line.length * 1000);
  for (let i = 0; i < 1000; i++) batch.set(line, i * line.length);
  for (let i = 0; i < N; i += 1000) {
    reader.feedData(batch);
    for (let j = 0; j < 1000; j++) await reader.readUntil("\r\n");
  }
});
await time("write + read across the pair", async () => {
  for (let i = 0; i < N; i++) {
    writerA.write(byte);
    await readerB.read(65536);
  }
});

writerA.close();
writerB.close();
await readerA.read();
await readerB.read();
await writerA.waitClosed();
await writerB.waitClosed();
