/**
 * Throwaway redis-server processes for tests: one on a free loopback port, or a 3-master
 * cluster. Started from the redis-server binary, stopped by pid, every wait bounded.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

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

function cli(port: number, ...args: string[]): string {
  return execFileSync('redis-cli', ['-h', '127.0.0.1', '-p', String(port), ...args], { encoding: 'utf8', timeout: 5000 }).trim();
}

async function until(what: string, check: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      if (check()) return;
    } catch {
      /* not yet */
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

/** One redis-server on a free port, in a temp dir, keeping nothing on disk. */
export class RedisProcess {
  child: ChildProcess | undefined;
  readonly dir = mkdtempSync(join(tmpdir(), 'latchkey-redis-'));
  constructor(readonly port: number, private readonly extra: string[] = []) {}

  static async start(extra: string[] = []): Promise<RedisProcess> {
    const r = new RedisProcess(await freePort(), extra);
    await r.start();
    return r;
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  async start(): Promise<void> {
    this.child = spawn(
      'redis-server',
      ['--port', String(this.port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', this.dir, ...this.extra],
      { stdio: 'ignore' },
    );
    await until(`redis-server on ${this.port}`, () => cli(this.port, 'ping') === 'PONG');
  }

  signal(sig: NodeJS.Signals): void {
    if (this.child?.pid) process.kill(this.child.pid, sig);
  }

  async kill(): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((r) => child.once('exit', () => r()));
    child.kill('SIGKILL');
    await Promise.race([exited, sleep(5000)]);
  }

  async stop(): Promise<void> {
    await this.kill();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** A 3-master Redis Cluster on free loopback ports. */
export class RedisCluster {
  constructor(readonly nodes: RedisProcess[]) {}

  static async start(): Promise<RedisCluster> {
    const nodes: RedisProcess[] = [];
    for (let i = 0; i < 3; i++) {
      const port = await freePort();
      const node = new RedisProcess(port, ['--cluster-enabled', 'yes', '--cluster-config-file', `nodes-${port}.conf`, '--cluster-node-timeout', '5000']);
      nodes.push(node);
    }
    const cluster = new RedisCluster(nodes);
    try {
      for (const n of nodes) await n.start();
      execFileSync('redis-cli', ['--cluster', 'create', ...nodes.map((n) => `127.0.0.1:${n.port}`), '--cluster-replicas', '0', '--cluster-yes'], {
        stdio: 'pipe',
        timeout: 30_000,
      });
      for (const n of nodes) await until(`cluster_state:ok on ${n.port}`, () => cli(n.port, 'cluster', 'info').includes('cluster_state:ok'), 20_000);
    } catch (err) {
      await cluster.stop();
      throw err;
    }
    return cluster;
  }

  get startupNodes(): { host: string; port: number }[] {
    return this.nodes.map((n) => ({ host: '127.0.0.1', port: n.port }));
  }

  async stop(): Promise<void> {
    for (const n of this.nodes) await n.stop();
  }
}
