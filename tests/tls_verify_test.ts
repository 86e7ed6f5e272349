// aionet's own client-certificate check (_tls_verify.ts) on its own,
// without the TLS layer: the end-to-end tests pass even if one of the two
// checks (aionet's, the TLS layer's verdict) were missing, so this shows
// that aionet's alone refuses every impostor. The chains are what a
// client presents: its leaf first, then what it sends along.

import assert from "node:assert/strict";
import type { X509Certificate } from "node:crypto";
import { parseCertificates, verifyClientChain } from "../_tls_verify.ts";
import { CA, OTHER_CA, pem } from "./_tls_helpers.ts";
import { loadNodeTls } from "../_node_tls.ts";

// The TLS modules load with the first TLS call; this test calls in below it.
await loadNodeTls();

/** Every certificate of a fixture .pem file (a leaf and what follows it). */
function chain(file: string): X509Certificate[] {
  return parseCertificates([pem(file)], file);
}

const anchors = parseCertificates([CA], "clientCaCerts");
const now = new Date();

function refusedWith(
  presented: X509Certificate[],
  pattern: RegExp,
  trust = anchors,
  at = now,
): void {
  assert.throws(
    () => verifyClientChain(presented, trust, at),
    (error: Error) =>
      error instanceof Deno.errors.InvalidData && pattern.test(error.message),
  );
}

Deno.test("verify: the real client, and a client through an intermediate it sends, are trusted", () => {
  verifyClientChain(chain("client.pem"), anchors, now);
  verifyClientChain(chain("chained_client.pem"), anchors, now);
  // The TLS layer may append the anchor itself: still trusted.
  verifyClientChain([...chain("client.pem"), ...anchors], anchors, now);
  // A CA bundle in one string holds several anchors.
  verifyClientChain(
    chain("client.pem"),
    parseCertificates([OTHER_CA + CA], "clientCaCerts"),
    now,
  );
});

Deno.test("verify: the three impostors are refused", () => {
  refusedWith([], /sent no certificate/);
  refusedWith(chain("impostor_self_signed.pem"), /not signed by a trusted CA/);
  refusedWith(chain("impostor_other_ca.pem"), /not signed by a trusted CA/);
});

Deno.test("verify: a CA with the trusted CA's name but another key signs nothing trusted", () => {
  const forged = chain("forged_client.pem");
  // The names match: only the signature check tells them apart.
  assert.equal(forged[0].checkIssued(anchors[0]), true);
  refusedWith(forged, /not signed by a trusted CA/);
});

Deno.test("verify: a missing intermediate, and an issuer that is not a CA, break the chain", () => {
  refusedWith(
    chain("chained_client.pem").slice(0, 1),
    /not signed by a trusted CA/,
  );
  const byLeaf = chain("leaf_signed_client.pem");
  assert.equal(byLeaf.length, 2);
  refusedWith(byLeaf, /not signed by a trusted CA/);
});

Deno.test("verify: the validity period of every certificate on the path is checked", () => {
  refusedWith(chain("expired_client.pem"), /expired on 2021-01-01/);
  const client = chain("client.pem");
  const leaf = client[0];
  // Before the leaf's notBefore.
  refusedWith(
    client,
    /not valid before/,
    anchors,
    new Date(leaf.validFromDate.getTime() - 1000),
  );
  // After it expires.
  refusedWith(
    client,
    /expired/,
    anchors,
    new Date(leaf.validToDate.getTime() + 1000),
  );
  // An intermediate that is not valid yet.
  const chained = chain("chained_client.pem");
  const intermediateStart = chained[1].validFromDate.getTime();
  const leafStart = chained[0].validFromDate.getTime();
  const at = new Date(Math.max(intermediateStart, leafStart));
  verifyClientChain(chained, anchors, at);
  refusedWith(
    chained,
    /not valid before|expired/,
    anchors,
    new Date(intermediateStart - 1000),
  );
});

Deno.test("verify: trusting another CA refuses the real client; a leaf given as an anchor is pinned", () => {
  const other = parseCertificates([OTHER_CA], "clientCaCerts");
  refusedWith(chain("client.pem"), /not signed by a trusted CA/, other);
  verifyClientChain(chain("impostor_other_ca.pem"), other, now);
  // The self-signed certificate itself in clientCaCerts: trusted as it is.
  const pinned = chain("impostor_self_signed.pem");
  verifyClientChain(pinned, pinned, now);
});

Deno.test("verify: parseCertificates refuses strings without a certificate", () => {
  assert.throws(
    () => parseCertificates(["not a pem"], "clientCaCerts"),
    (e: Error) =>
      e instanceof Deno.errors.InvalidData &&
      /clientCaCerts\[0\]/.test(e.message),
  );
  assert.throws(
    () =>
      parseCertificates([
        CA,
        "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----",
      ], "clientCaCerts"),
    (e: Error) =>
      e instanceof Deno.errors.InvalidData &&
      /clientCaCerts\[1\]/.test(e.message),
  );
});
