import { sign } from 'cookie-signature';
import { PrivateCodec, SignedCodec } from '../../src/cookie/codec';

const A = 'a'.repeat(32);
const B = 'b'.repeat(32);

describe('SignedCodec', () => {
  it("is exactly cookie-signature's sign(key, secret)", () => {
    expect(new SignedCodec([A, B]).protect('key')).toBe(sign('key', A));
  });
  it('opens under any secret and says when it was an older one', () => {
    expect(new SignedCodec([A, B]).open(sign('k', A))).toEqual({ key: 'k', olderSecret: false });
    expect(new SignedCodec([A, B]).open(sign('k', B))).toEqual({ key: 'k', olderSecret: true });
    expect(new SignedCodec([A]).open(sign('k', B))).toBeNull();
  });
  it('refuses appended, truncated, padded, empty and oversized values', () => {
    const v = sign('k', A);
    const codec = new SignedCodec([A]);
    for (const bad of [`${v}x`, v.slice(0, -1), `${v}=`, '', '.', sign('', A), `${'x'.repeat(5000)}${v}`]) expect(codec.open(bad)).toBeNull();
  });
});

describe('PrivateCodec', () => {
  it('round-trips, hides the key, and differs on every seal', () => {
    const codec = new PrivateCodec([A], 'sid');
    const one = codec.protect('secret-key');
    expect(one).not.toContain('secret-key');
    expect(one).toMatch(/^[A-Za-z0-9_-]+$/);
    expect(codec.protect('secret-key')).not.toBe(one);
    expect(codec.open(one)).toEqual({ key: 'secret-key', olderSecret: false });
  });
  it('opens under an older secret by its key id, and not under another cookie name', () => {
    const sealed = new PrivateCodec([B], 'sid').protect('k');
    expect(new PrivateCodec([A, B], 'sid').open(sealed)).toEqual({ key: 'k', olderSecret: true });
    expect(new PrivateCodec([A], 'sid').open(sealed)).toBeNull();
    expect(new PrivateCodec([B], 'other').open(sealed)).toBeNull();
  });
  it('refuses a seal with any single byte flipped', () => {
    const codec = new PrivateCodec([A], 'sid');
    const raw = Buffer.from(codec.protect('some key'), 'base64url');
    for (let i = 0; i < raw.length; i++) {
      const copy = Buffer.from(raw);
      copy[i] = copy[i]! ^ 0x01;
      expect(codec.open(copy.toString('base64url'))).toBeNull();
    }
    for (const bad of ['', 'AAAA', '!!!', 'a'.repeat(5000)]) expect(codec.open(bad)).toBeNull();
  });
});
