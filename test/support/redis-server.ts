/**
 * Throwaway redis-server processes for tests: one on a free loopback port, or a 3-master
 * cluster. Started from the redis-server binary, stopped by pid, every wait bounded, temp dirs
 * removed. Nothing is written to disk (`--save '' --appendonly no`), so a restart starts empty.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
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

async function until(what: string, check: () => Promise<boolean>, timeoutMs: number): Promise<void> {
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

/** A 3-master Redis Cluster (no replicas) on free loopback ports, all nodes in one temp dir. */
export class RedisCluster {
  private constructor(readonly nodes: RedisProcess[], private readonly dir: string) {}

  /** Starts three nodes, joins them with `redis-cli --cluster create`, and waits (at most 20 s) for cluster_state:ok. */
  static async start(): Promise<RedisCluster> {
    const dir = mkdtempSync(join(tmpdir(), 'latchkey-cluster-'));
    const nodes: RedisProcess[] = [];
    const cluster = new RedisCluster(nodes, dir);
    try {
      for (let i = 0; i < 3; i++) {
        const port = await freePort();
        const node = new RedisProcess(port, ['--cluster-enabled', 'yes', '--cluster-config-file', join(dir, `nodes-${port}.conf`), '--cluster-node-timeout', '5000']);
        nodes.push(node);
        await node.start();
      }
      await run('redis-cli', ['--cluster', 'create', ...nodes.map((n) => `127.0.0.1:${n.port}`), '--cluster-replicas', '0', '--cluster-yes'], 30_000);
      for (const n of nodes) {
        await until(`cluster_state:ok on ${n.port}`, async () => ((await rawCommand(n.port, 'CLUSTER INFO')) ?? '').includes('cluster_state:ok'), 20_000);
      }
    } catch (err) {
      await cluster.stop();
      throw err;
    }
    return cluster;
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
