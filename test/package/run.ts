/** Child processes for the packaging tests: bounded, never rejecting, output kept for messages. */
import { execFile } from 'node:child_process';

export interface RunResult {
  code: number;
  /** Killed at the timeout. */
  timedOut: boolean;
  stdout: string;
  stderr: string;
}

/**
 * The environment for a child npm or node: without the lifecycle variables of the npm that
 * runs `npm test` (they describe this repository, not the folder the child works in).
 */
export function childEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (/^npm_(lifecycle|package)_/i.test(k) || k === 'npm_command' || k === 'INIT_CWD') continue;
    env[k] = v;
  }
  return { ...env, ...extra };
}

export function run(cmd: string, args: string[], cwd: string, timeoutMs: number, env = childEnv()): Promise<RunResult> {
  return new Promise((resolve) => {
    execFile(cmd, args, { cwd, env, timeout: timeoutMs, killSignal: 'SIGKILL', maxBuffer: 32 << 20, encoding: 'utf8' }, (err, stdout, stderr) => {
      const e = err as (NodeJS.ErrnoException & { killed?: boolean; code?: number | string }) | null;
      resolve({
        code: e === null ? 0 : typeof e.code === 'number' ? e.code : 1,
        timedOut: Boolean(e?.killed),
        stdout,
        stderr: e !== null && typeof e.code === 'string' ? `${e.code}: ${e.message}\n${stderr}` : stderr,
      });
    });
  });
}

/** A readable account of a run, for an assertion message. */
export function describeRun(what: string, r: RunResult): string {
  const tail = (s: string) => s.split('\n').slice(-40).join('\n');
  return `${what}: exit ${r.code}${r.timedOut ? ' (killed at the timeout)' : ''}\n--- stdout\n${tail(r.stdout)}\n--- stderr\n${tail(r.stderr)}`;
}

/** Runs the tasks with at most `limit` at a time (the machine has 2 cores, shared). */
export async function pool<T>(tasks: (() => Promise<T>)[], limit: number): Promise<T[]> {
  const results: T[] = new Array(tasks.length);
  let next = 0;
  async function worker(): Promise<void> {
    while (next < tasks.length) {
      const i = next++;
      results[i] = await tasks[i]!();
    }
  }
  await Promise.all(Array.from({ length: Math.min(limit, tasks.length) }, worker));
  return results;
}
