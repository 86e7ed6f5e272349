// The Node modules TLS runs on (node:tls, node:crypto, node:stream), loaded
// the first time TLS is asked for: loading Deno's Node compatibility layer
// costs several MiB of memory, which a program without TLS should not pay.

import type * as NodeCrypto from "node:crypto";
import type * as NodeStream from "node:stream";
import type * as NodeTls from "node:tls";

/** The modules TLS needs. */
export interface NodeTlsModules {
  tls: typeof NodeTls;
  crypto: typeof NodeCrypto;
  stream: typeof NodeStream;
}

let modules: NodeTlsModules | null = null;

/** Loads the modules (once); every TLS entry point awaits this first. */
export async function loadNodeTls(): Promise<NodeTlsModules> {
  if (modules === null) {
    const [tls, crypto, stream] = await Promise.all([
      import("node:tls"),
      import("node:crypto"),
      import("node:stream"),
    ]);
    modules = { tls, crypto, stream };
  }
  return modules;
}

/** The loaded modules; throws if no entry point loaded them (a bug). */
export function nodeTls(): NodeTlsModules {
  if (modules === null) {
    throw new Error(
      "aionet: TLS was used before its modules were loaded (internal error)",
    );
  }
  return modules;
}
