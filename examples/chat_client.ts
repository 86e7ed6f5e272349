/**
 * Seed S004-h (seeds/004_0130fc70258334b4.txt), client half: the chat
 * client that sends what you type and prints the server's reply.
 *
 * The Python it ports (generator-based coroutines in the seed):
 *
 * ```python
 * @asyncio.coroutine
 * def tcp_echo_client(loop):
 *     reader, writer = yield from asyncio.open_connection('10.2.1.2', 8888, loop=loop)
 *     while True:
 *         message = input('You said:')
 *         writer.write(message.encode())
 *         data = yield from reader.read(100)
 *         print('Receive: %r' % data.decode())
 *         if message == 'Bye':
 *             break
 *     print('Close the socket')
 *     writer.close()
 * ```
 *
 * The messages come from the keyboard as in the seed, from standard input
 * when it is not a terminal (one message a line; the line is echoed after
 * the prompt, as a terminal would show it), or from `--message` flags
 * (repeatable). The chat also ends when the input does; an empty line sends
 * nothing and is skipped (the seed would wait for a reply forever).
 *
 * Run against `examples/chat_server.ts`:
 * `deno run -A examples/chat_client.ts [--host 127.0.0.1] [--port 8888] [--message Hello --message Bye]`.
 * With `--message Hello --message "How are you?" --message Bye` it prints:
 *
 * ```text
 * You said:Hello
 * Receive: 'nihao'
 * You said:How are you?
 * Receive: 'Fine, thank you.'
 * You said:Bye
 * Receive: 'Bye'
 * Close the socket
 * ```
 *
 * @module
 */

import { openConnection } from "../streams.ts";
import { clientFlags, repr, stdinLines } from "./_cli.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/**
 * Python's `input(prompt)`: prints the prompt, returns the next message, or
 * `null` when there is none left.
 */
function makeInput(
  messages: string[],
): (prompt: string) => Promise<string | null> {
  const fromFlags = messages.length > 0;
  const interactive = !fromFlags && Deno.stdin.isTerminal();
  const lines = fromFlags ? null : stdinLines();
  let next = 0;
  return async (prompt) => {
    Deno.stdout.writeSync(encoder.encode(prompt));
    let message: string | null;
    if (lines === null) {
      message = next < messages.length ? messages[next++] : null;
    } else {
      const result = await lines.next();
      message = result.done ? null : result.value;
    }
    // A terminal echoes what was typed; otherwise show it ourselves.
    if (!interactive) {
      Deno.stdout.writeSync(encoder.encode(`${message ?? ""}\n`));
    }
    return message;
  };
}

async function tcpEchoClient(
  host: string,
  port: number,
  messages: string[],
): Promise<void> {
  const input = makeInput(messages);
  const [reader, writer] = await openConnection({ hostname: host, port });
  while (true) {
    const message = await input("You said:");
    if (message === null) break;
    if (message === "") continue;
    writer.write(encoder.encode(message));
    const data = await reader.read(100);
    console.log(`Receive: ${repr(decoder.decode(data))}`);
    if (message === "Bye") break;
  }

  console.log("Close the socket");
  writer.close();
  await writer.waitClosed();
}

if (import.meta.main) {
  const { host, port, message } = clientFlags(8888, {
    message: { type: "string", multiple: true },
  });
  await tcpEchoClient(host, port, message ?? []);
}
