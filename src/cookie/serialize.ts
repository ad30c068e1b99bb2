/**
 * Set-Cookie writing. Every option is checked once, when the middleware is created, so
 * nothing a request does can inject attributes, and the attribute suffix is built once.
 */
import { serialize } from 'cookie';
import { ConfigError } from '../errors';

/** Cookie attributes. Defaults are the safe ones (OWASP Session Management, "Cookies"). */
export interface CookieOptions {
  /** Default `/`. */
  path?: string;
  /** Default none: a host-only cookie (OWASP: "Domain and Path Attributes"). */
  domain?: string;
  /** Default `'auto'`: Secure when the request arrived over HTTPS (honouring trust proxy / app.proxy). */
  secure?: boolean | 'auto';
  /** Default true: scripts cannot read the session cookie. */
  httpOnly?: boolean;
  /** Default `'lax'`. `'none'` requires `secure`. `false` leaves the attribute out. */
  sameSite?: 'lax' | 'strict' | 'none' | false;
  /** CHIPS partitioned cookie; requires `secure`. */
  partitioned?: boolean;
  priority?: 'low' | 'medium' | 'high';
}

/** RFC 6265bis 5.5: user agents cap Max-Age at 400 days, so we never promise more. */
export const MAX_AGE_CAP_SECONDS = 400 * 24 * 60 * 60;

const EXPIRED = '; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT';

/** Writes our Set-Cookie header values. */
export class SetCookieWriter {
  readonly name: string;
  /** `'auto'` means: decided per request. */
  readonly secure: boolean | 'auto';
  /** The attributes as configured, for views that show them. */
  readonly attributes: { path: string; domain: string | undefined; httpOnly: boolean; sameSite: 'lax' | 'strict' | 'none' | false };
  private readonly plainAttributes: string;
  private readonly secureAttributes: string;

  constructor(name: string, options: CookieOptions = {}) {
    const path = options.path ?? '/';
    const secure = options.secure ?? 'auto';
    const sameSite = options.sameSite ?? 'lax';
    checkName(name);
    try {
      // The cookie package rejects names, paths and domains that would inject attributes
      // (';', CR, LF, control characters): CVE-2024-47764.
      serialize(name, 'x', { path, domain: options.domain, priority: options.priority });
    } catch (err) {
      throw new ConfigError(`invalid session cookie option: ${(err as Error).message}`, { cause: err });
    }
    if (options.domain !== undefined && options.domain.length > 1024) {
      throw new ConfigError('cookie domain longer than 1024 bytes is dropped by browsers (RFC 6265bis 5.6)');
    }
    if (path.length > 1024) throw new ConfigError('cookie path longer than 1024 bytes is dropped by browsers (RFC 6265bis 5.6)');
    if (sameSite === 'none' && secure === false) {
      throw new ConfigError("cookie sameSite 'none' requires secure (browsers reject it otherwise)");
    }
    if (options.partitioned && secure === false) throw new ConfigError('a partitioned cookie requires secure');
    // RFC 6265bis 4.1.3: browsers drop prefixed cookies whose attributes break the rule, silently.
    const lower = name.toLowerCase();
    if ((lower.startsWith('__secure-') || lower.startsWith('__host-')) && secure !== true) {
      throw new ConfigError(`cookie name ${name} requires cookie.secure: true (RFC 6265bis 4.1.3)`);
    }
    if (lower.startsWith('__host-') && (path !== '/' || options.domain !== undefined)) {
      throw new ConfigError(`cookie name ${name} requires path '/' and no domain (RFC 6265bis 4.1.3.2)`);
    }

    let attributes = `; Path=${path}`;
    if (options.domain !== undefined) attributes += `; Domain=${options.domain}`;
    if (options.httpOnly ?? true) attributes += '; HttpOnly';
    if (sameSite) attributes += `; SameSite=${sameSite[0]!.toUpperCase()}${sameSite.slice(1)}`;
    if (options.priority) attributes += `; Priority=${options.priority[0]!.toUpperCase()}${options.priority.slice(1)}`;
    this.name = name;
    this.secure = secure;
    this.attributes = { path, domain: options.domain, httpOnly: options.httpOnly ?? true, sameSite };
    this.plainAttributes = attributes;
    this.secureAttributes = options.partitioned ? `${attributes}; Secure; Partitioned` : `${attributes}; Secure`;
  }

  /** Whether a response to a request over `https` (as the adapter judged it) gets `Secure`. */
  isSecure(https: boolean): boolean {
    return this.secure === 'auto' ? https : this.secure;
  }

  /**
   * A Set-Cookie value. `maxAge` in seconds, capped at 400 days; undefined gives a browser-session cookie.
   * `value` comes from a codec and is base64url or cookie-signature output: cookie-octets only.
   */
  write(value: string, maxAge: number | undefined, secure: boolean): string {
    const attributes = secure ? this.secureAttributes : this.plainAttributes;
    if (maxAge === undefined) return `${this.name}=${value}${attributes}`;
    const seconds = Math.min(Math.max(Math.floor(maxAge), 0), MAX_AGE_CAP_SECONDS);
    return `${this.name}=${value}; Max-Age=${seconds}${attributes}`;
  }

  /** A Set-Cookie that removes the cookie, with the same Path/Domain/Secure it was set with (OWASP, "Manual Session Expiration"). */
  expire(secure: boolean): string {
    return `${this.name}=${EXPIRED}${secure ? this.secureAttributes : this.plainAttributes}`;
  }
}

function checkName(name: string): void {
  if (typeof name !== 'string' || name.length === 0) throw new ConfigError('cookie name must be a non-empty string');
  if (name in Object.prototype) throw new ConfigError(`cookie name ${name} is reserved (it names an Object.prototype member)`);
}
