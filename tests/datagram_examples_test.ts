// Runs the datagram examples as subprocesses (as `deno run -A
// examples/<name>.ts` from the repository root, whose deno.json enables
// --unstable-net) and checks what they print.
// Run: deno test -A --sanitize-ops --sanitize-resources tests/datagram_examples_test.ts

import assert from "node:assert/strict";

const ROOT = new URL("..", import.meta.url);
const decoder = new TextDecoder();

/** Waits for `promise`, failing after `ms`; the timer is always cleared. */
async function within<T>(
  promise: Promise<T>,
  what: string,
  ms = 15_000,
): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`Timed out after ${ms} ms: ${what}`)),
      ms,
    );
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

function command(example: string, args: string[]): Deno.Command {
  return new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", `examples/${example}`, ...args],
    cwd: ROOT,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  });
}

/** Runs an example to completion (killed if it takes too long). */
async function run(
  example: string,
  args: string[],
): Promise<{ code: number; lines: string[]; stderr: string }> {
  const child = command(example, args).spawn();
  try {
    const output = await within(child.output(), example);
    return {
      code: output.code,
      lines: decoder.decode(output.stdout).trimEnd().split("\n"),
      stderr: decoder.decode(output.stderr),
    };
  } catch (error) {
    child.kill("SIGKILL");
    await child.status;
    throw error;
  }
}

/** A running example whose stdout lines are collected as they come. */
class Running {
  lines: string[] = [];
  #child: Deno.ChildProcess;
  #reading: Promise<void>;
  #stderr: Promise<string>;
  #waiters: Array<() => void> = [];

  constructor(example: string, args: string[]) {
    this.#child = command(example, args).spawn();
    this.#reading = this.#read();
    this.#stderr = new Response(this.#child.stderr).text();
  }

  async #read(): Promise<void> {
    let partial = "";
    for await (
      const chunk of this.#child.stdout.pipeThrough(new TextDecoderStream())
    ) {
      const parts = (partial + chunk).split("\n");
      partial = parts.pop()!;
      this.lines.push(...parts);
      for (const wake of this.#waiters.splice(0)) wake();
    }
    if (partial) this.lines.push(partial);
    for (const wake of this.#waiters.splice(0)) wake();
  }

  /** Resolves with the first line matching `pattern`. */
  async line(pattern: RegExp): Promise<string> {
    const find = () => this.lines.find((line) => pattern.test(line));
    let found = find();
    while (found === undefined) {
      const { promise, resolve } = Promise.withResolvers<void>();
      this.#waiters.push(resolve);
      await within(promise, `a line matching ${pattern}`);
      found = find();
    }
    return found;
  }

  /** Sends `signal` and waits for the exit. */
  async stop(signal: Deno.Signal): Promise<{ code: number; stderr: string }> {
    this.#child.kill(signal);
    return await this.finish();
  }

  /** Waits for the exit and the end of output. */
  async finish(): Promise<{ code: number; stderr: string }> {
    try {
      const status = await within(this.#child.status, "exit");
      await this.#reading;
      return { code: status.code, stderr: await this.#stderr };
    } catch (error) {
      this.#child.kill("SIGKILL");
      await this.#child.status;
      await this.#reading;
      await this.#stderr;
      throw error;
    }
  }
}

const TIME = /^Now is : \d{4}-\d\d-\d\d \d\d:\d\d:\d\d$/;

Deno.test("udp_time_server + udp_time_client (seed 004 S004-f)", async () => {
  const server = new Running("udp_time_server.ts", ["--port", "0"]);
  let stopped = false;
  try {
    const serving = await server.line(/^Serving on /);
    const port = serving.split(":").pop()!;
    const client = await run("udp_time_client.ts", [
      "--port",
      port,
      "--count",
      "3",
      "--interval",
      "20",
    ]);
    assert.equal(client.code, 0, client.stderr);
    assert.equal(client.lines.length, 3, client.lines.join("\n"));
    for (const line of client.lines) assert.match(line, TIME);

    await server.line(/replied/);
    const result = await server.stop("SIGINT");
    stopped = true;
    assert.equal(result.code, 0, result.stderr);
    assert.equal(server.lines[0], "Starting UDP server");
    assert.equal(server.lines[1], `Serving on 127.0.0.1:${port}`);
    const rest = server.lines.slice(2);
    assert.equal(rest.length, 6, rest.join("\n"));
    for (let i = 0; i < 3; i++) {
      assert.match(rest[2 * i], /^Received from \('127\.0\.0\.1', \d+\)$/);
      assert.equal(rest[2 * i + 1], "replied");
    }
  } finally {
    if (!stopped) await server.stop("SIGKILL").catch(() => {});
  }
});

Deno.test("udp_time_client gives up a round with no reply (--timeout)", async () => {
  // A socket that never answers: the datagrams just queue there.
  const silent = Deno.listenDatagram({
    transport: "udp",
    hostname: "127.0.0.1",
    port: 0,
  });
  try {
    const port = String((silent.addr as Deno.NetAddr).port);
    const client = await run("udp_time_client.ts", [
      "--port",
      port,
      "--count",
      "2",
      "--interval",
      "10",
      "--timeout",
      "150",
    ]);
    assert.equal(client.code, 0, client.stderr);
    assert.deepEqual(client.lines, [
      "No reply within 150 ms",
      "No reply within 150 ms",
    ]);
    // Both requests did reach the port.
    for (let i = 0; i < 2; i++) {
      const [data] = await within(silent.receive(), "request");
      assert.equal(decoder.decode(data), "ask for me");
    }
  } finally {
    silent.close();
  }
});

Deno.test("multicast_ssdp (seed 000 S000-a): two listeners share the port and answer", async () => {
  const result = await run("multicast_ssdp.ts", [
    "--port",
    "0",
    // Listen on the group address only: nothing on a real interface.
    "--bind",
    "239.255.255.250",
  ]);
  assert.equal(result.code, 0, result.stderr);
  const [first, ...rest] = result.lines;
  assert.match(
    first,
    /^2 listeners joined 239\.255\.255\.250 on 127\.0\.0\.1, port \d+$/,
  );
  const port = first.split(" ").pop();
  assert.equal(rest.at(-1), "2 answers");
  const heard = rest.filter((line) => line.includes(": M-SEARCH from"));
  assert.deepEqual(
    heard.map((line) => line.split(":")[0]).sort(),
    ["listener-1", "listener-2"],
  );
  for (const line of heard) {
    assert.match(line, /M-SEARCH from \('127\.0\.0\.1', \d+\)$/);
  }
  const answers = rest.filter((line) => line.startsWith("searcher: answer"));
  assert.equal(answers.length, 2);
  for (const line of answers) {
    assert.ok(line.includes(`('127.0.0.1', ${port})`), line);
  }
  assert.deepEqual(
    answers.map((line) => line.split("USN: ")[1]).sort(),
    [
      "uuid:aionet-listener-1::upnp:rootdevice",
      "uuid:aionet-listener-2::upnp:rootdevice",
    ],
  );
});

Deno.test("unix_datagram_pair: send-only endpoint to a bound receiver", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/pair.sock`;
    const result = await run("unix_datagram_pair.ts", ["--path", path]);
    assert.equal(result.code, 0, result.stderr);
    assert.deepEqual(result.lines, [
      "Bound endpoint: A Unix datagram endpoint bound to a path is not supported (NotSupported)",
      `Receiver bound to ${path}`,
      "sent: datagram 1 of 3",
      "sent: datagram 2 of 3",
      "sent: datagram 3 of 3",
      "received: datagram 1 of 3 (from an unbound socket)",
      "received: datagram 2 of 3 (from an unbound socket)",
      "received: datagram 3 of 3 (from an unbound socket)",
    ]);
    // The example cleans up its socket file.
    await assert.rejects(Deno.lstat(path), Deno.errors.NotFound);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
