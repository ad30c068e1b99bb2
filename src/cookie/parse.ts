/**
 * Cookie header reading, on plain strings. We look for one name only and never build a
 * map of every cookie: a request carrying 200 unrelated cookies costs one `indexOf`.
 */

const SPACE = 32;
const TAB = 9;
const SEMICOLON = 59;
const EQUALS = 61;
const DQUOTE = 34;

/**
 * Every value sent under exactly `name`, in header order (browsers send several when
 * cookies of one name exist for several paths or domains; RFC 6265bis 5.7.3 orders them
 * by path length, not by trust, so the caller tries each). The name is matched exactly
 * and case-sensitively and is never percent-decoded, so `__HOST-sid` or `%5F%5FHost-sid`
 * is never taken for `__Host-sid` (CVE-2020-7070, CVE-2020-8184). Values are returned raw
 * (a surrounding DQUOTE pair removed, RFC 6265bis 4.1.1). Never throws.
 *
 * @example
 * ```ts
 * cookieValues('a=1; sid=x; sid=y', 'sid'); // ['x', 'y']
 * ```
 */
export function cookieValues(header: string | undefined, name: string): string[] | undefined {
  if (!header) return undefined;
  let at = header.indexOf(name);
  if (at === -1) return undefined;
  const len = header.length;
  let found: string[] | undefined;
  while (at !== -1) {
    let before = at - 1;
    while (before >= 0 && isBlank(header.charCodeAt(before))) before--;
    let eq = at + name.length;
    while (eq < len && isBlank(header.charCodeAt(eq))) eq++;
    if ((before < 0 || header.charCodeAt(before) === SEMICOLON) && header.charCodeAt(eq) === EQUALS) {
      const semi = header.indexOf(';', eq + 1);
      const end = semi === -1 ? len : semi;
      (found ??= []).push(unquote(header.slice(eq + 1, end).trim()));
      at = end === len ? -1 : header.indexOf(name, end);
    } else {
      at = header.indexOf(name, at + 1);
    }
  }
  return found;
}

function isBlank(code: number): boolean {
  return code === SPACE || code === TAB;
}

function unquote(value: string): string {
  return value.length >= 2 && value.charCodeAt(0) === DQUOTE && value.charCodeAt(value.length - 1) === DQUOTE
    ? value.slice(1, -1)
    : value;
}
