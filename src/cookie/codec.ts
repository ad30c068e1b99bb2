/**
 * What the cookie value is made of: the store's key, protected either by an HMAC
 * (`signed`, cookie-signature's format) or by AES-256-GCM (`private`). Both take a list of
 * secrets: the first protects, every one is accepted, and a value accepted under an older
 * secret is reported so the engine re-issues it under the first (pillarjs/cookies does the
 * same for Koa).
 */
import { createCipheriv, createDecipheriv, createHash, hkdfSync, randomBytes } from 'node:crypto';
import { sign, unsign } from 'cookie-signature';

/** Browsers keep at most 4096 bytes of name + value (RFC 6265bis 5.6); anything longer is not ours. */
export const MAX_COOKIE_BYTES = 4096;

/** A cookie value that opened: the store key inside, and whether an older secret was needed. */
export interface OpenedValue {
  key: string;
  /** True when the value was protected by a secret other than the first: re-issue it. */
  olderSecret: boolean;
}

/** Turns a store key into a cookie value and back. `open` never throws on client input. */
export interface CookieCodec {
  readonly mode: 'signed' | 'private';
  protect(key: string): string;
  open(value: string): OpenedValue | null;
}

/** `signed`: the value is exactly cookie-signature's `sign(key, secret)`: readable, tamper-proof. */
export class SignedCodec implements CookieCodec {
  readonly mode = 'signed' as const;
  constructor(private readonly secrets: readonly string[]) {}

  protect(key: string): string {
    return sign(key, this.secrets[0]!);
  }

  open(value: string): OpenedValue | null {
    if (value.length === 0 || value.length > MAX_COOKIE_BYTES) return null;
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
export class PrivateCodec implements CookieCodec {
  readonly mode = 'private' as const;
  private readonly keys: SealKey[];
  private readonly aad: Buffer;

  constructor(secrets: readonly string[], cookieName: string) {
    this.keys = secrets.map((secret) => {
      const key = Buffer.from(hkdfSync('sha256', secret, 'latchkey', 'latchkey seal v1', 32));
      const id = createHash('sha256').update('latchkey key id').update(key).digest().subarray(0, KEY_ID_BYTES);
      return { id, key };
    });
    this.aad = Buffer.from(cookieName, 'utf8');
  }

  protect(key: string): string {
    const sealer = this.keys[0]!;
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv('aes-256-gcm', sealer.key, iv);
    cipher.setAAD(this.aad);
    const body = Buffer.concat([sealer.id, iv, cipher.update(key, 'utf8'), cipher.final(), cipher.getAuthTag()]);
    return body.toString('base64url');
  }

  open(value: string): OpenedValue | null {
    if (value.length === 0 || value.length > MAX_COOKIE_BYTES || !/^[A-Za-z0-9_-]+$/.test(value)) return null;
    const body = Buffer.from(value, 'base64url');
    if (body.length < HEADER_BYTES + TAG_BYTES) return null;
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
