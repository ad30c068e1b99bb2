// @ts-check
// The engine alone on a MemoryStore, in one process, no HTTP: `node bench/engine.js [--scenarios
// read,write,new] [--n 50000] [--rounds 5]` (after `npm run build`). Per request: open the Cookie
// header, read or set one value, finish, follow the Set-Cookie; reported as CPU µs per request and
// what V8's GC took of it (medians over rounds). The HTTP figures (bench/cpu.js) move with the
// kernel's and the framework's share; this isolates latchkey's own work, to judge code changes by
// (e.g. whether the cookie-value and recent-key caches pay: turned off, read 1.9 → 6.4 µs, write
// 12.0 → 18.7 µs).
'use strict';
const { PerformanceObserver } = require('node:perf_hooks');
const { SessionEngine } = require('latchkey/adapter');
const { MemoryStore } = require('latchkey');
const { commandLine, median, runMain } = require('./util');

const { value } = commandLine();
const scenarios = value('scenarios', 'read,write,new').split(',');
const n = Number(value('n', '50000'));
const rounds = Number(value('rounds', '5'));
const secret = 'bench-secret-bench-secret-bench-secret-0123';

let gcMs = 0;
new PerformanceObserver((list) => {
  for (const e of list.getEntries()) gcMs += e.duration;
}).observe({ entryTypes: ['gc'] });

/** @param {string} setCookie */
const cookieOf = (setCookie) => setCookie.slice(0, setCookie.indexOf(';'));

/** @param {SessionEngine} engine @param {string} scenario @param {string | undefined} header */
async function once(engine, scenario, header) {
  const open = await engine.open(scenario === 'new' ? undefined : header, false);
  if (scenario === 'read') open.session.get('n');
  else open.session.set('n', ((/** @type {number | undefined} */ (open.session.get('n'))) ?? 0) + 1);
  const done = engine.finish(open, { status: 200 });
  const headers = done && (await done);
  return headers ? cookieOf(headers.setCookie) : header;
}

runMain(async () => {
  /** @type {Record<string, { us: number[], gc: number[] }>} */
  const results = {};
  for (let round = 0; round < rounds; round++) {
    for (const scenario of scenarios) {
      const store = new MemoryStore();
      const engine = new SessionEngine({ secret, store });
      let header = await once(engine, 'write', undefined);
      for (let i = 0; i < 2000; i++) header = await once(engine, scenario, header); // warm-up
      await new Promise((resolve) => setImmediate(resolve));
      gcMs = 0;
      const before = process.cpuUsage();
      for (let i = 0; i < n; i++) header = await once(engine, scenario, header);
      const spent = process.cpuUsage(before);
      await new Promise((resolve) => setImmediate(resolve)); // the GC entries arrive on the next turn
      const us = (spent.user + spent.system) / n;
      const r = (results[scenario] ??= { us: [], gc: [] });
      r.us.push(us);
      r.gc.push((gcMs * 1000) / n);
      store.close();
    }
  }
  console.log('| scenario | CPU µs per request | of it GC µs | rounds |\n|---|---:|---:|---|');
  for (const [s, r] of Object.entries(results)) {
    console.log(`| ${s} | ${median(r.us).toFixed(2)} | ${median(r.gc).toFixed(2)} | ${r.us.map((u) => u.toFixed(1)).join(', ')} |`);
  }
});
