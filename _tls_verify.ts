// The client-certificate check of a TLS server, done by aionet itself with
// node:crypto's X509Certificate (the platform parses; no ASN.1 here): the
// certificate the client presented must chain, link by link, to one of
// the server's clientCaCerts, and every certificate on the path must be
// within its validity period. _tls.ts runs it after every handshake,
// before the connection is handed to anyone, because the TLS layer alone
// cannot be trusted with it (Deno 2.9.6): a node:tls server socket over a
// Duplex reports a bad client certificate without refusing it, and it
// resumes a session (its tickets are shared by every server of the
// process) without asking for the certificate again, so a session made by
// a server that asked for none, or that trusts other CAs, would pass.
//
// What only the TLS layer can do, and does: check the client's
// CertificateVerify signature (proof that the client holds the key of the
// leaf certificate). What it checks besides, and _tls.ts also requires:
// its own chain verdict, which covers extendedKeyUsage (not exposed by
// X509Certificate here).

import type { X509Certificate } from "node:crypto";
import { nodeTls } from "./_node_tls.ts";

/** Longest chain followed from the leaf to a trust anchor. */
const MAX_DEPTH = 8;

const PEM_BLOCK =
  /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

/**
 * Parses every certificate of `pems` (each string may hold several PEM
 * blocks, as a CA bundle does). Throws `InvalidData` naming `what` when a
 * string holds none or one does not parse.
 */
export function parseCertificates(
  pems: readonly string[],
  what: string,
): X509Certificate[] {
  const certificates: X509Certificate[] = [];
  pems.forEach((pem, index) => {
    const blocks = pem.match(PEM_BLOCK);
    if (blocks === null) {
      throw new Deno.errors.InvalidData(
        `The TLS ${what}[${index}] holds no PEM certificate`,
      );
    }
    for (const block of blocks) {
      try {
        certificates.push(new (nodeTls().crypto.X509Certificate)(block));
      } catch (error) {
        throw new Deno.errors.InvalidData(
          `The TLS ${what}[${index}] is not a valid PEM certificate: ${
            error instanceof Error ? error.message : error
          }`,
          { cause: error },
        );
      }
    }
  });
  return certificates;
}

function name(certificate: X509Certificate): string {
  return certificate.subject.replaceAll("\n", ", ");
}

function sameCertificate(a: X509Certificate, b: X509Certificate): boolean {
  const x = a.raw;
  const y = b.raw;
  if (x.length !== y.length) return false;
  for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return false;
  return true;
}

/** Why `certificate` is not valid at `now`, or `null` when it is. */
function validityProblem(
  certificate: X509Certificate,
  now: Date,
  role: string,
): string | null {
  if (now < certificate.validFromDate) {
    return `the ${role} "${
      name(certificate)
    }" is not valid before ${certificate.validFromDate.toISOString()}`;
  }
  if (now > certificate.validToDate) {
    return `the ${role} "${
      name(certificate)
    }" expired on ${certificate.validToDate.toISOString()}`;
  }
  return null;
}

/**
 * Whether `issuer` signed `child`: a CA certificate whose subject is the
 * child's issuer (and key identifiers agree), and whose public key
 * verifies the child's signature.
 */
function issued(child: X509Certificate, issuer: X509Certificate): boolean {
  if (!issuer.ca || !child.checkIssued(issuer)) return false;
  try {
    return child.verify(issuer.publicKey);
  } catch {
    return false;
  }
}

/**
 * Checks the certificate chain a client presented (`chain[0]` its leaf,
 * then what it sent along) against the trust `anchors`, at `now`: there
 * must be a path leaf → intermediates from `chain` → an anchor where each
 * certificate is signed by the next, each issuer is a CA, and each
 * certificate on the path (the anchor too) is within its validity period.
 * A leaf that is itself one of the anchors is trusted as it is (a pinned,
 * self-signed client certificate).
 *
 * Throws `Deno.errors.InvalidData` saying why the chain is refused.
 */
export function verifyClientChain(
  chain: readonly X509Certificate[],
  anchors: readonly X509Certificate[],
  now: Date = new Date(),
): void {
  const [leaf, ...sent] = chain;
  if (leaf === undefined) {
    throw refused("the client sent no certificate");
  }
  const leafProblem = validityProblem(leaf, now, "client certificate");
  if (leafProblem !== null) throw refused(leafProblem);
  if (anchors.some((anchor) => sameCertificate(anchor, leaf))) return;
  const problem = findPath(leaf, sent, anchors, now, new Set(), 0);
  if (problem !== null) throw refused(problem);
}

/**
 * Depth-first search for a trusted path from `current`; `null` when found,
 * else the reason the best attempt failed.
 */
function findPath(
  current: X509Certificate,
  sent: readonly X509Certificate[],
  anchors: readonly X509Certificate[],
  now: Date,
  used: Set<X509Certificate>,
  depth: number,
): string | null {
  let problem: string | null = null;
  for (const anchor of anchors) {
    if (!issued(current, anchor)) continue;
    const expired = validityProblem(anchor, now, "CA certificate");
    if (expired === null) return null;
    problem ??= expired;
  }
  if (depth < MAX_DEPTH) {
    for (const next of sent) {
      if (used.has(next) || sameCertificate(next, current)) continue;
      if (!issued(current, next)) continue;
      const expired = validityProblem(next, now, "intermediate certificate");
      if (expired !== null) {
        problem ??= expired;
        continue;
      }
      used.add(next);
      const further = findPath(next, sent, anchors, now, used, depth + 1);
      used.delete(next);
      if (further === null) return null;
      problem ??= further;
    }
  }
  return problem ??
    `"${name(current)}" is not signed by a trusted CA (issuer "${
      current.issuer.replaceAll("\n", ", ")
    }" is not among clientCaCerts)`;
}

function refused(reason: string): Error {
  return new Deno.errors.InvalidData(
    `TLS client certificate refused: ${reason}`,
  );
}
