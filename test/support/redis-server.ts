/**
 * Redis for the tests: the machine's server (REDIS_URL), a count of the round trips a client makes,
 * and throwaway redis-server processes (one, or a cluster with replicas), which are bench/redis-server.js's:
 * the soak and the tests start, signal and stop them with the same code.
 */
import { AOF_ALWAYS, freePort, RedisCluster, RedisServer, rawCommand } from '../../bench/redis-server';

export { AOF_ALWAYS, freePort, RedisCluster, rawCommand };
/** One redis-server on a free port, in its own temp dir, stopped by pid. */
export { RedisServer as RedisProcess };

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
