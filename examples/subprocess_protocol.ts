/**
 * A `SubprocessProtocol` that collects a child's output, as the asyncio
 * documentation's `loop.subprocess_exec` example does (there the child is
 * `python -c "import datetime; print(datetime.datetime.now())"`; here it is
 * a `deno eval` child printing the date).
 *
 * The Python it ports, in short:
 *
 * ```python
 * class DateProtocol(asyncio.SubprocessProtocol):
 *     def __init__(self, exit_future):
 *         self.exit_future = exit_future
 *         self.output = bytearray()
 *     def pipe_data_received(self, fd, data):
 *         self.output.extend(data)
 *     def process_exited(self):
 *         self.exit_future.set_result(True)
 *
 * exit_future = asyncio.Future(loop=loop)
 * transport, protocol = await loop.subprocess_exec(
 *     lambda: DateProtocol(exit_future), sys.executable, '-c', code, stdin=None, stderr=None)
 * await exit_future
 * transport.close()
 * data = bytes(protocol.output)
 * print(data.decode('ascii').rstrip())
 * ```
 *
 * Run: `deno run --allow-run examples/subprocess_protocol.ts`. It prints the
 * child's line, then `exit code: 0`.
 *
 * @module
 */

import { SubprocessProtocol } from "../protocols.ts";
import { subprocessExec } from "../subprocess.ts";

class DateProtocol extends SubprocessProtocol {
  readonly output: Uint8Array[] = [];
  readonly #exited: PromiseWithResolvers<void>;

  constructor(exited: PromiseWithResolvers<void>) {
    super();
    this.#exited = exited;
  }

  override pipeDataReceived(fd: 1 | 2, data: Uint8Array): void {
    if (fd === 1) this.output.push(data);
  }

  override processExited(): void {
    this.#exited.resolve();
  }
}

const exited = Promise.withResolvers<void>();
const code = "console.log(`date: ${new Date().toISOString()}`)";
const [transport, protocol] = await subprocessExec(
  () => new DateProtocol(exited),
  Deno.execPath(),
  ["eval", code],
  { stdin: "null", stderr: "inherit" },
);
await exited.promise;
const returncode = transport.getReturnCode();
transport.close();

const decoder = new TextDecoder();
const text =
  protocol.output.map((chunk) => decoder.decode(chunk, { stream: true })).join(
    "",
  ) + decoder.decode();
console.log(text.trimEnd());
console.log(`exit code: ${returncode}`);
