/**
 * `latchkey/redis`: a session store on Redis through an ioredis client the application
 * creates (single node, Sentinel-configured, or Cluster). One hash per session, and every
 * operation is exactly one round trip: a Lua script (sent by SHA) or a single DEL. Each script
 * touches one key, so the store works unchanged on a Redis Cluster.
 *
 * Hash layout, kept small so Redis keeps it as a listpack (under 200 bytes of Redis memory per
 * session with one value, measured by bench/redis-figures.js):
 *   h  hash of the current validator (16 raw bytes)   p, u  previous validator hash, and until when (epoch ms) it is valid
 *   v  version, absent while it is 1                  c     createdAt (epoch seconds)
 *   .<key>  one field per session value, its JSON text
 * Every value field starts with a dot and no metadata field does, so a session key (any string,
 * `h` and `__proto__` included) can never overwrite the metadata.
 */
import type { Cluster, Redis } from 'ioredis';
import { ConfigError, LoadError, UpdateError, VersionConflictError } from '../errors';
import { newId, newValidator, splitKey } from './keys';
import type { LoadedSession, SaveMeta, SessionChange, SessionState, SessionStore } from './types';

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

// The metadata is read first and the validator checked before any value is looked at, so a wrong
// or expired key costs no JSON work and learns nothing about the record (not even that it is corrupt).
//
// The script returns the hash as HGETALL gave it; Node checks each value with JSON.parse, the parser
// `session.get` uses, so what loads is exactly what the handler can read. Checking in Redis was tried
// and measured (bench/redis-figures.js, part 3) and is both inexact and dearer: Redis's cjson accepts
// text JSON.parse refuses (NaN, Infinity, 0x10, 01, +1, 1., -.5, raw control characters in strings;
// its decode_invalid_numbers switch is shared by every script on the server, so not ours to turn
// off) and refuses valid JSON (a lone surrogate escape, nesting deeper than 1000). cjson alone costs
// Redis 2–4× what JSON.parse costs Node for the same value, and a Lua filter that closes its gaps
// ~10× more again, on the one thread every app instance shares, while Node scales out.
//
// ARGV: validator hash, now (epoch ms).
// → {-1} unknown or wrong validator; {-2} not a latchkey hash (wrong type, missing metadata);
//   {stale 0|1, version, createdAt s, pttl, {field, value, …}} (metadata fields included).
const LOAD = `
local all = redis.pcall('HGETALL', KEYS[1])
if all.err then return {-2} end
local n = #all
if n == 0 then return {-1} end
local h, p, u, v, c
for i = 1, n, 2 do
  local f = all[i]
  if string.byte(f, 1) ~= 46 then
    if f == 'h' then h = all[i + 1] elseif f == 'c' then c = all[i + 1] elseif f == 'v' then v = all[i + 1]
    elseif f == 'p' then p = all[i + 1] elseif f == 'u' then u = all[i + 1] end
  end
end
local version, created = tonumber(v or '1'), tonumber(c)
if h == nil or version == nil or created == nil then return {-2} end
local stale = 0
if h ~= ARGV[1] then
  if p == ARGV[1] and (tonumber(u) or 0) > tonumber(ARGV[2]) then stale = 1 else return {-1} end
end
return {stale, version, created, redis.call('PTTL', KEYS[1]), all}`;

// HSET/HDEL in slices: unpack() of more than a few thousand values overflows Lua's C stack.
const SLICES = `
local function hset(key, a)
  for i = 1, #a, 1000 do redis.call('HSET', key, unpack(a, i, math.min(i + 999, #a))) end
end
local function hdel(key, a, from)
  for i = from, #a, 1000 do redis.call('HDEL', key, unpack(a, i, math.min(i + 999, #a))) end
end`;

// ARGV: hash, createdAt (s), pttl, field, value, … → 1 created, 0 the id exists (never overwrite).
const SAVE = `${SLICES}
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
local args = {'h', ARGV[1], 'c', ARGV[2]}
for i = 4, #ARGV do args[#args + 1] = ARGV[i] end
hset(KEYS[1], args)
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1`;

// ARGV: hash, now, expectedVersion|'', rotate '1'|'0', newHash, graceUntil|'', pttl, nSet, then
// nSet field/value pairs, then the removed fields.
// → {0} kept the key, {1} rotated, {-1} gone or wrong validator, {-2, actual} version conflict,
//   {-3} the record is not a latchkey hash. Removed fields go first, as in MemoryStore.
const UPDATE = `${SLICES}
local m = redis.call('HMGET', KEYS[1], 'h', 'p', 'u', 'v')
if not m[1] then return {-1} end
local stale = false
if m[1] ~= ARGV[1] then
  if m[2] == ARGV[1] and (tonumber(m[3]) or 0) > tonumber(ARGV[2]) then stale = true else return {-1} end
end
local version = tonumber(m[4] or '1')
if version == nil then return {-3} end
if ARGV[3] ~= '' and tonumber(ARGV[3]) ~= version then return {-2, version} end
local nset = tonumber(ARGV[8])
if #ARGV > 8 + 2 * nset then hdel(KEYS[1], ARGV, 9 + 2 * nset) end
local args = {'v', tostring(version + 1)}
for i = 9, 8 + 2 * nset do args[#args + 1] = ARGV[i] end
local rotated = 0
if ARGV[4] == '1' and not stale then
  args[#args + 1] = 'h'
  args[#args + 1] = ARGV[5]
  if ARGV[6] ~= '' then
    args[#args + 1] = 'p'
    args[#args + 1] = m[1]
    args[#args + 1] = 'u'
    args[#args + 1] = ARGV[6]
  else
    redis.call('HDEL', KEYS[1], 'p', 'u')
  end
  rotated = 1
end
hset(KEYS[1], args)
redis.call('PEXPIRE', KEYS[1], ARGV[7])
return {rotated}`;

// ARGV: hash, now, pttl → 1 extended, 0 gone or wrong validator.
const UPDATE_TTL = `
local m = redis.call('HMGET', KEYS[1], 'h', 'p', 'u')
if not m[1] then return 0 end
if m[1] == ARGV[1] or (m[2] == ARGV[1] and (tonumber(m[3]) or 0) > tonumber(ARGV[2])) then
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
  return 1
end
return 0`;

type Reply = (string | number | string[])[];
type Arg = string | number | Buffer;
interface Scripted {
  latchkeyLoad(key: string, hash: Buffer, now: number): Promise<Reply>;
  latchkeySave(key: string, ...args: Arg[]): Promise<number>;
  latchkeyUpdate(key: string, ...args: Arg[]): Promise<Reply>;
  latchkeyUpdateTtl(key: string, hash: Buffer, now: number, pttl: number): Promise<number>;
}

/** The validator hash as Redis keeps it: 16 raw bytes rather than 22 characters. */
const raw = (hash: string): Buffer => Buffer.from(hash, 'latin1');

/** TTL seconds (fractional allowed) as PEXPIRE milliseconds, never 0 (PEXPIRE 0 deletes at once). */
const ms = (ttl: number): number => Math.max(1, Math.ceil(ttl * 1000));

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
    const reply = await this.client.latchkeyLoad(this.prefix + parts.id, raw(parts.hash), now);
    const code = Number(reply[0]);
    if (code === -1) return null;
    if (code === -2) throw new LoadError('deserialization', `session record ${parts.id} is not a latchkey hash`);
    const all = reply[4] as string[];
    const state: SessionState = new Map();
    for (let i = 0; i < all.length; i += 2) {
      const field = all[i]!;
      // 46 is '.': value fields; the others are metadata, already read by the script.
      if (field.charCodeAt(0) !== 46) continue;
      const name = field.slice(1);
      const text = all[i + 1]!;
      try {
        JSON.parse(text);
      } catch (err) {
        throw new LoadError('deserialization', `session value ${JSON.stringify(name)} of ${parts.id} is not valid JSON`, { cause: err });
      }
      state.set(name, text);
    }
    const pttl = Number(reply[3]);
    return { state, version: Number(reply[1]), createdAt: Number(reply[2]) * 1000, expiresAt: now + (pttl > 0 ? pttl : 0), stale: code === 1 };
  }

  async save(state: ReadonlyMap<string, string>, ttl: number, meta?: SaveMeta): Promise<string> {
    const fields: string[] = [];
    for (const [k, v] of state) fields.push(`.${k}`, v);
    // Seconds are enough for absoluteTtl, and an int32 takes 4 bytes fewer than an int64 in a listpack.
    const createdAt = Math.floor((meta?.createdAt ?? Date.now()) / 1000);
    // 96 random bits do not collide in practice; the loop (on a create-only script) makes
    // "never overwrites" a guarantee rather than a probability.
    for (;;) {
      const id = newId();
      const { key, hash } = newValidator(id);
      if ((await this.client.latchkeySave(this.prefix + id, raw(hash), createdAt, ms(ttl), ...fields)) === 1) return key;
    }
  }

  /** @throws VersionConflictError when `change.expectedVersion` is given and the record has another version. */
  async update(key: string, change: SessionChange, ttl: number): Promise<string | null> {
    const parts = splitKey(key);
    if (!parts) return null;
    const now = Date.now();
    const next = change.rotate ? newValidator(parts.id) : undefined;
    const args: Arg[] = [
      raw(parts.hash),
      now,
      change.expectedVersion ?? '',
      next ? '1' : '0',
      next ? raw(next.hash) : '',
      change.graceMs > 0 ? now + change.graceMs : '',
      ms(ttl),
      change.set.size,
    ];
    for (const [k, v] of change.set) args.push(`.${k}`, v);
    for (const k of change.removed) args.push(`.${k}`);
    const reply = await this.client.latchkeyUpdate(this.prefix + parts.id, ...args);
    const code = Number(reply[0]);
    if (code === -1) return null;
    if (code === -2) throw new VersionConflictError(change.expectedVersion!, Number(reply[1]));
    if (code === -3) throw new UpdateError('other', `session record ${parts.id} is not a latchkey hash`);
    // A stale key never rotates (the script says 0): the client keeps the key it has.
    return code === 1 ? next!.key : key;
  }

  async updateTtl(key: string, ttl: number): Promise<string | null> {
    const parts = splitKey(key);
    if (!parts) return null;
    const done = await this.client.latchkeyUpdateTtl(this.prefix + parts.id, raw(parts.hash), Date.now(), ms(ttl));
    return done === 1 ? key : null;
  }

  /** One DEL: the hash holds the current and the previous validator, so every key of the session dies. */
  async delete(key: string): Promise<void> {
    const parts = splitKey(key);
    if (parts) await this.client.del(this.prefix + parts.id);
  }
}
