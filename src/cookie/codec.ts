/**
 * What the cookie value is made of: the store's key, protected either by an HMAC
 * (`signed`, cookie-signature's format) or by AES-256-GCM (`private`). Both take a list of
 * secrets: the first protects, every one is accepted, and a value accepted under an older
 * secret is reported so the engine re-issues it under the first (pillarjs/cookies does the
 * same for Koa).
 */
import { type KeyObject, createCipheriv, createDecipheriv, createHash, createSecretKey, hkdfSync, randomBytes } from 'node:crypto';
import { sign, unsign } from 'cookie-signature';
import { BoundedMap } from '../util/bounded-map';

/** Browsers keep at most 4096 bytes of name + value (RFC 6265bis 5.6); anything longer is not ours. */
export const MAX_COOKIE_BYTES = 4096;

/** A cookie value that opened: the store key inside, and whether an older secret was needed. */
export interface OpenedValue {
  key: string;
  /** True when the value was protected by a secret other than the first: re-issue it. */
  olderSecret: boolean;
}

/**
 * Cookie values that opened (or that we made) are remembered, so that the next request carrying
 * one skips the HMAC or AES-GCM: under load every OpenSSL context costs several microseconds.
 * Only values that verified are kept, so a client cannot fill it with junk; it is bounded,
 * oldest out first, and belongs to one codec (one secret list), so a removed secret never
 * outlives its middleware.
 */
const CACHE_SIZE = 10_000;

/** Turns a store key into a cookie value and back. `open` never throws on client input. */
export interface CookieCodec {
  readonly mode: 'signed' | 'private';
  protect(key: string): string;
  open(value: string): OpenedValue | null;
}

/**
 * The open path both codecs share: a length check, the cache of values that verified, then the
 * codec's own verification. Only verified values (and ones we made) enter the cache.
 */
abstract class CachingCodec implements CookieCodec {
  abstract readonly mode: 'signed' | 'private';
  private readonly cache = new BoundedMap<string, OpenedValue>(CACHE_SIZE);

  protect(key: string): string {
    const value = this.make(key);
    this.cache.set(value, { key, olderSecret: false });
    return value;
  }

  open(value: string): OpenedValue | null {
    if (value.length === 0 || value.length > MAX_COOKIE_BYTES) return null;
    const known = this.cache.get(value);
    if (known !== undefined) return known;
    const opened = this.verify(value);
    if (opened !== null) this.cache.set(value, opened);
    return opened;
  }

  /** The cookie value for `key`, under the first secret. */
  protected abstract make(key: string): string;
  /** The key inside `value` and whether an older secret was needed, or null. Never throws. */
  protected abstract verify(value: string): OpenedValue | null;
}

/** `signed`: the value is exactly cookie-signature's `sign(key, secret)`: readable, tamper-proof. */
export class SignedCodec extends CachingCodec {
  readonly mode = 'signed' as const;
  // cookie-signature accepts KeyObjects: the secret is imported once, not on every HMAC.
  private readonly secrets: KeyObject[];
  constructor(secrets: readonly string[]) {
    super();
    this.secrets = secrets.map((s) => createSecretKey(Buffer.from(s, 'utf8')));
  }

  protected make(key: string): string {
    return sign(key, this.secrets[0]!);
  }

  protected verify(value: string): OpenedValue | null {
    for (let i = 0; i < this.secrets.length; i++) {
      // cookie-signature >= 1.2 compares in constant time and rejects appended bytes (tj/node-cookie-signature#40).
      const key = unsign(value, this.secrets[i]!);
      if (key !== false && key.length > 0) return { key, olderSecret: i > 0 };
    }
    return null;
  }
}

const KEY_ID_BYTES = 4;
const IV_BYTES = 12;
const TAG_BYTES = 16;
const HEADER_BYTES = KEY_ID_BYTES + IV_BYTES;

interface SealKey {
  id: Buffer;
  key: Buffer;
}

/**
 * `private`: AES-256-GCM under a key derived from each secret with HKDF-SHA256. The sealed
 * value is base64url(keyId ‖ iv ‖ ciphertext ‖ tag); the key id picks the secret, so
 * removing or reordering secrets never makes us try every key. The cookie name is the
 * associated data: a seal cannot be replayed under another cookie name.
 */
export class PrivateCodec extends CachingCodec {
  readonly mode = 'private' as const;
  private readonly keys: SealKey[];
  private readonly aad: Buffer;

  constructor(secrets: readonly string[], cookieName: string) {
    super();
    this.keys = secrets.map((secret) => {
      const key = Buffer.from(hkdfSync('sha256', secret, 'latchkey', 'latchkey seal v1', 32));
      const id = createHash('sha256').update('latchkey key id').update(key).digest().subarray(0, KEY_ID_BYTES);
      return { id, key };
    });
    this.aad = Buffer.from(cookieName, 'utf8');
  }

  protected make(key: string): string {
    const sealer = this.keys[0]!;
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv('aes-256-gcm', sealer.key, iv);
    cipher.setAAD(this.aad);
    const body = Buffer.concat([sealer.id, iv, cipher.update(key, 'utf8'), cipher.final(), cipher.getAuthTag()]);
    return body.toString('base64url');
  }

  protected verify(value: string): OpenedValue | null {
    if (!/^[A-Za-z0-9_-]+$/.test(value)) return null;
    const body = Buffer.from(value, 'base64url');
    // Base64 decoding ignores a dangling last character and the unused bits of the final one, so
    // several texts open to one seal: accept only the exact text we issue (an appended or flipped
    // character is tampering, and the cache above is keyed by text).
    if (body.length < HEADER_BYTES + TAG_BYTES || body.toString('base64url') !== value) return null;
    const index = this.keys.findIndex((k) => k.id.equals(body.subarray(0, KEY_ID_BYTES)));
    if (index === -1) return null;
    try {
      const decipher = createDecipheriv('aes-256-gcm', this.keys[index]!.key, body.subarray(KEY_ID_BYTES, HEADER_BYTES));
      decipher.setAAD(this.aad);
      decipher.setAuthTag(body.subarray(body.length - TAG_BYTES));
      const plain = Buffer.concat([decipher.update(body.subarray(HEADER_BYTES, body.length - TAG_BYTES)), decipher.final()]);
      const key = plain.toString('utf8');
      return key.length > 0 ? { key, olderSecret: index > 0 } : null;
    } catch {
      // A failed GCM tag check is the expected outcome for tampered or foreign input: no session.
      return null;
    }
  }
}
