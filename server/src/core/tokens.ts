/**
 * Bearer tokens of clients and operators: issued at random, kept only as
 * sha256 digests (in the journal, so every coordinator of a federation checks
 * them alike) and compared in constant time. Tokens are never logged.
 */
import { createHash, randomBytes, timingSafeEqual } from "node:crypto";

/** A new random bearer token (256 bits, base64url, `trb_` prefix so leaked tokens are recognisable). */
export function newToken(): string {
  return `trb_${randomBytes(32).toString("base64url")}`;
}

/** Hex sha256 of a token: what the store keeps. */
export function tokenDigest(token: string): string {
  return createHash("sha256").update(token, "utf8").digest("hex");
}

/** Whether `token` hashes to `digestHex`, compared in constant time. */
export function tokenMatches(token: string, digestHex: string): boolean {
  const a = Buffer.from(tokenDigest(token), "hex");
  const b = Buffer.from(digestHex, "hex");
  return a.length === b.length && timingSafeEqual(a, b);
}
