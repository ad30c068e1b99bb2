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
 *   t  the session's own TTL (s), if it has one       b     its persistent setting ('1' | '0'), if it has one
 *   .<key>  one field per session value, its JSON text
 * Every value field starts with a dot and no metadata field does, so a session key (any string,
 * `h` and `__proto__` included) can never overwrite the metadata.
 */
import type { Cluster, Redis } from 'ioredis';
import { ConfigError, LoadError, UpdateError, VersionConflictError } from '../errors';
import { newId, newValidator, rotatedKey, splitKey } from './keys';
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

// --- The script protocol: reply codes and argument names, shared by the Lua text and the TypeScript.

/** What the scripts answer, first element of the reply. */
const Reply = {
  /** The presented validator is the current one (load, update: kept the key). */
  CURRENT: 0,
  /** load: a previous validator inside its grace; update: rotated to the new key. */
  PREVIOUS_OR_ROTATED: 1,
  /** No such record, or the validator is neither current nor inside its grace. */
  UNKNOWN: -1,
  /** The key holds something that is not a latchkey hash (wrong type, missing metadata). */
  NOT_LATCHKEY: -2,
  /** update: the expected version differs; the actual one follows. */
  VERSION_CONFLICT: -3,
} as const;

/** Names of a script's ARGV positions, in order; values follow as a trailing list where noted. */
const LOAD_ARGS = ['hash', 'now'] as const;
const SAVE_ARGS = ['hash', 'createdAt', 'pttl'] as const; // then field, value, … pairs
const UPDATE_ARGS = ['hash', 'now', 'expectedVersion', 'newHash', 'graceUntil', 'pttl', 'settings', 'setCount'] as const; // then setCount field/value pairs, then removed fields
const UPDATE_TTL_ARGS = ['hash', 'now', 'pttl'] as const;

type Arg = string | number | Buffer;

/** `ARGV[i]` for each name, to write into the Lua text. */
function argv<N extends string>(names: readonly N[]): Record<N, string> {
  return Object.fromEntries(names.map((n, i) => [n, `ARGV[${i + 1}]`])) as Record<N, string>;
}

/** The argument list for a script, in its declared order, followed by `rest`. */
function args<N extends string>(names: readonly N[], values: Record<N, Arg>, rest: Arg[] = []): Arg[] {
  return [...names.map((n) => values[n]), ...rest];
}

const L = argv(LOAD_ARGS);
const S = argv(SAVE_ARGS);
const U = argv(UPDATE_ARGS);
const T = argv(UPDATE_TTL_ARGS);

// The validator check, one definition for every script: the current hash `h`, or a previous `p`
// still inside its grace (until `u`, epoch ms).
const MATCH = `
local function match(h, p, u, presented, now)
  if h == presented then return ${Reply.CURRENT} end
  if p and p == presented and (tonumber(u) or 0) > tonumber(now) then return ${Reply.PREVIOUS_OR_ROTATED} end
  return ${Reply.UNKNOWN}
end`;

// HSET/HDEL in slices: unpack() of more than a few thousand values overflows Lua's C stack.
const SLICES = `
local function hset(key, a)
  for i = 1, #a, 1000 do redis.call('HSET', key, unpack(a, i, math.min(i + 999, #a))) end
end
local function hdel(key, a, from)
  for i = from, #a, 1000 do redis.call('HDEL', key, unpack(a, i, math.min(i + 999, #a))) end
end`;

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
// → {UNKNOWN} | {NOT_LATCHKEY} | {CURRENT or PREVIOUS, version, createdAt s, pttl, {field, value, …}} (metadata included).
const LOAD = `${MATCH}
local all = redis.pcall('HGETALL', KEYS[1])
if all.err then return {${Reply.NOT_LATCHKEY}} end
local n = #all
if n == 0 then return {${Reply.UNKNOWN}} end
local h, p, u, v, c
for i = 1, n, 2 do
  local f = all[i]
  if string.byte(f, 1) ~= 46 then
    if f == 'h' then h = all[i + 1] elseif f == 'c' then c = all[i + 1] elseif f == 'v' then v = all[i + 1]
    elseif f == 'p' then p = all[i + 1] elseif f == 'u' then u = all[i + 1] end
  end
end
local version, created = tonumber(v or '1'), tonumber(c)
if h == nil or version == nil or created == nil then return {${Reply.NOT_LATCHKEY}} end
local m = match(h, p, u, ${L.hash}, ${L.now})
if m == ${Reply.UNKNOWN} then return {m} end
return {m, version, created, redis.call('PTTL', KEYS[1]), all}`;

// → 1 created, 0 the id exists (never overwrite).
const SAVE = `${SLICES}
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
local a = {'h', ${S.hash}, 'c', ${S.createdAt}}
for i = ${SAVE_ARGS.length + 1}, #ARGV do a[#a + 1] = ARGV[i] end
hset(KEYS[1], a)
redis.call('PEXPIRE', KEYS[1], ${S.pttl})
return 1`;

// Rotation applies only from the current validator: a resend of a rotating update arrives with a
// validator that is now the previous one, so it cannot rotate twice. Removed fields go first.
// settings: '' unchanged, else '<ttl>|<persistent>' with either part empty for "none".
// → {CURRENT} kept the key | {ROTATED} | {UNKNOWN} | {VERSION_CONFLICT, actual} | {NOT_LATCHKEY}.
const UPDATE = `${MATCH}${SLICES}
local m = redis.call('HMGET', KEYS[1], 'h', 'p', 'u', 'v')
if not m[1] then return {${Reply.UNKNOWN}} end
local found = match(m[1], m[2], m[3], ${U.hash}, ${U.now})
if found == ${Reply.UNKNOWN} then return {found} end
local version = tonumber(m[4] or '1')
if version == nil then return {${Reply.NOT_LATCHKEY}} end
if ${U.expectedVersion} ~= '' and tonumber(${U.expectedVersion}) ~= version then return {${Reply.VERSION_CONFLICT}, version} end
local nset = tonumber(${U.setCount})
local first = ${UPDATE_ARGS.length + 1}
if #ARGV >= first + 2 * nset then hdel(KEYS[1], ARGV, first + 2 * nset) end
local a = {'v', tostring(version + 1)}
for i = first, first - 1 + 2 * nset do a[#a + 1] = ARGV[i] end
if ${U.settings} ~= '' then
  local t, b = string.match(${U.settings}, '^([^|]*)|([^|]*)$')
  if t == '' then redis.call('HDEL', KEYS[1], 't') else a[#a + 1] = 't'; a[#a + 1] = t end
  if b == '' then redis.call('HDEL', KEYS[1], 'b') else a[#a + 1] = 'b'; a[#a + 1] = b end
end
local rotated = ${Reply.CURRENT}
if ${U.newHash} ~= '' and found == ${Reply.CURRENT} then
  a[#a + 1] = 'h'
  a[#a + 1] = ${U.newHash}
  if ${U.graceUntil} ~= '' then
    a[#a + 1] = 'p'
    a[#a + 1] = m[1]
    a[#a + 1] = 'u'
    a[#a + 1] = ${U.graceUntil}
  else
    redis.call('HDEL', KEYS[1], 'p', 'u')
  end
  rotated = ${Reply.PREVIOUS_OR_ROTATED}
end
hset(KEYS[1], a)
redis.call('PEXPIRE', KEYS[1], ${U.pttl})
return {rotated}`;

// → 1 extended, 0 gone or wrong validator.
const UPDATE_TTL = `${MATCH}
local m = redis.call('HMGET', KEYS[1], 'h', 'p', 'u')
if not m[1] or match(m[1], m[2], m[3], ${T.hash}, ${T.now}) == ${Reply.UNKNOWN} then return 0 end
redis.call('PEXPIRE', KEYS[1], ${T.pttl})
return 1`;

type ScriptReply = (number | string | string[])[];
interface Scripted {
  latchkeyLoad(key: string, ...args: Arg[]): Promise<ScriptReply>;
  latchkeySave(key: string, ...args: Arg[]): Promise<number>;
  latchkeyUpdate(key: string, ...args: Arg[]): Promise<ScriptReply>;
  latchkeyUpdateTtl(key: string, ...args: Arg[]): Promise<number>;
}

/** The validator hash as Redis keeps it: 16 raw bytes rather than 22 characters. */
const raw = (hash: string): Buffer => Buffer.from(hash, 'latin1');

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
    const reply = await this.client.latchkeyLoad(this.prefix + parts.id, ...args(LOAD_ARGS, { hash: raw(parts.hash), now }));
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
      const created = await this.client.latchkeySave(this.prefix + id, ...args(SAVE_ARGS, { hash: raw(hash), createdAt, pttl: ms(ttl) }, fields));
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
      hash: raw(parts.hash),
      now,
      expectedVersion: change.expectedVersion ?? '',
      newHash: next ? raw(next.hash) : '',
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
    const done = await this.client.latchkeyUpdateTtl(this.prefix + parts.id, ...args(UPDATE_TTL_ARGS, { hash: raw(parts.hash), now: Date.now(), pttl: ms(ttl) }));
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
}
