/**
 * holdHead on real Node responses over an in-memory socket, no HTTP server: the head and body
 * leave only after the step resolves, in order; a rejection drops them; arming a framework
 * response adds no own method (one symbol-keyed data property) and never touches Node's own
 * ServerResponse.prototype.
 */
import { IncomingMessage, ServerResponse } from 'node:http';
import { Duplex } from 'node:stream';
import { holdHead } from 'latchkey/adapter';

/** A socket that keeps what is written to it. */
class MemorySocket extends Duplex {
  readonly written: Buffer[] = [];
  override _read(): void {}
  override _write(chunk: Buffer, _encoding: string, done: () => void): void {
    this.written.push(Buffer.from(chunk));
    done();
  }
  get text(): string {
    return Buffer.concat(this.written).toString('latin1');
  }
  setTimeout(): this {
    return this;
  }
  setNoDelay(): this {
    return this;
  }
  setKeepAlive(): this {
    return this;
  }
}

/** A response as a framework makes one: its prototype is the framework's own, inheriting from Node's. */
const frameworkProto = Object.create(ServerResponse.prototype) as ServerResponse;

function response(proto?: object): { res: ServerResponse; socket: MemorySocket } {
  const socket = new MemorySocket();
  const req = new IncomingMessage(socket as never);
  req.method = 'GET';
  const res = new ServerResponse(req);
  if (proto) Object.setPrototypeOf(res, proto);
  res.assignSocket(socket as never);
  return { res, socket };
}

/** A step that resolves (or rejects) when the test says. */
function gate() {
  let release!: () => void;
  let fail!: (err: Error) => void;
  const seen: number[] = [];
  const promise = new Promise<void>((resolve, reject) => {
    release = resolve;
    fail = reject;
  });
  return { seen, release, fail, step: (status: number) => (seen.push(status), promise) };
}

const tick = () => new Promise((r) => setImmediate(r));

describe.each([
  ['a framework response (prototype wrappers)', frameworkProto],
  ['a plain Node response (own wrappers)', undefined],
])('holdHead on %s', (_label, proto) => {
  it('holds end() until the step resolves, then lets the head and body out in order', async () => {
    const { res, socket } = response(proto);
    const g = gate();
    holdHead(res, g.step, () => {});
    res.statusCode = 201;
    res.setHeader('X-Mine', '1');
    res.end('body');
    await tick();
    expect(socket.text).toBe('');
    expect(g.seen).toEqual([201]);
    res.setHeader('Set-Cookie', 'sid=x'); // what the step adds before resolving
    g.release();
    await tick();
    expect(socket.text).toMatch(/^HTTP\/1\.1 201 Created\r\n/);
    expect(socket.text).toContain('X-Mine: 1');
    expect(socket.text).toContain('Set-Cookie: sid=x');
    expect(socket.text.endsWith('\r\n\r\nbody')).toBe(true);
  });

  it('applies writeHead headers at once (every form) and passes its status to the step', async () => {
    const { res, socket } = response(proto);
    const g = gate();
    let seenByStep: unknown;
    holdHead(res, (status) => ((seenByStep = [res.getHeader('x-a'), res.getHeader('content-type')]), g.step(status)), () => {});
    res.writeHead(202, 'Fine', [['X-A', 'a'], ['Content-Type', 'text/plain']] as never);
    res.end('ok');
    await tick();
    expect(g.seen).toEqual([202]);
    expect(seenByStep).toEqual(['a', 'text/plain']);
    g.release();
    await tick();
    expect(socket.text).toMatch(/^HTTP\/1\.1 202 Fine\r\n/);
  });

  it('write() returns false while held and drain follows the release', async () => {
    const { res, socket } = response(proto);
    const g = gate();
    holdHead(res, g.step, () => {});
    expect(res.write('a')).toBe(false);
    let drained = false;
    res.once('drain', () => (drained = true));
    expect(res.write('b')).toBe(false);
    g.release();
    await tick();
    expect(drained).toBe(true);
    res.end('c');
    await tick();
    expect(socket.text).toMatch(/\r\n\r\n.*a.*b.*c/s);
  });

  it('flushHeaders is held too', async () => {
    const { res, socket } = response(proto);
    const g = gate();
    holdHead(res, g.step, () => {});
    res.flushHeaders();
    await tick();
    expect(socket.text).toBe('');
    g.release();
    await tick();
    expect(socket.text).toMatch(/^HTTP\/1\.1 200 OK/);
  });

  it('a rejected step drops what was queued and hands the error over', async () => {
    const { res, socket } = response(proto);
    const g = gate();
    const errors: unknown[] = [];
    holdHead(res, g.step, (err) => errors.push(err));
    res.end('never sent');
    g.fail(new Error('store down'));
    await tick();
    expect(errors).toEqual([new Error('store down')]);
    expect(socket.text).toBe('');
    // The error path answers through the same response, unheld now.
    res.statusCode = 503;
    res.end('unavailable');
    await tick();
    expect(socket.text).toMatch(/^HTTP\/1\.1 503 .*unavailable$/s);
  });

  it('an unarmed response of the same kind passes straight through', async () => {
    const { res, socket } = response(proto);
    res.end('direct');
    await tick();
    expect(socket.text.endsWith('direct')).toBe(true);
  });
});

describe('holdHead leaves no trace where it should not', () => {
  it('a framework response gets no own method, only its hold under a symbol; Node\'s ServerResponse.prototype is never patched', () => {
    const before = Object.getOwnPropertyNames(ServerResponse.prototype);
    const nodeEnd = ServerResponse.prototype.end;
    const { res } = response(frameworkProto);
    const own = Object.getOwnPropertyNames(res).sort();
    const symbols = Object.getOwnPropertySymbols(res).length;
    holdHead(res, async () => {}, () => {});
    expect(Object.getOwnPropertyNames(res).sort()).toEqual(own);
    expect(Object.getOwnPropertySymbols(res)).toHaveLength(symbols + 1);
    expect(Object.getOwnPropertyNames(ServerResponse.prototype)).toEqual(before);
    expect(ServerResponse.prototype.end).toBe(nodeEnd);
    // A plain response armed: the wrappers are its own, Node's prototype still untouched.
    const plain = response().res;
    holdHead(plain, async () => {}, () => {});
    expect(Object.prototype.hasOwnProperty.call(plain, 'end')).toBe(true);
    expect(ServerResponse.prototype.end).toBe(nodeEnd);
  });

  it('a wrapper another middleware installs after ours is not clobbered when the hold ends', async () => {
    const { res, socket } = response();
    const g = gate();
    holdHead(res, g.step, () => {});
    const ours = res.end;
    const calls: string[] = [];
    res.end = function (this: ServerResponse, ...args: unknown[]) {
      calls.push('theirs');
      return (ours as (...a: unknown[]) => ServerResponse).apply(this, args);
    } as ServerResponse['end'];
    res.end('x');
    g.release();
    await tick();
    expect(calls).toEqual(['theirs']);
    expect(socket.text.endsWith('x')).toBe(true);
    expect(res.end).not.toBe(ours);
  });
});
