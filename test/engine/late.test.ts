/** Changes made after the response head has left, for a store that cannot keep them. */
import express from 'express';
import request from 'supertest';
import { CookieStore, type SessionEvent } from 'latchkey';
import { session } from 'latchkey/express';
import { sessionCookie } from '../support/cookies';
import { SECRET } from '../support/harness';

test('with a stateless store, a change after the head is reported as late-commit-failed, not dropped silently', async () => {
  const events: SessionEvent[] = [];
  let reported!: () => void;
  const done = new Promise<void>((resolve) => (reported = resolve));
  const app = express();
  app.use(session({ secret: SECRET, store: new CookieStore(), onEvent: (e) => (events.push(e), reported()) }));
  app.get('/seed', (req, res) => {
    req.session.set('a', 1);
    res.send('ok');
  });
  app.get('/late', (req, res) => {
    res.on('finish', () => req.session.set('late', true));
    res.send('sent');
  });
  const cookie = sessionCookie(await request(app).get('/seed'))!;
  const res = await request(app).get('/late').set('Cookie', `sid=${cookie.value}`);
  expect(sessionCookie(res)).toBeUndefined();
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([done, new Promise((_, reject) => (timer = setTimeout(() => reject(new Error('no event within 2 s')), 2000)))]);
  clearTimeout(timer);
  expect(events).toHaveLength(1);
  expect(events[0]!.type).toBe('late-commit-failed');
  expect((events[0] as { error: Error }).error.message).toMatch(/late.*stateless/);
});
