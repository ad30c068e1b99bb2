/**
 * Throwaway redis-server processes for tests: one on a free loopback port, or a 3-master
 * cluster (optionally with a replica per master, for failovers). Started from the redis-server
 * binary, stopped by pid, every wait bounded, temp dirs removed. Nothing is written to disk
 * (`--save '' --appendonly no`), so a restart starts empty, unless the server was started with
 * `AOF_ALWAYS` (then a restart on the same port and dir loads every acknowledged write).
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createConnection, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';

/** The command names an ioredis client sends while `fn` runs: one per round trip. */
export async function commandsSent(client: { sendCommand: (...args: never[]) => unknown }, fn: () => Promise<void>): Promise<string[]> {
  const sent: string[] = [];
  const send = client.sendCommand;
  client.sendCommand = function (this: unknown, ...args: never[]) {
    sent.push((args[0] as unknown as { name: string }).name);
    return send.apply(this, args);
  };
  try {
    await fn();
  } finally {
    client.sendCommand = send;
  }
  return sent;
}

/** Extra arguments for an append-only file fsynced on every write: a restart keeps every acknowledged write. */
export const AOF_ALWAYS = ['--appendonly', 'yes', '--appendfsync', 'always'];

function readFileIfAny(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}

/** A timer that never keeps the test process alive. */
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms).unref());

/** A port the OS just handed out on 127.0.0.1 (closed again, so redis-server can bind it). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const address = srv.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

/** One inline command over a raw socket: the reply's first line, or null if nothing answered within `ms`. */
export function rawCommand(port: number, command: string, ms = 1000): Promise<string | null> {
  return new Promise((resolve) => {
    const socket = createConnection({ host: '127.0.0.1', port });
    let data = '';
    const done = (value: string | null) => {
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
      // A bulk reply ($<length>) is complete once its body and CRLF are in.
      if (data[0] !== '$') done(data);
      else if (data.length >= eol + 2 + Number(data.slice(1, eol)) + 2) done(data);
    });
    socket.on('error', () => done(null));
  });
}

export async function until(what: string, check: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(50);
  }
}

/** One redis-server on a free port, in its own temp dir. */
export class RedisProcess {
  child: ChildProcess | undefined;
  readonly dir = mkdtempSync(join(tmpdir(), 'latchkey-redis-'));
  constructor(readonly port: number, private readonly extra: string[] = []) {}

  /** Starts one on a free port; on failure nothing is left running or on disk. */
  static async start(extra: string[] = []): Promise<RedisProcess> {
    const r = new RedisProcess(await freePort(), extra);
    try {
      await r.start();
    } catch (err) {
      await r.stop();
      throw err;
    }
    return r;
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  /** (Re)starts the server on the same port; resolves once it answers PING (at most 10 s). */
  async start(): Promise<void> {
    const child = spawn(
      'redis-server',
      ['--port', String(this.port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', this.dir, ...this.extra],
      { stdio: 'ignore' },
    );
    this.child = child;
    let failed: Error | undefined;
    child.once('error', (err) => (failed = err));
    child.once('exit', (code, signal) => (failed ??= new Error(`redis-server on ${this.port} exited (${code ?? signal}) while starting`)));
    await until(
      `redis-server on ${this.port}`,
      async () => {
        if (failed) throw failed;
        return (await rawCommand(this.port, 'PING', 500)) === '+PONG\r\n';
      },
      10_000,
    );
  }

  /** Sends a signal to the server's pid (SIGSTOP / SIGCONT to pause it). */
  signal(sig: NodeJS.Signals): void {
    if (this.child?.pid && this.running) process.kill(this.child.pid, sig);
  }

  get running(): boolean {
    return !!this.child && this.child.exitCode === null && this.child.signalCode === null;
  }

  /** SIGKILL by pid; resolves once it has exited (at most 5 s). Works on a stopped process too. */
  async kill(): Promise<void> {
    const child = this.child;
    if (!child || !this.running) return;
    const exited = new Promise<void>((r) => child.once('exit', () => r()));
    child.kill('SIGKILL');
    await Promise.race([exited, sleep(5000)]);
  }

  /** Kills the server and removes its temp dir. */
  async stop(): Promise<void> {
    await this.kill();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

function run(file: string, args: string[], timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(file, args, { encoding: 'utf8', timeout: timeoutMs }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${file} ${args.join(' ')} failed: ${err.message}\n${stdout}${stderr}`));
      else resolve(stdout);
    });
  });
}

/** How {@link RedisCluster.start} builds the cluster. */
export interface ClusterOptions {
  /** Replicas per master (default 0): with 1, six nodes, and a killed master's replica takes over. */
  replicas?: number;
  /** `cluster-node-timeout` (default 5000 ms): how long a silent master takes to be marked failed. */
  nodeTimeoutMs?: number;
}

/** One line of `CLUSTER NODES`. */
export interface ClusterNode {
  id: string;
  port: number;
  flags: string[];
  /** The id of its master, for a replica. */
  masterId: string | null;
  /** Slot ranges it serves, as [first, last]. */
  slots: [number, number][];
}

/** Parses `CLUSTER NODES` as rawCommand returns it (a bulk reply). */
function parseNodes(reply: string): ClusterNode[] {
  const body = reply.slice(reply.indexOf('\r\n') + 2);
  return body
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l.length > 0)
    .map((line) => {
      const [id, address, flags, master, , , , , ...slots] = line.split(' ');
      return {
        id: id!,
        port: Number(/:(\d+)@/.exec(address!)?.[1]),
        flags: flags!.split(','),
        masterId: master === '-' ? null : master!,
        slots: slots
          .filter((r) => !r.startsWith('['))
          .map((r) => {
            const [a, b] = r.split('-');
            return [Number(a), Number(b ?? a)] as [number, number];
          }),
      };
    });
}

/** A 3-master Redis Cluster on free loopback ports (with `replicas`, also that many replicas per master), all nodes in one temp dir. */
export class RedisCluster {
  private constructor(readonly nodes: RedisProcess[], private readonly dir: string) {}

  /**
   * Starts the nodes, joins them with `redis-cli --cluster create`, and waits (at most 20 s) for
   * cluster_state:ok and, with replicas, for every replica's link to its master to be up.
   */
  static async start(options: ClusterOptions = {}): Promise<RedisCluster> {
    const replicas = options.replicas ?? 0;
    const dir = mkdtempSync(join(tmpdir(), 'latchkey-cluster-'));
    const nodes: RedisProcess[] = [];
    const cluster = new RedisCluster(nodes, dir);
    try {
      for (let i = 0; i < 3 * (1 + replicas); i++) {
        const port = await freePort();
        const node = new RedisProcess(port, [
          '--cluster-enabled', 'yes',
          '--cluster-config-file', join(dir, `nodes-${port}.conf`),
          '--cluster-node-timeout', String(options.nodeTimeoutMs ?? 5000),
          // A replica's first sync starts at once (the default waits 5 s for more replicas to join it).
          '--repl-diskless-sync-delay', '0',
          '--logfile', join(dir, `redis-${port}.log`),
        ]);
        nodes.push(node);
        await node.start();
      }
      await run('redis-cli', ['--cluster', 'create', ...nodes.map((n) => `127.0.0.1:${n.port}`), '--cluster-replicas', String(replicas), '--cluster-yes'], 30_000);
      for (const n of nodes) {
        await until(`cluster_state:ok on ${n.port}`, async () => ((await rawCommand(n.port, 'CLUSTER INFO')) ?? '').includes('cluster_state:ok'), 20_000);
      }
      if (replicas > 0) {
        // Every node knows every replica (gossip takes a moment), and every replica is in sync.
        for (const n of nodes) {
          await until(
            `every replica known to ${n.port}`,
            async () => {
              const reply = await rawCommand(n.port, 'CLUSTER NODES');
              return reply !== null && parseNodes(reply).filter((x) => x.masterId !== null).length === 3 * replicas;
            },
            20_000,
          );
        }
        for (const n of await cluster.topology()) {
          if (n.masterId === null) continue;
          await until(`replica ${n.port} in sync`, async () => ((await rawCommand(n.port, 'INFO replication')) ?? '').includes('master_link_status:up'), 20_000);
        }
      }
    } catch (err) {
      await cluster.stop();
      throw err;
    }
    return cluster;
  }

  /** The cluster as a live node sees it (`CLUSTER NODES`); throws when no node answers. */
  async topology(): Promise<ClusterNode[]> {
    for (const n of this.nodes) {
      if (!n.running) continue;
      const reply = await rawCommand(n.port, 'CLUSTER NODES', 1000);
      if (reply !== null && reply.startsWith('$')) return parseNodes(reply);
    }
    throw new Error('no cluster node answered CLUSTER NODES');
  }

  /** The node process serving `slot` as master now. */
  async masterOf(slot: number): Promise<RedisProcess> {
    const master = (await this.topology()).find((n) => n.masterId === null && !n.flags.includes('fail') && n.slots.some(([a, b]) => slot >= a && slot <= b));
    const node = master && this.nodes.find((p) => p.port === master.port);
    if (!node) throw new Error(`no master serves slot ${slot}`);
    return node;
  }

  /** The node process replicating `master`. */
  async replicaOf(master: RedisProcess): Promise<RedisProcess> {
    const nodes = await this.topology();
    const id = nodes.find((n) => n.port === master.port)?.id;
    const replica = nodes.find((n) => id !== undefined && n.masterId === id);
    const node = replica && this.nodes.find((p) => p.port === replica.port);
    if (!node) throw new Error(`no replica of ${master.port}`);
    return node;
  }

  /**
   * Waits (at most `timeoutMs`) until a replica has taken over every slot `dead` served and every
   * live node says cluster_state:ok.
   */
  async waitForFailover(dead: RedisProcess, timeoutMs: number): Promise<void> {
    try {
      await this.untilFailover(dead, timeoutMs);
    } catch (err) {
      // Say why: the last lines of the replicas' logs ("unable to failover: …").
      const logs = this.nodes
        .filter((n) => n !== dead)
        .map((n) => {
          const lines = (readFileIfAny(join(this.dir, `redis-${n.port}.log`)) ?? '').trim().split('\n');
          return `--- ${n.port}\n${lines.slice(-6).join('\n')}`;
        });
      throw new Error(`${(err as Error).message}\n${logs.join('\n')}`);
    }
  }

  private async untilFailover(dead: RedisProcess, timeoutMs: number): Promise<void> {
    await until(
      `a replica to take over from ${dead.port}`,
      async () => {
        const nodes = await this.topology().catch(() => []);
        const owner = nodes.find((n) => n.port === dead.port);
        if (!owner || owner.slots.length > 0 || !owner.flags.includes('fail')) return false;
        for (const n of this.nodes) {
          if (n.running && !((await rawCommand(n.port, 'CLUSTER INFO', 500)) ?? '').includes('cluster_state:ok')) return false;
        }
        return true;
      },
      timeoutMs,
    );
  }

  get startupNodes(): { host: string; port: number }[] {
    return this.nodes.map((n) => ({ host: '127.0.0.1', port: n.port }));
  }

  /** Kills every node by pid and removes the temp dirs. */
  async stop(): Promise<void> {
    await Promise.all(this.nodes.map((n) => n.stop()));
    rmSync(this.dir, { recursive: true, force: true });
  }
}
