/**
 * package-lock.json is one that `npm ci` accepts (on this machine: npm 11, Linux x64) and that a
 * fresh `npm install` leaves unchanged. The check runs offline in a temporary folder
 * (scripts/check-lock.js, also `npm run check:lock`); this checkout's node_modules is untouched.
 */
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { checkLock } = require('../../scripts/check-lock') as { checkLock: (o?: { timeoutMs?: number }) => Promise<string[]> };

test('npm ci accepts package-lock.json and a fresh npm install does not rewrite it', async () => {
  expect(await checkLock({ timeoutMs: 45_000 })).toEqual([]);
}, 100_000);
