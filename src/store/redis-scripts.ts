/**
 * RedisStore's script protocol: the Lua scripts, their reply codes and their argument names, in
 * one place, used by the Lua text (through `argv`) and by the TypeScript that builds the
 * arguments (`args`) and reads the replies (`Reply`). No position or code is written as a number
 * anywhere else.
 */

/** What the scripts answer, first element of the reply. */
export const Reply = {
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
export const LOAD_ARGS = ['hash', 'now'] as const;
export const SAVE_ARGS = ['hash', 'createdAt', 'pttl'] as const; // then field, value, … pairs
export const UPDATE_ARGS = ['hash', 'now', 'expectedVersion', 'newHash', 'graceUntil', 'pttl', 'settings', 'setCount'] as const; // then setCount field/value pairs, then removed fields
export const UPDATE_TTL_ARGS = ['hash', 'now', 'pttl'] as const;

/**
 * One script argument. Never a Buffer: one Buffer makes ioredis encode the whole command as mixed
 * buffers (~2.5 µs more per call); the validator hashes are ASCII so that strings carry them exactly.
 */
export type Arg = string | number;

/** `ARGV[i]` for each name, to write into the Lua text. */
function argv<N extends string>(names: readonly N[]): Record<N, string> {
  return Object.fromEntries(names.map((n, i) => [n, `ARGV[${i + 1}]`])) as Record<N, string>;
}

/** The argument list for a script, in its declared order, followed by `rest`. */
export function args<N extends string>(names: readonly N[], values: Record<N, Arg>, rest: Arg[] = []): Arg[] {
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
export const LOAD = `${MATCH}
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
export const SAVE = `${SLICES}
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
export const UPDATE = `${MATCH}${SLICES}
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
export const UPDATE_TTL = `${MATCH}
local m = redis.call('HMGET', KEYS[1], 'h', 'p', 'u')
if not m[1] or match(m[1], m[2], m[3], ${T.hash}, ${T.now}) == ${Reply.UNKNOWN} then return 0 end
redis.call('PEXPIRE', KEYS[1], ${T.pttl})
return 1`;

/** A script's reply, as ioredis hands it over. */
export type ScriptReply = (number | string | string[])[];
/** The client once the scripts are defined on it. */
export interface Scripted {
  latchkeyLoad(key: string, ...args: Arg[]): Promise<ScriptReply>;
  latchkeySave(key: string, ...args: Arg[]): Promise<number>;
  latchkeyUpdate(key: string, ...args: Arg[]): Promise<ScriptReply>;
  latchkeyUpdateTtl(key: string, ...args: Arg[]): Promise<number>;
}
