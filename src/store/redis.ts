/**
 * `latchkey/redis`: a session store on Redis through an ioredis client the application
 * creates (single node, Sentinel-configured, or Cluster). One hash per session, and every
 * operation is exactly one round trip: a Lua script (sent by SHA) or a single DEL. Each script
 * touches one key, so the store works unchanged on a Redis Cluster.
 *
 * Hash layout, kept small so Redis keeps it as a listpack (under 200 bytes of Redis memory per
 * session with one value, measured by bench/redis-figures.js):
 *   h  hash of the current validator (16 bytes)       p, u  previous validator hash, and until when (epoch ms) it is valid
 *   v  version, absent while it is 1                  c     createdAt (epoch seconds)
 *   t  the session's own TTL (s), if it has one       b     its persistent setting ('1' | '0'), if it has one
 *   .<key>  one field per session value, its JSON text
 * Every value field starts with a dot and no metadata field does, so a session key (any string,
 * `h` and `__proto__` included) can never overwrite the metadata.
 */
import type { Cluster, Redis } from 'ioredis';
import { ConfigError, LoadError, UpdateError, VersionConflictError } from '../errors';
import { newId, newValidator, rotatedKey, splitKey } from './keys';
import { type Arg, args, LOAD, LOAD_ARGS, Reply, SAVE, SAVE_ARGS, type Scripted, UPDATE, UPDATE_ARGS, UPDATE_TTL, UPDATE_TTL_ARGS } from './redis-scripts';
import type { LoadedSession, SessionChange, SessionMeta, SessionSettings, SessionState, SessionStore } from './types';

/** Options of {@link RedisStore}. */
export interface RedisStoreOptions {
  /** An ioredis `Redis` (plain or Sentinel-configured) or `Cluster`, created and owned by the application. */
  client: Redis | Cluster;
  /**
   * Prefix of every key: a session lives at `<prefix><id>`. Default `latchkey:`. On a Cluster,
   * keep `{…}` out of it: a hash tag would put every session on one shard.
   */
  prefix?: string;
}

/** TTL seconds (fractional allowed) as PEXPIRE milliseconds, never 0 (PEXPIRE 0 deletes at once). */
const ms = (ttl: number): number => Math.max(1, Math.ceil(ttl * 1000));

/** The settings fields as the hash keeps them (`t`, `b`), each only when set. */
function settingFields(s: SessionSettings | undefined): string[] {
  const fields: string[] = [];
  if (s?.ttl !== undefined) fields.push('t', String(s.ttl));
  if (s?.persistent !== undefined) fields.push('b', s.persistent ? '1' : '0');
  return fields;
}

/**
 * Session store on Redis (ioredis). ioredis is an optional peer dependency: only apps that
 * use this entry point need it installed.
 *
 * ioredis's defaults wait ~73 s on a dead Redis and forever on a paused one; the engine bounds
 * every call with `storeTimeoutMs`, and the client options below make ioredis give up as fast,
 * so commands do not pile up in its queue during an outage.
 *
 * Redis runs the scripts, so its own command statistics list `evalsha` once per operation and
 * also the commands each script runs (`hgetall`, `pttl`, `hset`, …): those are not round trips.
 *
 * @example
 * ```ts
 * import Redis from 'ioredis';
 * import { session } from 'latchkey/express';
 * import { RedisStore } from 'latchkey/redis';
 *
 * const client = new Redis(process.env.REDIS_URL, { commandTimeout: 1000, maxRetriesPerRequest: 1 });
 * client.on('error', (err) => log.warn(err)); // ioredis reports reconnects here; without a listener it prints them
 * app.use(session({ secret, store: new RedisStore({ client }) }));
 * ```
 */
export class RedisStore implements SessionStore {
  readonly stateless = false;
  private readonly client: Scripted & (Redis | Cluster);
  private readonly prefix: string;

  /** @throws ConfigError when `client` is not an ioredis client or `prefix` is not a string. */
  constructor(options: RedisStoreOptions) {
    const client = options?.client as (Redis & Partial<Scripted>) | undefined;
    if (!client || typeof client.defineCommand !== 'function') throw new ConfigError('RedisStore needs an ioredis Redis or Cluster: { client }');
    if (options.prefix !== undefined && typeof options.prefix !== 'string') throw new ConfigError('RedisStore prefix must be a string');
    // defineCommand sends each script by SHA (EVALSHA) and reloads it on NOSCRIPT (a restarted or
    // flushed Redis). Several stores on one client share the definitions.
    if (typeof client.latchkeyLoad !== 'function') {
      client.defineCommand('latchkeyLoad', { numberOfKeys: 1, lua: LOAD });
      client.defineCommand('latchkeySave', { numberOfKeys: 1, lua: SAVE });
      client.defineCommand('latchkeyUpdate', { numberOfKeys: 1, lua: UPDATE });
      client.defineCommand('latchkeyUpdateTtl', { numberOfKeys: 1, lua: UPDATE_TTL });
    }
    this.client = client as unknown as Scripted & (Redis | Cluster);
    this.prefix = options.prefix ?? 'latchkey:';
  }

  /**
   * @throws LoadError (kind `deserialization`) when the record holds a value that is not JSON or
   * the key is not a latchkey hash (the engine then serves a fresh session and reports it).
   */
  async load(key: string): Promise<LoadedSession | null> {
    const parts = splitKey(key);
    if (!parts) return null;
    const now = Date.now();
    const reply = await this.client.latchkeyLoad(this.prefix + parts.id, ...args(LOAD_ARGS, { hash: parts.hash, now }));
    const [code, version, createdSec, pttl, all] = reply as [number, number, number, number, string[]];
    if (code === Reply.UNKNOWN) return null;
    if (code === Reply.NOT_LATCHKEY) throw new LoadError('deserialization', `session record ${parts.id} is not a latchkey hash`);
    const state: SessionState = new Map();
    let settings: SessionSettings | undefined;
    for (let i = 0; i < all.length; i += 2) {
      const field = all[i]!;
      const text = all[i + 1]!;
      // 46 is '.': value fields; of the metadata only the settings are left to read here.
      if (field.charCodeAt(0) !== 46) {
        if (field === 't') (settings ??= {}).ttl = Number(text);
        else if (field === 'b') (settings ??= {}).persistent = text === '1';
        continue;
      }
      const name = field.slice(1);
      try {
        JSON.parse(text);
      } catch (err) {
        throw new LoadError('deserialization', `session value ${JSON.stringify(name)} of ${parts.id} is not valid JSON`, { cause: err });
      }
      state.set(name, text);
    }
    return {
      state,
      version: Number(version),
      createdAt: Number(createdSec) * 1000,
      expiresAt: now + (pttl > 0 ? pttl : 0),
      stale: code === Reply.PREVIOUS_OR_ROTATED,
      settings,
    };
  }

  async save(state: ReadonlyMap<string, string>, ttl: number, meta?: SessionMeta): Promise<string> {
    const fields = settingFields(meta?.settings);
    for (const [k, v] of state) fields.push(`.${k}`, v);
    // Seconds are enough for absoluteTtl, and an int32 takes 4 bytes fewer than an int64 in a listpack.
    const createdAt = Math.floor((meta?.createdAt ?? Date.now()) / 1000);
    // 96 random bits do not collide in practice; the loop (on a create-only script) makes
    // "never overwrites" a guarantee rather than a probability.
    for (;;) {
      const id = newId();
      const { key, hash } = newValidator(id);
      const created = await this.client.latchkeySave(this.prefix + id, ...args(SAVE_ARGS, { hash, createdAt, pttl: ms(ttl) }, fields));
      if (created === 1) return key;
    }
  }

  /** @throws VersionConflictError when `change.expectedVersion` is given and the record has another version. */
  async update(key: string, change: SessionChange, ttl: number): Promise<string | null> {
    const parts = splitKey(key);
    if (!parts) return null;
    const next = change.rotateTo === undefined ? null : splitKey(change.rotateTo);
    if (next !== null && next.id !== parts.id) throw new TypeError('rotateTo must name the same record');
    const now = Date.now();
    const s = change.settings;
    const rest: Arg[] = [];
    for (const [k, v] of change.set) rest.push(`.${k}`, v);
    for (const k of change.removed) rest.push(`.${k}`);
    const values = {
      hash: parts.hash,
      now,
      expectedVersion: change.expectedVersion ?? '',
      newHash: next ? next.hash : '',
      graceUntil: change.graceMs > 0 ? now + change.graceMs : '',
      pttl: ms(ttl),
      settings: s ? `${s.ttl ?? ''}|${s.persistent === undefined ? '' : s.persistent ? '1' : '0'}` : '',
      setCount: change.set.size,
    };
    const reply = await this.client.latchkeyUpdate(this.prefix + parts.id, ...args(UPDATE_ARGS, values, rest));
    const code = Number(reply[0]);
    if (code === Reply.UNKNOWN) return null;
    if (code === Reply.VERSION_CONFLICT) throw new VersionConflictError(change.expectedVersion!, Number(reply[1]));
    if (code === Reply.NOT_LATCHKEY) throw new UpdateError('other', `session record ${parts.id} is not a latchkey hash`);
    // A stale key never rotates (the script keeps it): the client keeps the key it has.
    return code === Reply.PREVIOUS_OR_ROTATED ? change.rotateTo! : key;
  }

  async updateTtl(key: string, ttl: number): Promise<string | null> {
    const parts = splitKey(key);
    if (!parts) return null;
    const done = await this.client.latchkeyUpdateTtl(this.prefix + parts.id, ...args(UPDATE_TTL_ARGS, { hash: parts.hash, now: Date.now(), pttl: ms(ttl) }));
    return done === 1 ? key : null;
  }

  /** One DEL: the hash holds the current and the previous validator, so every key of the session dies. */
  async delete(key: string): Promise<void> {
    const parts = splitKey(key);
    if (parts) await this.client.del(this.prefix + parts.id);
  }

  rotatedKey(key: string, seed: string): string | null {
    return rotatedKey(key, seed);
  }

  recordId(key: string): string | null {
    return splitKey(key)?.id ?? null;
  }
}
