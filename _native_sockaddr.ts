// Socket addresses for the native backend: IPv4/IPv6 literals parsed and
// printed (RFC 5952 for IPv6, as Deno prints them), and `struct sockaddr_in`,
// `sockaddr_in6` and `sockaddr_un` (paths and abstract names, which start
// with "\0") encoded from and decoded to `Deno.Addr`. Pure byte work: no
// system calls here.

import { checkUnixPathLength, SUN_PATH_SIZE } from "./_unix_path.ts";
import { AF_INET, AF_INET6, AF_UNIX } from "./_native_libc.ts";

/** `sizeof(struct sockaddr_storage)`. */
export const SOCKADDR_SIZE = 128;
/** `sizeof(sockaddr_un.sun_path)`. */

const encoder = new TextEncoder();
const decoder = new TextDecoder();

// ---- IP literals ----

/** The 4 bytes of dotted-quad `text`, or `null` if it is not one. */
export function parseIPv4(text: string): Uint8Array | null {
  const parts = text.split(".");
  if (parts.length !== 4) return null;
  const out = new Uint8Array(4);
  for (let i = 0; i < 4; i++) {
    const part = parts[i];
    if (!/^(0|[1-9][0-9]{0,2})$/.test(part)) return null;
    const value = Number(part);
    if (value > 255) return null;
    out[i] = value;
  }
  return out;
}

/** An IPv6 literal: its 16 bytes and scope id (`%2` or `%eth0` kept as text). */
export interface IPv6Literal {
  bytes: Uint8Array;
  /** The zone after `%`, if any (a number or an interface name). */
  zone: string | null;
}

/** Parses an IPv6 literal (with `::`, an embedded IPv4 tail, a `%zone`). */
export function parseIPv6(text: string): IPv6Literal | null {
  let zone: string | null = null;
  const percent = text.indexOf("%");
  if (percent >= 0) {
    zone = text.slice(percent + 1);
    if (zone === "") return null;
    text = text.slice(0, percent);
  }
  if (!text.includes(":")) return null;
  const halves = text.split("::");
  if (halves.length > 2) return null;
  const groups = (half: string): number[] | null => {
    if (half === "") return [];
    const out: number[] = [];
    const parts = half.split(":");
    for (let i = 0; i < parts.length; i++) {
      const part = parts[i];
      if (i === parts.length - 1 && part.includes(".")) {
        const v4 = parseIPv4(part);
        if (v4 === null) return null;
        out.push((v4[0] << 8) | v4[1], (v4[2] << 8) | v4[3]);
        continue;
      }
      if (!/^[0-9a-fA-F]{1,4}$/.test(part)) return null;
      out.push(parseInt(part, 16));
    }
    return out;
  };
  const head = groups(halves[0]);
  const tail = halves.length === 2 ? groups(halves[1]) : [];
  if (head === null || tail === null) return null;
  const missing = 8 - head.length - tail.length;
  if (halves.length === 2 ? missing < 1 : missing !== 0) return null;
  const all = [...head, ...new Array(missing).fill(0), ...tail];
  const bytes = new Uint8Array(16);
  for (let i = 0; i < 8; i++) {
    bytes[2 * i] = all[i] >> 8;
    bytes[2 * i + 1] = all[i] & 0xff;
  }
  return { bytes, zone };
}

/** Dotted-quad text of 4 bytes at `offset`. */
export function formatIPv4(bytes: Uint8Array, offset = 0): string {
  return `${bytes[offset]}.${bytes[offset + 1]}.${bytes[offset + 2]}.${
    bytes[offset + 3]
  }`;
}

/**
 * RFC 5952 text of 16 bytes at `offset`: lowercase, the longest run of two
 * or more zero groups as `::`, IPv4-mapped addresses as `::ffff:a.b.c.d`.
 */
export function formatIPv6(bytes: Uint8Array, offset = 0): string {
  const groups: number[] = [];
  for (let i = 0; i < 8; i++) {
    groups.push((bytes[offset + 2 * i] << 8) | bytes[offset + 2 * i + 1]);
  }
  if (
    groups[0] === 0 && groups[1] === 0 && groups[2] === 0 &&
    groups[3] === 0 && groups[4] === 0 && groups[5] === 0xffff
  ) {
    return `::ffff:${formatIPv4(bytes, offset + 12)}`;
  }
  let bestStart = -1;
  let bestLength = 1;
  for (let i = 0; i < 8;) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLength) {
      bestStart = i;
      bestLength = j - i;
    }
    i = j;
  }
  const hex = (list: number[]) => list.map((g) => g.toString(16)).join(":");
  if (bestStart < 0) return hex(groups);
  return `${hex(groups.slice(0, bestStart))}::${
    hex(groups.slice(bestStart + bestLength))
  }`;
}

/** The address family of IP literal `host` (0 when it is not a literal). */
export function literalFamily(host: string): number {
  if (parseIPv4(host) !== null) return AF_INET;
  if (parseIPv6(host) !== null) return AF_INET6;
  return 0;
}

// ---- encoding ----

/**
 * Writes `struct sockaddr_in` or `sockaddr_in6` for IP literal `host` and
 * `port` into `out` (at least 28 bytes); returns its length, or 0 when
 * `host` is not a literal. `scopeOf` turns a `%zone` name into an index.
 */
export function encodeInet(
  out: Uint8Array,
  host: string,
  port: number,
  scopeOf?: (zone: string) => number,
): number {
  const v4 = parseIPv4(host);
  out.fill(0, 0, 28);
  if (v4 !== null) {
    out[0] = AF_INET & 0xff;
    out[1] = AF_INET >> 8;
    out[2] = port >> 8;
    out[3] = port & 0xff;
    out.set(v4, 4);
    return 16;
  }
  const v6 = parseIPv6(host);
  if (v6 === null) return 0;
  out[0] = AF_INET6 & 0xff;
  out[1] = AF_INET6 >> 8;
  out[2] = port >> 8;
  out[3] = port & 0xff;
  out.set(v6.bytes, 8);
  if (v6.zone !== null) {
    const scope = /^[0-9]+$/.test(v6.zone)
      ? Number(v6.zone)
      : (scopeOf?.(v6.zone) ?? 0);
    if (scope === 0 && v6.zone !== "0") {
      throw new TypeError(`Unknown IPv6 zone "${v6.zone}" in "${host}"`);
    }
    new DataView(out.buffer, out.byteOffset).setUint32(24, scope, true);
  }
  return 28;
}

/**
 * Writes `struct sockaddr_un` for `path` into `out` (at least 110 bytes);
 * returns its length. A path starting with "\0" is an abstract name (no
 * terminator, the length says where it ends).
 */
export function encodeUnix(out: Uint8Array, path: string): number {
  if (typeof path !== "string") {
    throw new TypeError(
      `A Unix socket path must be a string, got ${typeof path}`,
    );
  }
  const abstract = path.startsWith("\0");
  if (!abstract && path.includes("\0")) {
    throw new TypeError("A Unix socket path must not contain NUL bytes");
  }
  const bytes = encoder.encode(path);
  checkUnixPathLength(bytes.length, abstract);
  out.fill(0, 0, 2 + SUN_PATH_SIZE);
  out[0] = AF_UNIX;
  out[1] = 0;
  out.set(bytes, 2);
  return abstract ? 2 + bytes.length : 2 + bytes.length + 1;
}

// ---- decoding ----

/**
 * The `Deno.Addr` of the `len` bytes of a sockaddr in `bytes`: a `NetAddr`
 * with `transport` `ip` ("tcp"/"udp") or a `UnixAddr` with `transport`
 * `unix` ("unix"/"unixpacket"). An unnamed Unix socket has path `null`
 * (as Deno's addresses: `Deno.UnixAddr` says string, Deno gives null);
 * `socketFamily` is the family assumed when `len` holds no family.
 */
export function decodeAddr(
  bytes: Uint8Array,
  len: number,
  ip: "tcp" | "udp",
  unix: "unix" | "unixpacket",
  socketFamily = 0,
): Deno.Addr {
  // An unnamed Unix peer may come back with length 0 (no family at all).
  const family = len < 2 ? socketFamily : bytes[0] | (bytes[1] << 8);
  if (family === AF_INET && len >= 16) {
    return {
      transport: ip,
      hostname: formatIPv4(bytes, 4),
      port: (bytes[2] << 8) | bytes[3],
    };
  }
  if (family === AF_INET6 && len >= 24) {
    let hostname = formatIPv6(bytes, 8);
    if (len >= 28) {
      const scope = new DataView(bytes.buffer, bytes.byteOffset).getUint32(
        24,
        true,
      );
      if (scope !== 0) hostname += `%${scope}`;
    }
    return { transport: ip, hostname, port: (bytes[2] << 8) | bytes[3] };
  }
  if (family === AF_UNIX) {
    return { transport: unix, path: decodeUnixPath(bytes, len) };
  }
  throw new TypeError(`Unknown socket address family ${family}`);
}

/**
 * The path of a `sockaddr_un` of length `len` ("\0…" for abstract names);
 * `null` for an unnamed socket, as Deno's own addresses have it.
 */
export function decodeUnixPath(bytes: Uint8Array, len: number): string {
  if (len <= 2) return null as unknown as string;
  const end = Math.min(len, 2 + SUN_PATH_SIZE);
  if (bytes[2] === 0) {
    return "\0" + decoder.decode(bytes.subarray(3, end));
  }
  let stop = 2;
  while (stop < end && bytes[stop] !== 0) stop++;
  return decoder.decode(bytes.subarray(2, stop));
}

/**
 * A sockaddr buffer with its in-out length, for getsockname, accept and
 * recvfrom. `prepare()` resets the length before each call.
 */
export class SockaddrBuffer {
  /** The sockaddr bytes. */
  readonly bytes: Uint8Array = new Uint8Array(SOCKADDR_SIZE);
  readonly #length = new Uint32Array(1);
  /** The length cell as bytes (the `socklen_t *` parameter). */
  readonly lengthBytes: Uint8Array = new Uint8Array(this.#length.buffer);

  /** Resets the length to the buffer size; returns the length cell. */
  prepare(): Uint8Array {
    this.#length[0] = SOCKADDR_SIZE;
    return this.lengthBytes;
  }

  /** The length the kernel wrote. */
  get length(): number {
    return this.#length[0];
  }

  /** Decodes what the kernel wrote (`family`: the socket's, for length 0). */
  decode(
    ip: "tcp" | "udp",
    unix: "unix" | "unixpacket",
    family = 0,
  ): Deno.Addr {
    return decodeAddr(this.bytes, this.#length[0], ip, unix, family);
  }
}
