/**
 * The package as a user gets it: `npm pack` from a copy of this checkout without dist/ (so the
 * `prepack` build is what ships), the tarball installed in a temporary project, then
 *  - every entry point in package.json `exports` loaded with `require` and with `import`;
 *  - small TypeScript consumer projects compiled by this repository's tsc under each supported
 *    moduleResolution, with the README's `declare module 'latchkey'` augmentation as the README
 *    writes it: the README's code compiles, and a wrong type is an error (Express, Koa and Fastify).
 *
 * Offline: the tarball's own dependencies (cookie, cookie-signature: the production part of
 * package-lock.json) are installed by `npm install --offline --install-links` from this
 * repository's node_modules folders, so npm needs no registry metadata; the optional peers and
 * their types (express, koa, ioredis, @types/*) are symlinked from this repository's node_modules
 * after the install (npm would prune them otherwise), which is all tsc and node need.
 *
 * Built once, packed once, installed once; ~30 s here. LATCHKEY_KEEP_PACK_TMP=1 keeps the folder.
 */
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { describeRun, pool, run, type RunResult } from './run';

const root = join(__dirname, '..', '..');
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as {
  name: string;
  exports: Record<string, unknown>;
  typesVersions?: unknown;
  peerDependencies?: Record<string, string>;
};
const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc');
const keep = process.env.LATCHKEY_KEEP_PACK_TMP === '1';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const { typesVersionsDrift } = require('../../scripts/types-versions') as { typesVersionsDrift: (p: unknown) => string[] };

/** Every string leaf of an `exports` value (its targets under all conditions). */
function targets(value: unknown): string[] {
  if (typeof value === 'string') return [value];
  if (Array.isArray(value)) return value.flatMap(targets);
  if (value !== null && typeof value === 'object') return Object.values(value).flatMap(targets);
  return [];
}

/** `exports` subpaths whose targets include JavaScript: the entry points to require and import. */
const entryPoints = Object.entries(pkg.exports)
  .filter(([, v]) => targets(v).some((t) => /\.[cm]?js$/.test(t)))
  .map(([subpath]) => {
    if (subpath.includes('*')) throw new Error(`exports pattern ${subpath}: this test lists concrete entry points only; extend it`);
    return subpath === '.' ? pkg.name : `${pkg.name}/${subpath.replace(/^\.\//, '')}`;
  });

// --- the README's code, as the README writes it -------------------------------------------------

const readme = readFileSync(join(root, 'README.md'), 'utf8');
/** The first ```ts block after the heading line `heading`. */
function tsBlockAfter(heading: string): string {
  const at = readme.search(new RegExp(`^${heading.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`, 'm'));
  if (at < 0) throw new Error(`README.md has no "${heading}" heading`);
  const m = /```ts\n([\s\S]*?)```/.exec(readme.slice(at));
  if (m === null) throw new Error(`README.md has no ts block after "${heading}"`);
  return m[1]!;
}
const expressSnippet = tsBlockAfter('## Use');
const koaSnippet = tsBlockAfter('### Koa');
const fastifySnippet = tsBlockAfter('### Fastify');
const augmentation = /^declare module 'latchkey' \{\n[\s\S]*?^\}\n/m.exec(expressSnippet)?.[0];

/** The one name the README's snippet uses without defining it: the application's own. */
const globalsDts = 'declare function checkPassword(req: unknown): string;\n';

/** Deliberate mistakes: `userId` is a string in the README's SessionData. Line numbers matter. */
const wrong = {
  express: [
    "import type { Request } from 'express';",
    '',
    'export function wrong(req: Request): void {',
    "  req.session.set('userId', 42);",
    "  const n: number | undefined = req.session.get('userId');",
    '  void n;',
    '}',
    '',
  ].join('\n'),
  koa: [
    "import type { Context } from 'koa';",
    '',
    'export function wrong(ctx: Context): void {',
    "  ctx.session.set('userId', 42);",
    "  const n: number | undefined = ctx.session.get('userId');",
    '  void n;',
    '}',
    '',
  ].join('\n'),
  fastify: [
    "import type { FastifyRequest } from 'fastify';",
    '',
    'export function wrong(request: FastifyRequest): void {',
    "  request.session.set('userId', 42);",
    "  const n: number | undefined = request.session.get('userId');",
    '  void n;',
    '}',
    '',
  ].join('\n'),
};
/** What tsc must say about them: the set() argument, then the get() result. */
const expectedWrong = ['wrong.ts(4): TS2345', 'wrong.ts(5): TS2322'];

interface Mode {
  name: string;
  type: 'module' | 'commonjs';
  compilerOptions: Record<string, unknown>;
}
const modes: Mode[] = [
  { name: 'nodenext-esm', type: 'module', compilerOptions: { module: 'nodenext', moduleResolution: 'nodenext' } },
  { name: 'nodenext-cjs', type: 'commonjs', compilerOptions: { module: 'nodenext', moduleResolution: 'nodenext' } },
  { name: 'bundler', type: 'module', compilerOptions: { module: 'esnext', moduleResolution: 'bundler' } },
  { name: 'node16', type: 'module', compilerOptions: { module: 'node16', moduleResolution: 'node16' } },
  { name: 'node10', type: 'commonjs', compilerOptions: { module: 'commonjs', moduleResolution: 'node10' } },
];
const frameworks = ['express', 'koa', 'fastify'] as const;

// --- one pack, one install ----------------------------------------------------------------------

let work = '';
let consumer = '';
let tarball = '';
let tarFiles: string[] = [];

function mustPass(what: string, r: RunResult): void {
  if (r.code !== 0) throw new Error(describeRun(what, r));
}

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'latchkey-pack-'));

  // A copy of the checkout as a fresh clone has it: no dist/, no node_modules of its own.
  const copy = join(work, 'source');
  const skip = new Set(['node_modules', '.git', 'dist', 'coverage']);
  cpSync(root, copy, {
    recursive: true,
    filter: (src) => !skip.has(relative(root, src).split(/[\\/]/)[0]!) && !relative(root, src).startsWith(join('bench', '.tmp')),
  });
  symlinkSync(join(root, 'node_modules'), join(copy, 'node_modules'), 'dir');

  // prepack: clean, build, typesVersions check.
  const packDir = join(work, 'tarball');
  mkdirSync(packDir);
  mustPass('npm pack', await run('npm', ['pack', '--pack-destination', packDir], copy, 120_000));
  const tgz = readdirSync(packDir).filter((f) => f.endsWith('.tgz'));
  if (tgz.length !== 1) throw new Error(`npm pack left ${tgz.length} tarballs in ${packDir}`);
  tarball = join(packDir, tgz[0]!);
  const list = await run('tar', ['-tzf', tarball], work, 30_000);
  mustPass('tar -tzf', list);
  tarFiles = list.stdout.split('\n').filter((l) => l !== '').map((l) => l.replace(/^package\//, ''));

  // The consumer: the tarball and the production dependencies from package-lock.json.
  consumer = join(work, 'consumer');
  mkdirSync(consumer);
  writeFileSync(join(consumer, 'package.json'), JSON.stringify({ name: 'consumer', version: '1.0.0', private: true }, null, 2));
  const lock = JSON.parse(readFileSync(join(root, 'package-lock.json'), 'utf8')) as {
    packages: Record<string, { dev?: boolean; devOptional?: boolean; peer?: boolean; link?: boolean }>;
  };
  const prod = Object.entries(lock.packages)
    .filter(([path, e]) => path !== '' && e.dev !== true && e.devOptional !== true && e.link !== true)
    .map(([path]) => join(root, path));
  mustPass(
    'npm install (offline) of the tarball',
    await run('npm', ['install', '--offline', '--no-audit', '--no-fund', '--no-package-lock', '--ignore-scripts', '--install-links', tarball, ...prod], consumer, 120_000),
  );

  // The optional peers and the types a TypeScript user installs beside them: symlinks.
  const peers = Object.keys(pkg.peerDependencies ?? {});
  const typesOf = (name: string) => `@types/${name.replace(/^@([^/]+)\//, '$1__')}`;
  for (const name of [...peers, ...peers.map(typesOf), '@types/node']) {
    const from = join(root, 'node_modules', name);
    const to = join(consumer, 'node_modules', name);
    if (!existsSync(from) || existsSync(to)) continue;
    mkdirSync(dirname(to), { recursive: true });
    symlinkSync(from, to, 'dir');
  }
}, 240_000);

afterAll(() => {
  if (work === '') return;
  if (keep) console.log(`LATCHKEY_KEEP_PACK_TMP: kept ${work}`);
  else rmSync(work, { recursive: true, force: true });
});

// --- the tarball --------------------------------------------------------------------------------

describe('npm pack', () => {
  it('ships dist/ (built by prepack from a checkout without one), LICENSE, README and package.json, and no sources', () => {
    expect(tarFiles).toEqual(expect.arrayContaining(['package.json', 'README.md', 'LICENSE', 'dist/index.js', 'dist/index.d.ts']));
    const stray = tarFiles.filter((f) => !f.startsWith('dist/') && !['package.json', 'README.md', 'LICENSE'].includes(f));
    expect(stray).toEqual([]);
  });

  it('contains every file package.json exports and typesVersions point to', () => {
    const pointed = [
      ...Object.values(pkg.exports).flatMap(targets),
      ...targets(pkg.typesVersions),
    ].map((t) => t.replace(/^\.\//, ''));
    expect(pointed.filter((t) => !tarFiles.includes(t))).toEqual([]);
  });

  it('typesVersions (for moduleResolution node10) matches exports: `npm run types-versions -- --write` regenerates it', () => {
    expect(typesVersionsDrift(pkg)).toEqual([]);
  });
});

// --- loading every entry point --------------------------------------------------------------------

describe('the installed tarball loads', () => {
  const cjs = `const out = {};
for (const s of JSON.parse(process.argv[1])) out[s] = Object.keys(require(s)).filter((k) => k !== 'default' && k !== '__esModule').sort();
console.log(JSON.stringify(out));`;
  const esm = `const out = {};
for (const s of JSON.parse(process.argv[1])) out[s] = Object.keys(await import(s)).filter((k) => k !== 'default' && k !== '__esModule').sort();
console.log(JSON.stringify(out));`;
  let required: Record<string, string[]> = {};

  it(`with require: ${entryPoints.join(', ')}`, async () => {
    const r = await run(process.execPath, ['-e', cjs, JSON.stringify(entryPoints)], consumer, 30_000);
    mustPass('require of every entry point', r);
    required = JSON.parse(r.stdout) as Record<string, string[]>;
    for (const spec of entryPoints) expect({ spec, empty: required[spec]!.length === 0 }).toEqual({ spec, empty: false });
    expect(required[pkg.name]).toEqual(expect.arrayContaining(['MemoryStore', 'SessionError']));
    // package.json is exported too.
    const p = await run(process.execPath, ['-p', `require('${pkg.name}/package.json').name`], consumer, 30_000);
    expect(p.stdout.trim()).toBe(pkg.name);
  });

  it('with import, with the same named exports as require', async () => {
    const r = await run(process.execPath, ['--input-type=module', '-e', esm, JSON.stringify(entryPoints)], consumer, 30_000);
    mustPass('import of every entry point', r);
    const imported = JSON.parse(r.stdout) as Record<string, string[]>;
    expect(Object.keys(imported).sort()).toEqual([...entryPoints].sort());
    if (Object.keys(required).length > 0) expect(imported).toEqual(required);
  });

  it('a default export is the same function from import as from require (import session from …)', async () => {
    const check = `const out = {};
for (const s of JSON.parse(process.argv[1])) {
  const d = require(s).default;
  if (d !== undefined) out[s] = (await import(s)).default === d && typeof d === 'function';
}
console.log(JSON.stringify(out));`;
    const r = await run(process.execPath, ['--input-type=module', '-e', `import { createRequire } from 'node:module'; const require = createRequire(process.cwd() + '/x.js');\n${check}`, JSON.stringify(entryPoints)], consumer, 30_000);
    mustPass('default exports', r);
    const defaults = JSON.parse(r.stdout) as Record<string, boolean>;
    expect(Object.keys(defaults).length).toBeGreaterThan(0);
    for (const [spec, same] of Object.entries(defaults)) expect({ spec, same }).toEqual({ spec, same: true });
  });
});

// --- TypeScript consumers -------------------------------------------------------------------------

/** tsc's errors as `file(line): TScode`, files relative to the project. */
function errors(r: RunResult): string[] {
  return [...r.stdout.matchAll(/^(.+?)\((\d+),\d+\): error (TS\d+):/gm)].map((m) => `${m[1]}(${m[2]}): ${m[3]}`);
}

describe('TypeScript consumers, with the README augmentation as written', () => {
  // One tsc run per project: app.ts (the README's code) and wrong.ts are one program, so the
  // augmentation in app.ts is what types wrong.ts. "app.ts compiles" is: no error outside
  // wrong.ts (wrong.ts only adds a function; it cannot hide an error in app.ts).
  const results = new Map<string, RunResult>();

  beforeAll(async () => {
    if (augmentation === undefined) throw new Error("README.md's Use example has no `declare module 'latchkey' { … }` block");
    if (fastifySnippet === undefined) throw new Error('README.md has no ts block after "### Fastify"');
    const tasks: (() => Promise<void>)[] = [];
    // The slowest first (it checks every declaration file, @types/node's included).
    const libcheck = join(consumer, 'ts', 'libcheck');
    mkdirSync(libcheck, { recursive: true });
    writeFileSync(join(libcheck, 'package.json'), JSON.stringify({ name: 'ts-libcheck', private: true, type: 'module' }));
    writeFileSync(join(libcheck, 'all.ts'), `${entryPoints.map((s, i) => `import * as m${i} from '${s}';`).join('\n')}\nexport const all = [${entryPoints.map((_, i) => `m${i}`).join(', ')}];\n`);
    writeFileSync(join(libcheck, 'tsconfig.json'), JSON.stringify({
      compilerOptions: { target: 'es2022', module: 'nodenext', moduleResolution: 'nodenext', strict: true, noEmit: true, skipLibCheck: false, types: ['node'] },
      files: ['all.ts'],
    }));
    tasks.push(async () => {
      results.set('libcheck', await run(process.execPath, [tsc, '-p', 'tsconfig.json', '--pretty', 'false'], libcheck, 90_000));
    });
    for (const mode of modes) {
      for (const fw of frameworks) {
        const dir = join(consumer, 'ts', `${mode.name}-${fw}`);
        mkdirSync(dir, { recursive: true });
        writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: `ts-${mode.name}-${fw}`, private: true, type: mode.type }));
        // Express: the README's Use example as it is. Koa: its Koa example, plus the same augmentation.
        writeFileSync(join(dir, 'app.ts'), fw === 'express' ? expressSnippet : `${fw === 'koa' ? koaSnippet : fastifySnippet}\n${augmentation}`);
        writeFileSync(join(dir, 'globals.d.ts'), globalsDts);
        writeFileSync(join(dir, 'wrong.ts'), wrong[fw]);
        const compilerOptions = {
          target: 'es2022',
          strict: true,
          noEmit: true,
          esModuleInterop: true,
          skipLibCheck: true,
          types: ['node'],
          ...mode.compilerOptions,
        };
        writeFileSync(join(dir, 'tsconfig.json'), JSON.stringify({ compilerOptions, files: ['app.ts', 'globals.d.ts', 'wrong.ts'] }, null, 2));
        tasks.push(async () => {
          results.set(`${mode.name}-${fw}`, await run(process.execPath, [tsc, '-p', 'tsconfig.json', '--pretty', 'false'], dir, 60_000));
        });
      }
    }
    await pool(tasks, 2);
  }, 180_000);

  for (const mode of modes) {
    for (const fw of frameworks) {
      it(`${mode.name} (${mode.type}), latchkey/${fw}: the README code compiles, a wrong type fails`, () => {
        const r = results.get(`${mode.name}-${fw}`)!;
        const all = errors(r);
        // The README's code: no error at all (TS2664 and TS2488 were the symptoms of issue 13).
        expect({ readmeCode: all.filter((e) => !e.startsWith('wrong.ts(')) }).toEqual({ readmeCode: [] });
        // The mistakes: set('userId', 42) and a number from get('userId') are errors.
        expect({ wrong: all.filter((e) => e.startsWith('wrong.ts(')) }).toEqual({ wrong: expectedWrong });
        // Nothing tsc said that the pattern above did not catch.
        expect({ failed: r.code !== 0, unparsed: all.length === 0 ? describeRun('tsc', r) : '' }).toEqual({ failed: true, unparsed: '' });
      });
    }
  }

  it("latchkey's declaration files type-check in a strict consumer (skipLibCheck: false), every entry point imported", () => {
    const r = results.get('libcheck')!;
    // Third-party declaration files are not ours to judge: only errors in all.ts or in latchkey's.
    const ours = r.stdout.split('\n').filter((l) => / error TS/.test(l) && (l.startsWith('all.ts') || l.includes(`node_modules/${pkg.name}/`)));
    expect({ ours, timedOut: r.timedOut }).toEqual({ ours: [], timedOut: false });
  });
});
