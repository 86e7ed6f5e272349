// Tests of _native_sockaddr.ts: IP literals parsed and printed as Deno
// prints them, and sockaddr_in / sockaddr_in6 / sockaddr_un bytes to and
// from Deno.Addr (paths, abstract names, unnamed sockets). Pure byte work,
// checked against the kernel where it matters (a bound socket's name).

import assert from "node:assert/strict";
import {
  decodeAddr,
  encodeInet,
  encodeUnix,
  formatIPv6,
  literalFamily,
  parseIPv4,
  parseIPv6,
  SOCKADDR_SIZE,
} from "../_native_sockaddr.ts";
import { AF_INET, AF_INET6, AF_UNIX } from "../_native_libc.ts";
import { backend, nativeTest } from "./_native_fd_check.ts";

nativeTest("parseIPv4 accepts dotted quads only", () => {
  const table: Array<[string, number[] | null]> = [
    ["127.0.0.1", [127, 0, 0, 1]],
    ["0.0.0.0", [0, 0, 0, 0]],
    ["255.255.255.255", [255, 255, 255, 255]],
    ["256.0.0.1", null],
    ["1.2.3", null],
    ["1.2.3.4.5", null],
    ["01.2.3.4", null],
    ["a.b.c.d", null],
    ["", null],
    ["::1", null],
  ];
  for (const [text, expected] of table) {
    const got = parseIPv4(text);
    assert.deepEqual(got === null ? null : [...got], expected, text);
  }
});

nativeTest("IPv6 literals round-trip to RFC 5952 text", () => {
  const table: Array<[string, string]> = [
    ["::1", "::1"],
    ["::", "::"],
    ["0:0:0:0:0:0:0:1", "::1"],
    ["2001:DB8::1", "2001:db8::1"],
    ["2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1"],
    ["2001:db8:0:1:1:1:1:1", "2001:db8:0:1:1:1:1:1"],
    ["fe80::", "fe80::"],
    ["::ffff:127.0.0.1", "::ffff:127.0.0.1"],
    ["1:2:3:4:5:6:7:8", "1:2:3:4:5:6:7:8"],
  ];
  for (const [text, printed] of table) {
    const parsed = parseIPv6(text);
    assert.notEqual(parsed, null, text);
    assert.equal(formatIPv6(parsed!.bytes), printed, text);
  }
  for (
    const bad of [
      "1::2::3",
      ":::",
      "1:2:3:4:5:6:7:8:9",
      "12345::",
      "g::1",
      "1.2.3.4",
      "::1%",
    ]
  ) {
    assert.equal(parseIPv6(bad), null, bad);
  }
  assert.equal(parseIPv6("fe80::1%2")?.zone, "2");
});

nativeTest("literalFamily tells IPv4, IPv6 and names apart", () => {
  assert.equal(literalFamily("10.0.0.1"), AF_INET);
  assert.equal(literalFamily("::1"), AF_INET6);
  assert.equal(literalFamily("localhost"), 0);
});

nativeTest("sockaddr_in and sockaddr_in6 encode and decode", () => {
  const bytes = new Uint8Array(SOCKADDR_SIZE);
  const table: Array<[string, number, number, string]> = [
    ["127.0.0.1", 8080, 16, "127.0.0.1"],
    ["::1", 443, 28, "::1"],
    ["2001:db8::7", 65535, 28, "2001:db8::7"],
    ["fe80::1%3", 1, 28, "fe80::1%3"],
  ];
  for (const [host, port, length, printed] of table) {
    assert.equal(encodeInet(bytes, host, port), length, host);
    assert.deepEqual(decodeAddr(bytes, length, "udp", "unixpacket"), {
      transport: "udp",
      hostname: printed,
      port,
    });
  }
  // Network byte order for the port, host order for the family.
  encodeInet(bytes, "1.2.3.4", 0x1234);
  assert.deepEqual([...bytes.subarray(0, 8)], [2, 0, 0x12, 0x34, 1, 2, 3, 4]);
  assert.equal(encodeInet(bytes, "example.com", 80), 0);
  assert.throws(() => encodeInet(bytes, "fe80::1%nosuchif", 80), TypeError);
});

nativeTest("sockaddr_un: paths, abstract names, unnamed sockets", () => {
  const bytes = new Uint8Array(SOCKADDR_SIZE);
  const path = "/tmp/some.sock";
  const length = encodeUnix(bytes, path);
  assert.equal(length, 2 + path.length + 1);
  assert.equal(bytes[0] | (bytes[1] << 8), AF_UNIX);
  assert.deepEqual(decodeAddr(bytes, length, "tcp", "unix"), {
    transport: "unix",
    path,
  });
  const abstract = "\0aionet-test";
  const abstractLength = encodeUnix(bytes, abstract);
  assert.equal(abstractLength, 2 + abstract.length, "no terminator");
  assert.deepEqual(decodeAddr(bytes, abstractLength, "udp", "unixpacket"), {
    transport: "unixpacket",
    path: abstract,
  });
  assert.deepEqual(decodeAddr(bytes, 2, "tcp", "unix"), {
    transport: "unix",
    path: null,
  });
  // An unbound sender's address may come back with length 0.
  assert.deepEqual(decodeAddr(bytes, 0, "udp", "unixpacket", AF_UNIX), {
    transport: "unixpacket",
    path: null,
  });
  assert.throws(() => encodeUnix(bytes, "/tmp/" + "x".repeat(103)), RangeError);
  assert.equal(encodeUnix(bytes, "/tmp/" + "x".repeat(102)), 110);
  assert.throws(() => encodeUnix(bytes, "/tmp/a\0b"), TypeError);
});

nativeTest(
  "the kernel agrees: bound names decode to what was bound",
  async () => {
    const v4 = backend.listenTcp({
      hostname: "127.0.0.1",
      port: 0,
      backlog: 1,
      reusePort: false,
    });
    const v6 = backend.listenTcp({
      hostname: "::1",
      port: 0,
      backlog: 1,
      reusePort: false,
    });
    const abstract = backend.listenUnix(`\0aionet-${crypto.randomUUID()}`, 1);
    try {
      assert.equal((v4.addr as Deno.NetAddr).hostname, "127.0.0.1");
      assert.ok((v4.addr as Deno.NetAddr).port > 0);
      assert.equal((v6.addr as Deno.NetAddr).hostname, "::1");
      assert.equal(v6.addr.transport, "tcp");
      assert.ok((abstract.addr as Deno.UnixAddr).path.startsWith("\0aionet-"));
    } finally {
      await Promise.all([v4.close(), v6.close(), abstract.close()]);
    }
  },
);
