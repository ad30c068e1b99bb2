/**
 * The code's shape, as issues 9 and 11 set it: adapters stay thin (under 100 lines, on
 * latchkey/adapter alone), no file in src/ grows past 300 lines, and the published declarations
 * carry no @internal member for users to trip over.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';

const ROOT = join(__dirname, '..');

function filesUnder(dir: string, ext: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return filesUnder(path, ext);
    return path.endsWith(ext) ? [path] : [];
  });
}

const lines = (path: string): number => readFileSync(path, 'utf8').split('\n').length - 1;

test('no file in src/ is over 300 lines', () => {
  const long = filesUnder(join(ROOT, 'src'), '.ts')
    .map((path) => ({ file: relative(ROOT, path), lines: lines(path) }))
    .filter((f) => f.lines > 300);
  expect(long).toEqual([]);
});

test.each(['express', 'koa', 'fastify'])('src/middleware/%s.ts is under 100 lines and reaches the engine only through latchkey/adapter', (name) => {
  const path = join(ROOT, 'src/middleware', `${name}.ts`);
  expect(lines(path)).toBeLessThan(100);
  // Its own imports, and those of the middleware helpers it uses: adapter, errors, siblings only.
  const seen = new Set<string>();
  const reached: string[] = [];
  const visit = (file: string): void => {
    if (seen.has(file)) return;
    seen.add(file);
    for (const m of readFileSync(file, 'utf8').matchAll(/^import .* from '(\.[^']+)';$/gm)) {
      const target = m[1]!;
      if (target.startsWith('./')) visit(join(ROOT, 'src/middleware', `${target.slice(2)}.ts`));
      else reached.push(target);
    }
  };
  visit(path);
  expect(reached.filter((t) => t !== '../adapter' && t !== '../errors')).toEqual([]);
});

test('the published declarations have no @internal member', () => {
  const withInternal = filesUnder(join(ROOT, 'dist'), '.d.ts').filter((path) => readFileSync(path, 'utf8').includes('@internal'));
  expect(withInternal.map((p) => relative(ROOT, p))).toEqual([]);
});
