/**
 * aionet example helper: where the test certificate lives, and loading PEM
 * files. The fixture (`tests/fixtures/tls_cert.pem` / `tls_key.pem`) is a
 * self-signed certificate for `localhost`, `127.0.0.1` and `::1`
 * (`CA:FALSE`), so a client trusts it by passing it as `caCerts` and
 * checking the name `localhost`. For tests and examples only: never use
 * this key for anything real.
 *
 * @module
 */

import { fileURLToPath } from "node:url";

/** Path of the fixture certificate (PEM), relative to this repository. */
export const FIXTURE_CERT_PATH: string = fileURLToPath(
  new URL("../tests/fixtures/tls_cert.pem", import.meta.url),
);

/** Path of the fixture private key (PEM), relative to this repository. */
export const FIXTURE_KEY_PATH: string = fileURLToPath(
  new URL("../tests/fixtures/tls_key.pem", import.meta.url),
);

/** Reads a PEM file; exits with a message when it cannot be read. */
export function readPem(path: string, what: string): string {
  try {
    return Deno.readTextFileSync(path);
  } catch (error) {
    console.error(`Cannot read the ${what} at ${path}: ${error}`);
    Deno.exit(2);
  }
}

/** The fixture certificate and key, read as PEM (see {@linkcode readPem}). */
export function readFixture(): { cert: string; key: string } {
  return {
    cert: readPem(FIXTURE_CERT_PATH, "certificate"),
    key: readPem(FIXTURE_KEY_PATH, "private key"),
  };
}
