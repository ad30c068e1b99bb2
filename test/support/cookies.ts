/** Reading our Set-Cookie from a supertest response and sending it back. */
import type { Response } from 'supertest';

export interface ParsedSetCookie {
  name: string;
  value: string;
  attributes: Record<string, string | true>;
  raw: string;
}

export function setCookies(res: Response, name = 'sid'): ParsedSetCookie[] {
  const header = res.headers['set-cookie'] as unknown;
  const list = Array.isArray(header) ? (header as string[]) : typeof header === 'string' ? [header] : [];
  return list.map(parseSetCookie).filter((c) => c.name === name);
}

/** Our one Set-Cookie, or undefined; fails when there are several. */
export function sessionCookie(res: Response, name = 'sid'): ParsedSetCookie | undefined {
  const all = setCookies(res, name);
  if (all.length > 1) throw new Error(`expected at most one Set-Cookie for ${name}, got ${all.length}`);
  return all[0];
}

export function parseSetCookie(raw: string): ParsedSetCookie {
  const [pair, ...attrs] = raw.split(';');
  const eq = pair!.indexOf('=');
  const attributes: Record<string, string | true> = {};
  for (const a of attrs) {
    const [k, ...v] = a.trim().split('=');
    attributes[k!.toLowerCase()] = v.length ? v.join('=') : true;
  }
  return { name: pair!.slice(0, eq).trim(), value: pair!.slice(eq + 1).trim(), attributes, raw };
}

/** A cookie jar of one cookie: keeps the latest value we were sent, drops it when expired. */
export class Jar {
  value: string | undefined;
  constructor(readonly name = 'sid') {}
  take(res: Response): this {
    const c = sessionCookie(res, this.name);
    if (c) this.value = c.attributes['max-age'] === '0' ? undefined : c.value;
    return this;
  }
  header(): string {
    return this.value === undefined ? '' : `${this.name}=${this.value}`;
  }
}

/** A jar of every cookie a response sets (koa-session signs with a second cookie, `<name>.sig`). */
export class CookieJar {
  private readonly cookies = new Map<string, string>();
  take(res: Response): this {
    const header = res.headers['set-cookie'] as unknown;
    for (const raw of Array.isArray(header) ? (header as string[]) : typeof header === 'string' ? [header] : []) {
      const c = parseSetCookie(raw);
      if (c.attributes['max-age'] === '0' || c.value === '') this.cookies.delete(c.name);
      else this.cookies.set(c.name, c.value);
    }
    return this;
  }
  value(name: string): string | undefined {
    return this.cookies.get(name);
  }
  header(): string {
    return [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; ');
  }
}
