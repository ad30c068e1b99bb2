// After `tsc`: an ES module beside each CommonJS entry point that has a default export, so that
// `import session from 'latchkey/express-session'` gives the function in Node's ESM too (Node hands
// an ES module the whole `module.exports` of a CommonJS one as its default). Each .mjs re-exports the
// same CommonJS objects (no second copy: `instanceof` and module state stay one), with a .d.mts.
'use strict';
const fs = require('node:fs');
const path = require('node:path');

const root = path.join(__dirname, '..');
const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8'));

for (const [entry, target] of Object.entries(pkg.exports)) {
  if (typeof target !== 'object' || !target.import) continue;
  const js = path.join(root, target.default);
  const mod = require(js);
  const names = Object.keys(mod).filter((n) => n !== 'default' && n !== '__esModule');
  const base = `./${path.basename(js)}`;
  const lines = [`import cjs from '${base}';`, 'export default cjs.default;', ...names.map((n) => `export const ${n} = cjs.${n};`)];
  fs.writeFileSync(path.join(root, target.import.default), `// ES module face of ${entry}: the same objects as ${base}.\n${lines.join('\n')}\n`);
  const dts = path.basename(target.types);
  fs.writeFileSync(path.join(root, target.import.types), `export { default } from './${dts.replace(/\.d\.ts$/, '.js')}';\nexport * from './${dts.replace(/\.d\.ts$/, '.js')}';\n`);
}
