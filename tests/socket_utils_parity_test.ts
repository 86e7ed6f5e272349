// Parity of sockets.ts small utilities with CPython's `socket` module.
// Every expected value below was verified with CPython 3.11.7 on Linux
// (glibc inet_aton); `null` means CPython raises OSError("illegal IP
// address string passed to inet_aton" / "packed IP wrong length"). The
// inet_aton short forms (1-3 parts, octal, hex, trailing whitespace) failed
// before their fix (RELIABILITY.md, finding 43). inet_pton/ntop and
// htons & co. are not exported (left: no issue asks for them).
import assert from "node:assert/strict";
import * as sockets from "../sockets.ts";
import { inetAton, inetNtoa } from "../sockets.ts";

function aionetAton(address: string): number[] | null {
  try {
    return Array.from(inetAton(address));
  } catch {
    return null;
  }
}

// [input, CPython socket.inet_aton(input) as a list, or null = OSError]
const ATON_ROWS: [string, number[] | null][] = [
  // Matching rows (aionet agrees).
  ["1.2.3.4", [1, 2, 3, 4]],
  ["255.255.255.255", [255, 255, 255, 255]],
  ["0.0.0.0", [0, 0, 0, 0]],
  ["01.02.03.004", [1, 2, 3, 4]],
  ["001.2.3.4", [1, 2, 3, 4]],
  [" 1.2.3.4", null],
  ["256.1.1.1", null],
  ["", null],
  ["1.2.3.4.5", null],
  ["1.2.3.0400", null],
  ["0x100.1.1.1", null],
  ["1..3.4", null],
  ["1.2.3.-4", null],
  ["+1.2.3.4", null],
  ["1.2.3.4x", null],
  ["\uff11.2.3.4", null],
  ["1.2.3.0008", null],
  // Diverging rows: short forms (aionet refuses, CPython accepts).
  ["1", [0, 0, 0, 1]],
  ["1.2", [1, 0, 0, 2]],
  ["1.2.3", [1, 2, 0, 3]],
  ["4294967295", [255, 255, 255, 255]],
  // Hex / octal parts (aionet refuses or silently reads decimal).
  ["0x7f.1", [127, 0, 0, 1]],
  ["0177.0.0.1", [127, 0, 0, 1]],
  ["010.0.0.1", [8, 0, 0, 1]], // aionet: [10, 0, 0, 1] (wrong value)
  ["1.2.3.010", [1, 2, 3, 8]], // aionet: [1, 2, 3, 10] (wrong value)
  ["1.2.3.08", null], // aionet: [1, 2, 3, 8] (accepts invalid octal)
  ["1.2.3.09", null], // aionet: [1, 2, 3, 9]
  // Trailing whitespace (glibc stops at it; aionet refuses).
  ["1.2.3.4 ", [1, 2, 3, 4]],
  ["1.2.3.4\n", [1, 2, 3, 4]],
  ["1.2.3.4\t", [1, 2, 3, 4]],
];

for (const [input, cpython] of ATON_ROWS) {
  Deno.test(`parity: inetAton(${JSON.stringify(input)}) as inet_aton`, () => {
    assert.deepEqual(aionetAton(input), cpython);
  });
}

// [bytes, CPython socket.inet_ntoa(bytes), or null = OSError]
const NTOA_ROWS: [number[], string | null][] = [
  [[127, 0, 0, 1], "127.0.0.1"],
  [[255, 255, 255, 255], "255.255.255.255"],
  [[1, 2, 3], null],
  [[1, 2, 3, 4, 5], null],
  [[], null],
];

for (const [bytes, cpython] of NTOA_ROWS) {
  Deno.test(`parity: inetNtoa([${bytes}]) as inet_ntoa`, () => {
    let got: string | null;
    try {
      got = inetNtoa(new Uint8Array(bytes));
    } catch {
      got = null;
    }
    assert.equal(got, cpython);
  });
}

// CPython: socket.<NAME> on Linux (3.11.7).
const CPYTHON_CONSTANTS: Record<string, number> = {
  AF_UNSPEC: 0,
  AF_UNIX: 1,
  AF_INET: 2,
  AF_INET6: 10,
  SOCK_STREAM: 1,
  SOCK_DGRAM: 2,
  SOL_SOCKET: 1,
  IPPROTO_IP: 0,
  IPPROTO_IPV6: 41,
  IPPROTO_TCP: 6,
  IPPROTO_UDP: 17,
  TCP_NODELAY: 1,
  SO_REUSEADDR: 2,
  SO_ERROR: 4,
  SO_BROADCAST: 6,
  SO_SNDBUF: 7,
  SO_RCVBUF: 8,
  SO_KEEPALIVE: 9,
  SO_REUSEPORT: 15,
  IP_MULTICAST_TTL: 33,
  IP_MULTICAST_LOOP: 34,
  IP_ADD_MEMBERSHIP: 35,
  IP_DROP_MEMBERSHIP: 36,
  INADDR_ANY: 0,
  SHUT_RD: 0,
  SHUT_WR: 1,
  SHUT_RDWR: 2,
  SOMAXCONN: 4096,
  AI_PASSIVE: 1,
  AI_CANONNAME: 2,
  AI_NUMERICHOST: 4,
  NI_NUMERICHOST: 1,
  NI_NUMERICSERV: 2,
  NI_NAMEREQD: 8,
  NI_DGRAM: 16,
};

Deno.test("parity: socket constants equal CPython's Linux values", () => {
  const mod = sockets as unknown as Record<string, unknown>;
  for (const [name, value] of Object.entries(CPYTHON_CONSTANTS)) {
    assert.equal(mod[name], value, name);
  }
});
