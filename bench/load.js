// @ts-check
// The load generator, in its own process: `node bench/load.js '<json options>'` prints one JSON line.
// Keep-alive HTTP/1.1 over raw sockets, one request in flight per connection (as a browser tab would),
// a cookie jar per connection that follows Set-Cookie, and a correctness check per scenario:
//   anon   GET /anon, no cookie                 read   GET /read with a session seeded per connection
//   write  GET /write, following Set-Cookie     new    GET /new without a cookie: a session each time
// `bare`: a target without sessions (the reference): no seeding, no checks.
// Loopback only; bounded by `durationMs`.
'use strict';
const net = require('node:net');

/**
 * @typedef {object} LoadOptions
 * @property {number} port
 * @property {'anon' | 'read' | 'write' | 'new'} scenario
 * @property {number} [connections]
 * @property {number} [durationMs]
 * @property {string | null} cookieName the session cookie's name (null for a bare target)
 * @property {boolean} [bare]
 * @property {string} [fixedCookie] a Cookie header sent on every request of anon and new
 */
/** @type {LoadOptions} */
const opts = JSON.parse(process.argv[2] ?? '{}');
const { port, scenario, connections = 50, durationMs = 5000, cookieName, bare = false, fixedCookie } = opts;
const path = { anon: '/anon', read: '/read', write: '/write', new: '/new' }[scenario];

/** @typedef {{ name: string, pair: string, expired: boolean }} Cookie */
/** @typedef {{ status: number, body: string, setCookie: Cookie | undefined, cookies: Cookie[] }} Reply */

/** @type {number[]} */
const latencies = [];
let ok = 0;
let errors = 0;
let non2xx = 0;
let withSetCookie = 0;
let wrong = 0;
let stopAt = 0;

/**
 * One request on a keep-alive socket; resolves with the parsed response.
 * @param {net.Socket} socket
 * @param {string} reqPath
 * @param {string} [cookie]
 * @returns {Promise<Reply>}
 */
function request(socket, reqPath, cookie) {
  return new Promise((resolve, reject) => {
    /** @type {Buffer} */
    let buf = Buffer.alloc(0);
    /** @param {Buffer} chunk */
    const onData = (chunk) => {
      buf = buf.length ? Buffer.concat([buf, chunk]) : chunk;
      const headEnd = buf.indexOf('\r\n\r\n');
      if (headEnd === -1) return;
      const head = buf.subarray(0, headEnd).toString('latin1');
      const m = /\r\ncontent-length: *(\d+)/i.exec(head);
      const length = m ? Number(m[1]) : 0;
      if (buf.length < headEnd + 4 + length) return;
      socket.off('data', onData);
      socket.off('error', reject);
      const status = Number(head.slice(9, 12));
      const body = buf.subarray(headEnd + 4, headEnd + 4 + length).toString('utf8');
      // Every Set-Cookie, like a browser (koa-session sends its signature as a second cookie);
      // `setCookie` is the session cookie itself, counted per response.
      /** @type {Cookie[]} */
      const cookies = [];
      /** @type {Cookie | undefined} */
      let setCookie;
      const re = /\r\nset-cookie: *([^\r]*)/gi;
      let c;
      while ((c = re.exec(head))) {
        const header = c[1] ?? '';
        const pair = header.split(';')[0] ?? '';
        const cookie = { name: pair.slice(0, pair.indexOf('=')), pair, expired: /max-age=0/i.test(header) };
        cookies.push(cookie);
        if (cookie.name === cookieName) setCookie = cookie;
      }
      resolve({ status, body, setCookie, cookies });
    };
    socket.on('data', onData);
    socket.once('error', reject);
    socket.write(`GET ${reqPath} HTTP/1.1\r\nHost: 127.0.0.1\r\n${cookie ? `Cookie: ${cookie}\r\n` : ''}\r\n`);
  });
}

/** @returns {Promise<net.Socket>} */
function connect() {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1', () => resolve(socket));
    socket.setNoDelay(true);
    socket.once('error', reject);
  });
}

async function connection() {
  const socket = await connect();
  /** @type {Map<string, string>} */
  const jar = new Map();
  let cookie = fixedCookie;
  /** @param {Cookie[]} cookies */
  const take = (cookies) => {
    for (const c of cookies) {
      if (c.expired) jar.delete(c.name);
      else jar.set(c.name, c.pair);
    }
    cookie = jar.size ? [...jar.values()].join('; ') : undefined;
  };
  let expected = 0;
  if (!bare && (scenario === 'read' || scenario === 'write')) {
    // Seed this connection's own session (not measured).
    const seeded = await request(socket, '/write');
    if (!seeded.setCookie) throw new Error(`seeding gave no cookie (status ${seeded.status})`);
    take(seeded.cookies);
    expected = 1;
  }
  while (Date.now() < stopAt) {
    const started = process.hrtime.bigint();
    let res;
    try {
      res = await request(socket, path, scenario === 'anon' || scenario === 'new' ? fixedCookie : cookie);
    } catch {
      errors++;
      return;
    }
    latencies.push(Number(process.hrtime.bigint() - started) / 1e6);
    if (res.status < 200 || res.status > 299) {
      non2xx++;
      continue;
    }
    ok++;
    if (res.setCookie) withSetCookie++;
    if (res.cookies.length && (scenario === 'write' || scenario === 'read')) take(res.cookies);
    if (bare) continue; // a target without sessions: nothing to check
    if (scenario === 'write') expected++;
    const want = scenario === 'anon' ? 'ok' : scenario === 'new' ? '1' : String(expected);
    if (res.body !== want) wrong++;
    if (scenario === 'new' && !res.setCookie) wrong++;
  }
  socket.end();
}

(async () => {
  stopAt = Date.now() + 60_000; // seeding window, reset below
  const started = Date.now();
  stopAt = started + durationMs;
  await Promise.all(Array.from({ length: connections }, () => connection()));
  const seconds = (Date.now() - started) / 1000;
  latencies.sort((a, b) => a - b);
  const pct = (/** @type {number} */ p) => (latencies.length ? latencies[Math.min(latencies.length - 1, Math.floor(latencies.length * p))] : 0);
  process.stdout.write(
    `${JSON.stringify({
      requests: ok + non2xx,
      ok,
      rps: ok / seconds,
      p50: pct(0.5),
      p99: pct(0.99),
      errors,
      non2xx,
      wrong,
      setCookiePerResponse: ok ? withSetCookie / ok : 0,
    })}\n`,
  );
})().catch((err) => {
  process.stderr.write(`${err.stack}\n`);
  process.exit(1);
});
