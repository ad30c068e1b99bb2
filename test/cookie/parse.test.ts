import { cookieValues } from '../../src/cookie/parse';

describe('cookieValues', () => {
  it.each<[string | undefined, string[] | undefined]>([
    [undefined, undefined],
    ['', undefined],
    ['sid=a', ['a']],
    ['x=1; sid=a; y=2', ['a']],
    ['sid=a; sid=b', ['a', 'b']],
    ['  sid = a ;sid=b', ['a', 'b']],
    ['sid="quoted"', ['quoted']],
    ['sid="', ['"']],
    ['sid=', ['']],
    ['xsid=a; sidx=b; SID=c', undefined],
    ['%73id=a', undefined],
    ['sid', undefined],
    ['=sid', undefined],
    ['a=sid=1', undefined],
    ['a=b;sid=c=d', ['c=d']],
    ['__proto__=x; constructor=y', undefined],
  ])('%p → %p', (header, expected) => {
    expect(cookieValues(header, 'sid')).toEqual(expected);
  });

  it('matches prefixed names exactly and case-sensitively', () => {
    expect(cookieValues('__HOST-sid=a; __host-sid=b; %5F%5FHost-sid=c; __Host-sid=d', '__Host-sid')).toEqual(['d']);
  });

  it('never throws on arbitrary input', () => {
    for (let i = 0; i < 2000; i++) {
      const junk = Array.from({ length: 1 + (i % 40) }, (_, j) => String.fromCharCode((i * 31 + j * 17) % 256)).join('');
      expect(() => cookieValues(`${junk}sid=${junk};sid${junk}`, 'sid')).not.toThrow();
    }
  });
});
