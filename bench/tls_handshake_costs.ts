// What a TLS connection costs, client and server in one process:
// `deno run -A bench/tls_handshake_costs.ts [ROOT]`, ROOT being an aionet
// checkout (default: this one), so that two trees can be compared in one
// sitting (`git worktree add /tmp/old <commit>`).
//
// A `startServer` with the test certificate (tests/fixtures/mtls/) and 200
// clients at once, each `openConnection` with `tls: { caCerts: [the test
// CA] }`, one 3-byte echo, close; then the same with one client after the
// other. Prints milliseconds per connection (wall time over the number of
// connections), medians of 3 runs, for the Deno backend and, where it can
// run, the native one (a child process each).

const root = Deno.args[0] ?? new URL("..", import.meta.url).pathname;
const fixtures = new URL("../tests/fixtures/mtls/", import.meta.url);
const RUNS = 3;
const CONCURRENT = 200;
const SEQUENTIAL = 50;

async function measure(): Promise<void> {
  const { openConnection, startServer } = await import(`${root}/streams.ts`);
  const cert = await Deno.readTextFile(new URL("server.pem", fixtures));
  const key = await Deno.readTextFile(new URL("server.key", fixtures));
  const ca = await Deno.readTextFile(new URL("ca.pem", fixtures));
  const server = await startServer(
    async (
      reader: { read(n: number): Promise<Uint8Array> },
      writer: {
        write(data: Uint8Array): void;
        drain(): Promise<void>;
        close(): void;
        waitClosed(): Promise<void>;
      },
    ) => {
      writer.write(await reader.read(100));
      await writer.drain();
      writer.close();
      await writer.waitClosed().catch(() => {});
    },
    { hostname: "127.0.0.1", port: 0, backlog: 1024, tls: { cert, key } },
  );
  const port = (server.addrs[0] as Deno.NetAddr).port;
  const one = async () => {
    const [reader, writer] = await openConnection({
      hostname: "127.0.0.1",
      port,
      tls: { caCerts: [ca], serverName: "localhost" },
    });
    writer.write(new Uint8Array([1, 2, 3]));
    await reader.readExactly(3);
    writer.close();
    await writer.waitClosed().catch(() => {});
  };
  const perConnection = async (concurrent: boolean): Promise<number> => {
    const results: number[] = [];
    for (let run = 0; run < RUNS; run++) {
      const start = performance.now();
      if (concurrent) {
        await Promise.all(Array.from({ length: CONCURRENT }, one));
      } else {
        for (let i = 0; i < SEQUENTIAL; i++) await one();
      }
      const n = concurrent ? CONCURRENT : SEQUENTIAL;
      results.push((performance.now() - start) / n);
    }
    results.sort((a, b) => a - b);
    return results[Math.floor(RUNS / 2)];
  };
  await one(); // warm-up
  const together = await perConnection(true);
  const inTurn = await perConnection(false);
  server.close();
  await server.waitClosed();
  console.log(JSON.stringify({ together, inTurn }));
}

if (Deno.env.get("TLS_COSTS_CHILD") === "1") {
  await measure();
} else {
  console.log(
    `| backend | ${CONCURRENT} at once, ms per connection | ` +
      `${SEQUENTIAL} in turn, ms per connection |`,
  );
  console.log("| ------- | ---: | ---: |");
  for (const backend of ["deno", "native"]) {
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", import.meta.filename!, root],
      env: { TLS_COSTS_CHILD: "1", AIONET_BACKEND: backend },
      stdout: "piped",
      stderr: "piped",
    }).output();
    if (!out.success) {
      const reason = new TextDecoder().decode(out.stderr).split("\n")[0];
      console.log(`| ${backend} | skipped: ${reason} | |`);
      continue;
    }
    const result = JSON.parse(new TextDecoder().decode(out.stdout));
    console.log(
      `| ${backend} | ${result.together.toFixed(2)} | ${
        result.inTurn.toFixed(2)
      } |`,
    );
  }
}
