// @ts-check
// `npm run soak [-- --quick] [-- --duration S]`: a bounded soak of latchkey on RedisStore, not part of `npm test`.
//
// 1. Mixed traffic: browsers (each one request at a time, with its own cookie jar) create sessions,
//    read, write, renew and purge them, against an Express target and then a Koa one (bench/soak-target.js,
//    each in its own `node --expose-gc` process, on a throwaway redis-server). Every answer is checked
//    against what the browser was last acknowledged.
// 2. The fault runs: 20 browsers each incrementing a counter in its session (cookies followed, those
//    of 503 responses too, as a browser keeps them), on Express, while Redis is
//      paused (SIGSTOP, then SIGCONT), or killed (SIGKILL) and restarted on its port and dir with
//      `--appendonly yes --appendfsync always`, each with the README's earlier pair of ioredis options, with
//      ioredis's defaults, and with the options the README recommends; then a Cluster (3 masters + 3 replicas) whose master holding the most
//      sessions is killed while its replica lags behind it (its link cut, less than a think time
//      before), so the replica that takes over lacks that master's last acknowledged writes.
//    Each fault strikes just before a rotating update goes out (the target sends the signal; see its
//    /__arm), so a rotating write is in flight. After the fault the browsers go on past the rotation
//    grace, then read their sessions once more.
// Throughout, the heap of the target is sampled after forced GCs every few seconds.
// Prints one Markdown table: run, requests, 503s, 503 window (from the strike to the end of the last
// 503), max latency, sessions lost, acknowledged writes lost, heap series.
//
// Bounded: --duration (seconds, default 420; --quick: 75) is the whole run's budget: the fault runs
// take what their timings need (the cluster runs only when they fit), mixed traffic gets the rest
// (at least 10 s). Every wait has a limit, every process started here is stopped by pid.
'use strict';
const http = require('node:http');
const path = require('node:path');
const { RedisCluster, RedisServer, AOF_ALWAYS, rawCommand } = require('./redis-server');
const { commandLine, freePort, httpGet, redisServerVersion, runMain, sleep, startReady, versions } = require('./util');

const { flag, value } = commandLine();
const quick = flag('quick');
const BUDGET_MS = Number(value('duration', quick ? '75' : '420')) * 1000;

/**
 * The fault runs' timings. The full soak is the issue's original run: a fault 8 s in for 5 s, with
 * latchkey's defaults (storeTimeoutMs 2 s, rotationGraceMs 10 s); --quick shortens them.
 */
const T = quick
  ? { before: 1000, fault: 2500, grace: 1000, storeTimeoutMs: 2000, heapEvery: 2000, think: 10, after: 1000 }
  : { before: 8000, fault: 5000, grace: 10_000, storeTimeoutMs: 2000, heapEvery: 5000, think: 10, after: 1500 };
/** After the fault: the grace and a little more, and until every browser has had 3 answers of 200 (at most 20 s). */
const AFTER_MS = T.grace + T.after;
/** @typedef {'pair' | 'defaults' | 'recommended'} ClientOptions */
/** @type {Record<ClientOptions, string>} */
const OPTION_LABELS = {
  pair: 'commandTimeout 1000 + maxRetriesPerRequest 1',
  defaults: "ioredis's defaults",
  recommended: 'recommended ioredis options',
};
/** @type {ClientOptions[]} */
const OPTION_SETS = ['pair', 'defaults', 'recommended'];
const FAULT_CLIENTS = 20;
/** The cluster's browsers think longer than the replica's lag, so none rotates twice inside it. */
const CLUSTER_THINK = 400;
const LAG_ACK_WAIT = 200;
const PREFIX = 'soak:';

/** @param {string} line */
const progress = (line) => process.stderr.write(`soak: ${line}\n`);

// ---------------------------------------------------------------------------------------------
// Browsers

/** @typedef {{ n: number | null, isNew: boolean }} Body */

class Browser {
  /** @param {number} port */
  constructor(port) {
    this.port = port;
    /** @type {string | undefined} */
    this.cookie = undefined;
    this.agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    this.requests = 0;
    this.unavailable = 0;
    this.maxLatency = 0;
    /** @type {number[]} end times (epoch ms) of 503 answers */
    this.unavailableAt = [];
    /** @type {(() => void) | undefined} */
    this.wake = undefined;
  }

  /**
   * One GET; keeps every Set-Cookie of ours (503s included); never rejects (status 0 on a network error).
   * @param {string} reqPath
   * @returns {Promise<{ status: number, body: Body | null, at: number }>}
   */
  async get(reqPath) {
    const t = Date.now();
    /** @type {{ status: number, body: string, setCookie: string[] }} */
    let res;
    try {
      res = await httpGet(this.port, reqPath, { cookie: this.cookie ? `sid=${this.cookie}` : undefined, agent: this.agent });
    } catch (err) {
      res = { status: 0, body: String(err), setCookie: [] };
    }
    const now = Date.now();
    this.requests++;
    this.maxLatency = Math.max(this.maxLatency, now - t);
    if (res.status === 503) {
      this.unavailable++;
      this.unavailableAt.push(now);
    }
    for (const raw of res.setCookie) {
      const pair = raw.split(';')[0] ?? '';
      if (!pair.startsWith('sid=')) continue;
      this.cookie = /max-age=0/i.test(raw) ? undefined : pair.slice(4);
    }
    return { status: res.status, body: res.status === 200 ? /** @type {Body} */ (JSON.parse(res.body)) : null, at: now };
  }

  /** The record the session lives in (both keys of a rotated cookie name the same one). */
  get recordId() {
    return decodeURIComponent(this.cookie ?? '').slice(0, 16);
  }

  /** A pause that `nudge` ends early. @param {number} ms */
  think(ms) {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.wake = undefined;
        resolve(undefined);
      };
      const timer = setTimeout(done, ms);
      this.wake = done;
    });
  }

  /** Sends the next request now if the browser is thinking. */
  nudge() {
    if (!this.wake) return false;
    this.wake();
    return true;
  }

  close() {
    this.agent.destroy();
  }
}

// ---------------------------------------------------------------------------------------------
// Targets and heap

/**
 * @param {Omit<import('./soak-target').TargetConfig, 'port'>} config
 */
async function startSoakTarget(config) {
  const port = await freePort();
  const target = await startReady(`soak target (${config.framework})`, ['--expose-gc', path.join(__dirname, 'soak-target.js'), JSON.stringify({ ...config, port })]);
  return { ...target, port };
}

/**
 * Samples the target's heap after GC every `everyMs` until stopped; `stop` takes one last sample.
 * @param {number} port
 * @param {number} everyMs
 */
function heapSampler(port, everyMs) {
  /** @type {number[]} */
  const samples = [];
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const sample = async () => {
    try {
      samples.push(JSON.parse((await httpGet(port, '/__heap', { agent })).body).heapUsed);
    } catch {
      // a target busy in a fault answers late: that sample is skipped
    }
  };
  let pending = sample();
  const timer = setInterval(() => (pending = pending.then(sample)), everyMs);
  /** @type {Promise<number[]> | undefined} */
  let stopped;
  return {
    /** Stops sampling after one last sample (once; later calls get the same series). */
    stop() {
      stopped ??= (async () => {
        clearInterval(timer);
        await pending;
        await sample();
        agent.destroy();
        return samples;
      })();
      return stopped;
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Rows

/**
 * @typedef {object} Row
 * @property {string} run
 * @property {number} requests
 * @property {number} unavailable 503s
 * @property {number | null} window ms from the strike to the end of the last 503 (null: no fault)
 * @property {number} maxLatency ms
 * @property {number} sessionsLost
 * @property {number} ackedLost acknowledged writes lost
 * @property {number[]} heap bytes, after GC
 * @property {string} [note]
 */

/** @param {Browser[]} browsers */
const totals = (browsers) => ({
  requests: browsers.reduce((s, b) => s + b.requests, 0),
  unavailable: browsers.reduce((s, b) => s + b.unavailable, 0),
  maxLatency: Math.max(0, ...browsers.map((b) => b.maxLatency)),
});

// ---------------------------------------------------------------------------------------------
// 1. Mixed traffic

/**
 * Browsers doing a mix of new / read / write / renew / purge for `ms`, each answer checked.
 * @param {'express' | 'koa'} framework
 * @param {number} ms
 * @returns {Promise<Row>}
 */
async function mixed(framework, ms) {
  const redis = await RedisServer.start();
  const target = await startSoakTarget({ framework, redisUrl: redis.url, ioredis: 'pair', prefix: PREFIX });
  const heap = heapSampler(target.port, T.heapEvery);
  const browsers = Array.from({ length: 16 }, () => new Browser(target.port));
  let sessionsLost = 0;
  let ackedLost = 0;
  let wrong = 0;
  const stopAt = Date.now() + ms;
  try {
    await Promise.all(
      browsers.map(async (b) => {
        let expected = 0; // the n last acknowledged; 0: no session
        while (Date.now() < stopAt) {
          const roll = Math.random();
          let op = roll < 0.05 ? 'new' : roll < 0.45 ? 'read' : roll < 0.85 ? 'write' : roll < 0.93 ? 'renew' : 'purge';
          if (op === 'new') {
            b.cookie = undefined;
            expected = 0;
            op = 'write';
          }
          if (expected === 0 && op !== 'write') op = 'write'; // nothing to read, renew or purge yet
          const { status, body } = await b.get(`/${op}`);
          if (status !== 200 || !body) {
            wrong++;
            continue;
          }
          if (body.isNew && expected > 0) {
            sessionsLost++;
            ackedLost += expected;
            expected = 0;
          }
          const base = op === 'write' ? (body.n ?? 1) - 1 : (body.n ?? 0);
          if (op !== 'purge' && base !== expected) {
            if (base < expected) ackedLost += expected - base;
            else wrong++;
          }
          expected = op === 'purge' ? 0 : op === 'write' ? (body.n ?? 0) : expected;
          if (op === 'purge' && b.cookie !== undefined) wrong++;
          await sleep(T.think);
        }
      }),
    );
  } finally {
    for (const b of browsers) b.close();
  }
  const samples = await heap.stop();
  await target.stop();
  await redis.stop();
  return {
    run: `mixed traffic, ${framework} (new/read/write/renew/purge, 16 browsers, ${Math.round(ms / 1000)} s)`,
    ...totals(browsers),
    window: null,
    sessionsLost,
    ackedLost,
    heap: samples,
    ...(wrong > 0 ? { note: `${wrong} answers were not 200 or not what the browser expected` } : {}),
  };
}

// ---------------------------------------------------------------------------------------------
// 2. Fault runs

/**
 * @typedef {object} Fault
 * @property {(browsers: Browser[]) => Promise<void>} [prepare] once the sessions exist
 * @property {(browsers: Browser[]) => Promise<void>} [arm] just before the strike is armed
 * @property {() => void} [armed] just after (the /__arm request has reached the target)
 * @property {() => string} arm_query the /__arm query (signal, pid, …)
 * @property {() => Promise<void>} heal called `faultMs` after the strike
 */

/**
 * Seeds `clients` sessions, drives them (each /write in a loop) through the fault, past the grace,
 * and reads every session once more; returns the row.
 * @param {string} run
 * @param {{ port: number }} target
 * @param {{ clients: number, think: number, faultMs: number }} o
 * @param {Fault} fault
 * @returns {Promise<Row>}
 */
async function faultRun(run, target, o, fault) {
  const heap = heapSampler(target.port, T.heapEvery);
  const browsers = Array.from({ length: o.clients }, () => new Browser(target.port));
  /** @type {{ n: number, at: number }[][]} */
  const acks = browsers.map(() => []);
  let resets = 0;
  let stop = false;
  let struckAt = 0;
  try {
    for (const b of browsers) {
      const first = await b.get('/write');
      if (first.status !== 200) throw new Error(`${run}: seeding answered ${first.status}`);
      acks[browsers.indexOf(b)]?.push({ n: first.body?.n ?? 0, at: first.at });
    }
    await fault.prepare?.(browsers);
    const loops = browsers.map(async (b, i) => {
      await b.think(Math.random() * o.think);
      while (!stop) {
        const { body, at } = await b.get('/write');
        if (body && body.n !== null) acks[i]?.push({ n: body.n, at });
        await b.think(o.think * (1 + Math.random() / 2));
      }
    });
    let healedAt = Infinity;
    try {
      await sleep(T.before);
      await fault.arm?.(browsers);
      const answer = httpGet(target.port, `/__arm?${fault.arm_query()}`);
      await sleep(5);
      fault.armed?.();
      const armed = JSON.parse((await answer).body);
      struckAt = armed.struckAt;
      progress(`${run}: struck${armed.inFlight ? ' with a rotating write in flight' : ' (no rotating write came)'}`);
      await sleep(o.faultMs);
      await fault.heal();
      healedAt = Date.now();
      const deadline = Date.now() + 20_000;
      await sleep(AFTER_MS);
      const recovered = () => acks.every((a) => a.filter((x) => x.at > healedAt).length >= 3);
      while (!recovered() && Date.now() < deadline) await sleep(100);
    } finally {
      stop = true;
      for (const b of browsers) b.nudge();
      await Promise.all(loops);
    }
    await sleep(T.grace + 200); // past the grace of every key a request rotated from
    let sessionsLost = 0;
    let ackedLost = 0;
    for (const [i, b] of browsers.entries()) {
      const final = await b.get('/read');
      let acked = 0;
      let reset = false;
      for (const { n } of acks[i] ?? []) {
        if (n <= acked) {
          if (n === 1) reset = true;
          ackedLost += acked - (n - 1);
        }
        acked = Math.max(acked, n);
      }
      if (!final.body || final.body.isNew || reset) {
        sessionsLost++;
        if (reset) resets++;
      } else if ((final.body.n ?? 0) < acked) ackedLost += acked - (final.body.n ?? 0);
    }
    const t = totals(browsers);
    const last503 = Math.max(0, ...browsers.flatMap((b) => b.unavailableAt));
    return {
      run,
      ...t,
      window: t.unavailable > 0 ? last503 - struckAt : 0,
      sessionsLost,
      ackedLost,
      heap: await heap.stop(),
      ...(resets > 0 ? { note: `${resets} counters restarted at 1` } : {}),
    };
  } finally {
    await heap.stop();
    for (const b of browsers) b.close();
  }
}

/**
 * @param {ClientOptions} ioredis
 * @param {'SIGSTOP' | 'SIGKILL'} kind
 * @returns {Promise<Row>}
 */
async function singleNodeRun(ioredis, kind) {
  const redis = await RedisServer.start(kind === 'SIGKILL' ? AOF_ALWAYS : []);
  const target = await startSoakTarget({ framework: 'express', redisUrl: redis.url, ioredis, prefix: PREFIX, rotationGraceMs: T.grace, storeTimeoutMs: T.storeTimeoutMs });
  const label = OPTION_LABELS[ioredis];
  try {
    return await faultRun(
      kind === 'SIGSTOP' ? `SIGSTOP ${T.fault / 1000} s, then SIGCONT; ${label}` : `SIGKILL, restart after ${T.fault / 1000} s with appendfsync always; ${label}`,
      target,
      { clients: FAULT_CLIENTS, think: T.think, faultMs: T.fault },
      kind === 'SIGSTOP'
        ? { arm_query: () => `signal=SIGSTOP&pid=${redis.pid}`, heal: async () => redis.signal('SIGCONT') }
        : {
            // As in test/store/redis-abandoned.test.ts: the app stops reading Redis's answers, Redis gets
            // 50 ms to apply and fsync what it was sent, then dies; the app reads again once it gave up.
            arm_query: () => `signal=SIGKILL&pid=${redis.pid}&hold=${T.storeTimeoutMs + 100}&delay=50`,
            heal: async () => {
              await redis.kill();
              await redis.start();
            },
          },
    );
  } finally {
    redis.signal('SIGCONT');
    await target.stop();
    await redis.stop();
  }
}

/**
 * @param {ClientOptions} ioredis
 * @returns {Promise<Row>}
 */
async function clusterRun(ioredis) {
  const cluster = await RedisCluster.start({ replicas: 1, nodeTimeoutMs: 1500 });
  const target = await startSoakTarget({ framework: 'express', cluster: cluster.startupNodes, ioredis, prefix: PREFIX, rotationGraceMs: T.grace, storeTimeoutMs: T.storeTimeoutMs });
  const label = OPTION_LABELS[ioredis];
  /** @type {import('./redis-server').RedisServer | undefined} */
  let victim;
  /** @type {import('./redis-server').RedisServer | undefined} */
  let replica;
  /** @type {Browser[]} */
  const victims = [];
  /** @type {Map<Browser, number>} the requests each had had answered when the replica's link was cut */
  let atCut = new Map();
  try {
    const row = await faultRun(
      `Cluster 3+3: master SIGKILL, its lagging replica promoted; ${label}`,
      target,
      { clients: FAULT_CLIENTS, think: CLUSTER_THINK, faultMs: 0 },
      {
        prepare: async (browsers) => {
          /** @type {Map<import('./redis-server').RedisServer, Browser[]>} */
          const byMaster = new Map();
          for (const b of browsers) {
            const m = await cluster.masterOfKey(PREFIX + b.recordId);
            byMaster.set(m, [...(byMaster.get(m) ?? []), b]);
          }
          const [m, held] = /** @type {[import('./redis-server').RedisServer, Browser[]]} */ ([...byMaster].sort((x, y) => y[1].length - x[1].length)[0]);
          victim = m;
          replica = await cluster.replicaOf(m);
          victims.push(...held);
        },
        // The replica's link is cut (and kept down by a wrong masterauth); one browser there writes
        // at once, so its master acknowledges a rotation the replica never gets.
        arm: async () => {
          await rawCommand(replica?.port ?? 0, 'CONFIG SET masterauth latchkey-soak-not-the-password');
          await rawCommand(victim?.port ?? 0, 'CLIENT KILL TYPE replica');
          atCut = new Map(victims.map((b) => [b, b.requests]));
          const deadline = Date.now() + LAG_ACK_WAIT;
          /** @type {Browser | undefined} */
          let nudged;
          while (!nudged && Date.now() < deadline) {
            nudged = victims.find((b) => b.nudge());
            if (!nudged) await sleep(2);
          }
          const before = nudged?.requests ?? 0;
          while (nudged && nudged.requests === before && Date.now() < deadline) await sleep(2);
        },
        // Another browser there, one that has not written since the cut, writes now: the strike finds its rotating write in flight.
        armed: () => void victims.find((b) => b.requests === atCut.get(b) && b.nudge()),
        arm_query: () => `signal=SIGKILL&pid=${victim?.pid}&within=100&ids=${victims.map((b) => b.recordId).join(',')}`,
        heal: async () => {
          if (!victim) return;
          await victim.kill();
          await cluster.waitForFailover(victim, 20_000);
          await rawCommand(replica?.port ?? 0, 'CONFIG SET masterauth ""');
        },
      },
    );
    return { ...row, note: [`${victims.length} of ${FAULT_CLIENTS} sessions on the killed master; browsers think ${CLUSTER_THINK} ms`, row.note].filter(Boolean).join('; ') };
  } finally {
    await target.stop();
    await cluster.stop();
  }
}

// ---------------------------------------------------------------------------------------------
// Table

/** @param {number} bytes */
const mb = (bytes) => (bytes / 1048576).toFixed(1);

/** @param {Row[]} rows */
function table(rows) {
  const lines = [
    '| run | requests | 503s | 503 window | max latency | sessions lost | acknowledged writes lost | heap after GC (MB), sampled every ' + `${T.heapEvery / 1000} s |`,
    '|---|---:|---:|---:|---:|---:|---:|---|',
  ];
  for (const r of rows) {
    lines.push(
      `| ${r.run}${r.note ? ` (${r.note})` : ''} | ${r.requests} | ${r.unavailable} | ${r.window === null ? '–' : `${(r.window / 1000).toFixed(2)} s`} | ` +
        `${r.maxLatency} ms | ${r.sessionsLost} | ${r.ackedLost} | ${r.heap.map(mb).join(' ')} |`,
    );
  }
  return lines.join('\n');
}

async function main() {
  const started = Date.now();
  // A hung wait must not keep the soak running: every wait is bounded, and this bounds them all.
  setTimeout(() => {
    console.error(`soak: still running ${Math.round((BUDGET_MS + 120_000) / 1000)} s after the start: giving up`);
    process.exit(1);
  }, BUDGET_MS + 120_000).unref();
  const singles = 2 * OPTION_SETS.length;
  const singleMs = T.before + T.fault + AFTER_MS + T.grace + 1500;
  const clusterMs = 5000 + T.before + 3500 + AFTER_MS + T.grace + 1500;
  let clusterRuns = OPTION_SETS.length;
  while (clusterRuns > 0 && BUDGET_MS - singles * singleMs - clusterRuns * clusterMs < 10_000) clusterRuns--;
  const mixedMs = Math.max(10_000, BUDGET_MS - singles * singleMs - clusterRuns * clusterMs);
  progress(`budget ${BUDGET_MS / 1000} s: mixed traffic ${Math.round(mixedMs / 1000)} s, ${singles} single-node fault runs, ${clusterRuns} cluster run(s)`);

  /** @type {Row[]} */
  const rows = [];
  for (const fw of /** @type {const} */ (['express', 'koa'])) {
    progress(`mixed traffic on ${fw}`);
    rows.push(await mixed(fw, mixedMs / 2));
  }
  for (const kind of /** @type {const} */ (['SIGSTOP', 'SIGKILL'])) {
    for (const ioredis of OPTION_SETS) {
      progress(`${kind}, ${OPTION_LABELS[ioredis]}`);
      rows.push(await singleNodeRun(ioredis, kind));
    }
  }
  for (const ioredis of OPTION_SETS.slice(0, clusterRuns)) {
    progress(`cluster, ${OPTION_LABELS[ioredis]}`);
    rows.push(await clusterRun(ioredis));
  }
  const v = versions(['express', 'koa', 'ioredis']);
  console.log(
    `\nlatchkey soak${quick ? ' (--quick)' : ''}: ${Math.round((Date.now() - started) / 1000)} s; ` +
      `fault runs: ${FAULT_CLIENTS} browsers, fault ${T.before / 1000} s in for ${T.fault / 1000} s, storeTimeoutMs ${T.storeTimeoutMs}, rotationGraceMs ${T.grace}; ` +
      `redis-server ${await redisServerVersion()}, ${Object.entries(v).map(([k, x]) => `${k} ${x}`).join(', ')}\n`,
  );
  console.log(table(rows));
  const bad = rows.filter((r) => !r.run.startsWith('Cluster') && (r.sessionsLost > 0 || r.ackedLost > 0));
  const clusterBad = rows.filter((r) => r.run.startsWith('Cluster') && r.sessionsLost > 0);
  if (bad.length || clusterBad.length) {
    console.log(`\nFAILED: sessions or acknowledged writes lost in: ${[...bad, ...clusterBad].map((r) => r.run).join('; ')}`);
    process.exitCode = 1;
  }
}

runMain(main);
