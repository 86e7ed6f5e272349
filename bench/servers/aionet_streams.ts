// (d) aionet Streams echo: read(65536), write, drain, until EOF.
// streams.ts may not exist yet: exit with code 3 and say so, and the
// driver skips this server.
import { announce, parseAddress } from "./_args.ts";

type Reader = { read(n: number): Promise<Uint8Array> };
type Writer = {
  write(data: Uint8Array): void;
  drain(): Promise<void>;
  close(): void;
};
type StartServer = (
  clientConnected: (reader: Reader, writer: Writer) => Promise<void>,
  options: { hostname: string; port: number },
) => Promise<{ addrs: Deno.Addr[]; serveForever(): Promise<void> }>;

let startServer: StartServer;
try {
  // A variable specifier keeps `deno check` of the bench from needing it.
  const specifier = new URL("../../streams.ts", import.meta.url).href;
  ({ startServer } = await import(specifier));
} catch (error) {
  console.error(`streams.ts cannot be imported: ${error}`);
  Deno.exit(3);
}

const server = await startServer(async (reader, writer) => {
  try {
    while (true) {
      const data = await reader.read(65536);
      if (data.length === 0) break;
      writer.write(data);
      await writer.drain();
    }
  } finally {
    writer.close();
  }
}, parseAddress(Deno.args));
announce((server.addrs[0] as Deno.NetAddr).port);
await server.serveForever();
