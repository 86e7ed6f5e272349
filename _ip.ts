// IP literals: parsing and canonical forms, without node:net (loading the
// Node compatibility layer costs memory at start).

/** The dotted-quad bytes of an IPv4 literal, or `null`. */
export function parseIPv4(text: string): number[] | null {
  const parts = text.split(".");
  if (parts.length !== 4) return null;
  const bytes: number[] = [];
  for (const part of parts) {
    if (!/^\d{1,3}$/.test(part)) return null;
    const value = Number(part);
    if (value > 255) return null;
    bytes.push(value);
  }
  return bytes;
}

/** The canonical text of an IPv6 literal (`"::1"`), or `null`. */
export function canonicalIPv6(text: string): string | null {
  if (!text.includes(":") || /[^0-9a-fA-F:.]/.test(text)) return null;
  try {
    const host = new URL(`http://[${text}]/`).hostname;
    return host.slice(1, -1);
  } catch {
    return null;
  }
}

/** An IP literal in canonical form (IPv4-mapped IPv6 as IPv4), or `null`. */
export function canonicalIp(hostname: string): string | null {
  const v4 = parseIPv4(hostname);
  if (v4 !== null) return v4.join(".");
  const v6 = canonicalIPv6(hostname);
  if (v6 === null) return null;
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(v6);
  if (mapped) return mapped[1];
  // The URL parser writes the IPv4 tail of a mapped address in hex.
  const hexMapped = /^::ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/.exec(v6);
  if (hexMapped) {
    const high = parseInt(hexMapped[1], 16);
    const low = parseInt(hexMapped[2], 16);
    return [high >> 8, high & 255, low >> 8, low & 255].join(".");
  }
  return v6;
}

/** 4 or 6 for an IPv4 or IPv6 literal, 0 for anything else (node:net's isIP). */
export function ipVersion(text: string): 0 | 4 | 6 {
  if (parseIPv4(text) !== null) return 4;
  return canonicalIPv6(text) !== null ? 6 : 0;
}

/** Largest UDP payload over IPv4: 65535 − 20 (IP header) − 8 (UDP header). */
export const MAX_UDP4_PAYLOAD = 65507;
/** Largest UDP payload over IPv6 (no jumbograms): 65535 − 8. */
export const MAX_UDP6_PAYLOAD = 65527;

/** Whether `ip` (a canonical literal) is a loopback address. */
export function isLoopbackIp(ip: string): boolean {
  return ip === "::1" || ip.startsWith("127.");
}

/**
 * The IP literal a socket connects to for `hostname` without a name
 * lookup: a literal in canonical form, or the loopback address of the
 * socket's family for "localhost" (RFC 6761 reserves that name for it).
 * Any other name is `NotSupported` naming `why` (the caller cannot look
 * names up synchronously).
 */
export function literalPeer(
  hostname: string,
  ipv6: boolean,
  why: string,
): string {
  const literal = canonicalIp(hostname);
  if (literal !== null) return literal;
  if (/^localhost\.?$/i.test(hostname)) return ipv6 ? "::1" : "127.0.0.1";
  throw new Deno.errors.NotSupported(
    `Cannot connect to ${JSON.stringify(hostname)}: ${why}`,
  );
}
