/**
 * Holding a Node response's head until an async step is done. Whatever the handler calls
 * first (`writeHead`, `write`, `end`, `flushHeaders`, directly or through `res.send`,
 * `stream.pipe(res)` …) starts the step and is queued with every later call; when the
 * step is done the queue is replayed in order. Headers given to `writeHead` (object, flat
 * array or array of pairs) are applied with `setHeader`/`appendHeader` at once, so the step
 * sees the head as it will leave and what it adds survives every form (the on-headers bug,
 * CVE-2025-7339).
 *
 * The state lives under a symbol on the response and, for framework responses, the wrappers on
 * the framework's response prototype: arming adds one data property to the response, no own
 * methods. (Assigning own `writeHead`/`write`/`end` over the prototype's cost ~15 µs per response
 * in V8, and `Object.setPrototypeOf` ~6 µs, measured with `npm run bench` and a CPU profile. A
 * WeakMap of held responses cost ~6 µs per armed response in the young-generation GC, which must
 * trace every ephemeron whose key is still young: 14.5 → 9.8 µs of scavenges per Express write,
 * `node --trace-gc` on bench/targets.js.)
 */
import { type OutgoingHttpHeader, type OutgoingHttpHeaders, ServerResponse } from 'node:http';

type Method = 'writeHead' | 'write' | 'end' | 'flushHeaders';
type Call = [Method, unknown[]];
type Fn = (...args: unknown[]) => unknown;

/**
 * What to run before the head leaves. `statusCode` is the status the head will carry.
 * Resolve to let the queued calls through; reject to drop them (the rejection is then
 * passed to `onError`, which must produce a response of its own).
 */
export type BeforeHead = (statusCode: number) => Promise<void>;

const HOLD = Symbol('latchkey.hold');
type Armed = ServerResponse & { [HOLD]?: Hold };
const holdOf = (res: ServerResponse): Hold | undefined => (res as Armed)[HOLD];
const METHODS: readonly Method[] = ['writeHead', 'write', 'end', 'flushHeaders'];

class Hold {
  state: 'idle' | 'holding' | 'open' = 'idle';
  queue: Call[] = [];
  owesDrain = false;
  constructor(
    readonly res: ServerResponse,
    readonly beforeHead: BeforeHead,
    readonly onError: (err: unknown) => void,
    readonly original: Record<Method, Fn>,
  ) {}

  /** Queues a call unless the head is free to go; starts the step on the first one. */
  hold(method: Method, args: unknown[], statusCode: number): boolean {
    if (this.state === 'open') return false;
    this.queue.push([method, args]);
    if (this.state === 'idle') {
      this.state = 'holding';
      this.beforeHead(statusCode).then(
        () => this.release(),
        (err: unknown) => {
          this.state = 'open';
          this.queue = [];
          this.onError(err);
        },
      );
    }
    return true;
  }

  private release(): void {
    this.state = 'open';
    const calls = this.queue;
    this.queue = [];
    for (const [method, args] of calls) this.original[method].apply(this.res, args);
    if (this.owesDrain && !this.res.writableNeedDrain && !this.res.destroyed) this.res.emit('drain');
  }
}

type Held = ServerResponse;

function heldWriteHead(this: Held, ...args: unknown[]): ServerResponse {
  const h = holdOf(this)!;
  if (h.state === 'open') return h.original.writeHead.apply(this, args) as ServerResponse;
  // Apply its headers now, so the held step sees the head as it will be (Cache-Control, Set-Cookie).
  applyHeadHeaders(this, args);
  h.hold('writeHead', typeof args[1] === 'string' ? [args[0], args[1]] : [args[0]], args[0] as number);
  return this;
}

function heldFlushHeaders(this: Held): void {
  const h = holdOf(this)!;
  if (!h.hold('flushHeaders', [], this.statusCode)) h.original.flushHeaders.call(this);
}

function heldWrite(this: Held, ...args: unknown[]): boolean {
  const h = holdOf(this)!;
  if (!h.hold('write', args, this.statusCode)) return h.original.write.apply(this, args) as boolean;
  // Ask a piping source to wait; 'drain' follows the replay.
  h.owesDrain = true;
  return false;
}

function heldEnd(this: Held, ...args: unknown[]): ServerResponse {
  const h = holdOf(this)!;
  if (!h.hold('end', args, this.statusCode)) h.original.end.apply(this, args);
  return this;
}

const patched = new WeakSet<object>();

/**
 * Puts the held methods on a framework's own response prototype (Express's per-app
 * `app.response`), once: unarmed responses pass straight through (one property miss), and
 * arming a response adds no method to the object itself. Node's global ServerResponse.prototype
 * is never touched.
 */
function patchPrototype(proto: object): boolean {
  if (patched.has(proto)) return true;
  for (const m of METHODS) if (Object.prototype.hasOwnProperty.call(proto, m)) return false;
  const parent = Object.getPrototypeOf(proto) as Record<Method, Fn>;
  const define = (method: Method, held: Fn): void => {
    const original = parent[method];
    Object.defineProperty(proto, method, {
      configurable: true,
      writable: true,
      value: function (this: ServerResponse, ...args: unknown[]) {
        return (holdOf(this) !== undefined ? held : original).apply(this, args);
      },
    });
  };
  define('writeHead', heldWriteHead as Fn);
  define('write', heldWrite as Fn);
  define('end', heldEnd as Fn);
  define('flushHeaders', heldFlushHeaders as Fn);
  patched.add(proto);
  return true;
}

/** Arms `res` so `beforeHead` runs, and completes, before its first byte goes out. */
export function holdHead(res: ServerResponse, beforeHead: BeforeHead, onError: (err: unknown) => void): void {
  const proto = Object.getPrototypeOf(res) as object;
  const ownMethods = METHODS.some((m) => Object.prototype.hasOwnProperty.call(res, m));
  if (!ownMethods && proto !== ServerResponse.prototype && (patched.has(proto) || patchPrototype(proto))) {
    const parent = Object.getPrototypeOf(proto) as Record<Method, Fn>;
    (res as Armed)[HOLD] = new Hold(res, beforeHead, onError, { writeHead: parent.writeHead, write: parent.write, end: parent.end, flushHeaders: parent.flushHeaders });
    return;
  }
  (res as Armed)[HOLD] = new Hold(res, beforeHead, onError, {
    writeHead: res.writeHead as Fn,
    write: res.write as Fn,
    end: res.end as Fn,
    flushHeaders: res.flushHeaders as Fn,
  });
  // A plain Node response, or one whose methods another middleware already wrapped on the object
  // itself: wrap on the object, on top of theirs. The wrappers stay in place once released (as
  // pass-throughs), so a wrapper installed after ours is never clobbered by a restore.
  res.writeHead = heldWriteHead as ServerResponse['writeHead'];
  res.write = heldWrite as ServerResponse['write'];
  res.end = heldEnd as ServerResponse['end'];
  res.flushHeaders = heldFlushHeaders;
}

/**
 * Applies writeHead's headers argument as Node does once any header was set (object: each
 * replaces; array: replaces names given, repeats kept), for every form Node accepts.
 */
function applyHeadHeaders(res: ServerResponse, args: unknown[]): void {
  const headers = typeof args[1] === 'string' ? args[2] : args[1];
  if (!headers) return;
  if (Array.isArray(headers)) {
    const pairs: [string, OutgoingHttpHeader][] = [];
    if (headers.length > 0 && Array.isArray(headers[0])) {
      for (const pair of headers as [string, OutgoingHttpHeader][]) pairs.push([pair[0], pair[1]]);
    } else {
      for (let i = 0; i + 1 < headers.length; i += 2) pairs.push([headers[i] as string, headers[i + 1] as OutgoingHttpHeader]);
    }
    for (const [name] of pairs) res.removeHeader(name);
    for (const [name, value] of pairs) res.appendHeader(name, value as string | string[]);
  } else {
    for (const [name, value] of Object.entries(headers as OutgoingHttpHeaders)) {
      if (value !== undefined) res.setHeader(name, value);
    }
  }
}
