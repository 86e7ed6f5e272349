// What an owned read chunk costs in V8, against memory that is reused:
// `taskset -c 1 deno run --allow-run --allow-read bench/alloc_costs.ts`.
//
// A `Protocol` gets each read as an array it owns (asyncio's `bytes`), and
// `StreamReader.read()` hands out the same. CPython frees such an object
// the moment its last reference goes (reference counting); V8 frees an
// ArrayBuffer's memory only when a garbage collection finds it dead. This
// measures, for 4 GiB of 64 KiB "reads" per strategy, in a fresh process
// each (so that the peak resident set is that strategy's own):
//
// Each "read" copies 64 KiB of source bytes (standing in for the kernel's
// copy) into:
// - reuse:  one buffer, again and again (the raw Deno loop);
// - fresh:  a `new Uint8Array(64 KiB)`, then dropped (a fresh chunk);
// - slice:  a `slice()` of the source, then dropped (copy-out);
// - slab:   views of 256 KiB slabs, a new slab every 4 reads;
// - freed:  `slice()`, then freed at once with `buffer.transfer(0)`: what
//           reference counting gives CPython, possible only where the code
//           knows nobody holds the chunk any more.
//
// Prints µs per 64 KiB read and the peak RSS (MiB) of each; the resident
// set is sampled every 256 reads.

const STRATEGIES = ["reuse", "fresh", "slice", "slab", "freed"] as const;
type Strategy = typeof STRATEGIES[number];
const CHUNK = 64 * 1024;
const SLAB = 256 * 1024;
const TOTAL = 4 * 1024 * 1024 * 1024;

function measure(strategy: Strategy): void {
  const source = new Uint8Array(CHUNK).fill(7);
  const reused = new Uint8Array(CHUNK);
  let slab = new Uint8Array(SLAB);
  let slabUsed = 0;
  let sink = 0;
  let peak = 0;
  const reads = TOTAL / CHUNK;
  const start = performance.now();
  for (let i = 0; i < reads; i++) {
    let chunk: Uint8Array;
    switch (strategy) {
      case "reuse":
        chunk = reused;
        chunk.set(source);
        break;
      case "fresh":
        chunk = new Uint8Array(CHUNK);
        chunk.set(source);
        break;
      case "slice":
      case "freed":
        chunk = source.slice();
        break;
      case "slab":
        if (SLAB - slabUsed < CHUNK) {
          slab = new Uint8Array(SLAB);
          slabUsed = 0;
        }
        chunk = slab.subarray(slabUsed, slabUsed + CHUNK);
        chunk.set(source);
        slabUsed += CHUNK;
        break;
    }
    sink += chunk[i & 1023];
    if (strategy === "freed") (chunk.buffer as ArrayBuffer).transfer(0);
    if ((i & 255) === 0) peak = Math.max(peak, Deno.memoryUsage().rss);
  }
  const elapsed = performance.now() - start;
  console.log(JSON.stringify({
    strategy,
    usPerRead: (elapsed * 1000) / reads,
    peakRssMiB: peak / 1048576,
    sink,
  }));
}

if (Deno.args[0] === "--one") {
  measure(Deno.args[1] as Strategy);
} else {
  console.log("| strategy | µs per 64 KiB read | peak RSS (MiB) |");
  console.log("| -------- | -----------------: | -------------: |");
  for (const strategy of STRATEGIES) {
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", import.meta.filename!, "--one", strategy],
      stdout: "piped",
    }).output();
    const result = JSON.parse(new TextDecoder().decode(out.stdout));
    console.log(
      `| ${strategy} | ${result.usPerRead.toFixed(2)} | ${
        result.peakRssMiB.toFixed(0)
      } |`,
    );
  }
}
