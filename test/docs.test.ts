/** Code shown in the docs is the code that runs. */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

test("ARCHITECTURE.md's node:http adapter is the one the scenario table runs", () => {
  const doc = readFileSync(join(__dirname, '../ARCHITECTURE.md'), 'utf8');
  const block = /<!-- node-http-adapter -->\n```ts\n([\s\S]*?)\n```\n<!-- \/node-http-adapter -->/.exec(doc);
  expect(block?.[1]).toBe(readFileSync(join(__dirname, 'support/node-http-adapter.ts'), 'utf8').trimEnd());
});
