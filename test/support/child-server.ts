/**
 * A server in a child Node process, for code jest cannot load: @fastify/cookie (which
 * @fastify/session needs) loads the ES-only `cookie` package with `import()`, and jest refuses a
 * dynamic import without --experimental-vm-modules. The child prints `listening <port>` once it
 * serves on 127.0.0.1; its stderr is kept for the error message when it does not.
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';

const root = join(__dirname, '..', '..');

export interface ChildServer {
  /** `http://127.0.0.1:<port>`, for supertest's `request(url)`. */
  url: string;
  stop(): Promise<void>;
}

/** Runs `node <args>` from the repository root (so `require('latchkey')` is the built package) and waits for its port. */
export function childServer(args: string[], timeoutMs = 15_000): Promise<ChildServer> {
  const child = spawn(process.execPath, args, { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    await exited;
  };
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      void stop();
      reject(new Error(`child server ${args.join(' ')} did not listen within ${timeoutMs} ms\n${stderr}`));
    }, timeoutMs);
    let out = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /listening (\d+)/.exec(out);
      if (m === null) return;
      clearTimeout(timer);
      resolve({ url: `http://127.0.0.1:${m[1]}`, stop });
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`child server ${args.join(' ')} exited (${code}) before listening\n${stderr}`));
    });
  });
}
