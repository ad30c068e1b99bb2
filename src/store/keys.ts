/**
 * Session keys for server-side stores: `id.validator`, where the id (128 random bits)
 * names the record and the validator (256 random bits) proves possession. Stores keep
 * only a hash of the validator, so a dump of the store cannot be replayed as a cookie
 * (the selector/validator split; OWASP Session Management, "Session ID Entropy").
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

const ID_BYTES = 16;
const VALIDATOR_BYTES = 32;
const KEY_PATTERN = /^[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]{43}$/;

/** A key split into the part that names the record and the hash the store keeps. */
export interface KeyParts {
  id: string;
  /** base64url of the first 128 bits of SHA-256(validator): what the store keeps. */
  hash: string;
}

/** A fresh record id (128 bits from the CSPRNG, base64url). */
export function newId(): string {
  return randomBytes(ID_BYTES).toString('base64url');
}

/** A fresh validator for `id`: returns the full key for the cookie and the hash to store. */
export function newValidator(id: string): { key: string; hash: string } {
  const validator = randomBytes(VALIDATOR_BYTES).toString('base64url');
  return { key: `${id}.${validator}`, hash: hashValidator(validator) };
}

/** Splits a key; null when it is not of our format (then no store call is made). */
export function splitKey(key: string): KeyParts | null {
  if (key.length !== 66 || !KEY_PATTERN.test(key)) return null;
  return { id: key.slice(0, 22), hash: hashValidator(key.slice(23)) };
}

// 128 bits of SHA-256 keep preimages out of reach (the validator itself has 256 random bits) and
// take 22 characters, which matters at 100 000 sessions per process or per Redis.
function hashValidator(validator: string): string {
  return createHash('sha256').update(validator).digest().subarray(0, 16).toString('base64url');
}

/** Constant-time comparison of two validator hashes. */
export function sameHash(a: string, b: string): boolean {
  return a.length === b.length && timingSafeEqual(Buffer.from(a), Buffer.from(b));
}
