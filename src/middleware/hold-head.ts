/**
 * Holding a Node response's head until an async step is done. Whatever the handler calls
 * first (`writeHead`, `write`, `end`, `flushHeaders`, directly or through `res.send`,
 * `stream.pipe(res)` …) starts the step and is queued with every later call; when the
 * step is done the queue is replayed in order. Headers given to `writeHead` (object, flat
 * array or array of pairs) are applied with `setHeader`/`appendHeader` at once, so the step
 * sees the head as it will leave and what it adds survives every form (the on-headers bug, CVE-2025-7339).
 */
import type { OutgoingHttpHeader, OutgoingHttpHeaders, ServerResponse } from 'node:http';

type Method = 'writeHead' | 'write' | 'end' | 'flushHeaders';
type Call = [Method, unknown[]];

/**
 * What to run before the head leaves. `statusCode` is the status the head will carry.
 * Resolve to let the queued calls through; reject to drop them (the rejection is then
 * passed to `onError`, which must produce a response of its own).
 */
export type BeforeHead = (statusCode: number) => Promise<void>;

/** Arms `res` so `beforeHead` runs, and completes, before its first byte goes out. */
export function holdHead(res: ServerResponse, beforeHead: BeforeHead, onError: (err: unknown) => void): void {
  const original = {
    writeHead: res.writeHead,
    write: res.write,
    end: res.end,
    flushHeaders: res.flushHeaders,
  };
  let state: 'idle' | 'holding' | 'open' = 'idle';
  let queue: Call[] = [];
  let owesDrain = false;

  const start = (statusCode: number): void => {
    state = 'holding';
    beforeHead(statusCode).then(
      () => {
        state = 'open';
        const calls = queue;
        queue = [];
        for (const [method, args] of calls) replay(method, args);
        if (owesDrain && !res.writableNeedDrain && !res.destroyed) res.emit('drain');
      },
      (err: unknown) => {
        state = 'open';
        queue = [];
        onError(err);
      },
    );
  };

  const replay = (method: Method, args: unknown[]): void => {
    (original[method] as (...a: unknown[]) => unknown).apply(res, args);
  };

  const hold = (method: Method, args: unknown[], statusCode: number): boolean => {
    if (state === 'open') return false;
    queue.push([method, args]);
    if (state === 'idle') start(statusCode);
    return true;
  };

  res.writeHead = function (...args: unknown[]) {
    if (state === 'open') return (original.writeHead as (...a: unknown[]) => ServerResponse).apply(res, args);
    // Apply its headers now, so the held step sees the head as it will be (Cache-Control, Set-Cookie).
    applyHeadHeaders(res, args);
    hold('writeHead', typeof args[1] === 'string' ? [args[0], args[1]] : [args[0]], args[0] as number);
    return res;
  } as ServerResponse['writeHead'];
  res.flushHeaders = function () {
    if (!hold('flushHeaders', [], res.statusCode)) original.flushHeaders.call(res);
  };
  res.write = function (...args: unknown[]) {
    if (!hold('write', args, res.statusCode)) return (original.write as (...a: unknown[]) => boolean).apply(res, args);
    // Ask a piping source to wait; 'drain' follows the replay.
    owesDrain = true;
    return false;
  } as ServerResponse['write'];
  res.end = function (...args: unknown[]) {
    if (!hold('end', args, res.statusCode)) (original.end as (...a: unknown[]) => unknown).apply(res, args);
    return res;
  } as ServerResponse['end'];
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
    // Headers given here replace earlier ones of the same name but may repeat among themselves (Node's rule).
    for (const [name] of pairs) res.removeHeader(name);
    for (const [name, value] of pairs) res.appendHeader(name, value as string | string[]);
  } else {
    for (const [name, value] of Object.entries(headers as OutgoingHttpHeaders)) {
      if (value !== undefined) res.setHeader(name, value);
    }
  }
}
