import { MAX_AGE_CAP_SECONDS, SetCookieWriter } from '../../src/cookie/serialize';

describe('SetCookieWriter', () => {
  it('writes the safe defaults', () => {
    expect(new SetCookieWriter('sid').write('v', 60, false)).toBe('sid=v; Max-Age=60; Path=/; HttpOnly; SameSite=Lax');
    expect(new SetCookieWriter('sid').write('v', 60, true)).toBe('sid=v; Max-Age=60; Path=/; HttpOnly; SameSite=Lax; Secure');
  });
  it('caps Max-Age at 400 days (RFC 6265bis) and omits it for browser-session cookies', () => {
    expect(new SetCookieWriter('sid').write('v', 10 ** 9, false)).toContain(`Max-Age=${MAX_AGE_CAP_SECONDS};`);
    expect(new SetCookieWriter('sid').write('v', undefined, false)).not.toContain('Max-Age');
  });
  it('expires with the same path, domain and Secure', () => {
    const w = new SetCookieWriter('sid', { domain: 'example.com', path: '/app', sameSite: 'strict', partitioned: true, priority: 'high', secure: true });
    expect(w.expire(true)).toBe(
      'sid=; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Path=/app; Domain=example.com; HttpOnly; SameSite=Strict; Priority=High; Secure; Partitioned',
    );
  });
  it("decides Secure per request only with 'auto'", () => {
    expect(new SetCookieWriter('sid').isSecure(true)).toBe(true);
    expect(new SetCookieWriter('sid').isSecure(false)).toBe(false);
    expect(new SetCookieWriter('sid', { secure: true }).isSecure(false)).toBe(true);
    expect(new SetCookieWriter('sid', { secure: false }).isSecure(true)).toBe(false);
  });
  it('rejects attribute injection and bad prefixes at construction', () => {
    expect(() => new SetCookieWriter('sid', { path: '/\r\nX: y' })).toThrow(/invalid/);
    expect(() => new SetCookieWriter('sid', { domain: 'x;y' })).toThrow(/invalid/);
    expect(() => new SetCookieWriter('s d')).toThrow(/invalid/);
    expect(() => new SetCookieWriter('sid', { domain: `${'a.'.repeat(550)}com` })).toThrow(/1024/);
    expect(() => new SetCookieWriter('__Host-x', { secure: true, path: '/a' })).toThrow(/__Host-/);
    expect(() => new SetCookieWriter('__HOST-x', { secure: true, domain: 'a.com' })).toThrow(/path/);
    expect(() => new SetCookieWriter('__Secure-x', { secure: false })).toThrow(/secure/);
    expect(() => new SetCookieWriter('sid', { partitioned: true, secure: false })).toThrow(/partitioned/);
    expect(() => new SetCookieWriter('constructor')).toThrow(/reserved/);
  });
});
