// @ts-check
// Throwaway redis-server processes, for the soak (bench/soak.js) and the tests (test/support/redis-server.ts
// re-exports them): one on a free loopback port, or a 3-master Cluster (optionally with a replica per
// master, for failovers). Nothing is written to disk (`--save '' --appendonly no`), so a restart starts
// empty, unless the server was started with AOF_ALWAYS (then a restart on the same port and dir loads
// every acknowledged write). Signalled, killed and stopped by pid, every wait bounded, temp dirs
// removed; a process that exits kills what it started.
'use strict';
const { spawn, execFile } = require('node:child_process');
const fs = require('node:fs');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');
const { SetupError, freePort } = require('./util');

/** A wait that never keeps the process (a test worker) alive. @param {number} ms */
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms).unref());

/** @param {string} file */
function readFileIfAny(file) {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
}

/** Extra arguments: an append-only file fsynced on every write. */
const AOF_ALWAYS = ['--appendonly', 'yes', '--appendfsync', 'always'];

/**
 * One inline command over a raw socket: the whole reply (a bulk reply in full), or null if nothing answered within `ms`.
 * @param {number} port
 * @param {string} command
 * @param {number} [ms]
 * @returns {Promise<string | null>}
 */
function rawCommand(port, command, ms = 1000) {
  return new Promise((resolve) => {
    const socket = net.createConnection({ host: '127.0.0.1', port });
    let data = '';
    /** @param {string | null} value */
    const done = (value) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(value);
    };
    const timer = setTimeout(() => done(null), ms);
    socket.on('connect', () => socket.write(`${command}\r\n`));
    socket.on('data', (chunk) => {
      data += chunk.toString('latin1');
      const eol = data.indexOf('\r\n');
      if (eol < 0) return;
      if (data[0] !== '$') done(data);
      else if (data.length >= eol + 2 + Number(data.slice(1, eol)) + 2) done(data);
    });
    socket.on('error', () => done(null));
  });
}

/**
 * Polls `check` every 50 ms until it is true; rejects after `timeoutMs`.
 * @param {string} what
 * @param {() => Promise<boolean>} check
 * @param {number} timeoutMs
 */
async function until(what, check, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new SetupError(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(50);
  }
}

/** Every server started and not yet stopped: killed when this process exits, whatever happens. */
/** @type {Set<RedisServer>} */
const live = new Set();
process.once('exit', () => {
  for (const r of live) if (r.running && r.child) r.child.kill('SIGKILL');
});

class RedisServer {
  /**
   * @param {number} port
   * @param {string[]} extra more redis-server arguments
   * @param {string} [dir] its directory (a temp dir of its own by default)
   */
  constructor(port, extra = [], dir = fs.mkdtempSync(path.join(os.tmpdir(), 'latchkey-redis-'))) {
    this.port = port;
    this.extra = extra;
    this.dir = dir;
    /** @type {import('node:child_process').ChildProcess | undefined} */
    this.child = undefined;
  }

  /** @param {string[]} [extra] */
  static async start(extra = []) {
    const r = new RedisServer(await freePort(), extra);
    try {
      await r.start();
    } catch (err) {
      await r.stop();
      throw err;
    }
    return r;
  }

  get url() {
    return `redis://127.0.0.1:${this.port}`;
  }

  get pid() {
    return this.child?.pid;
  }

  get running() {
    return !!this.child && this.child.exitCode === null && this.child.signalCode === null;
  }

  /** (Re)starts on the same port and dir; resolves once it answers PING (at most 10 s). */
  async start() {
    const child = spawn(
      'redis-server',
      ['--port', String(this.port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', this.dir, ...this.extra],
      { stdio: 'ignore' },
    );
    this.child = child;
    live.add(this);
    /** @type {Error | undefined} */
    let failed;
    child.once('error', (err) => (failed = err));
    child.once('exit', (code, signal) => (failed ??= new Error(`redis-server on ${this.port} exited (${code ?? signal}) while starting`)));
    await until(
      `redis-server on ${this.port}`,
      async () => {
        if (failed) throw new SetupError(/ENOENT/.test(failed.message) ? 'redis-server is not on PATH: install Redis 7' : failed.message);
        return (await rawCommand(this.port, 'PING', 500)) === '+PONG\r\n';
      },
      10_000,
    );
  }

  /** @param {NodeJS.Signals} sig */
  signal(sig) {
    if (this.child?.pid && this.running) process.kill(this.child.pid, sig);
  }

  /** SIGKILL by pid; resolves once it has exited (at most 5 s). */
  async kill() {
    const child = this.child;
    if (!child || !this.running) return;
    const exited = new Promise((r) => child.once('exit', () => r(undefined)));
    child.kill('SIGKILL');
    await Promise.race([exited, sleep(5000)]);
  }

  /** Kills it and removes its directory. */
  async stop() {
    await this.kill();
    live.delete(this);
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

/**
 * @typedef {object} ClusterNode one line of CLUSTER NODES
 * @property {string} id
 * @property {number} port
 * @property {string[]} flags
 * @property {string | null} masterId
 * @property {[number, number][]} slots
 */

/**
 * @param {string} reply CLUSTER NODES as a bulk reply
 * @returns {ClusterNode[]}
 */
function parseNodes(reply) {
  return reply
    .slice(reply.indexOf('\r\n') + 2)
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l.length > 0)
    .map((line) => {
      const [id = '', address = '', flags = '', master = '-', , , , , ...slots] = line.split(' ');
      return {
        id,
        port: Number(/:(\d+)@/.exec(address)?.[1]),
        flags: flags.split(','),
        masterId: master === '-' ? null : master,
        slots: slots
          .filter((r) => !r.startsWith('['))
          .map((r) => {
            const [a, b] = r.split('-');
            return /** @type {[number, number]} */ ([Number(a), Number(b ?? a)]);
          }),
      };
    });
}

/** 3 masters (with `replicas`, also that many replicas per master) on free loopback ports, all nodes in one temp dir. */
class RedisCluster {
  /** @param {RedisServer[]} nodes @param {string} dir */
  constructor(nodes, dir) {
    this.nodes = nodes;
    this.dir = dir;
  }

  /**
   * Starts the nodes, joins them with `redis-cli --cluster create`, and waits (at most 20 s each) for
   * cluster_state:ok and, with replicas, for every replica known everywhere and in sync.
   * @param {{ replicas?: number, nodeTimeoutMs?: number }} [options] replicas per master (default 0);
   *   `cluster-node-timeout` (default 5000 ms): how long a silent master takes to be marked failed
   */
  static async start({ replicas = 0, nodeTimeoutMs = 5000 } = {}) {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'latchkey-cluster-'));
    /** @type {RedisServer[]} */
    const nodes = [];
    const cluster = new RedisCluster(nodes, dir);
    try {
      for (let i = 0; i < 3 * (1 + replicas); i++) {
        const port = await freePort();
        const node = new RedisServer(
          port,
          [
            ...['--cluster-enabled', 'yes', '--cluster-config-file', path.join(dir, `nodes-${port}.conf`)],
            // A replica's first sync starts at once (the default waits 5 s for more replicas to join it).
            ...['--cluster-node-timeout', String(nodeTimeoutMs), '--repl-diskless-sync-delay', '0'],
            ...['--logfile', path.join(dir, `redis-${port}.log`)],
          ],
          dir,
        );
        nodes.push(node);
        await node.start();
      }
      await new Promise((resolve, reject) =>
        execFile(
          'redis-cli',
          ['--cluster', 'create', ...nodes.map((n) => `127.0.0.1:${n.port}`), '--cluster-replicas', String(replicas), '--cluster-yes'],
          { timeout: 30_000 },
          (err, stdout) => (err ? reject(new SetupError(`redis-cli --cluster create failed: ${err.message}\n${stdout}`)) : resolve(undefined)),
        ),
      );
      for (const n of nodes) {
        await until(
          `cluster ready on ${n.port}`,
          async () => {
            const info = (await rawCommand(n.port, 'CLUSTER INFO')) ?? '';
            const reply = await rawCommand(n.port, 'CLUSTER NODES');
            // Gossip takes a moment: every node must know every replica.
            return info.includes('cluster_state:ok') && reply !== null && parseNodes(reply).filter((x) => x.masterId !== null).length === 3 * replicas;
          },
          20_000,
        );
      }
      for (const n of await cluster.topology()) {
        if (n.masterId === null) continue;
        await until(`replica ${n.port} in sync`, async () => ((await rawCommand(n.port, 'INFO replication')) ?? '').includes('master_link_status:up'), 20_000);
      }
    } catch (err) {
      await cluster.stop();
      throw err;
    }
    return cluster;
  }

  get startupNodes() {
    return this.nodes.map((n) => ({ host: '127.0.0.1', port: n.port }));
  }

  /** @returns {Promise<ClusterNode[]>} */
  async topology() {
    for (const n of this.nodes) {
      if (!n.running) continue;
      const reply = await rawCommand(n.port, 'CLUSTER NODES');
      if (reply !== null && reply.startsWith('$')) return parseNodes(reply);
    }
    throw new Error('no cluster node answered CLUSTER NODES');
  }

  /** The node serving `slot` as master now. @param {number} slot */
  async masterOf(slot) {
    const m = (await this.topology()).find((n) => n.masterId === null && !n.flags.includes('fail') && n.slots.some(([a, b]) => slot >= a && slot <= b));
    const node = m && this.nodes.find((p) => p.port === m.port);
    if (!node) throw new Error(`no master serves slot ${slot}`);
    return node;
  }

  /** The node serving the key `key` as master now. @param {string} key */
  async masterOfKey(key) {
    return this.masterOf(Number(((await rawCommand(this.nodes[0]?.port ?? 0, `CLUSTER KEYSLOT ${key}`)) ?? ':-1').slice(1)));
  }

  /** @param {RedisServer} master */
  async replicaOf(master) {
    const nodes = await this.topology();
    const id = nodes.find((n) => n.port === master.port)?.id;
    const r = nodes.find((n) => id !== undefined && n.masterId === id);
    const node = r && this.nodes.find((p) => p.port === r.port);
    if (!node) throw new Error(`no replica of ${master.port}`);
    return node;
  }

  /**
   * Until a replica serves every slot `dead` did and every live node says cluster_state:ok (bounded);
   * a timeout says why, with the last lines of the other nodes' logs ("unable to failover: …").
   * @param {RedisServer} dead @param {number} timeoutMs
   */
  async waitForFailover(dead, timeoutMs) {
    try {
      await until(
        `a replica to take over from ${dead.port}`,
        async () => {
          const owner = (await this.topology().catch(() => [])).find((n) => n.port === dead.port);
          if (!owner || owner.slots.length > 0 || !owner.flags.includes('fail')) return false;
          for (const n of this.nodes) if (n.running && !((await rawCommand(n.port, 'CLUSTER INFO', 500)) ?? '').includes('cluster_state:ok')) return false;
          return true;
        },
        timeoutMs,
      );
    } catch (err) {
      const logs = this.nodes
        .filter((n) => n !== dead)
        .map((n) => `--- ${n.port}\n${(readFileIfAny(path.join(this.dir, `redis-${n.port}.log`)) ?? '').trim().split('\n').slice(-6).join('\n')}`);
      throw new Error(`${/** @type {Error} */ (err).message}\n${logs.join('\n')}`);
    }
  }

  async stop() {
    await Promise.all(this.nodes.map((n) => n.stop()));
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

module.exports = { AOF_ALWAYS, RedisCluster, RedisServer, freePort, rawCommand, until };
