/** A GET whose body is kept as text (and parsed when it is JSON), with the moment its first byte arrived. */
import request from 'supertest';
import { sessionCookie } from './cookies';

type App = Parameters<typeof request>[0];

export async function getWithFirstByte(app: App, path: string): Promise<{ res: request.Response; firstByteAt: number }> {
  let firstByteAt = 0;
  const res = await request(app)
    .get(path)
    .buffer(true)
    .parse((r, cb) => {
      let text = '';
      r.on('data', (c: Buffer) => {
        if (firstByteAt === 0) firstByteAt = Date.now();
        text += c.toString();
      });
      r.on('end', () => cb(null, text));
    })
    .on('response', () => {
      if (firstByteAt === 0) firstByteAt = Date.now();
    });
  (res as { text: string }).text = res.body as string;
  try {
    res.body = JSON.parse(res.body as string);
  } catch {
    /* not JSON */
  }
  return { res, firstByteAt };
}

/**
 * What every way of writing a response must give a session write: one save, finished before the
 * first byte left, and a cookie the next request (GET /read) opens with the value written.
 */
export async function expectSavedBeforeFirstByte(
  app: App,
  got: { res: request.Response; firstByteAt: number },
  saves: { methods(): string[]; saveDoneAt: number },
): Promise<void> {
  expect(saves.methods()).toEqual(['save']);
  const c = sessionCookie(got.res);
  expect(c).toBeDefined();
  expect(saves.saveDoneAt).toBeGreaterThan(0);
  expect(saves.saveDoneAt).toBeLessThanOrEqual(got.firstByteAt);
  // The next request sees what this response promised.
  const next = await request(app).get('/read').set('Cookie', `sid=${c!.value}`);
  expect(next.body).toEqual({ written: true });
}
