// Parity of the subprocess API with CPython asyncio (Lib/asyncio/subprocess.py,
// base_subprocess.py, unix_events.py, base_events.py). Every expectation was
// checked against CPython 3.11 with a small asyncio script first. Tests named
// "parity: ..." pin a difference that a porting user can observe; the others
// pin behaviour that already matches. Real children (sh, coreutils), no
// sleeps as synchronisation, every child reaped.

import assert from "node:assert/strict";
import { SubprocessProtocol } from "../protocols.ts";
import type { SubprocessTransport } from "../transports.ts";
import {
  createSubprocessExec,
  createSubprocessShell,
  DEVNULL,
  PIPE,
  subprocessExec,
} from "../subprocess.ts";
import { LimitOverrunError } from "../streams.ts";
import { decode, encode, withTimeout } from "./_helpers.ts";

const TIMEOUT = 20_000;

/** Pids of this process's children whose argv contains `marker`. */
function childrenWithArg(marker: string): number[] {
  const found: number[] = [];
  for (const entry of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(entry.name)) continue;
    try {
      const stat = Deno.readTextFileSync(`/proc/${entry.name}/stat`);
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      const argv = Deno.readTextFileSync(`/proc/${entry.name}/cmdline`)
        .split("\0");
      if (ppid === Deno.pid && argv.includes(marker)) {
        found.push(Number(entry.name));
      }
    } catch {
      // The process went away while we looked.
    }
  }
  return found;
}

function processExists(pid: number): boolean {
  try {
    Deno.statSync(`/proc/${pid}`);
    return true;
  } catch {
    return false;
  }
}

/** Records the callbacks of a subprocess transport. */
class Recorder extends SubprocessProtocol {
  readonly events: string[] = [];
  readonly lost = Promise.withResolvers<Error | null>();
  override pipeConnectionLost(fd: 0 | 1 | 2, exc: Error | null): void {
    this.events.push(`pipeLost${fd}:${exc === null ? "null" : exc.name}`);
  }
  override processExited(): void {
    this.events.push("exited");
  }
  override connectionLost(exc: Error | null): void {
    this.events.push("lost");
    this.lost.resolve(exc);
  }
}

// ---------------------------------------------------------------------------
// Differences found by this file (each failed before its fix).

// CPython: BaseEventLoop.subprocess_exec (base_events.py) calls
// protocol_factory() before _make_subprocess_transport() spawns the child,
// so a factory that raises starts no process (verified: a child that would
// `touch` a marker file never ran). aionet, before the fix: _subprocess_spawn.ts
// subprocessExec() called spawn() first and the factory after, so the child
// runs (and is leaked: no transport ever watches or reaps it).
Deno.test("parity: a protocol factory that throws starts no child", async () => {
  const marker = `${1000 + Math.floor(Math.random() * 1e6)}.5`;
  const boom = new Error("factory failed");
  let leaked: number[] = [];
  try {
    await assert.rejects(
      subprocessExec(
        () => {
          throw boom;
        },
        "sleep",
        [marker],
        { stdin: DEVNULL, stdout: DEVNULL, stderr: DEVNULL },
      ),
      (e) => e === boom,
    );
    // Spawning is synchronous (exec has happened when spawn() returns), so
    // a child started by the call is visible now.
    leaked = childrenWithArg(marker);
    assert.deepEqual(leaked, [], "a child was spawned by the failed call");
  } finally {
    // Clean up what the bug leaves behind: kill the orphaned child and let
    // Deno's own waiter reap it (bounded poll, cleanup only).
    for (const pid of leaked) Deno.kill(pid, "SIGKILL");
    for (let i = 0; i < 500 && leaked.some(processExists); i++) {
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  }
});

// CPython: after wait() the transport has run _call_connection_lost, which
// drops its Popen (base_subprocess.py BaseSubprocessTransport
// _call_connection_lost sets _proc = None), so Process.kill()/terminate()/
// send_signal() raise ProcessLookupError via _check_proc() (verified, for a
// child with no pipes and after communicate()). aionet has no
// ProcessLookupError; the Deno error for ESRCH is NotFound (Deno.kill() of a
// dead pid throws it). aionet, before the fix: _subprocess_transport.ts
// ChildProcessTransport#signal returned silently once the returncode is set.
Deno.test("parity: kill()/terminate()/sendSignal() after wait() throw (ProcessLookupError)", async () => {
  const proc = await createSubprocessExec("sh", ["-c", "exit 0"]);
  assert.equal(await withTimeout(proc.wait(), TIMEOUT), 0);
  assert.throws(() => proc.kill(), Deno.errors.NotFound);
  assert.throws(() => proc.terminate(), Deno.errors.NotFound);
  assert.throws(() => proc.sendSignal("SIGTERM"), Deno.errors.NotFound);

  const piped = await createSubprocessExec("sh", ["-c", "echo hi"], {
    stdout: PIPE,
  });
  const [out] = await withTimeout(piped.communicate(), TIMEOUT);
  assert.equal(decode(out!), "hi\n");
  assert.throws(() => piped.kill(), Deno.errors.NotFound);
});

// CPython: once connection_lost() has been called, transport.kill()
// raises ProcessLookupError (base_subprocess.py _check_proc; verified with
// loop.subprocess_exec + close() + kill()). aionet, before the fix:
// ChildProcessTransport.kill did nothing (_subprocess_transport.ts ChildProcessTransport#signal).
Deno.test("parity: transport.kill() after connectionLost throws (ProcessLookupError)", async () => {
  const [transport, protocol] = await subprocessExec(
    () => new Recorder(),
    "sleep",
    ["30"],
  );
  transport.close();
  assert.equal(await withTimeout(protocol.lost.promise, TIMEOUT), null);
  assert.equal(transport.getReturnCode(), -9);
  assert.throws(() => transport.kill(), Deno.errors.NotFound);
  assert.throws(() => transport.sendSignal("SIGTERM"), Deno.errors.NotFound);
});

// CPython: communicate(input) when stdin is not a pipe fails (Process.
// _feed_stdin calls self.stdin.write with stdin None: AttributeError;
// verified) — the input is not silently thrown away. aionet, before the
// fix: Process#feedStdin returned early when stdin was null and
// communicate() resolved as if the input had been sent. Now a TypeError
// saying what to do (asyncio's AttributeError is incidental).
Deno.test("parity: communicate(input) without a stdin pipe rejects", async () => {
  const proc = await createSubprocessExec("sh", ["-c", "echo x"], {
    stdout: PIPE,
  });
  try {
    await assert.rejects(
      withTimeout(proc.communicate(encode("lost input")), TIMEOUT),
      TypeError,
    );
  } finally {
    await withTimeout(proc.stdout!.read(), TIMEOUT);
    await withTimeout(proc.wait(), TIMEOUT);
  }
});

// ---------------------------------------------------------------------------
// Behaviour that matches asyncio.

Deno.test("returncode: null while running, concurrent wait()s agree, 137 is an exit code", async () => {
  const proc = await createSubprocessExec("sh", ["-c", "read x; exit 7"], {
    stdin: PIPE,
  });
  assert.equal(proc.returncode, null);
  const waits = [proc.wait(), proc.wait()];
  proc.stdin!.close();
  assert.deepEqual(await withTimeout(Promise.all(waits), TIMEOUT), [7, 7]);
  assert.equal(await proc.wait(), 7);
  assert.equal(proc.returncode, 7);

  // A plain exit status above 128 is not mistaken for a signal.
  const high = await createSubprocessShell("exit 137");
  assert.equal(await withTimeout(high.wait(), TIMEOUT), 137);
  // A child that signals itself: minus the signal number (SIGABRT = 6).
  const aborted = await createSubprocessShell("kill -ABRT $$");
  assert.equal(await withTimeout(aborted.wait(), TIMEOUT), -6);
});

Deno.test("SIGSTOP/SIGCONT is not an exit", async () => {
  const proc = await createSubprocessExec("cat", [], {
    stdin: PIPE,
    stdout: PIPE,
  });
  proc.sendSignal("SIGSTOP");
  proc.sendSignal("SIGCONT");
  proc.stdin!.write(encode("still here\n"));
  await withTimeout(proc.stdin!.drain(), TIMEOUT);
  assert.equal(
    decode(await withTimeout(proc.stdout!.readLine(), TIMEOUT)),
    "still here\n",
  );
  assert.equal(proc.returncode, null);
  const [rest] = await withTimeout(proc.communicate(), TIMEOUT);
  assert.equal(rest!.length, 0);
  assert.equal(proc.returncode, 0);
});

Deno.test("communicate(): 3 MB on stdout and stderr at once, small limit, no deadlock", async () => {
  const size = 3_000_000;
  const proc = await createSubprocessShell(
    `head -c ${size} /dev/zero >&2 & head -c ${size} /dev/zero; wait`,
    { stdout: PIPE, stderr: PIPE, limit: 1024 },
  );
  const [out, err] = await withTimeout(proc.communicate(), TIMEOUT);
  assert.equal(out!.length, size);
  assert.equal(err!.length, size);
  assert.equal(proc.returncode, 0);
});

Deno.test("communicate() twice, and after reading part of stdout", async () => {
  const proc = await createSubprocessShell("echo a; echo b; echo e >&2", {
    stdout: PIPE,
    stderr: PIPE,
  });
  assert.equal(
    decode(await withTimeout(proc.stdout!.readLine(), TIMEOUT)),
    "a\n",
  );
  const [out, err] = await withTimeout(proc.communicate(), TIMEOUT);
  assert.equal(decode(out!), "b\n");
  assert.equal(decode(err!), "e\n");
  // asyncio gives (b'', b'') the second time.
  const [out2, err2] = await withTimeout(proc.communicate(), TIMEOUT);
  assert.equal(out2!.length, 0);
  assert.equal(err2!.length, 0);
  assert.equal(proc.returncode, 0);
});

Deno.test("the limit option: readLine/readUntil over it on a child's stdout", async () => {
  const line = "a".repeat(20);
  const proc = await createSubprocessExec("sh", [
    "-c",
    `printf '${line}\\nb\\n'; printf '${line}\\nc\\n' >&2`,
  ], { stdout: PIPE, stderr: PIPE, limit: 10 });
  // readline over the limit: the line is discarded (asyncio: ValueError;
  // LimitOverrunError here is a listed difference), the next line follows.
  await assert.rejects(proc.stdout!.readLine(), LimitOverrunError);
  assert.equal(
    decode(await withTimeout(proc.stdout!.readLine(), TIMEOUT)),
    "b\n",
  );
  assert.equal(decode(await withTimeout(proc.stdout!.readLine(), TIMEOUT)), "");
  // readuntil over the limit leaves the data (asyncio: consumed == 20).
  await assert.rejects(
    proc.stderr!.readUntil("\n"),
    (e) => e instanceof LimitOverrunError && e.consumed === 20,
  );
  assert.equal(
    decode(await withTimeout(proc.stderr!.read(), TIMEOUT)),
    `${line}\nc\n`,
  );
  assert.equal(await withTimeout(proc.wait(), TIMEOUT), 0);
});

Deno.test("stdin.writeEof() ends the child's input", async () => {
  const proc = await createSubprocessExec("cat", [], {
    stdin: PIPE,
    stdout: PIPE,
  });
  assert.equal(proc.stdin!.canWriteEof(), true);
  proc.stdin!.write(encode("abc"));
  proc.stdin!.writeEof();
  assert.equal(decode(await withTimeout(proc.stdout!.read(), TIMEOUT)), "abc");
  assert.equal(await withTimeout(proc.wait(), TIMEOUT), 0);
  await withTimeout(proc.stdin!.waitClosed(), TIMEOUT);
});

Deno.test("spawn errors and lookups: 127 from the shell, NotFound, PermissionDenied, PATH of env, cwd", async () => {
  const shell = await createSubprocessShell("aionet_no_such_command_x", {
    stderr: PIPE,
  });
  const [, err] = await withTimeout(shell.communicate(), TIMEOUT);
  assert.ok(err!.length > 0);
  assert.equal(shell.returncode, 127);

  // FileNotFoundError / PermissionError in asyncio.
  await assert.rejects(
    createSubprocessExec("true", [], { cwd: "/nonexistent/aionet-dir" }),
    Deno.errors.NotFound,
  );
  await assert.rejects(
    createSubprocessExec("/etc/passwd", []),
    Deno.errors.PermissionDenied,
  );
  // The program is looked up in the child's PATH when env is given.
  await assert.rejects(
    createSubprocessExec("sh", ["-c", "true"], {
      env: { PATH: "/nonexistent" },
    }),
    Deno.errors.NotFound,
  );
  // A relative program is found relative to cwd.
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${dir}/prog.sh`, "#!/bin/sh\necho inside\n", {
      mode: 0o755,
    });
    const proc = await createSubprocessExec("./prog.sh", [], {
      stdout: PIPE,
      cwd: dir,
    });
    const [out] = await withTimeout(proc.communicate(), TIMEOUT);
    assert.equal(decode(out!), "inside\n");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
  // Unknown options are refused, naming them.
  await assert.rejects(
    createSubprocessExec("true", [], { shell: true } as never),
    (e) => e instanceof TypeError && /shell/.test(e.message),
  );
});

Deno.test("protocol: close() ends every pipe with null, then processExited, connectionLost", async () => {
  const [transport, protocol] = await subprocessExec(
    () => new Recorder(),
    "sleep",
    ["30"],
  );
  const t: SubprocessTransport = transport;
  assert.ok(t.getPid() > 0);
  t.close();
  assert.equal(await withTimeout(protocol.lost.promise, TIMEOUT), null);
  assert.deepEqual(
    [...protocol.events].sort(),
    ["exited", "lost", "pipeLost0:null", "pipeLost1:null", "pipeLost2:null"],
  );
  assert.deepEqual(protocol.events.slice(-2), ["exited", "lost"]);
  assert.equal(t.getReturnCode(), -9);
});
