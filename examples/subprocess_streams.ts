/**
 * Talks to a line-oriented child through streams: `stdin.write` +
 * `drain()` to send a line, `stdout.readLine()` to read the answer, as with
 * asyncio's `create_subprocess_exec(..., stdin=PIPE, stdout=PIPE)`.
 *
 * The Python it ports, in short:
 *
 * ```python
 * proc = await asyncio.create_subprocess_shell(
 *     'while read l; do echo "got: $l"; done',
 *     stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE)
 * for word in ('one', 'two', 'three'):
 *     proc.stdin.write(f'{word}\n'.encode())
 *     await proc.stdin.drain()
 *     print((await proc.stdout.readline()).decode().rstrip())
 * proc.stdin.close()
 * print(f'exit code: {await proc.wait()}')
 * ```
 *
 * Run: `deno run --allow-run examples/subprocess_streams.ts`. It prints
 * `got: one`, `got: two`, `got: three`, then `exit code: 0`.
 *
 * @module
 */

import { createSubprocessShell, PIPE } from "../subprocess.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

const proc = await createSubprocessShell(
  'while read l; do echo "got: $l"; done',
  { stdin: PIPE, stdout: PIPE },
);
const stdin = proc.stdin!;
const stdout = proc.stdout!;
for (const word of ["one", "two", "three"]) {
  stdin.write(encoder.encode(`${word}\n`));
  await stdin.drain();
  console.log(decoder.decode(await stdout.readLine()).trimEnd());
}
stdin.close();
// The child ends at the end of its input; read its stdout to the end too.
await stdout.read();
console.log(`exit code: ${await proc.wait()}`);
