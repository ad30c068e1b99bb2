/**
 * `latchkey/redis`: a session store on Redis through an ioredis client the application
 * creates (single node, Sentinel-configured, or Cluster). One hash per session, and every
 * operation is exactly one round trip: a Lua script (sent by SHA) or a single DEL. Each script
 * touches one key, so the store works unchanged on a Redis Cluster.
 *
 * Hash layout, kept small (under 200 bytes of Redis memory per session with one value, measured):
 *   h  hash of the current validator (16 raw bytes)   p, u  previous validator hash, and until when (epoch ms) it is valid
 *   v  version, absent while it is 1                  c     createdAt (epoch seconds)
 *   .<key>  one field per session value, its JSON text (the dot keeps values apart from the fields above)
 */
import type { Cluster, Redis } from 'ioredis';
import { LoadError } from '../errors';
import { VersionConflictError } from '../errors';
import { newId, newValidator, splitKey } from './keys';
import type { LoadedSession, SaveMeta, SessionChange, SessionState, SessionStore } from './types';

/** Options of {@link RedisStore}. */
export interface RedisStoreOptions {
  /** An ioredis `Redis` (plain or Sentinel-configured) or `Cluster`, created and owned by the application. */
  client: Redis | Cluster;
  /** Prefix of every key. Default `latchkey:`. */
  prefix?: string;
}

// Returns {stale, version, createdAt, pttl, field, value, …}; {-1} unknown or wrong validator;
// {-2} wrong type at the key; {-3, field} a value that is not JSON (checked here with cjson, so Node
// parses nothing on load and a value is decoded only when the handler reads it).
const LOAD = `
local ok, all = pcall(redis.call, 'HGETALL', KEYS[1])
if not ok then return {-2} end
if #all == 0 then return {-1} end
local h, p, u, v, c
local out = {0, 0, 0, 0}
for i = 1, #all, 2 do
  local f, x = all[i], all[i + 1]
  if string.byte(f, 1) == 46 then
    if not pcall(cjson.decode, x) then return {-3, string.sub(f, 2)} end
    out[#out + 1] = string.sub(f, 2)
    out[#out + 1] = x
  elseif f == 'h' then h = x elseif f == 'p' then p = x elseif f == 'u' then u = x
  elseif f == 'v' then v = x elseif f == 'c' then c = x end
end
if h == nil or c == nil then return {-2} end
if h == ARGV[1] then out[1] = 0
elseif p ~= nil and p == ARGV[1] and tonumber(u) > tonumber(ARGV[2]) then out[1] = 1
else return {-1} end
out[2] = tonumber(v or '1')
out[3] = c
out[4] = redis.call('PTTL', KEYS[1])
return out`;

// ARGV: hash, createdAt, pttl, field, value, … → 1 created, 0 the id exists (never overwrite).
const SAVE = `
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
local args = {'h', ARGV[1], 'c', ARGV[2]}
for i = 4, #ARGV do args[#args + 1] = ARGV[i] end
redis.call('HSET', KEYS[1], unpack(args))
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1`;

// ARGV: hash, now, expectedVersion|'', rotate '1'|'0', newHash, graceUntil|'', pttl, nSet, then
// nSet field/value pairs, then the removed fields. → {0} kept the key, {1} rotated, {-1} gone, {-2, actual}.
const UPDATE = `
local m = redis.call('HMGET', KEYS[1], 'h', 'p', 'u', 'v')
if not m[1] then return {-1} end
local stale = false
if m[1] ~= ARGV[1] then
  if m[2] and m[2] == ARGV[1] and tonumber(m[3]) > tonumber(ARGV[2]) then stale = true else return {-1} end
end
local version = tonumber(m[4] or '1')
if ARGV[3] ~= '' and tonumber(ARGV[3]) ~= version then return {-2, version} end
local nset = tonumber(ARGV[8])
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
redis.call('HSET', KEYS[1], unpack(args))
if #ARGV > 8 + 2 * nset then redis.call('HDEL', KEYS[1], unpack(ARGV, 9 + 2 * nset, #ARGV)) end
redis.call('PEXPIRE', KEYS[1], ARGV[7])
return {rotated}`;

// ARGV: hash, now, pttl → 1 extended, 0 gone or wrong validator.
const UPDATE_TTL = `
local m = redis.call('HMGET', KEYS[1], 'h', 'p', 'u')
if not m[1] then return 0 end
if m[1] == ARGV[1] or (m[2] and m[2] == ARGV[1] and tonumber(m[3]) > tonumber(ARGV[2])) then
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
  return 1
end
return 0`;

type Reply = (string | number)[];
type Arg = string | number | Buffer;
interface Scripted {
  latchkeyLoad(key: string, hash: Buffer, now: number): Promise<Reply>;
  latchkeySave(key: string, ...args: Arg[]): Promise<number>;
  latchkeyUpdate(key: string, ...args: Arg[]): Promise<Reply>;
  latchkeyUpdateTtl(key: string, hash: Buffer, now: number, pttl: number): Promise<number>;
}

/** The validator hash as Redis keeps it: 16 raw bytes rather than 22 characters. */
const raw = (hash: string): Buffer => Buffer.from(hash, 'latin1');

const ms = (ttl: number): number => Math.max(1, Math.ceil(ttl * 1000));

/**
 * Session store on Redis (ioredis). ioredis is an optional peer dependency: only apps that
 * use this entry point need it.
 *
 * ioredis's defaults wait ~73 s on a dead Redis and forever on a paused one; the engine bounds
 * every call with `storeTimeoutMs`, and these client options make ioredis give up as fast:
 *
 * @example
 * ```ts
 * import Redis from 'ioredis';
 * import { RedisStore } from 'latchkey/redis';
 *
 * const client = new Redis(process.env.REDIS_URL, { commandTimeout: 1000, maxRetriesPerRequest: 1 });
 * client.on('error', (err) => log.warn(err));
 * app.use(session({ secret, store: new RedisStore({ client }) }));
 * ```
 */
export class RedisStore implements SessionStore {
  readonly stateless = false;
  private readonly client: Scripted & (Redis | Cluster);
  private readonly prefix: string;

  constructor(options: RedisStoreOptions) {
    const client = options.client as Redis & Partial<Scripted>;
    if (!client || typeof client.defineCommand !== 'function') throw new TypeError('RedisStore needs an ioredis client: { client }');
    // defineCommand sends each script by SHA (EVALSHA) and reloads it on NOSCRIPT.
    if (typeof client.latchkeyLoad !== 'function') {
      client.defineCommand('latchkeyLoad', { numberOfKeys: 1, lua: LOAD });
      client.defineCommand('latchkeySave', { numberOfKeys: 1, lua: SAVE });
      client.defineCommand('latchkeyUpdate', { numberOfKeys: 1, lua: UPDATE });
      client.defineCommand('latchkeyUpdateTtl', { numberOfKeys: 1, lua: UPDATE_TTL });
    }
    this.client = client as unknown as Scripted & (Redis | Cluster);
    this.prefix = options.prefix ?? 'latchkey:';
  }

  async load(key: string): Promise<LoadedSession | null> {
    const parts = splitKey(key);
    if (!parts) return null;
    const now = Date.now();
    const reply = await this.client.latchkeyLoad(this.prefix + parts.id, raw(parts.hash), now);
    const code = Number(reply[0]);
    if (code === -1) return null;
    if (code === -2) throw new LoadError('deserialization', `session record ${parts.id} is not a latchkey hash`);
    if (code === -3) throw new LoadError('deserialization', `session value ${JSON.stringify(String(reply[1]))} of ${parts.id} is not valid JSON`);
    const state: SessionState = new Map();
    for (let i = 4; i < reply.length; i += 2) state.set(String(reply[i]), String(reply[i + 1]));
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
    return code === 1 ? next!.key : key;
  }

  async updateTtl(key: string, ttl: number): Promise<string | null> {
    const parts = splitKey(key);
    if (!parts) return null;
    const done = await this.client.latchkeyUpdateTtl(this.prefix + parts.id, raw(parts.hash), Date.now(), ms(ttl));
    return done === 1 ? key : null;
  }

  async delete(key: string): Promise<void> {
    const parts = splitKey(key);
    if (parts) await this.client.del(this.prefix + parts.id);
  }
}
