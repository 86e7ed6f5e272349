// Shared by the Deno echo servers: `--host 127.0.0.1 --port N`, and the
// "ready" line the driver waits for.

/** The address an echo server listens on, from `--host` and `--port`. */
export function parseAddress(
  args: string[],
): { hostname: string; port: number } {
  let hostname = "127.0.0.1";
  let port = NaN;
  for (let i = 0; i < args.length; i += 2) {
    const [flag, value] = [args[i], args[i + 1]];
    if (flag === "--host" && value !== undefined) hostname = value;
    else if (flag === "--port" && value !== undefined) port = Number(value);
    else throw new TypeError(`Unknown argument ${flag}`);
  }
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new RangeError("Give --port <0-65535>");
  }
  return { hostname, port };
}

/** Tells the driver the server listens on `port`. */
export function announce(port: number): void {
  console.log(`READY ${port}`);
}
